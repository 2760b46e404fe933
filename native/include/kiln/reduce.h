// Reductions (native/KERNELS.md "Reductions"), validation shared by every backend:
//   sum, mean, max, min: in = [x], out = [y] (x's shape with every reduced dim
//                        set to 1, x's dtype), ints = reduced axes (ascending, unique)
//   argmax:              in = [x], out = [y int32] (x's shape with `axis` set to 1),
//                        ints = [axis]
// x and y may have any element strides.
#pragma once
#include <cstdint>

#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

enum class ReduceOp : int { Sum = 0, Mean, Max, Min, Argmax };

// "sum" -> ReduceOp::Sum, ...; false for other names.
bool reduce_op_from_name(const char* name, ReduceOp* op);

// dtypes: sum, max, min, argmax: float32, float16, bfloat16, int32; mean: the float ones.
bool reduce_supports(ReduceOp op, DType dtype);

// Registers sum, mean, max, min and argmax for every supported dtype on `device`.
bool register_reduce_kernels(DeviceKind device, KernelFn fn);

// The reduction as two index spaces: kept dims (one output element each) and
// reduced dims, with size-1 dims dropped and dims merged where the strides
// allow (both lists keep x's dim order, outermost first). Element (k, r) of x
// is at sum kin*k + sum rin*r; output k is at sum kout*k (strides in elements).
struct ReducePlan {
  ReduceOp op = ReduceOp::Sum;
  int64_t n_out = 0;  // number of output elements (product of kshape)
  int64_t n_red = 0;  // elements reduced into each output (product of rshape; 0 possible)
  int nk = 0;
  int64_t kshape[kMaxDims] = {};
  int64_t kin[kMaxDims] = {};
  int64_t kout[kMaxDims] = {};
  int nr = 0;
  int64_t rshape[kMaxDims] = {};
  int64_t rin[kMaxDims] = {};
};

// Checks counts, dtypes, axes and the output shape. Zero elements: n_out == 0
// is Ok (nothing to do); n_red == 0 with n_out > 0 is Ok for sum (0) and mean
// (NaN) and a ShapeError for max, min and argmax.
Status prepare_reduce(const KernelArgs& args, ReducePlan* plan);

}  // namespace kiln
