// Binary elementwise ops with NumPy broadcasting: add, sub, mul, div, maximum,
// minimum. Both operands have one dtype and one device (no implicit promotion);
// a JS number operand becomes a 0-d tensor of the other operand's dtype.
import type { DType } from '../dtype';
import { DeviceError, DTypeError, ShapeError, ValueError } from '../errors';
import { broadcastShapes, formatShape } from '../shape';
import { emptyTensor, runInto, Tensor } from '../tensor';
import { scalarLike } from '../creation';

type Operand<D extends DType> = Tensor<D> | number;

function binary<D extends DType>(op: string, a: Operand<D>, b: Operand<D>): Tensor<D> {
  const ta = a instanceof Tensor ? a : null;
  const tb = b instanceof Tensor ? b : null;
  const like = ta ?? tb;
  if (like === null) throw new ValueError(`kiln: ${op}: at least one operand must be a Tensor (got ${typeof a} and ${typeof b})`);
  for (const [x, name] of [[a, 'first'], [b, 'second']] as const) {
    if (!(x instanceof Tensor) && typeof x !== 'number') {
      throw new ValueError(`kiln: ${op}: ${name} operand must be a Tensor or a number, got ${x === null ? 'null' : typeof x}`);
    }
  }
  like.storage(op);
  const left = ta ?? scalarLike(a as number, like);
  const right = tb ?? scalarLike(b as number, like);
  try {
    left.storage(op);
    right.storage(op);
    if (left.dtype !== right.dtype) {
      throw new DTypeError(`kiln: ${op}: dtypes differ: ${left.describe()} and ${right.describe()}; cast one operand first`);
    }
    if (left.device !== right.device) {
      throw new DeviceError(`kiln: ${op}: operands are on different devices: ${left.describe()} and ${right.describe()}; move one with .to()`);
    }
    const shape = broadcastShapes(left.shape, right.shape);
    if (shape === null) {
      throw new ShapeError(
        `kiln: ${op}: shapes ${formatShape(left.shape)} and ${formatShape(right.shape)} cannot be broadcast (${left.describe()}, ${right.describe()})`,
      );
    }
    const out = emptyTensor(shape, left.dtype, left.deviceSpec);
    runInto(op, left.dtype, [left, right], out);
    return out as Tensor<D>;
  } finally {
    if (left !== ta) left.dispose();
    if (right !== tb) right.dispose();
  }
}

/** a + b, broadcasting. */
export function add<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('add', a, b);
}
/** a - b, broadcasting. */
export function sub<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('sub', a, b);
}
/** a * b, broadcasting. */
export function mul<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('mul', a, b);
}
/** a / b, broadcasting (floating dtypes). */
export function div<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('div', a, b);
}
/** Elementwise maximum; NaN if either is NaN. */
export function maximum<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('maximum', a, b);
}
/** Elementwise minimum; NaN if either is NaN. */
export function minimum<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('minimum', a, b);
}
