// kiln.quant: FireQ-style INT4-weight x FP8-activation (W4A8) inference
// (../shared/specs/quant.md): formats, quantizers, the W4A8 product and its
// exact reference, QuantizedLinear.
export { K_ALIGN, paddedK, packInt4, unpackInt4 } from './int4';
export { Int4Weight, quantizeWeightInt4, dequantizeWeightInt4, type Int4WeightParts, type QuantizeWeightOptions, type QuantFloat } from './weight';
export { quantizeActivationFp8, dequantizeActivationFp8, type Fp8Activation, type QuantizeActivationOptions } from './activation';
export { w4a8Linear, w4a8Matmul, w4a8Reference, type W4A8Options, type W4A8LinearOptions, type W4A8Exact, type W4A8Weight } from './matmul';
export { Int4KVSlot, type Int4KVSlotOptions } from './kv-int4';
export { FireQWeight, packFireQ, unpackFireQ, fireqRows, FIREQ_ROW_ALIGN } from './fireq';
export { QuantizedLinear, type QuantizedLinearOptions } from './linear';
export { quantizeModel, QuantizedTransformerLM, QuantizedBlock, QuantizedAttention, QuantizedMLP, type QuantizeModelOptions, type QuantizedLayerInfo } from './ptq';
