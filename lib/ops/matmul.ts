// Matrix products with NumPy matmul semantics: 1-D operands are promoted
// (and the added dimension removed from the result), batch dimensions broadcast.
import type { DType } from '../dtype';
import { ShapeError, ValueError } from '../errors';
import { broadcastShapes, formatShape } from '../shape';
import { emptyTensor, runInto, Tensor } from '../tensor';
import { checkSame } from './elementwise';
import { broadcastTo, unsqueeze } from './views';

/** a @ b: [..., M, K] @ [..., K, N] -> [..., M, N] (float32 accumulation). */
export function matmul<D extends DType>(a: Tensor<D>, b: Tensor<D>): Tensor<D> {
  const op = 'matmul';
  for (const t of [a, b]) {
    if (!(t instanceof Tensor)) throw new ValueError(`kiln: ${op}: expected Tensors, got ${t === null ? 'null' : typeof t}`);
    t.storage(op);
    if (t.ndim === 0) throw new ShapeError(`kiln: ${op}: operands must have at least one dimension, got ${t.describe()}`);
  }
  checkSame(op, [a, b]);
  const owned: Tensor[] = [];
  try {
    const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
    const b2 = b.ndim === 1 ? unsqueeze(b, -1) : b;
    if (a2 !== a) owned.push(a2);
    if (b2 !== b) owned.push(b2);
    const [m, k] = a2.shape.slice(-2);
    const [k2, n] = b2.shape.slice(-2);
    if (k !== k2) {
      throw new ShapeError(`kiln: ${op}: inner dimensions differ: ${formatShape(a.shape)} @ ${formatShape(b.shape)} (${a.describe()}, ${b.describe()})`);
    }
    const batch = broadcastShapes(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
    if (batch === null) {
      throw new ShapeError(`kiln: ${op}: batch dimensions of ${formatShape(a.shape)} and ${formatShape(b.shape)} cannot be broadcast (${a.describe()}, ${b.describe()})`);
    }
    const av = broadcastTo(a2, [...batch, m, k]);
    const bv = broadcastTo(b2, [...batch, k, n]);
    owned.push(av, bv);
    const out = emptyTensor([...batch, m, n], a.dtype, a.deviceSpec);
    runInto(op, a.dtype, [av, bv], out);
    if (a.ndim > 1 && b.ndim > 1) return out;
    const shape = [...batch, ...(a.ndim > 1 ? [m] : []), ...(b.ndim > 1 ? [n] : [])];
    try {
      return out.reshape(shape);
    } finally {
      out.dispose();
    }
  } finally {
    owned.forEach((t) => t.dispose());
  }
}
