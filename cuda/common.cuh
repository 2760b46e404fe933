// Internal helpers for kiln's CUDA kernels (cuda/*.cu only; never included by
// code that g++ compiles).
//
// Rules every kernel file follows:
//   - run on the device's single kiln stream (stream(device)), under a
//     DeviceGuard, so that the caching allocator's reuse is stream-ordered;
//   - check the launch (KILN_CUDA_LAUNCH_CHECK) and turn every cudaError_t into
//     a Status (cuda_status), never abort or print;
//   - index in int64 with grid-stride loops; numel == 0 returns Ok without a launch.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kiln/coalesce.h"
#include "kiln/cuda.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {
namespace cuda {

// ---- errors -------------------------------------------------------------------

// "kiln: <op>: CUDA error cudaErrorX (<description>)" as an Internal status.
// Also clears the thread's last-error slot, so a handled error is not reported
// again by the next launch check.
inline Status cuda_status(cudaError_t err, const char* op) {
  if (err == cudaSuccess) return Status::Ok();
  (void)cudaGetLastError();
  return Status(StatusCode::Internal, std::string("kiln: ") + op + ": CUDA error " + cudaGetErrorName(err) + " (" +
                                          cudaGetErrorString(err) + ")");
}

#define KILN_CUDA_RETURN_IF_ERROR(expr, op)                  \
  do {                                                       \
    const cudaError_t kiln_cuda_err_ = (expr);               \
    if (kiln_cuda_err_ != cudaSuccess) return ::kiln::cuda::cuda_status(kiln_cuda_err_, (op)); \
  } while (0)

// After every kernel launch: a bad configuration or a missing kernel image
// shows up here (errors of the kernel itself surface at the next synchronize).
#define KILN_CUDA_LAUNCH_CHECK(op) KILN_CUDA_RETURN_IF_ERROR(cudaGetLastError(), (op))

// ---- device and stream ----------------------------------------------------------

// Makes `device` current for the scope and restores the previous device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&prev_) != cudaSuccess) {
      (void)cudaGetLastError();
      prev_ = -1;
    }
    if (prev_ != device) {
      err_ = cudaSetDevice(device);
      if (err_ == cudaSuccess) {
        changed_ = prev_ >= 0;
      } else {
        (void)cudaGetLastError();
      }
    }
  }
  ~DeviceGuard() {
    if (changed_ && cudaSetDevice(prev_) != cudaSuccess) (void)cudaGetLastError();
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

  // cudaSuccess unless making the device current failed.
  cudaError_t error() const { return err_; }

 private:
  int prev_ = -1;
  bool changed_ = false;
  cudaError_t err_ = cudaSuccess;
};

// kiln's stream on `device` (non-blocking, created on first use; runtime.cu).
// Every kernel and copy on that device goes to this one stream. If creating it
// fails, the device's legacy default stream is used from then on (still one
// stream per device, so ordering holds); the failure itself resurfaces at the
// next CUDA call.
cudaStream_t stream(int device);

// Makes `device` current (guard) and returns its stream, or a Status naming `op`.
#define KILN_CUDA_ENTER(guard, device, op, stream_var)                        \
  ::kiln::cuda::DeviceGuard guard(device);                                    \
  KILN_CUDA_RETURN_IF_ERROR(guard.error(), (op));                             \
  const cudaStream_t stream_var = ::kiln::cuda::stream(device)

// ---- launch geometry ---------------------------------------------------------------

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = 65536;  // grid-stride loops cover the rest

inline unsigned grid_for(int64_t n) {
  int64_t blocks = (n + kBlock - 1) / kBlock;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks);
}

#define KILN_GRID_STRIDE_LOOP(i, n)                                                              \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);        \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// ---- scratch memory and small read-backs ------------------------------------------------

// Device scratch from kiln's caching allocator (kiln/cuda.h), returned to it when
// the object goes out of scope. Returning it while kernels that use it are still
// queued is safe: the allocator hands the block out again only to work queued
// after them on the same stream.
class DeviceScratch {
 public:
  DeviceScratch() = default;
  ~DeviceScratch() {
    if (ptr_ != nullptr) ::kiln::cuda::free(device_, ptr_, bytes_);
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  Status alloc(int device, size_t bytes) {
    device_ = device;
    bytes_ = bytes;
    return ::kiln::cuda::malloc(device, bytes, &ptr_);
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  int device_ = 0;
  size_t bytes_ = 0;
  void* ptr_ = nullptr;
};

// Copies `bytes` from the device to the host after the work queued on `s`, and waits.
inline Status read_back(void* dst, const void* src, size_t bytes, cudaStream_t s, const char* op) {
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), op);
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s), op);
  return Status::Ok();
}

// ---- strided indexing ------------------------------------------------------------------

// K operands walked over one shape, passed to a kernel by value; the device maps
// a row-major linear index to each operand's element offset (kiln/coalesce.h,
// shared with the CPU's nd_iter.h).
template <int K>
using StridedIndex = CoalescedDims<K>;

}  // namespace cuda
}  // namespace kiln
