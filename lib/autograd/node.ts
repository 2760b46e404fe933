// A node of the autograd graph: the op that produced one tensor, its inputs,
// the tensors its backward rule needs, and that rule.
//
// Memory: saved tensors are views owned by the node (kept out of tidy scopes).
// A node is referenced by its output tensor and by the nodes of ops that used
// that output; when the last reference goes (the tensors are disposed or
// collected), it frees its saved tensors and releases its inputs' nodes. After
// backward, every node it visited frees its saved tensors at once (like
// PyTorch's retain_graph=False): a second backward through them is an error.
import type { Tensor } from '../tensor';

/** Computes the gradients of the inputs (null where not needed) from the output's. */
export type BackwardFn = (grad: Tensor, saved: readonly Tensor[]) => (Tensor | null)[];

export class Node {
  readonly name: string;
  /** Inputs that need a gradient (others are null). */
  readonly inputs: readonly (Tensor | null)[];
  /** The nodes of those inputs (null for leaves and inputs that need no gradient). */
  readonly inputNodes: readonly (Node | null)[];
  private saved: Tensor[] | null;
  private readonly rule: BackwardFn;
  private refs = 1;

  constructor(name: string, inputs: readonly (Tensor | null)[], saved: Tensor[], rule: BackwardFn) {
    this.name = name;
    this.inputs = inputs;
    this.inputNodes = inputs.map((t) => (t === null ? null : t.gradFn));
    for (const n of this.inputNodes) if (n !== null) n.refs += 1;
    this.saved = saved;
    this.rule = rule;
  }

  /** Runs the backward rule. */
  apply(grad: Tensor): (Tensor | null)[] {
    if (this.saved === null) {
      throw new Error(`kiln: backward: the graph through '${this.name}' was already used by a backward pass (or released); run the forward again`);
    }
    return this.rule(grad, this.saved);
  }

  /** Frees the saved tensors (after backward). */
  freeSaved(): void {
    if (this.saved === null) return;
    for (const t of this.saved) t.dispose();
    this.saved = null;
  }

  /** Drops one reference; the last one frees the saved tensors and releases the inputs' nodes. */
  release(): void {
    this.refs -= 1;
    if (this.refs > 0) return;
    this.freeSaved();
    for (const n of this.inputNodes) if (n !== null) n.release();
  }
}
