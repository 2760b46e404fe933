// Softmax family and cross entropy over the last dimension of [R, N] views
// (native/KERNELS.md "Softmax and cross entropy"), validation shared by every
// backend. Operand order, in = [...] / out = [...]:
//   softmax, log_softmax:      in = [x [R, N]]                 out = [y [R, N]]
//   softmax_backward:          in = [y [R, N], gy [R, N]]      out = [gx [R, N]]
//   log_softmax_backward:      in = [y [R, N] (log-probs), gy] out = [gx [R, N]]
//   cross_entropy:             in = [logits [R, C], targets int32 [R]]
//                              out = [loss [] float32, lse [R] float32]
//   cross_entropy_backward:    in = [logits [R, C], targets [R], lse [R] float32, gloss [] float32]
//                              out = [glogits [R, C]]
//   cross entropy attrs: ints = [ignore_index], floats = [label_smoothing in [0, 1]]
// x, y, gy, gx, logits, glogits: one float dtype (the key); any element strides.
#pragma once
#include <cstdint>

#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

enum class SoftmaxOp : int { Softmax = 0, LogSoftmax, SoftmaxBackward, LogSoftmaxBackward };

struct SoftmaxPlan {
  SoftmaxOp op = SoftmaxOp::Softmax;
  int64_t rows = 0, cols = 0;
};
// For "softmax", "log_softmax", "softmax_backward", "log_softmax_backward" (by args.op).
Status prepare_softmax(const KernelArgs& args, SoftmaxPlan* plan);

struct CrossEntropyPlan {
  bool backward = false;
  int64_t rows = 0, classes = 0;
  int64_t ignore_index = -100;
  double label_smoothing = 0;
};
// For "cross_entropy" and "cross_entropy_backward". Target values are data and
// are checked by the kernel (cross_entropy_target_error).
Status prepare_cross_entropy(const KernelArgs& args, CrossEntropyPlan* plan);

// The ValueError for a target outside [0, C) that is not ignore_index:
// "kiln: cross_entropy: target 7 in row 3 is outside [0, 5) (ignore_index -100)".
Status cross_entropy_target_error(const char* op, int64_t row, int64_t value, const CrossEntropyPlan& plan);

// Registers the six ops for float32, float16 and bfloat16 on `device`.
bool register_softmax_kernels(DeviceKind device, KernelFn softmax_fn, KernelFn cross_entropy_fn);

}  // namespace kiln
