// Walks K strided operands over one shape in runs along the innermost
// (coalesced) dimension. Elementwise kernels call for_range on contiguous
// element ranges, one per thread, so a run never depends on the thread count.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kiln/coalesce.h"

namespace kiln {
namespace cpu {

template <int K>
struct NdIter {
  CoalescedDims<K> dims;
  char* base[K];
  int64_t elem_size[K];
  int64_t numel = 0;

  // shape: the iteration shape; strides[k]: element strides of operand k over
  // that shape (0 for broadcast dims); sizes[k]: bytes per element.
  void init(int nd, const int64_t* shp, char* const* bases, const int64_t* const* strides, const int64_t* sizes) {
    dims.init(nd, shp, strides);
    numel = dims.numel;
    for (int k = 0; k < K; ++k) {
      base[k] = bases[k];
      elem_size[k] = sizes[k];
    }
  }

  // fn(char* ptr[K], const int64_t inner_stride_bytes[K], int64_t count) for
  // every run covering the elements [begin, end) in row-major order.
  template <class F>
  void for_range(int64_t begin, int64_t end, F&& fn) const {
    if (begin >= end) return;
    const int nd = dims.ndim;
    const int inner = nd - 1;
    int64_t idx[kMaxDims];
    int64_t rest = begin;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = rest % dims.shape[d];
      rest /= dims.shape[d];
    }
    int64_t inner_stride[K];
    for (int k = 0; k < K; ++k) inner_stride[k] = dims.stride[k][inner] * elem_size[k];
    int64_t pos = begin;
    while (pos < end) {
      char* ptr[K];
      for (int k = 0; k < K; ++k) {
        int64_t off = 0;
        for (int d = 0; d < nd; ++d) off += idx[d] * dims.stride[k][d];
        ptr[k] = base[k] + off * elem_size[k];
      }
      const int64_t count = std::min(dims.shape[inner] - idx[inner], end - pos);
      fn(ptr, inner_stride, count);
      pos += count;
      idx[inner] += count;
      for (int d = inner; d > 0 && idx[d] == dims.shape[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  }
};

}  // namespace cpu
}  // namespace kiln
