// What the machine offers (kiln.devices()) and runtime settings.
import { ValueError } from './errors';
import { native, type CudaAllocatorStats, type HostAllocatorStats } from './native';
import { asStrided } from './tensor';

export interface CudaDeviceInfo {
  index: number;
  name: string;
  /** e.g. "9.0" */
  computeCapability: string;
  memoryBytes: number;
  multiprocessors: number;
}

export interface DevicesInfo {
  cpu: {
    threads: number;
    /** CPU features kiln detected, e.g. ["avx2", "fma", "avx512f", "avx512_bf16"]. */
    isa: string[];
    /** The kernel level in use: 'avx512', 'avx2' or 'portable'. */
    isaLevel: string;
  };
  cuda: {
    available: boolean;
    /** Why CUDA is unavailable (built without CUDA, no driver, driver too old, no GPU). */
    reason?: string;
    /** Whether this build of kiln contains CUDA kernels. */
    compiled: boolean;
    runtimeVersion: number;
    driverVersion: number;
    /**
     * cuBLASLt (loaded at run time, used by matmul when found): e.g.
     * "cuBLASLt 13.0.2 (/path/libcublasLt.so.13)", or why it is not used.
     */
    cublasLt?: string;
    devices: CudaDeviceInfo[];
  };
}

export function devices(): DevicesInfo {
  const info = native.info();
  return {
    cpu: { threads: info.cpu.threads, isa: info.cpu.isa, isaLevel: info.cpu.isaLevel },
    cuda: info.cuda.available ? { ...info.cuda, reason: undefined } : info.cuda,
  };
}

/** Threads the CPU kernels use (default: the cores this process may run on, or KILN_NUM_THREADS). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new ValueError(`kiln: setNumThreads: n must be an integer in [1, 1024], got ${String(n)}`);
  }
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Every registered kernel as "op/device/dtype" (what the registry can run). */
export function kernels(): string[] {
  return native.kernels();
}

/** Low-level knobs, mostly for tests and benchmarks. */
export const internals = {
  /** A view with explicit shape, element strides and offset over a tensor's storage (bounds-checked). */
  asStrided,
  /** Lowers the CPU kernel ISA level ('portable' | 'avx2' | 'avx512', at most what the CPU has). */
  setIsa: (level: 'portable' | 'avx2' | 'avx512'): void => native.setIsa(level),
  /** The host allocator's counters (large blocks are cached for reuse). */
  hostAllocatorStats: (): HostAllocatorStats => native.hostStats(),
  /** Returns cached large host blocks to the system. */
  hostEmptyCache: (): void => native.hostEmptyCache(),
  /** The CUDA caching allocator's counters for a device. */
  cudaAllocatorStats: (device = 0): CudaAllocatorStats => native.cudaStats(device),
  /** Returns cached CUDA blocks to the driver. */
  cudaEmptyCache: (device = 0): void => native.cudaEmptyCache(device),
  /** Waits for queued CUDA work on a device. */
  cudaSynchronize: (device = 0): void => native.cudaSynchronize(device),
};
