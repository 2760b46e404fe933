// kiln: typed tensors for Node.js on a native C++ CPU backend and CUDA kernels.
export { Tensor, type NestedArray, type ToTarget } from './tensor';
export { tensor, zeros, ones, full, arange, rand, randn, type CreateOptions, type RandomOptions, type TensorLike, type NestedValues } from './creation';
export { add, sub, mul, div, maximum, minimum } from './ops/elementwise';
export { tidy, keep, memory, type MemoryInfo } from './lifetime';
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
