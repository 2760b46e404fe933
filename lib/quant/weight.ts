// INT4 weights with E4M3 group scales and a per-tensor 2^e (specs/quant.md
// "INT4 weights"): the Int4Weight holder, the FireQ quantizer and dequantization.
import { DeviceError, DTypeError, ShapeError, ValueError } from '../errors';
import { emptyTensor, Tensor } from '../tensor';
import { checkTensor, options, paddedK } from './int4';
import { runKernel } from './run';

/** The float dtypes W4A8 kernels read and write. */
export type QuantFloat = 'float32' | 'float16' | 'bfloat16';
const FLOATS: readonly string[] = ['float32', 'float16', 'bfloat16'];

export function checkFloat(op: string, t: Tensor, role: string): void {
  if (!FLOATS.includes(t.dtype)) throw new DTypeError(`kiln: ${op}: ${role} must be float32, float16 or bfloat16, got ${t.describe()}`);
}

export function checkOutDtype(op: string, d: unknown): QuantFloat {
  if (typeof d !== 'string' || !FLOATS.includes(d)) {
    throw new DTypeError(`kiln: ${op}: the output dtype must be 'float32', 'float16' or 'bfloat16', got ${String(d)}`);
  }
  return d as QuantFloat;
}

export interface Int4WeightParts {
  /** uint8 [N, Kp/2]: q in [-8, 7], two per byte, even k in the low nibble. */
  packed: Tensor<'uint8'>;
  /** float8_e4m3 [N, Kp/G]: one positive scale per group of G along K. */
  scales: Tensor<'float8_e4m3'>;
  /** int8 [] (or [1]): e in [0, 14]; the per-tensor scale is 2^e. */
  exponent: Tensor<'int8'>;
  /** K, the unpadded input size (Kp = K rounded up to 128). */
  inFeatures: number;
}

/**
 * An INT4 weight [N, K] (N outputs, K inputs): w[n, k] = e4m3(q * s) / 2^e.
 * It owns its three tensors (dispose() frees them).
 */
export class Int4Weight {
  readonly packed: Tensor<'uint8'>;
  readonly scales: Tensor<'float8_e4m3'>;
  readonly exponent: Tensor<'int8'>;
  /** K */
  readonly inFeatures: number;
  /** N */
  readonly outFeatures: number;
  /** G (Kp for one group per row). */
  readonly groupSize: number;

  /** Wraps existing tensors (taken over, not copied); the shapes are checked. */
  constructor(parts: Int4WeightParts) {
    const op = 'Int4Weight';
    if (parts === null || typeof parts !== 'object') throw new ValueError(`kiln: ${op}: expected { packed, scales, exponent, inFeatures }, got ${String(parts)}`);
    const { packed, scales, exponent, inFeatures: k } = parts;
    checkTensor(op, packed, 'packed');
    checkTensor(op, scales, 'scales');
    checkTensor(op, exponent, 'exponent');
    if (packed.dtype !== 'uint8') throw new DTypeError(`kiln: ${op}: packed must be uint8, got ${packed.describe()}`);
    if (scales.dtype !== 'float8_e4m3') throw new DTypeError(`kiln: ${op}: scales must be float8_e4m3, got ${scales.describe()}`);
    if (exponent.dtype !== 'int8') throw new DTypeError(`kiln: ${op}: exponent must be int8, got ${exponent.describe()}`);
    if (!Number.isInteger(k) || k < 1) throw new ValueError(`kiln: ${op}: inFeatures must be a positive integer, got ${String(k)}`);
    const kp = paddedK(k);
    if (packed.ndim !== 2 || packed.shape[1] * 2 !== kp) {
      throw new ShapeError(`kiln: ${op}: packed must be [N, ${kp / 2}] for K = ${k} (padded to ${kp}), got ${packed.describe()}`);
    }
    const n = packed.shape[0];
    const groups = scales.shape[1];
    if (scales.ndim !== 2 || scales.shape[0] !== n || !(groups >= 1) || kp % groups !== 0 || (kp / groups) % 32 !== 0) {
      throw new ShapeError(`kiln: ${op}: scales must be [${n}, Kp / G] with G a multiple of 32 dividing Kp = ${kp}, got ${scales.describe()}`);
    }
    if (exponent.size !== 1 || exponent.ndim > 1) throw new ShapeError(`kiln: ${op}: exponent must have shape [] or [1], got ${exponent.describe()}`);
    if (packed.device !== scales.device || packed.device !== exponent.device) {
      throw new DeviceError(`kiln: ${op}: packed, scales and exponent must be on one device, got ${packed.describe()}, ${scales.describe()}, ${exponent.describe()}`);
    }
    this.packed = packed;
    this.scales = scales;
    this.exponent = exponent;
    this.inFeatures = k;
    this.outFeatures = n;
    this.groupSize = kp / groups;
  }

  /** Kp: K rounded up to a multiple of 128. */
  get paddedInFeatures(): number {
    return paddedK(this.inFeatures);
  }

  get device(): Tensor['device'] {
    return this.packed.device;
  }

  /** e (reads the exponent tensor). */
  get e(): number {
    return (this.exponent.dataSync() as Int8Array)[0];
  }

  /** The dequantized weight [N, K]: e4m3(q * s) / 2^e rounded once to dtype (default float32). */
  dequantize(opts?: { dtype?: QuantFloat } | null): Tensor {
    return dequantizeWeightInt4(this, opts);
  }

  dispose(): void {
    this.packed.dispose();
    this.scales.dispose();
    this.exponent.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export interface QuantizeWeightOptions {
  /**
   * G, the weights per E4M3 scale along K (default 128): a multiple of 32 that
   * divides Kp; 'channel' (or K itself) for one scale per output row (G = Kp).
   */
  groupSize?: number | 'channel';
}

/**
 * Quantizes w [N, K] (float32, float16 or bfloat16; N outputs, K inputs, the
 * nn.Linear layout) with the FireQ recipe of specs/quant.md: the per-tensor
 * 2^e, then per group an E4M3 scale and q = rne(w 2^e / s) in [-8, 7].
 * Throws ValueError for a non-finite weight or max |w| > 448.
 */
export function quantizeWeightInt4(w: Tensor, opts?: QuantizeWeightOptions | null): Int4Weight {
  const op = 'quantizeWeightInt4';
  const o = options(op, opts);
  checkTensor(op, w, 'w');
  checkFloat(op, w, 'w');
  if (w.ndim !== 2) throw new ShapeError(`kiln: ${op}: w must be 2-D [N, K] (outputs, inputs), got ${w.describe()}`);
  const [n, k] = w.shape;
  if (k < 1) throw new ShapeError(`kiln: ${op}: w must have K >= 1 columns, got ${w.describe()}`);
  const kp = paddedK(k);
  const g0 = o.groupSize ?? 128;
  const g = g0 === 'channel' || g0 === k ? kp : g0;
  if (typeof g !== 'number' || !Number.isInteger(g) || g < 32 || g % 32 !== 0 || kp % g !== 0) {
    throw new ValueError(`kiln: ${op}: groupSize must be a multiple of 32 that divides Kp = ${kp} (K = ${k} padded to 128), K, or 'channel'; got ${String(g0)}`);
  }
  const packed = emptyTensor([n, kp / 2], 'uint8', w.deviceSpec);
  const scales = emptyTensor([n, kp / g], 'float8_e4m3', w.deviceSpec);
  const exponent = emptyTensor([], 'int8', w.deviceSpec);
  runKernel('quant_int4_weight', w.dtype, [w], [packed, scales, exponent], [g]);
  return new Int4Weight({ packed, scales, exponent, inFeatures: k });
}

/** w [N, K] = e4m3(q * s) / 2^e, rounded once to dtype (default float32). */
export function dequantizeWeightInt4(weight: Int4Weight, opts?: { dtype?: QuantFloat } | null): Tensor {
  const op = 'dequantizeWeightInt4';
  const o = options(op, opts);
  if (!(weight instanceof Int4Weight)) throw new ValueError(`kiln: ${op}: expected an Int4Weight, got ${typeof weight}`);
  const dtype = checkOutDtype(op, o.dtype ?? 'float32');
  const out = emptyTensor([weight.outFeatures, weight.inFeatures], dtype, weight.packed.deviceSpec);
  runKernel('quant_int4_dequantize', dtype, [weight.packed, weight.scales, weight.exponent], [out]);
  return out;
}
