// A View is how every kernel sees a tensor: a base pointer into a storage,
// dtype, shape, element strides and an element offset. Kernels take Views by
// const reference and never own memory.
#pragma once
#include <cstdint>
#include <string>

#include "kiln/device.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln {

constexpr int kMaxDims = 16;

struct View {
  void* base = nullptr;       // start of the storage (host or device pointer)
  size_t storage_bytes = 0;   // size of the storage, for bounds checks
  Device device;
  DType dtype = DType::Float32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // in elements; 0 for broadcast dims
  int64_t offset = 0;              // in elements

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  bool is_contiguous() const;
  // Pointer to element 0 of the view.
  char* data() const { return static_cast<char*>(base) + offset * static_cast<int64_t>(dtype_size(dtype)); }
  std::string shape_str() const;     // "[2, 3]"
  std::string describe() const;      // "float32[2, 3] on cpu"
};

// Checks that every element the view can address lies inside its storage
// (negative strides are rejected). Kernels call this before touching memory.
Status check_view_bounds(const View& v, const char* op, const char* role);

}  // namespace kiln
