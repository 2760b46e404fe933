// FP8 (E4M3) activations, per token (specs/quant.md "FP8 activations"):
// s_a = max|x| / 448 (1 for a zero row, at least 2^-126), a = e4m3(x / s_a);
// or one static scale for every row.
import { DTypeError, ShapeError, ValueError } from '../errors';
import * as ew from '../ops/elementwise';
import { unsqueeze } from '../ops/views';
import { emptyTensor, Tensor } from '../tensor';
import { checkTensor, options } from './int4';
import { runKernel } from './run';
import { checkFloat } from './weight';

export interface Fp8Activation {
  /** float8_e4m3 [..., K]: the codes a. */
  values: Tensor<'float8_e4m3'>;
  /** float32 [...]: s_a, one per row (token). */
  scales: Tensor<'float32'>;
}

export interface QuantizeActivationOptions {
  /** A static s_a for every row (finite, > 0) instead of the dynamic per-token scale. */
  scale?: number;
}

/** @internal A static activation scale as the kernels take it (null: dynamic). */
export function staticScale(op: string, scale: number | undefined | null): number[] | null {
  if (scale === undefined || scale === null) return null;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || !(Math.fround(scale) > 0)) {
    throw new ValueError(`kiln: ${op}: the static activation scale must be a finite number > 0 (in float32), got ${String(scale)}`);
  }
  return [scale];
}

/** @internal [..., K] as a 2-D [M, K] view or copy (the caller disposes it when it is not x). */
export function rows2d<T extends Tensor>(op: string, x: T): T {
  if (x.ndim === 0) throw new ShapeError(`kiln: ${op}: x must have at least one dimension [..., K], got ${x.describe()}`);
  if (x.ndim === 2) return x;
  const k = x.shape[x.ndim - 1];
  const m = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return x.rawReshape([m, k]) as T;
}

/** Quantizes x [..., K] (float32, float16 or bfloat16) to E4M3 codes and per-row scales. */
export function quantizeActivationFp8(x: Tensor, opts?: QuantizeActivationOptions | null): Fp8Activation {
  const op = 'quantizeActivationFp8';
  const o = options(op, opts);
  checkTensor(op, x, 'x');
  checkFloat(op, x, 'x');
  const floats = staticScale(op, o.scale);
  const x2 = rows2d(op, x);
  const [m, k] = x2.shape;
  const values = emptyTensor(x.shape, 'float8_e4m3', x.deviceSpec);
  const scales = emptyTensor(x.shape.slice(0, -1), 'float32', x.deviceSpec);
  const v2 = values.rawReshape([m, k]);
  const s1 = scales.rawReshape([m]);
  try {
    runKernel('quant_fp8_activation', x.dtype, [x2], [v2, s1], null, floats);
  } catch (e) {
    values.dispose();
    scales.dispose();
    throw e;
  } finally {
    v2.dispose();
    s1.dispose();
    if (x2 !== x) x2.dispose();
  }
  return { values, scales };
}

/** a * s_a as float32 [..., K] (exact: one rounding of an exact product). */
export function dequantizeActivationFp8(values: Tensor<'float8_e4m3'>, scales: Tensor<'float32'>): Tensor<'float32'> {
  const op = 'dequantizeActivationFp8';
  checkTensor(op, values, 'values');
  checkTensor(op, scales, 'scales');
  if (values.dtype !== 'float8_e4m3' || scales.dtype !== 'float32') {
    throw new DTypeError(`kiln: ${op}: expected float8_e4m3 values and float32 scales, got ${values.describe()}, ${scales.describe()}`);
  }
  const lead = values.shape.slice(0, -1);
  if (values.ndim === 0 || scales.ndim !== lead.length || lead.some((d, i) => d !== scales.shape[i])) {
    throw new ShapeError(`kiln: ${op}: scales must have the shape of values without the last dimension, got ${values.describe()}, ${scales.describe()}`);
  }
  const f = values.rawCast('float32');
  const s = unsqueeze(scales, -1);
  try {
    return ew.mul(f, s);
  } finally {
    f.dispose();
    s.dispose();
  }
}
