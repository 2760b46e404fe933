// Loads the native addon (lazily, on first use) and gives it types. Errors it
// throws carry a `kilnCode` and are converted to KilnError subclasses here.
import * as path from 'node:path';
import { KilnError, fromNative } from './errors';

/** One allocation owned by the addon (host or CUDA memory). */
export interface NativeStorage {
  readonly bytes: number;
  readonly freed: boolean;
  free(): void;
}

/** A kernel operand: [storage, dtypeCode, shape, strides (elements), offset (elements)]. */
export type NativeView = [NativeStorage, number, readonly number[], readonly number[], number];

export interface NativeInfo {
  cpu: { threads: number; isa: string[]; isaLevel: string; detectedIsaLevel: string };
  cuda: {
    compiled: boolean;
    available: boolean;
    reason?: string;
    runtimeVersion: number;
    driverVersion: number;
    /** cuBLASLt as loaded at run time for matmul: library and version, or why none is used. */
    cublasLt?: string;
    devices: { index: number; name: string; computeCapability: string; memoryBytes: number; multiprocessors: number }[];
  };
}

export interface HostAllocatorStats {
  /** Bytes of freed large blocks kept for reuse. */
  cachedBytes: number;
  largeAllocations: number;
  cacheHits: number;
}

export interface CudaAllocatorStats {
  allocatedBytes: number;
  reservedBytes: number;
  allocations: number;
  cacheHits: number;
}

interface Addon {
  Storage: new (deviceKind: number, deviceIndex: number, bytes: number) => NativeStorage;
  run(op: string, keyDtype: number, inputs: NativeView[], outputs: NativeView[], ints: number[] | null, floats: number[] | null): void;
  kernels(): string[];
  write(storage: NativeStorage, byteOffset: number, data: ArrayBufferView): void;
  read(storage: NativeStorage, byteOffset: number, byteLength: number): ArrayBuffer;
  copy(dst: NativeStorage, dstOffset: number, src: NativeStorage, srcOffset: number, bytes: number): void;
  encode(values: Float64Array, dtypeCode: number): ArrayBuffer;
  decode(data: ArrayBufferView, dtypeCode: number): Float64Array;
  info(): NativeInfo;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  setIsa(level: string): void;
  hostStats(): HostAllocatorStats;
  hostEmptyCache(): void;
  cudaStats(device: number): CudaAllocatorStats;
  cudaEmptyCache(device: number): void;
  cudaSynchronize(device: number): void;
  abiVersion: number;
}

const ABI_VERSION = 1;
// dist/cjs/native.js -> the package root (where build/ and prebuilds/ live).
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

let addon: Addon | undefined;

function load(): Addon {
  // node-gyp-build picks build/Release/*.node, else a matching prebuilds/<platform>-<arch>/*.node.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  let loaded: Addon;
  try {
    loaded = nodeGypBuild(process.env.KILN_NATIVE_DIR ?? PACKAGE_ROOT) as Addon;
  } catch (e) {
    throw new KilnError(
      `kiln: the native addon could not be loaded (${(e as Error).message}). ` +
        'Build it with `npx cmake-js compile` in the kiln package folder (or `npm install-scripts approve kiln` and reinstall).',
    );
  }
  if (loaded.abiVersion !== ABI_VERSION) {
    throw new KilnError(`kiln: the native addon has ABI ${loaded.abiVersion}, expected ${ABI_VERSION}; rebuild it (npx cmake-js compile)`);
  }
  return loaded;
}

function get(): Addon {
  if (addon === undefined) addon = load();
  return addon;
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

/** The addon's functions, with native errors converted to KilnError subclasses. */
export const native = {
  newStorage: (deviceKind: number, deviceIndex: number, bytes: number): NativeStorage =>
    call(() => new (get().Storage)(deviceKind, deviceIndex, bytes)),
  run: (op: string, keyDtype: number, inputs: NativeView[], outputs: NativeView[], ints: number[] | null = null, floats: number[] | null = null): void =>
    call(() => get().run(op, keyDtype, inputs, outputs, ints, floats)),
  kernels: (): string[] => call(() => get().kernels()),
  write: (s: NativeStorage, byteOffset: number, data: ArrayBufferView): void => call(() => get().write(s, byteOffset, data)),
  read: (s: NativeStorage, byteOffset: number, byteLength: number): ArrayBuffer => call(() => get().read(s, byteOffset, byteLength)),
  copy: (dst: NativeStorage, dstOffset: number, src: NativeStorage, srcOffset: number, bytes: number): void =>
    call(() => get().copy(dst, dstOffset, src, srcOffset, bytes)),
  encode: (values: Float64Array, dtypeCode: number): ArrayBuffer => call(() => get().encode(values, dtypeCode)),
  decode: (data: ArrayBufferView, dtypeCode: number): Float64Array => call(() => get().decode(data, dtypeCode)),
  info: (): NativeInfo => call(() => get().info()),
  setNumThreads: (n: number): void => call(() => get().setNumThreads(n)),
  getNumThreads: (): number => call(() => get().getNumThreads()),
  setIsa: (level: string): void => call(() => get().setIsa(level)),
  hostStats: (): HostAllocatorStats => call(() => get().hostStats()),
  hostEmptyCache: (): void => call(() => get().hostEmptyCache()),
  cudaStats: (device: number): CudaAllocatorStats => call(() => get().cudaStats(device)),
  cudaEmptyCache: (device: number): void => call(() => get().cudaEmptyCache(device)),
  cudaSynchronize: (device: number): void => call(() => get().cudaSynchronize(device)),
};
