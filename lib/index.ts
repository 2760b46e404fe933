// kiln: typed tensors for Node.js on a native C++ CPU backend and CUDA kernels.
export { Tensor, type NestedArray, type ToTarget } from './tensor';
export { tensor, zeros, ones, full, zerosLike, onesLike, fullLike, arange, rand, randn, type CreateOptions, type RandomOptions, type TensorLike, type NestedValues, type NestedBools } from './creation';
export {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  abs,
  relu,
  gelu,
  silu,
  sigmoid,
  tanh,
  where,
  clamp,
  type GeluOptions,
} from './ops/elementwise';
export { sum, mean, max, min, argmax, type Axes, type ReduceOptions } from './ops/reduce';
export { matmul } from './ops/matmul';
export {
  softmax,
  logSoftmax,
  crossEntropy,
  embedding,
  rmsNorm,
  layerNorm,
  rope,
  attention,
  backward,
  type CrossEntropyOptions,
  type RopeOptions,
  type AttentionOptions,
} from './ops/nn';
export { transpose, permute, swapAxes, slice, narrow, split, concat, stack, broadcastTo, unsqueeze, squeeze, flatten } from './ops/views';
export { tidy, keep, memory, type MemoryInfo } from './lifetime';
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
