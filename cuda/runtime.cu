// kiln's CUDA runtime (kiln/cuda.h): availability, devices, one stream per
// device, the caching allocator and copies.
//
// Availability is probed once, without ever aborting or printing: first the
// driver library itself (dlopen libcuda.so.1, cuDriverGetVersion), so that
// "no driver" and "driver too old" can be told apart from "no GPU"; then the
// runtime (cudaGetDeviceCount) and each device's compute capability.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.cuh"
#include "kiln/cuda.h"

namespace kiln {
namespace cuda {
namespace {

// Oldest GPU kiln's kernels run on: the build has sm_80 SASS at the lowest
// (CMakeLists.txt KILN_CUDA_ARCHS), which also runs on 8.6 / 8.7 / 8.9.
constexpr int kMinMajor = 8;

// 13000 -> "13.0", 12020 -> "12.2".
std::string cuda_version_string(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::string bytes_string(size_t b) {
  char buf[64];
  if (b >= (size_t(1) << 30)) {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0));
  } else if (b >= (size_t(1) << 20)) {
    std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  } else {
    std::snprintf(buf, sizeof(buf), "%zu bytes", b);
  }
  return buf;
}

std::string error_name(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

// ---- availability -----------------------------------------------------------------

struct Probe {
  Availability availability;
  int driver_version = 0;  // from cuDriverGetVersion; 0 without a driver
  std::vector<DeviceInfo> devices;  // every device the runtime sees
};

std::string driver_too_old(int driver) {
  return "the NVIDIA driver supports CUDA " + cuda_version_string(driver) + " but kiln was built with CUDA " +
         cuda_version_string(CUDART_VERSION) + "; update the NVIDIA driver to one that supports CUDA " +
         cuda_version_string(CUDART_VERSION) + " or newer.";
}

Probe run_probe() {
  Probe p;
  Availability& a = p.availability;

  // 1. The driver library. Our handle stays open for the life of the process
  //    (the CUDA runtime opens the same library again when it initialises).
  (void)dlerror();
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    a.reason = std::string("no NVIDIA driver was found on this machine (libcuda.so.1 could not be loaded: ") +
               (why ? why : "unknown error") + "); install the NVIDIA driver to use CUDA devices.";
    return p;
  }
  using DriverGetVersionFn = int (*)(int*);  // CUresult cuDriverGetVersion(int*)
  const auto get_version = reinterpret_cast<DriverGetVersionFn>(dlsym(lib, "cuDriverGetVersion"));
  int driver = 0;
  const int rc = get_version == nullptr ? -1 : get_version(&driver);
  if (rc == 34) {  // CUDA_ERROR_STUB_LIBRARY
    a.reason = "the libcuda.so.1 found on this machine is the CUDA toolkit's stub library, not the NVIDIA driver; "
               "install the NVIDIA driver, or take the stubs folder out of the library search path.";
    return p;
  }
  if (rc != 0 || driver <= 0) {
    a.reason = "the NVIDIA driver library libcuda.so.1 was found but could not report its CUDA version "
               "(cuDriverGetVersion failed); the driver installation looks broken, reinstall the NVIDIA driver.";
    return p;
  }
  p.driver_version = driver;
  // A driver of the same major version runs this runtime (CUDA minor version
  // compatibility); within a major version, the runtime decides below.
  if (driver / 1000 < CUDART_VERSION / 1000) {
    a.reason = driver_too_old(driver);
    return p;
  }

  // 2. The runtime and the devices.
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  (void)cudaGetLastError();
  if ((err == cudaErrorInsufficientDriver || err == cudaErrorCallRequiresNewerDriver) && driver < CUDART_VERSION) {
    a.reason = driver_too_old(driver);
    return p;
  }
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count <= 0)) {
    a.reason = "the NVIDIA driver (CUDA " + cuda_version_string(driver) +
               ") is installed but no CUDA GPU is visible to this process; check nvidia-smi and the "
               "CUDA_VISIBLE_DEVICES environment variable.";
    return p;
  }
  if (err != cudaSuccess) {
    a.reason = "initialising CUDA failed: cudaGetDeviceCount returned " + error_name(err) + " (driver CUDA " +
               cuda_version_string(driver) + ", kiln built with CUDA " + cuda_version_string(CUDART_VERSION) + ").";
    return p;
  }

  bool any_supported = false;
  std::string listed;
  for (int i = 0; i < count; ++i) {
    DeviceInfo d;
    d.index = i;
    cudaDeviceProp prop;
    const cudaError_t e = cudaGetDeviceProperties(&prop, i);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      d.name = "unknown (cudaGetDeviceProperties failed: " + error_name(e) + ")";
    } else {
      d.name = prop.name;
      d.major = prop.major;
      d.minor = prop.minor;
      d.memory_bytes = prop.totalGlobalMem;
      d.multiprocessors = prop.multiProcessorCount;
    }
    any_supported = any_supported || d.major >= kMinMajor;
    if (!listed.empty()) listed += ", ";
    listed += "cuda:" + std::to_string(i) + " " + d.name + " (compute capability " + std::to_string(d.major) + "." +
              std::to_string(d.minor) + ")";
    p.devices.push_back(d);
  }
  if (!any_supported) {
    a.reason = "kiln's CUDA kernels need a GPU of compute capability " + std::to_string(kMinMajor) +
               ".0 or newer, but this machine has only " + listed + ".";
    return p;
  }
  a.available = true;
  return p;
}

const Probe& probe() {
  static const Probe p = run_probe();
  return p;
}

int device_count() { return probe().availability.available ? static_cast<int>(probe().devices.size()) : 0; }

// ---- streams ---------------------------------------------------------------------------

struct StreamSlot {
  std::once_flag once;
  cudaStream_t stream = cudaStreamLegacy;
};

StreamSlot* stream_slots() {
  // Never destroyed: kernels and frees may run during process teardown.
  static StreamSlot* slots = new StreamSlot[device_count() > 0 ? device_count() : 1];
  return slots;
}

// ---- caching allocator -------------------------------------------------------------------

constexpr size_t kSmallRound = 512;                 // granularity below kLargeThreshold
constexpr size_t kLargeThreshold = size_t(1) << 20;  // 1 MiB
constexpr size_t kLargeRound = size_t(2) << 20;      // 2 MiB granularity from 1 MiB up
constexpr size_t kMaxRequest = size_t(1) << 62;

size_t round_size(size_t bytes) {
  if (bytes < kLargeThreshold) return (bytes + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (bytes + kLargeRound - 1) / kLargeRound * kLargeRound;
}

struct Pool {
  std::mutex mu;
  std::multimap<size_t, void*> cached;        // block size -> block, free for reuse
  std::unordered_map<void*, size_t> live;     // block -> block size, held by storages
  AllocatorStats stats;
};

Pool* pools() {
  static Pool* p = new Pool[device_count() > 0 ? device_count() : 1];  // never destroyed, as above
  return p;
}

// cudaFree's every cached block of `device` (pool lock held). Cached blocks may
// still be read or written by kernels queued before they were freed, so the
// device's stream is synchronized first.
Status release_cached_locked(int device, Pool& pool, const char* op) {
  if (pool.cached.empty()) return Status::Ok();
  KILN_CUDA_ENTER(guard, device, op, s);
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s), op);
  Status first = Status::Ok();
  for (auto it = pool.cached.begin(); it != pool.cached.end();) {
    const cudaError_t e = cudaFree(it->second);
    if (e != cudaSuccess) {
      if (first.ok()) first = cuda_status(e, op);
      ++it;  // keep it: it is still reserved
      continue;
    }
    pool.stats.reserved_bytes -= it->first;
    it = pool.cached.erase(it);
  }
  return first;
}

Status oom(int device, size_t bytes, const Pool& pool) {
  size_t free_b = 0, total_b = 0;
  std::string gpu;
  DeviceGuard guard(device);
  if (guard.error() == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
    gpu = "; the GPU has " + bytes_string(free_b) + " free of " + bytes_string(total_b);
  } else {
    (void)cudaGetLastError();
  }
  return Status(StatusCode::OutOfMemory, "kiln: CUDA out of memory on cuda:" + std::to_string(device) +
                                             ": cannot allocate " + std::to_string(bytes) + " bytes (" +
                                             bytes_string(bytes) + ")" + gpu + ", and kiln's live tensors hold " +
                                             bytes_string(pool.stats.allocated_bytes) + " there");
}

}  // namespace

// ---- kiln/cuda.h ----------------------------------------------------------------------------

cudaStream_t stream(int device) {
  if (device < 0 || device >= device_count()) return cudaStreamLegacy;
  StreamSlot& slot = stream_slots()[device];
  std::call_once(slot.once, [&] {
    DeviceGuard guard(device);
    cudaStream_t s = nullptr;
    if (guard.error() == cudaSuccess && cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess) {
      slot.stream = s;
    } else {
      (void)cudaGetLastError();
      slot.stream = cudaStreamLegacy;
    }
  });
  return slot.stream;
}

bool compiled() { return true; }

const Availability& availability() { return probe().availability; }

std::vector<DeviceInfo> devices() {
  if (!availability().available) return {};
  return probe().devices;
}

int runtime_version() { return CUDART_VERSION; }

int driver_version() { return probe().driver_version; }

Status check_device(int device) {
  const Probe& p = probe();
  if (!p.availability.available) {
    return Status(StatusCode::DeviceError, "kiln: CUDA is unavailable: " + p.availability.reason);
  }
  const int n = static_cast<int>(p.devices.size());
  if (device < 0 || device >= n) {
    const std::string have = n == 1 ? "1 CUDA device (cuda:0)"
                                    : std::to_string(n) + " CUDA devices (cuda:0 to cuda:" + std::to_string(n - 1) + ")";
    return Status(StatusCode::DeviceError, "kiln: CUDA device index " + std::to_string(device) +
                                               " is out of range: this machine has " + have);
  }
  const DeviceInfo& d = p.devices[device];
  if (d.major < kMinMajor) {
    return Status(StatusCode::DeviceError, "kiln: cuda:" + std::to_string(device) + " (" + d.name +
                                               ", compute capability " + std::to_string(d.major) + "." +
                                               std::to_string(d.minor) + ") is not supported: kiln's CUDA kernels need " +
                                               std::to_string(kMinMajor) + ".0 or newer");
  }
  return Status::Ok();
}

Status malloc(int device, size_t bytes, void** ptr) {
  *ptr = nullptr;
  KILN_RETURN_IF_ERROR(check_device(device));
  if (bytes == 0) return Status::Ok();
  Pool& pool = pools()[device];
  std::lock_guard<std::mutex> lock(pool.mu);
  if (bytes > kMaxRequest) return oom(device, bytes, pool);
  const size_t size = round_size(bytes);

  // Best fit from the cache, but never a block more than twice the rounded size.
  const auto it = pool.cached.lower_bound(size);
  if (it != pool.cached.end() && it->first / 2 <= size) {
    void* block = it->second;
    const size_t block_size = it->first;
    pool.cached.erase(it);
    pool.live.emplace(block, block_size);
    pool.stats.allocated_bytes += block_size;
    ++pool.stats.allocations;
    ++pool.stats.cache_hits;
    *ptr = block;
    return Status::Ok();
  }

  DeviceGuard guard(device);
  KILN_CUDA_RETURN_IF_ERROR(guard.error(), "CUDA malloc");
  void* block = nullptr;
  cudaError_t err = cudaMalloc(&block, size);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    // Give the cached blocks back to the driver and try once more.
    (void)release_cached_locked(device, pool, "CUDA malloc");
    block = nullptr;
    err = cudaMalloc(&block, size);
  }
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return oom(device, bytes, pool);
  }
  if (err != cudaSuccess) {
    const Status st = cuda_status(err, "CUDA malloc");
    return Status(st.code(), st.message() + " allocating " + std::to_string(bytes) + " bytes on cuda:" +
                                 std::to_string(device));
  }
  pool.live.emplace(block, size);
  pool.stats.reserved_bytes += size;
  pool.stats.allocated_bytes += size;
  ++pool.stats.allocations;
  *ptr = block;
  return Status::Ok();
}

void free(int device, void* ptr, size_t /*bytes*/) {
  if (ptr == nullptr || device < 0 || device >= device_count()) return;
  Pool& pool = pools()[device];
  std::lock_guard<std::mutex> lock(pool.mu);
  const auto it = pool.live.find(ptr);
  if (it == pool.live.end()) return;  // not ours (or freed twice): ignore
  // Kernels still queued on the device's stream may use the block; the next
  // user of the block runs on the same stream, after them.
  pool.cached.emplace(it->second, ptr);
  pool.stats.allocated_bytes -= it->second;
  pool.live.erase(it);
}

Status empty_cache(int device) {
  KILN_RETURN_IF_ERROR(check_device(device));
  Pool& pool = pools()[device];
  std::lock_guard<std::mutex> lock(pool.mu);
  return release_cached_locked(device, pool, "emptyCache");
}

AllocatorStats allocator_stats(int device) {
  if (device < 0 || device >= device_count()) return AllocatorStats();
  Pool& pool = pools()[device];
  std::lock_guard<std::mutex> lock(pool.mu);
  return pool.stats;
}

Status memcpy_h2d(int device, void* dst, const void* src, size_t bytes) {
  KILN_RETURN_IF_ERROR(check_device(device));
  if (bytes == 0) return Status::Ok();
  KILN_CUDA_ENTER(guard, device, "copy to GPU", s);
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), "copy to GPU");
  // The host buffer may be reused as soon as we return.
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s), "copy to GPU");
  return Status::Ok();
}

Status memcpy_d2h(int device, void* dst, const void* src, size_t bytes) {
  KILN_RETURN_IF_ERROR(check_device(device));
  if (bytes == 0) return Status::Ok();
  KILN_CUDA_ENTER(guard, device, "copy from GPU", s);
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), "copy from GPU");
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s), "copy from GPU");
  return Status::Ok();
}

Status memcpy_d2d(int dst_device, void* dst, int src_device, const void* src, size_t bytes) {
  KILN_RETURN_IF_ERROR(check_device(dst_device));
  KILN_RETURN_IF_ERROR(check_device(src_device));
  if (bytes == 0) return Status::Ok();
  if (dst_device == src_device) {
    KILN_CUDA_ENTER(guard, dst_device, "copy between GPU buffers", s);
    KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), "copy between GPU buffers");
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s), "copy between GPU buffers");
    return Status::Ok();
  }
  // Across devices: the destination block may still be in use by work queued
  // on its device, so drain that first; the copy then runs on the source
  // device's stream, after the kernels that produced the source.
  {
    KILN_CUDA_ENTER(guard, dst_device, "copy between GPUs", s);
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s), "copy between GPUs");
  }
  KILN_CUDA_ENTER(guard, src_device, "copy between GPUs", s);
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, bytes, s), "copy between GPUs");
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s), "copy between GPUs");
  return Status::Ok();
}

Status synchronize(int device) {
  KILN_RETURN_IF_ERROR(check_device(device));
  KILN_CUDA_ENTER(guard, device, "synchronize", s);
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s), "synchronize");
  return Status::Ok();
}

}  // namespace cuda
}  // namespace kiln
