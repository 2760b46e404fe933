// Raw storage for tensors: host memory from kiln/host_allocator.h (64-byte
// aligned, large blocks cached), or device memory from the CUDA caching
// allocator. Zero-byte storages hold no memory (nullptr).
#pragma once
#include <cstddef>

#include "kiln/device.h"
#include "kiln/status.h"

namespace kiln {

constexpr size_t kHostAlignment = 64;

Status storage_alloc(Device device, size_t bytes, void** ptr);
void storage_free(Device device, void* ptr, size_t bytes);
// Copies bytes between any two devices (host<->host, host<->cuda, cuda<->cuda).
// Returns once the destination holds the data.
Status storage_copy(Device dst_device, void* dst, Device src_device, const void* src, size_t bytes);

}  // namespace kiln
