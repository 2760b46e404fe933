// How ops join the autograd graph: after computing their output, an op whose
// inputs need gradients records a Node with its backward rule and the tensors
// that rule needs (saved as views owned by the node).
import { keep } from '../lifetime';
import { Tensor } from '../tensor';
import { isGradEnabled } from './mode';
import { Node, type BackwardFn } from './node';

/** True when grad mode is on and any tensor argument requires grad. */
export function needsGrad(...args: unknown[]): boolean {
  if (!isGradEnabled()) return false;
  for (const a of args) {
    if (a instanceof Tensor && a.requiresGrad) return true;
    if (Array.isArray(a) && a.some((x) => x instanceof Tensor && x.requiresGrad)) return true;
  }
  return false;
}

/**
 * Makes `out` the result of a differentiable op: `inputs` are the op's
 * arguments in the order the rule returns gradients (non-tensors and tensors
 * that need no grad get null), `saved` the tensors the rule reads.
 */
export function record<T extends Tensor>(name: string, out: T, inputs: readonly unknown[], saved: readonly Tensor[], rule: BackwardFn): T {
  const routed = inputs.map((x) => (x instanceof Tensor && x.requiresGrad ? x : null));
  const views = saved.map((t) => keep(t.detach()));
  out.setGradFn(new Node(name, routed, views, rule));
  return out;
}

/** Runs op and records it when needed; `saved` is computed from the inputs and output. */
export function differentiable<T extends Tensor>(
  name: string,
  inputs: readonly unknown[],
  forward: () => T,
  backward: (out: T) => { saved: Tensor[]; rule: BackwardFn },
): T {
  const out = forward();
  if (!needsGrad(...inputs)) return out;
  const { saved, rule } = backward(out);
  return record(name, out, inputs, saved, rule);
}
