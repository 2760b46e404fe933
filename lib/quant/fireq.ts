// INT4 weights in the FireQ fragment layout (native/include/kiln/quant_fireq.h):
// the canonical bytes re-encoded offline (sign-magnitude, in the order the
// CUDA FP8 tensor-core kernels load them) for w4a8Linear / w4a8Matmul on
// GPUs with FP8 mma (compute capability 8.9+: Ada, Hopper and later).
import { resolveDevice } from '../device';
import { DeviceError, ValueError } from '../errors';
import { emptyTensor, Tensor } from '../tensor';
import { runKernel } from './run';
import { Int4Weight } from './weight';

/** N is padded to a multiple of this in the FireQ layout. */
export const FIREQ_ROW_ALIGN = 16;

/**
 * An INT4 weight [N, K] in the FireQ layout: `fragments` uint8 [N padded to
 * 16, Kp/2] plus the canonical E4M3 group scales and 2^e. The weights it
 * stands for are those of the Int4Weight it was packed from (unpackFireQ
 * gives them back bit for bit). Owns its tensors (dispose() frees them).
 */
export class FireQWeight {
  readonly fragments: Tensor<'uint8'>;
  readonly scales: Tensor<'float8_e4m3'>;
  readonly exponent: Tensor<'int8'>;
  /** K */
  readonly inFeatures: number;
  /** N */
  readonly outFeatures: number;
  /** G */
  readonly groupSize: number;

  /** @internal Use packFireQ. */
  constructor(fragments: Tensor<'uint8'>, scales: Tensor<'float8_e4m3'>, exponent: Tensor<'int8'>, inFeatures: number, groupSize: number) {
    this.fragments = fragments;
    this.scales = scales;
    this.exponent = exponent;
    this.inFeatures = inFeatures;
    this.outFeatures = scales.shape[0];
    this.groupSize = groupSize;
  }

  get device(): Tensor['device'] {
    return this.fragments.device;
  }

  dispose(): void {
    this.fragments.dispose();
    this.scales.dispose();
    this.exponent.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** N rounded up to a multiple of 16. */
export function fireqRows(n: number): number {
  return Math.ceil(n / FIREQ_ROW_ALIGN) * FIREQ_ROW_ALIGN;
}

/** Runs a byte re-encoding kernel on the CPU and puts the result on the input's device. */
function runOnCpu(kernel: string, input: Tensor<'uint8'>, outShape: number[]): Tensor<'uint8'> {
  const onCpu = input.device === 'cpu';
  const src = onCpu ? input : input.to('cpu');
  const out = emptyTensor(outShape, 'uint8', resolveDevice(kernel, 'cpu'));
  try {
    runKernel(kernel, 'uint8', [src], [out]);
  } finally {
    if (!onCpu) src.dispose();
  }
  if (onCpu) return out;
  try {
    return out.to(input.device);
  } finally {
    out.dispose();
  }
}

/** Builds a weight from `main` and copies of the scales and exponent; disposes `main` if that fails. */
function withScales<W>(main: Tensor, from: { scales: Tensor<'float8_e4m3'>; exponent: Tensor<'int8'> }, make: (s: Tensor<'float8_e4m3'>, e: Tensor<'int8'>) => W): W {
  const copies: Tensor[] = [];
  try {
    copies.push(from.scales.clone(), from.exponent.clone());
    return make(copies[0] as Tensor<'float8_e4m3'>, copies[1] as Tensor<'int8'>);
  } catch (e) {
    main.dispose();
    copies.forEach((t) => t.dispose());
    throw e;
  }
}

/**
 * Re-encodes an Int4Weight into the FireQ layout (on the CPU; the result is
 * placed on the weight's device, the weight is left as it is). Throws
 * ValueError when a weight holds q = -8, which the sign-magnitude layout
 * cannot represent (quantizeWeightInt4 gives q = -8 only to groups whose E4M3
 * scale is subnormal, below 2^-6: the rounding of a normal scale keeps |w/s|
 * under 7.47); such weights stay canonical.
 */
export function packFireQ(weight: Int4Weight): FireQWeight {
  if (!(weight instanceof Int4Weight)) throw new ValueError(`kiln: packFireQ: expected an Int4Weight, got ${weight === null ? 'null' : typeof weight}`);
  const frags = runOnCpu('quant_int4_fireq_pack', weight.packed, [fireqRows(weight.outFeatures), weight.paddedInFeatures / 2]);
  return withScales(frags, weight, (s, e) => new FireQWeight(frags, s, e, weight.inFeatures, weight.groupSize));
}

/** The canonical Int4Weight of a FireQWeight (bit for bit the one it was packed from), on its device. */
export function unpackFireQ(weight: FireQWeight): Int4Weight {
  if (!(weight instanceof FireQWeight)) throw new ValueError(`kiln: unpackFireQ: expected a FireQWeight, got ${weight === null ? 'null' : typeof weight}`);
  const packed = runOnCpu('quant_int4_fireq_unpack', weight.fragments, [weight.outFeatures, weight.fragments.shape[1]]);
  return withScales(packed, weight, (s, e) => new Int4Weight({ packed, scales: s, exponent: e, inFeatures: weight.inFeatures }));
}

/** @internal The FireQ kernels run on CUDA only. */
export function checkFireQDevice(op: string, weight: FireQWeight): void {
  if (weight.device === 'cpu') {
    throw new DeviceError(`kiln: ${op}: a FireQWeight runs on CUDA GPUs with FP8 tensor cores (compute capability 8.9+); on the CPU use the canonical Int4Weight (quant.unpackFireQ)`);
  }
}
