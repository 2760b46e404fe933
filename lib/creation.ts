// Creating tensors: tensor, zeros, ones, full, arange, rand, randn.
import { resolveDevice, type Device, type DeviceSpec } from './device';
import { checkDType, dtypeCode, isFloatDType, storageArrayType, type DType } from './dtype';
import { DTypeError, ShapeError, ValueError } from './errors';
import { native } from './native';
import { checkSeed, takeGlobal } from './random';
import { checkShape, formatShape, sizeOf } from './shape';
import { emptyTensor, runInto, Tensor } from './tensor';

/** Options every creation function takes. */
export interface CreateOptions<D extends DType = DType> {
  dtype?: D;
  device?: Device;
  requiresGrad?: boolean;
}

/** rand/randn options: a seed gives a fixed stream (the same on CPU and CUDA). */
export interface RandomOptions<D extends DType = DType> extends CreateOptions<D> {
  seed?: number;
  /**
   * With a seed: where in its stream to start, in Philox blocks of 4 values
   * (default 0). A caller that draws repeatedly from its own seed (e.g. a
   * dropout layer) advances it by ceil(size / 4) per call.
   */
  offset?: number;
}

/** Values kiln.tensor() accepts: numbers or booleans, nested arrays of them, or a TypedArray. */
export type TensorLike = number | boolean | NestedValues | ArrayLike<number> | ArrayBufferView;
export interface NestedValues extends ReadonlyArray<number | boolean | NestedValues> {}
/** Booleans, possibly nested: kiln.tensor() gives a bool tensor. */
export type NestedBools = boolean | readonly NestedBools[];

function checkOptions(op: string, opts: unknown): CreateOptions {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new ValueError(`kiln: ${op}: options must be an object like { dtype, device }, got ${String(opts)}`);
  }
  return opts as CreateOptions;
}

function finish<D extends DType>(t: Tensor<D>, opts: CreateOptions): Tensor<D> {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

// ---- tensor() ------------------------------------------------------------------

interface Flattened {
  values: (number | boolean)[];
  shape: number[];
  allBool: boolean;
}

function flattenNested(op: string, values: unknown): Flattened {
  const shape: number[] = [];
  for (let v = values; Array.isArray(v); v = v[0]) shape.push(v.length);
  const out: (number | boolean)[] = [];
  let allBool = true;
  const walk = (v: unknown, dim: number, path: string): void => {
    if (dim === shape.length) {
      if (typeof v === 'number') allBool = false;
      else if (typeof v !== 'boolean') {
        throw new ValueError(`kiln: ${op}: element at ${path || '[]'} is ${v === null ? 'null' : typeof v}; expected a number or boolean`);
      }
      out.push(v as number | boolean);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      throw new ShapeError(
        `kiln: ${op}: ragged nested array at ${path || '[]'}: expected ${shape[dim]} elements (shape ${formatShape(shape)}), got ${Array.isArray(v) ? v.length : typeof v}`,
      );
    }
    for (let i = 0; i < v.length; ++i) walk(v[i], dim + 1, `${path}[${i}]`);
  };
  walk(values, 0, '');
  return { values: out, shape, allBool: allBool && out.length > 0 };
}

/** The dtype a TypedArray implies when none is given (null: it must be given). */
function dtypeOfArray(a: ArrayBufferView): DType | null {
  if (a instanceof Float32Array || a instanceof Float64Array) return 'float32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  if (a instanceof Uint16Array) return null; // raw float16/bfloat16 bits, or integers? ask.
  return 'float32';
}

/** Encodes JS numbers to the dtype's bytes (one rounding; see README "Casting"). */
function encode(values: ArrayLike<number | boolean>, dtype: DType): ArrayBuffer {
  const f64 = new Float64Array(values.length);
  for (let i = 0; i < values.length; ++i) f64[i] = Number(values[i]);
  return native.encode(f64, dtypeCode(dtype));
}

/** Allocates on `device` and uploads `bytes` (already in the dtype's format). */
function upload<D extends DType>(bytes: ArrayBufferView, shape: number[], dtype: D, device: DeviceSpec): Tensor<D> {
  const t = emptyTensor(shape, dtype, device);
  try {
    native.write(t.storage('tensor').native, 0, bytes);
  } catch (e) {
    t.dispose();
    throw e;
  }
  return t;
}

/**
 * A tensor from values. Nested arrays give the shape; a flat array or
 * TypedArray takes `shape` (default: 1-D). Default dtype: float32 for numbers,
 * bool for booleans, the TypedArray's own type for Int32/Int8/Uint8 arrays.
 * A TypedArray that is the dtype's storage type (Uint16Array for float16 /
 * bfloat16, Uint8Array for fp8) is taken as raw bits.
 */
export function tensor(values: NestedBools, shape?: readonly number[], opts?: CreateOptions<'bool'>): Tensor<'bool'>;
export function tensor<D extends DType = 'float32'>(values: TensorLike, shape?: readonly number[], opts?: CreateOptions<D>): Tensor<D>;
export function tensor<D extends DType = 'float32'>(values: TensorLike, opts?: CreateOptions<D>): Tensor<D>;
export function tensor<D extends DType = 'float32'>(
  values: TensorLike,
  shapeOrOpts?: readonly number[] | CreateOptions<D>,
  opts?: CreateOptions<D>,
): Tensor<D> {
  const op = 'tensor';
  const shape = Array.isArray(shapeOrOpts) || shapeOrOpts === undefined ? (shapeOrOpts as readonly number[] | undefined) : undefined;
  const o = checkOptions(op, shape === undefined && shapeOrOpts !== undefined ? shapeOrOpts : opts);
  const device = resolveDevice(op, o.device);
  let flat: ArrayLike<number | boolean>;
  let inferred: number[];
  let dtype: DType | null;
  let raw: ArrayBufferView | null = null;
  if (ArrayBuffer.isView(values)) {
    if (values instanceof DataView || values instanceof BigInt64Array || values instanceof BigUint64Array) {
      throw new ValueError(`kiln: ${op}: ${values.constructor.name} is not supported; use a number TypedArray`);
    }
    const arr = values as unknown as ArrayLike<number> & ArrayBufferView;
    flat = arr;
    inferred = [arr.length];
    dtype = o.dtype === undefined ? dtypeOfArray(arr) : checkDType(op, o.dtype);
    if (dtype === null) {
      throw new DTypeError(`kiln: ${op}: a Uint16Array needs an explicit dtype ('float16' or 'bfloat16' for raw bits, or e.g. 'int32' for its values)`);
    }
    if (arr instanceof storageArrayType(dtype) && dtype !== 'bool') raw = arr;
  } else if (typeof values === 'number' || typeof values === 'boolean') {
    flat = [values];
    inferred = [];
    dtype = o.dtype === undefined ? (typeof values === 'boolean' ? 'bool' : 'float32') : checkDType(op, o.dtype);
  } else if (Array.isArray(values)) {
    const f = flattenNested(op, values);
    flat = f.values;
    inferred = f.shape;
    dtype = o.dtype === undefined ? (f.allBool ? 'bool' : 'float32') : checkDType(op, o.dtype);
  } else {
    throw new ValueError(`kiln: ${op}: values must be a number, boolean, (nested) array or TypedArray, got ${values === null ? 'null' : typeof values}`);
  }
  let finalShape = inferred;
  if (shape !== undefined) {
    finalShape = checkShape(op, shape);
    if (sizeOf(finalShape) !== flat.length) {
      throw new ShapeError(`kiln: ${op}: ${flat.length} values do not fill shape ${formatShape(finalShape)} (${sizeOf(finalShape)} elements)`);
    }
  }
  checkShape(op, finalShape);
  const bytes = raw ?? new Uint8Array(encode(flat, dtype));
  return finish(upload(bytes, finalShape, dtype as D, device), o);
}

// ---- constant fills ------------------------------------------------------------------

/** The raw bits of `value` encoded as one element of `dtype` (for the 'fill' kernel). */
function encodedBits(value: number, dtype: DType): number {
  const bytes = new Uint8Array(encode([value], dtype));
  let bits = 0;
  for (let i = bytes.length - 1; i >= 0; --i) bits = bits * 256 + bytes[i];
  return bits;
}

function filled<D extends DType>(op: string, shape: unknown, value: number, dtype: D, device: DeviceSpec): Tensor<D> {
  const t = emptyTensor(checkShape(op, shape), dtype, device);
  if (t.size > 0) runInto('fill', dtype, [], t, [encodedBits(value, dtype)]);
  return t;
}

/** A tensor filled with `value` (default dtype float32, or bool for a boolean value). */
export function full<D extends DType = 'float32'>(shape: readonly number[], value: number | boolean, opts?: CreateOptions<D>): Tensor<D> {
  const o = checkOptions('full', opts);
  if (typeof value !== 'number' && typeof value !== 'boolean') {
    throw new ValueError(`kiln: full: value must be a number or boolean, got ${value === null ? 'null' : typeof value}`);
  }
  const dtype = o.dtype === undefined ? (typeof value === 'boolean' ? 'bool' : 'float32') : checkDType('full', o.dtype);
  return finish(filled('full', shape, Number(value), dtype as D, resolveDevice('full', o.device)), o);
}

export function zeros<D extends DType = 'float32'>(shape: readonly number[], opts?: CreateOptions<D>): Tensor<D> {
  const o = checkOptions('zeros', opts);
  const dtype = o.dtype === undefined ? 'float32' : checkDType('zeros', o.dtype);
  return finish(filled('zeros', shape, 0, dtype as D, resolveDevice('zeros', o.device)), o);
}

export function ones<D extends DType = 'float32'>(shape: readonly number[], opts?: CreateOptions<D>): Tensor<D> {
  const o = checkOptions('ones', opts);
  const dtype = o.dtype === undefined ? 'float32' : checkDType('ones', o.dtype);
  return finish(filled('ones', shape, 1, dtype as D, resolveDevice('ones', o.device)), o);
}

/** Zeros with t's shape, dtype and device (each may be overridden). */
export function zerosLike<D extends DType>(t: Tensor<D>, opts?: CreateOptions<D>): Tensor<D> {
  return fullLike(t, 0, opts);
}

/** Ones with t's shape, dtype and device (each may be overridden). */
export function onesLike<D extends DType>(t: Tensor<D>, opts?: CreateOptions<D>): Tensor<D> {
  return fullLike(t, 1, opts);
}

/** `value` everywhere, with t's shape, dtype and device (each may be overridden). */
export function fullLike<D extends DType>(t: Tensor<D>, value: number | boolean, opts?: CreateOptions<D>): Tensor<D> {
  if (!(t instanceof Tensor)) throw new ValueError(`kiln: fullLike: expected a Tensor, got ${t === null ? 'null' : typeof t}`);
  const o = checkOptions('fullLike', opts);
  return full(t.shape, value, { dtype: o.dtype ?? t.dtype, device: o.device ?? t.device, requiresGrad: o.requiresGrad }) as Tensor<D>;
}

/** @internal A 0-d tensor holding `value` with `like`'s dtype and device. */
export function scalarLike<D extends DType>(value: number, like: Tensor<D>): Tensor<D> {
  return filled('scalar', [], value, like.dtype, like.deviceSpec);
}

// ---- arange --------------------------------------------------------------------------

/**
 * Values start, start + step, ... below end (above, for a negative step),
 * computed in float64 and rounded once. Default dtype: int32 when start, end
 * and step are all integers, else float32.
 */
export function arange<D extends DType = DType>(end: number, opts?: CreateOptions<D>): Tensor<D>;
export function arange<D extends DType = DType>(start: number, end: number, step?: number, opts?: CreateOptions<D>): Tensor<D>;
export function arange<D extends DType = DType>(a: number, b?: number | CreateOptions<D>, c?: number, d?: CreateOptions<D>): Tensor<D> {
  const op = 'arange';
  let start = 0;
  let end: number;
  let step = 1;
  let opts: CreateOptions<D> | undefined;
  if (b === undefined || typeof b === 'object') {
    end = a;
    opts = b;
  } else {
    start = a;
    end = b;
    step = c ?? 1;
    opts = d;
  }
  const o = checkOptions(op, opts);
  for (const [name, v] of [['start', start], ['end', end], ['step', step]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValueError(`kiln: ${op}: ${name} must be a finite number, got ${String(v)}`);
  }
  if (step === 0) throw new ValueError(`kiln: ${op}: step must not be 0`);
  if ((end - start) * step < 0) {
    throw new ValueError(`kiln: ${op}: step ${step} moves away from end (start ${start}, end ${end})`);
  }
  const n = Math.max(0, Math.ceil((end - start) / step));
  if (!Number.isSafeInteger(n) || n > 2 ** 31) throw new ValueError(`kiln: ${op}: ${n} elements is too many`);
  const allInt = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  const dtype = o.dtype === undefined ? (allInt ? 'int32' : 'float32') : checkDType(op, o.dtype);
  const values = new Float64Array(n);
  for (let i = 0; i < n; ++i) values[i] = start + i * step;
  if (dtype === 'int32' && n > 0 && (Math.abs(values[0]) >= 2 ** 31 || Math.abs(values[n - 1]) >= 2 ** 31)) {
    throw new ValueError(`kiln: ${op}: values from ${start} to ${end} do not fit int32; pass { dtype: 'float32' }`);
  }
  const device = resolveDevice(op, o.device);
  return finish(upload(new Uint8Array(native.encode(values, dtypeCode(dtype))), [n], dtype as D, device), o);
}

// ---- rand / randn ----------------------------------------------------------------------

function random<D extends DType>(op: 'rand' | 'randn', shape: readonly number[], opts?: RandomOptions<D>): Tensor<D> {
  const o = checkOptions(op, opts) as RandomOptions<D>;
  const dims = checkShape(op, shape);
  const dtype = o.dtype === undefined ? 'float32' : checkDType(op, o.dtype);
  if (!isFloatDType(dtype)) throw new DTypeError(`kiln: ${op}: dtype must be a floating type, got '${dtype}'`);
  const device = resolveDevice(op, o.device);
  const n = sizeOf(dims);
  if (o.offset !== undefined && (o.seed === undefined || !Number.isSafeInteger(o.offset) || o.offset < 0)) {
    throw new ValueError(`kiln: ${op}: offset needs a seed and must be a non-negative safe integer, got ${String(o.offset)}`);
  }
  const [seed, offset] = o.seed === undefined ? takeGlobal(n) : [checkSeed(op, o.seed), o.offset ?? 0];
  const t = emptyTensor(dims, dtype as D, device);
  if (n > 0) runInto(op, dtype, [], t, [seed, offset]);
  return finish(t, o);
}

/**
 * Uniform samples in [0, 1), exact in the dtype (never 1). Counter-based
 * (Philox4x32-10): the same seed gives the same numbers on CPU and CUDA.
 * Without a seed, the global stream is used (kiln.manualSeed).
 */
export function rand<D extends DType = 'float32'>(shape: readonly number[], opts?: RandomOptions<D>): Tensor<D> {
  return random('rand', shape, opts);
}

/** Standard normal samples (Box-Muller over Philox; same on CPU and CUDA for a seed). */
export function randn<D extends DType = 'float32'>(shape: readonly number[], opts?: RandomOptions<D>): Tensor<D> {
  return random('randn', shape, opts);
}
