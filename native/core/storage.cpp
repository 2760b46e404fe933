#include "kiln/storage.h"

#include <cstring>
#include <string>

#include "kiln/cuda.h"
#include "kiln/host_allocator.h"

namespace kiln {

Status storage_alloc(Device device, size_t bytes, void** ptr) {
  *ptr = nullptr;
  if (bytes == 0) return Status::Ok();
  if (device.kind == DeviceKind::CUDA) return cuda::malloc(device.index, bytes, ptr);
  void* p = cpu::host_malloc(bytes);
  if (p == nullptr) {
    return Status(StatusCode::OutOfMemory, "kiln: out of host memory allocating " + std::to_string(bytes) + " bytes");
  }
  *ptr = p;
  return Status::Ok();
}

void storage_free(Device device, void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  if (device.kind == DeviceKind::CUDA) {
    cuda::free(device.index, ptr, bytes);
  } else {
    cpu::host_free(ptr, bytes);
  }
}

Status storage_copy(Device dst_device, void* dst, Device src_device, const void* src, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  const bool dst_host = dst_device.kind == DeviceKind::CPU;
  const bool src_host = src_device.kind == DeviceKind::CPU;
  if (dst_host && src_host) {
    std::memcpy(dst, src, bytes);
    return Status::Ok();
  }
  if (dst_host) return cuda::memcpy_d2h(src_device.index, dst, src, bytes);
  if (src_host) return cuda::memcpy_h2d(dst_device.index, dst, src, bytes);
  return cuda::memcpy_d2d(dst_device.index, dst, src_device.index, src, bytes);
}

}  // namespace kiln
