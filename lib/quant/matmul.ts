// The W4A8 product (specs/quant.md "W4A8 GEMM"): y = P * s_a * 2^-e + bias,
// P = sum_k a * e4m3(q * s), accumulated in float32 by the fast kernels; and
// the exact int64 reference that tests hold them to.
import { DeviceError, DTypeError, ShapeError, ValueError } from '../errors';
import { emptyTensor, Tensor } from '../tensor';
import { rows2d, staticScale } from './activation';
import { checkTensor, options } from './int4';
import { runKernel } from './run';
import { checkFireQDevice, FireQWeight } from './fireq';
import { checkFloat, checkOutDtype, Int4Weight, type QuantFloat } from './weight';

/** An INT4 weight in the canonical layout (every device) or the FireQ layout (CUDA, sm_89+). */
export type W4A8Weight = Int4Weight | FireQWeight;

export interface W4A8Options {
  /** bias [N] (float32, float16 or bfloat16), added in float32 before the output rounding. */
  bias?: Tensor | null;
  /** The output dtype (default 'bfloat16'). */
  outDtype?: QuantFloat;
}

export interface W4A8LinearOptions extends W4A8Options {
  /** A static activation scale s_a for every row instead of the dynamic per-token one. */
  activationScale?: number;
}

function checkWeight(op: string, weight: unknown): asserts weight is Int4Weight {
  if (!(weight instanceof Int4Weight)) throw new ValueError(`kiln: ${op}: weight must be an Int4Weight (quant.quantizeWeightInt4), got ${weight === null ? 'null' : typeof weight}`);
}

/** Checks an Int4Weight or FireQWeight; returns the kernel name and the weight operands. */
function weightOperands(op: string, weight: unknown, kernel: 'linear' | 'gemm'): [string, Tensor[]] {
  if (weight instanceof FireQWeight) {
    checkFireQDevice(op, weight);
    return [`w4a8_fireq_${kernel}`, [weight.fragments, weight.scales, weight.exponent]];
  }
  if (!(weight instanceof Int4Weight)) {
    throw new ValueError(`kiln: ${op}: weight must be an Int4Weight (quant.quantizeWeightInt4) or a FireQWeight (quant.packFireQ), got ${weight === null ? 'null' : typeof weight}`);
  }
  return [`w4a8_${kernel}`, [weight.packed, weight.scales, weight.exponent]];
}

function checkK(op: string, x: Tensor, weight: W4A8Weight): void {
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== weight.inFeatures) {
    throw new ShapeError(`kiln: ${op}: the last dimension of ${x.describe()} must be K = ${weight.inFeatures} (weight [${weight.outFeatures}, ${weight.inFeatures}])`);
  }
  if (x.device !== weight.device) throw new DeviceError(`kiln: ${op}: ${x.describe()} and the weight (on ${weight.device}) must be on one device`);
}

function checkBias(op: string, bias: Tensor | null | undefined, weight: W4A8Weight): Tensor | null {
  if (bias === undefined || bias === null) return null;
  checkTensor(op, bias, 'bias');
  checkFloat(op, bias, 'bias');
  if (bias.ndim !== 1 || bias.shape[0] !== weight.outFeatures) throw new ShapeError(`kiln: ${op}: bias must be [${weight.outFeatures}], got ${bias.describe()}`);
  if (bias.device !== weight.device) throw new DeviceError(`kiln: ${op}: bias ${bias.describe()} must be on the weight's device ${weight.device}`);
  return bias;
}

/** Runs a 2-D kernel over the rows of x [..., K] into [..., N]. */
function runRows(op: string, kernel: string, x: Tensor, rest: Tensor[], weight: W4A8Weight, out: QuantFloat, floats: number[] | null): Tensor {
  const x2 = rows2d(op, x);
  const y = emptyTensor([...x.shape.slice(0, -1), weight.outFeatures], out, x.deviceSpec);
  const y2 = y.rawReshape([x2.shape[0], weight.outFeatures]);
  try {
    runKernel(kernel, out, [x2, ...rest], [y2], null, floats);
  } catch (e) {
    y.dispose();
    throw e;
  } finally {
    y2.dispose();
    if (x2 !== x) x2.dispose();
  }
  return y;
}

/**
 * y [..., N] = x [..., K] @ W^T (+ bias) with x quantized to FP8 per row inside
 * the kernel (dynamic, or opts.activationScale) and W an Int4Weight [N, K]
 * (or a FireQWeight on a CUDA GPU with FP8 tensor cores).
 */
export function w4a8Linear(x: Tensor, weight: W4A8Weight, opts?: W4A8LinearOptions | null): Tensor {
  const op = 'w4a8Linear';
  const o = options(op, opts);
  checkTensor(op, x, 'x');
  checkFloat(op, x, 'x');
  const [kernel, operands] = weightOperands(op, weight, 'linear');
  checkK(op, x, weight);
  const out = checkOutDtype(op, o.outDtype ?? 'bfloat16');
  const bias = checkBias(op, o.bias, weight);
  const floats = staticScale(op, o.activationScale);
  return runRows(op, kernel, x, [...operands, ...(bias ? [bias] : [])], weight, out, floats);
}

/**
 * y [..., N] from activations already quantized (quantizeActivationFp8):
 * a float8_e4m3 [..., K] with scales s_a float32 [...].
 */
export function w4a8Matmul(a: Tensor<'float8_e4m3'>, aScales: Tensor<'float32'>, weight: W4A8Weight, opts?: W4A8Options | null): Tensor {
  const op = 'w4a8Matmul';
  const o = options(op, opts);
  checkTensor(op, a, 'a');
  checkTensor(op, aScales, 's_a');
  if (a.dtype !== 'float8_e4m3') throw new DTypeError(`kiln: ${op}: a must be float8_e4m3, got ${a.describe()}`);
  if (aScales.dtype !== 'float32') throw new DTypeError(`kiln: ${op}: s_a must be float32, got ${aScales.describe()}`);
  const [kernel, operands] = weightOperands(op, weight, 'gemm');
  checkK(op, a, weight);
  const lead = a.shape.slice(0, -1);
  if (aScales.ndim !== lead.length || lead.some((d, i) => d !== aScales.shape[i])) {
    throw new ShapeError(`kiln: ${op}: s_a must have the shape of a without its last dimension, got ${a.describe()}, ${aScales.describe()}`);
  }
  const out = checkOutDtype(op, o.outDtype ?? 'bfloat16');
  const bias = checkBias(op, o.bias, weight);
  const m = lead.reduce((p, d) => p * d, 1);
  const s1 = aScales.rawReshape([m]);
  try {
    return runRows(op, kernel, a, [s1, ...operands, ...(bias ? [bias] : [])], weight, out, null);
  } finally {
    s1.dispose();
  }
}

export interface W4A8Exact {
  /** P [M, N] = sum_k a * e4m3(q * s), exact, rounded once to float32. */
  p: Tensor<'float32'>;
  /** A [M, N] = sum_k |a * e4m3(q * s)|, likewise (the scale of the tolerances). */
  absSum: Tensor<'float32'>;
}

/**
 * The exact reference of the W4A8 product for a float8_e4m3 a [M, K] (K <=
 * 65536): sums in int64, no activation scale, no 2^-e, no bias. Slow (tests).
 */
export function w4a8Reference(a: Tensor<'float8_e4m3'>, weight: Int4Weight): W4A8Exact {
  const op = 'w4a8Reference';
  checkTensor(op, a, 'a');
  if (a.dtype !== 'float8_e4m3') throw new DTypeError(`kiln: ${op}: a must be float8_e4m3, got ${a.describe()}`);
  checkWeight(op, weight);
  checkK(op, a, weight);
  if (a.ndim !== 2) throw new ShapeError(`kiln: ${op}: a must be 2-D [M, K], got ${a.describe()}`);
  const p = emptyTensor([a.shape[0], weight.outFeatures], 'float32', a.deviceSpec);
  const absSum = emptyTensor([a.shape[0], weight.outFeatures], 'float32', a.deviceSpec);
  runKernel('w4a8_reference', 'float8_e4m3', [a, weight.packed, weight.scales], [p, absSum]);
  return { p, absSum };
}
