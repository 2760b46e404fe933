// Reverse-mode differentiation over the recorded graph.
import { DTypeError, ShapeError, ValueError } from '../errors';
import { keep } from '../lifetime';
import { formatShape } from '../shape';
import type { Tensor } from '../tensor';
import { noGrad } from './mode';
import type { Node } from './node';

/** Nodes reachable from `root`, each after all nodes that consume its output. */
function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  // iterative post-order DFS (graphs of deep models overflow a recursive one)
  const stack: [Node, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.inputNodes.length) {
      top[1] += 1;
      const next = node.inputNodes[i];
      if (next !== null && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

/** a + b for gradient accumulation; disposes both. */
function accumulate(a: Tensor | undefined, b: Tensor, add: (x: Tensor, y: Tensor) => Tensor): Tensor {
  if (a === undefined) return b;
  const sum = add(a, b);
  a.dispose();
  b.dispose();
  return sum;
}

/**
 * Computes d(root)/d(leaf) for every leaf that requires grad and accumulates it
 * into leaf.grad. `seed` is d(something)/d(root) (ones for a scalar root).
 */
export function runBackward(root: Tensor, seed: Tensor, add: (x: Tensor, y: Tensor) => Tensor): void {
  const rootNode = root.gradFn;
  if (rootNode === null) {
    // a leaf: the gradient is the seed itself
    root.accumulateGrad(seed);
    return;
  }
  noGrad(() => {
    const order = topoOrder(rootNode);
    const grads = new Map<Node, Tensor>([[rootNode, seed]]);
    const leafGrads = new Map<Tensor, Tensor>();
    try {
      for (const node of order) {
        const g = grads.get(node);
        if (g === undefined) continue;
        grads.delete(node);
        let inputGrads: (Tensor | null)[];
        try {
          inputGrads = node.apply(g);
        } finally {
          g.dispose();
        }
        node.inputs.forEach((input, i) => {
          const gi = inputGrads[i] ?? null;
          if (input === null || gi === null) {
            gi?.dispose();
            return;
          }
          if (gi.shape.length !== input.shape.length || gi.shape.some((d, k) => d !== input.shape[k])) {
            gi.dispose();
            throw new ShapeError(`kiln: backward: '${node.name}' produced a gradient of shape ${formatShape(gi.shape)} for an input of shape ${formatShape(input.shape)} (internal error)`);
          }
          const inputNode = node.inputNodes[i];
          if (inputNode !== null) grads.set(inputNode, accumulate(grads.get(inputNode), gi, add));
          else leafGrads.set(input, accumulate(leafGrads.get(input), gi, add));
        });
      }
      for (const [leaf, g] of leafGrads) leaf.accumulateGrad(g);
      leafGrads.clear();
    } finally {
      for (const g of grads.values()) g.dispose();
      for (const g of leafGrads.values()) g.dispose();
      for (const node of order) node.freeSaved();
    }
  });
}

/** Checks and builds the seed gradient for root.backward(gradient?). */
export function seedFor(root: Tensor, gradient: Tensor | undefined, onesLike: (t: Tensor) => Tensor): Tensor {
  if (!root.requiresGrad) {
    throw new ValueError(`kiln: backward: ${root.describe()} does not require grad (no input of the computation had requiresGrad set, or it ran under noGrad)`);
  }
  if (gradient === undefined) {
    if (root.size !== 1) {
      throw new ShapeError(`kiln: backward: ${root.describe()} is not a scalar; pass the gradient of the output (a tensor of shape ${formatShape(root.shape)})`);
    }
    return onesLike(root);
  }
  gradient.storage('backward');
  if (gradient.dtype !== root.dtype) throw new DTypeError(`kiln: backward: gradient ${gradient.describe()} must have the dtype of ${root.describe()}`);
  if (gradient.shape.length !== root.shape.length || gradient.shape.some((d, i) => d !== root.shape[i])) {
    throw new ShapeError(`kiln: backward: gradient ${gradient.describe()} must have the shape of ${root.describe()}`);
  }
  return keep(gradient.clone());
}
