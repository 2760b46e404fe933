// The CUDA runtime as the rest of kiln sees it: plain C++, no CUDA headers.
// Implemented by cuda/runtime.cu when kiln is built with CUDA, and by
// native/cpu/cuda_stub.cpp otherwise (everything then reports "built without CUDA").
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln {
namespace cuda {

bool compiled();  // built with CUDA sources

struct Availability {
  bool available = false;
  std::string reason;  // why not, when !available
};
// Queried once (loads the driver lazily), then cached.
const Availability& availability();

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  size_t memory_bytes = 0;
  int multiprocessors = 0;
};
std::vector<DeviceInfo> devices();
int runtime_version();  // e.g. 13000; 0 without CUDA
int driver_version();   // 0 when no driver

// Caching allocator (one pool per device; freed blocks are reused, ordered on
// the device's stream).
Status malloc(int device, size_t bytes, void** ptr);
void free(int device, void* ptr, size_t bytes);
Status empty_cache(int device);

struct AllocatorStats {
  size_t allocated_bytes = 0;  // held by live storages
  size_t reserved_bytes = 0;   // obtained from cudaMalloc (allocated + cached)
  uint64_t allocations = 0;    // malloc calls served
  uint64_t cache_hits = 0;     // ... of which from the cache
};
AllocatorStats allocator_stats(int device);

Status memcpy_h2d(int device, void* dst, const void* src, size_t bytes);
Status memcpy_d2h(int device, void* dst, const void* src, size_t bytes);
Status memcpy_d2d(int dst_device, void* dst, int src_device, const void* src, size_t bytes);
Status synchronize(int device);

// Checks that `device` names an available GPU (DeviceError with the reason otherwise).
Status check_device(int device);

// ---- cuBLASLt (loaded at run time, never linked; cuda/cublaslt.cu) ------------
//
// The CUDA 'matmul' kernel hands expressible problems to cuBLASLt when the
// library is found (libcublasLt.so.13 / .so.12 on the library path, in a CUDA
// toolkit under /usr/local, or in a Python environment's nvidia/ packages) and
// falls back to kiln's own kernels otherwise or when cuBLASLt fails.
// KILN_CUBLASLT=0 in the environment keeps it from ever being loaded.

// Whether 'matmul' may use cuBLASLt (default true; for tests and benchmarks).
// Turning it off does not unload the library.
void set_cublaslt_enabled(bool enabled);
bool cublaslt_enabled();
// Loads the library on first call (when CUDA is available and KILN_CUBLASLT
// is not 0); true when it is loaded and usable.
bool cublaslt_loaded();
// Which library was loaded (path and version), or why none was.
std::string cublaslt_status();
// Number of matmuls cuBLASLt has run in this process (tests check the path taken).
uint64_t cublaslt_matmul_count();

}  // namespace cuda
}  // namespace kiln
