// Iteration plans for elementwise kernels on both backends: K strided
// operands walked over one shape. init() drops size-1 dimensions and merges
// dimensions that are contiguous for every operand (so a packed tensor is one
// dimension, whatever its rank). The CPU walks the plan in runs
// (native/cpu/nd_iter.h); CUDA maps each linear index to offsets (offsets()).
#pragma once
#include <cstdint>

#include "kiln/numerics.h"
#include "kiln/view.h"

namespace kiln {

template <int K>
struct CoalescedDims {
  int ndim;
  int64_t numel;
  int64_t shape[kMaxDims];
  int64_t stride[K][kMaxDims];  // element strides (0 for broadcast dimensions)

  // shape: the iteration shape; strides[k]: operand k's element strides over it.
  void init(int nd, const int64_t* shp, const int64_t* const* strides) {
    ndim = 0;
    numel = 1;
    for (int i = 0; i < nd; ++i) {
      numel *= shp[i];
      if (shp[i] == 1) continue;  // size-1 dims never move a pointer
      shape[ndim] = shp[i];
      for (int k = 0; k < K; ++k) stride[k][ndim] = strides[k][i];
      ++ndim;
    }
    // Merge dim d into the previous one when every operand steps over the previous
    // dim exactly by one full row of d.
    int out = 0;
    for (int d = 0; d < ndim; ++d) {
      if (out > 0) {
        bool merge = true;
        for (int k = 0; k < K; ++k) merge = merge && stride[k][out - 1] == stride[k][d] * shape[d];
        if (merge) {
          shape[out - 1] *= shape[d];
          for (int k = 0; k < K; ++k) stride[k][out - 1] = stride[k][d];
          continue;
        }
      }
      shape[out] = shape[d];
      for (int k = 0; k < K; ++k) stride[k][out] = stride[k][d];
      ++out;
    }
    ndim = out;
    if (ndim == 0) {  // a single element (or none)
      ndim = 1;
      shape[0] = 1;
      for (int k = 0; k < K; ++k) stride[k][0] = 0;
    }
  }

  // True when the plan is one dimension with unit stride for every operand.
  KILN_HDM bool contiguous() const {
    bool c = ndim == 1;
    for (int k = 0; k < K; ++k) c = c && (stride[k][0] == 1 || shape[0] == 1);
    return c;
  }

  // Element offsets of row-major index i for every operand.
  KILN_HDM void offsets(int64_t i, int64_t* off) const {
    for (int k = 0; k < K; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t n = shape[d];
      const int64_t q = i / n;
      const int64_t r = i - q * n;
      for (int k = 0; k < K; ++k) off[k] += r * stride[k][d];
      i = q;
    }
  }
};

}  // namespace kiln
