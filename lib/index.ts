// kiln: typed tensors for Node.js on a native C++ CPU backend and CUDA kernels.
export { Tensor, type NestedArray, type ToTarget } from './tensor';
export { tensor, zeros, ones, full, zerosLike, onesLike, fullLike, arange, rand, randn, type CreateOptions, type RandomOptions, type TensorLike, type NestedValues, type NestedBools } from './creation';
// Ops: the differentiable versions (lib/autograd/grad-*.ts) over the kernels (lib/ops/*.ts).
export { add, sub, mul, div, pow, neg, exp, log, sqrt, rsqrt, relu, gelu, silu, sigmoid, tanh, where, maximum, minimum, abs, clamp } from './autograd/grad-elementwise';
export { type GeluOptions } from './ops/elementwise';
export { eq, ne, lt, le, gt, ge, logicalNot, logicalAnd, logicalOr } from './ops/elementwise';
export { sum, mean, matmul, max, min } from './autograd/grad-reduce';
export { argmax, type Axes, type ReduceOptions } from './ops/reduce';
export { softmax, logSoftmax, crossEntropy, embedding, rmsNorm, layerNorm, rope, attention } from './autograd/grad-nn';
export { backward, type CrossEntropyOptions, type RopeOptions, type AttentionOptions } from './ops/nn';
export { transpose, permute, swapAxes, slice, narrow, split, concat, stack, broadcastTo, unsqueeze, squeeze, flatten } from './autograd/grad-views';
export { tidy, keep, memory, type MemoryInfo } from './lifetime';
export * as io from './io';
export * as nn from './nn';
export * as quant from './quant';
export * as optim from './optim';
export * as sched from './sched';
export * as data from './data';
export * as train from './train';
export { noGrad, enableGrad, isGradEnabled } from './autograd/mode';
export { manualSeed, getRngState, setRngState, type RngState } from './random';
export { devices, setNumThreads, getNumThreads, kernels, internals, type DevicesInfo, type CudaDeviceInfo } from './runtime';
export { DTYPES, dtypeSize, type DType, type DataTypeMap, type TypedArrayFor } from './dtype';
export type { Device } from './device';
export {
  KilnError,
  ShapeError,
  DTypeError,
  DeviceError,
  DisposedError,
  ValueError,
  UnsupportedError,
  OutOfMemoryError,
} from './errors';
