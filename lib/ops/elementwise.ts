// Elementwise ops. Binary ops broadcast like NumPy; both operands have one
// dtype and one device (no implicit promotion) and a JS number operand becomes
// a 0-d tensor of the other operand's dtype. Float ops compute in float32 and
// round once to float16/bfloat16 (native/KERNELS.md "Elementwise").
import type { DType } from '../dtype';
import { DeviceError, DTypeError, ShapeError, ValueError } from '../errors';
import { broadcastShapes, formatShape } from '../shape';
import { emptyTensor, runInto, Tensor } from '../tensor';
import { full, scalarLike } from '../creation';

type Operand<D extends DType> = Tensor<D> | number;

function checkOperand(op: string, x: unknown, name: string): void {
  if (!(x instanceof Tensor) && typeof x !== 'number') {
    throw new ValueError(`kiln: ${op}: ${name} must be a Tensor or a number, got ${x === null ? 'null' : typeof x}`);
  }
}

/** Checks that every tensor shares the first one's dtype and device. */
export function checkSame(op: string, tensors: readonly Tensor[]): void {
  const [first, ...rest] = tensors;
  for (const t of rest) {
    if (t.dtype !== first.dtype) {
      throw new DTypeError(`kiln: ${op}: dtypes differ: ${first.describe()} and ${t.describe()}; cast one operand first`);
    }
    if (t.device !== first.device) {
      throw new DeviceError(`kiln: ${op}: operands are on different devices: ${first.describe()} and ${t.describe()}; move one with .to()`);
    }
  }
}

/**
 * Runs a broadcasting kernel over `operands` (numbers become 0-d tensors like
 * `like`); operands from index `valuesFrom` on must share one dtype.
 */
function broadcasting<D extends DType, O extends DType = D>(op: string, operands: readonly (Operand<D> | Tensor<'bool'>)[], like: Tensor<D>, valuesFrom: number, outDType?: O): Tensor<O> {
  like.storage(op);
  const owned: Tensor[] = [];
  try {
    const inputs = operands.map((x) => {
      if (x instanceof Tensor) return x.storage(op) && x;
      const s = scalarLike(x, like);
      owned.push(s);
      return s;
    });
    checkSame(op, inputs.slice(valuesFrom));
    for (const t of inputs) {
      if (t.device !== like.device) {
        throw new DeviceError(`kiln: ${op}: operands are on different devices: ${like.describe()} and ${t.describe()}; move one with .to()`);
      }
    }
    let shape: number[] | null = inputs[0].shape.slice();
    for (const t of inputs.slice(1)) {
      shape = shape && broadcastShapes(shape, t.shape);
    }
    if (shape === null) {
      throw new ShapeError(`kiln: ${op}: shapes ${inputs.map((t) => formatShape(t.shape)).join(' and ')} cannot be broadcast (${inputs.map((t) => t.describe()).join(', ')})`);
    }
    const out = emptyTensor(shape, outDType ?? (like.dtype as DType as O), like.deviceSpec);
    runInto(op, like.dtype, inputs, out);
    return out;
  } finally {
    owned.forEach((t) => t.dispose());
  }
}

function binary<D extends DType>(op: string, a: Operand<D>, b: Operand<D>): Tensor<D> {
  checkOperand(op, a, 'first operand');
  checkOperand(op, b, 'second operand');
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  if (like === null) throw new ValueError(`kiln: ${op}: at least one operand must be a Tensor (got two numbers)`);
  return broadcasting(op, [a, b], like, 0);
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
/** a ** b, broadcasting (floating dtypes; C pow semantics). */
export function pow<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('pow', a, b);
}
/** Elementwise maximum; NaN if either is NaN. */
export function maximum<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('maximum', a, b);
}
/** Elementwise minimum; NaN if either is NaN. */
export function minimum<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary('minimum', a, b);
}

/**
 * Picks a where cond is true, else b (all three broadcast). cond is a bool
 * tensor; a and b share a dtype (a number takes the other's dtype; with two
 * numbers the result is float32 on cond's device, like torch.where).
 */
export function where<D extends DType>(cond: Tensor<'bool'>, a: Operand<D>, b: Operand<D>): Tensor<D> {
  const op = 'where';
  if (!(cond instanceof Tensor)) throw new ValueError(`kiln: ${op}: cond must be a bool Tensor, got ${cond === null ? 'null' : typeof cond}`);
  if (cond.dtype !== 'bool') throw new DTypeError(`kiln: ${op}: cond must have dtype bool, got ${cond.describe()}`);
  checkOperand(op, a, 'a');
  checkOperand(op, b, 'b');
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  if (like === null) {
    cond.storage(op);
    const first = full([], a as number, { dtype: 'float32', device: cond.device }) as unknown as Tensor<D>;
    try {
      return broadcasting(op, [cond, first, b], first, 1);
    } finally {
      first.dispose();
    }
  }
  return broadcasting(op, [cond, a, b], like, 1);
}

// ---- comparisons and logical ops (bool results) ---------------------------------

function compare<D extends DType>(op: string, a: Operand<D>, b: Operand<D>): Tensor<'bool'> {
  checkOperand(op, a, 'first operand');
  checkOperand(op, b, 'second operand');
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  if (like === null) throw new ValueError(`kiln: ${op}: at least one operand must be a Tensor (got two numbers)`);
  return broadcasting(op, [a, b], like, 0, 'bool');
}

/**
 * a == b elementwise, broadcasting; a bool tensor. IEEE: NaN equals nothing,
 * -0 == +0; float16/bfloat16 compare their exact values. A number operand
 * takes the tensor's dtype first (rounded like a cast: 0.5 vs an int32 tensor is 0).
 */
export function eq<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<'bool'> {
  return compare('eq', a, b);
}
/** a != b elementwise (true where either is NaN), broadcasting; a bool tensor. */
export function ne<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<'bool'> {
  return compare('ne', a, b);
}
/** a < b elementwise (false where either is NaN), broadcasting; a bool tensor. */
export function lt<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<'bool'> {
  return compare('lt', a, b);
}
/** a <= b elementwise (false where either is NaN), broadcasting; a bool tensor. */
export function le<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<'bool'> {
  return compare('le', a, b);
}
/** a > b elementwise (false where either is NaN), broadcasting; a bool tensor. */
export function gt<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<'bool'> {
  return compare('gt', a, b);
}
/** a >= b elementwise (false where either is NaN), broadcasting; a bool tensor. */
export function ge<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<'bool'> {
  return compare('ge', a, b);
}

type BoolOperand = Tensor<'bool'> | boolean;

function checkBool(op: string, x: unknown, name: string): void {
  if (typeof x === 'boolean') return;
  if (!(x instanceof Tensor)) {
    throw new ValueError(`kiln: ${op}: ${name} must be a bool Tensor or a boolean, got ${x === null ? 'null' : typeof x}`);
  }
  if (x.dtype !== 'bool') throw new DTypeError(`kiln: ${op}: ${name} must have dtype bool, got ${x.describe()}`);
}

function logical(op: string, a: BoolOperand, b: BoolOperand): Tensor<'bool'> {
  checkBool(op, a, 'first operand');
  checkBool(op, b, 'second operand');
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  if (like === null) throw new ValueError(`kiln: ${op}: at least one operand must be a Tensor (got two booleans)`);
  const num = (x: BoolOperand): Tensor<'bool'> | number => (typeof x === 'boolean' ? Number(x) : x);
  return broadcasting(op, [num(a), num(b)], like, 0);
}

/** a AND b elementwise on bool tensors (or a boolean), broadcasting. */
export function logicalAnd(a: BoolOperand, b: BoolOperand): Tensor<'bool'> {
  return logical('logical_and', a, b);
}
/** a OR b elementwise on bool tensors (or a boolean), broadcasting. */
export function logicalOr(a: BoolOperand, b: BoolOperand): Tensor<'bool'> {
  return logical('logical_or', a, b);
}
/** NOT x elementwise on a bool tensor. */
export function logicalNot(x: Tensor<'bool'>): Tensor<'bool'> {
  checkBool('logical_not', x, 'input');
  return unary('logical_not', x);
}

// ---- unary ----------------------------------------------------------------------

function unary<D extends DType>(op: string, x: Tensor<D>): Tensor<D> {
  if (!(x instanceof Tensor)) throw new ValueError(`kiln: ${op}: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  x.storage(op);
  const out = emptyTensor(x.shape, x.dtype, x.deviceSpec);
  runInto(op, x.dtype, [x], out);
  return out;
}

/** -x */
export const neg = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('neg', x);
/** e^x */
export const exp = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('exp', x);
/** Natural logarithm. */
export const log = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('log', x);
export const sqrt = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('sqrt', x);
/** 1 / sqrt(x) */
export const rsqrt = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('rsqrt', x);
export const abs = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('abs', x);
/** max(x, 0) (NaN stays NaN). */
export const relu = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('relu', x);
/** x * sigmoid(x) */
export const silu = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('silu', x);
export const sigmoid = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('sigmoid', x);
export const tanh = <D extends DType>(x: Tensor<D>): Tensor<D> => unary('tanh', x);

export interface GeluOptions {
  /** 'none' (default): x/2 (1 + erf(x / sqrt 2)); 'tanh': the tanh approximation. */
  approximate?: 'none' | 'tanh';
}

function geluOp(op: string, opts?: GeluOptions): string {
  const approximate = opts?.approximate ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') {
    throw new ValueError(`kiln: ${op}: approximate must be 'none' or 'tanh', got ${JSON.stringify(approximate)}`);
  }
  return approximate === 'tanh' ? 'gelu_tanh' : 'gelu';
}

/** GELU, exact (erf) by default. */
export function gelu<D extends DType>(x: Tensor<D>, opts?: GeluOptions): Tensor<D> {
  return unary(geluOp('gelu', opts), x);
}

/** Limits x to [min, max] (either bound may be omitted; NaN stays NaN). */
export function clamp<D extends DType>(x: Tensor<D>, min?: number | null, max?: number | null): Tensor<D> {
  const op = 'clamp';
  for (const [name, v] of [['min', min], ['max', max]] as const) {
    if (v !== undefined && v !== null && (typeof v !== 'number' || Number.isNaN(v))) {
      throw new ValueError(`kiln: ${op}: ${name} must be a number (or omitted), got ${String(v)}`);
    }
  }
  if (!(x instanceof Tensor)) throw new ValueError(`kiln: ${op}: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  x.storage(op);
  const out = emptyTensor(x.shape, x.dtype, x.deviceSpec);
  runInto(op, x.dtype, [x], out, null, [min ?? NaN, max ?? NaN]);
  return out;
}

// ---- backward of the unary ops (used by autograd) ------------------------------

/** @internal Runs a same-shape two-input kernel (x or y, gy) -> gx. */
export function pointwiseBackward<D extends DType>(op: string, saved: Tensor<D>, gy: Tensor<D>): Tensor<D> {
  for (const t of [saved, gy]) {
    if (!(t instanceof Tensor)) throw new ValueError(`kiln: ${op}: expected Tensors`);
    t.storage(op);
  }
  checkSame(op, [saved, gy]);
  if (saved.shape.length !== gy.shape.length || saved.shape.some((d, i) => d !== gy.shape[i])) {
    throw new ShapeError(`kiln: ${op}: shapes differ: ${saved.describe()} and gradient ${gy.describe()}`);
  }
  const out = emptyTensor(saved.shape, saved.dtype, saved.deviceSpec);
  runInto(op, saved.dtype, [saved, gy], out);
  return out;
}

export { geluOp };
