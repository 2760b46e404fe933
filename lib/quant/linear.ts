// QuantizedLinear: an nn.Linear with an INT4 weight (E4M3 group scales, 2^e)
// whose forward quantizes its input to FP8 per token and runs the W4A8 kernel.
import { noGrad } from '../autograd/mode';
import { ValueError } from '../errors';
import { Module } from '../nn/module';
import type { Linear } from '../nn/layers';
import type { Tensor } from '../tensor';
import { staticScale } from './activation';
import { checkTensor, options } from './int4';
import { w4a8Linear } from './matmul';
import { checkOutDtype, Int4Weight, quantizeWeightInt4, type QuantFloat, type QuantizeWeightOptions } from './weight';

export interface QuantizedLinearOptions {
  /** The output dtype of forward (default 'bfloat16'). */
  outDtype?: QuantFloat;
  /** A static activation scale instead of the dynamic per-token one. */
  activationScale?: number;
}

/**
 * y = x W^T + b with W [outFeatures, inFeatures] held as INT4 (buffers
 * 'packed', 'scales', 'exponent', and 'bias' when given: they are saved by
 * stateDict and restored by loadStateDict). Inference only: nothing is recorded
 * for autograd.
 */
export class QuantizedLinear extends Module {
  packed: Tensor<'uint8'>;
  scales: Tensor<'float8_e4m3'>;
  exponent: Tensor<'int8'>;
  bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly groupSize: number;
  outDtype: QuantFloat;
  activationScale: number | null;

  /** Takes over `weight`'s tensors and `bias` (disposed with the module). */
  constructor(weight: Int4Weight, bias: Tensor | null = null, opts?: QuantizedLinearOptions | null) {
    super();
    const op = 'QuantizedLinear';
    const o = options(op, opts);
    if (!(weight instanceof Int4Weight)) throw new ValueError(`kiln: ${op}: weight must be an Int4Weight, got ${typeof weight}`);
    this.outDtype = checkOutDtype(op, o.outDtype ?? 'bfloat16');
    this.activationScale = staticScale(op, o.activationScale)?.[0] ?? null;
    this.inFeatures = weight.inFeatures;
    this.outFeatures = weight.outFeatures;
    this.groupSize = weight.groupSize;
    this.packed = this.registerBuffer('packed', weight.packed);
    this.scales = this.registerBuffer('scales', weight.scales);
    this.exponent = this.registerBuffer('exponent', weight.exponent);
    if (bias !== null && bias !== undefined) checkTensor(op, bias, 'bias');
    this.bias = bias === null || bias === undefined ? null : this.registerBuffer('bias', bias);
  }

  /** Quantizes w [N, K] (and copies the bias). */
  static fromWeights(w: Tensor, bias: Tensor | null = null, opts?: (QuantizedLinearOptions & QuantizeWeightOptions) | null): QuantizedLinear {
    if (bias !== null && bias !== undefined) checkTensor('QuantizedLinear.fromWeights', bias, 'bias');
    const weight = noGrad(() => quantizeWeightInt4(w, opts));
    try {
      const b = bias === null || bias === undefined ? null : noGrad(() => bias.rawContiguous());
      return new QuantizedLinear(weight, b, opts);
    } catch (e) {
      weight.dispose();
      throw e;
    }
  }

  /** The INT4 version of an nn.Linear (the Linear is left as it is). */
  static fromLinear(linear: Linear, opts?: (QuantizedLinearOptions & QuantizeWeightOptions) | null): QuantizedLinear {
    if (linear === null || typeof linear !== 'object' || !('weight' in linear)) throw new ValueError(`kiln: QuantizedLinear.fromLinear: expected an nn.Linear, got ${String(linear)}`);
    return QuantizedLinear.fromWeights(linear.weight, linear.bias, opts);
  }

  /** The weight as an Int4Weight over this module's buffers (not owned: do not dispose it). */
  get weight(): Int4Weight {
    return new Int4Weight({ packed: this.packed, scales: this.scales, exponent: this.exponent, inFeatures: this.inFeatures });
  }

  /** x [..., inFeatures] (float32, float16 or bfloat16) -> [..., outFeatures] in outDtype. */
  forward(x: Tensor): Tensor {
    return w4a8Linear(x, this.weight, { bias: this.bias, outDtype: this.outDtype, activationScale: this.activationScale ?? undefined });
  }
}
