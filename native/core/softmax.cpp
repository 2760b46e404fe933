#include "kiln/softmax.h"

#include <cmath>
#include <cstring>
#include <string>

namespace kiln {

namespace {

std::string prefix(const char* op) { return std::string("kiln: ") + op + ": "; }

bool arith_float(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16; }

bool has_shape(const View& v, int ndim, int64_t d0, int64_t d1) {
  if (v.ndim != ndim) return false;
  if (ndim >= 1 && v.shape[0] != d0) return false;
  if (ndim >= 2 && v.shape[1] != d1) return false;
  return true;
}

Status shape_error(const char* op, const char* role, const View& v, const std::string& want) {
  return Status(StatusCode::ShapeError, prefix(op) + role + " " + v.describe() + " must be " + want);
}

std::string dims(int64_t a) { return "[" + std::to_string(a) + "]"; }
std::string dims(int64_t a, int64_t b) { return "[" + std::to_string(a) + ", " + std::to_string(b) + "]"; }

}  // namespace

Status prepare_softmax(const KernelArgs& args, SoftmaxPlan* plan) {
  const char* op = args.op;
  if (std::strcmp(op, "softmax") == 0) {
    plan->op = SoftmaxOp::Softmax;
  } else if (std::strcmp(op, "log_softmax") == 0) {
    plan->op = SoftmaxOp::LogSoftmax;
  } else if (std::strcmp(op, "softmax_backward") == 0) {
    plan->op = SoftmaxOp::SoftmaxBackward;
  } else if (std::strcmp(op, "log_softmax_backward") == 0) {
    plan->op = SoftmaxOp::LogSoftmaxBackward;
  } else {
    return Status(StatusCode::Internal, std::string("kiln: unknown softmax op ") + op);
  }
  const bool backward = plan->op == SoftmaxOp::SoftmaxBackward || plan->op == SoftmaxOp::LogSoftmaxBackward;
  KILN_RETURN_IF_ERROR(expect_counts(args, backward ? 2 : 1, 1, 0, 0));
  const View& x = args.in[0];
  if (!arith_float(x.dtype)) return no_kernel(op, x.dtype, x.device.kind);
  if (x.ndim != 2) return shape_error(op, backward ? "y" : "x", x, "[rows, cols]");
  plan->rows = x.shape[0];
  plan->cols = x.shape[1];
  const std::string want = dims(plan->rows, plan->cols);
  for (int i = 0; i < args.n_in + 1; ++i) {
    const View& v = i < args.n_in ? args.in[i] : args.out[0];
    const char* role = i == args.n_in ? "output" : (i == 0 ? (backward ? "y" : "x") : "gy");
    if (v.dtype != x.dtype) {
      return Status(StatusCode::DTypeError, prefix(op) + role + " " + v.describe() + " must have the dtype of " + x.describe());
    }
    if (!has_shape(v, 2, plan->rows, plan->cols)) return shape_error(op, role, v, want);
  }
  return Status::Ok();
}

Status prepare_cross_entropy(const KernelArgs& args, CrossEntropyPlan* plan) {
  const char* op = args.op;
  if (std::strcmp(op, "cross_entropy") == 0) {
    plan->backward = false;
  } else if (std::strcmp(op, "cross_entropy_backward") == 0) {
    plan->backward = true;
  } else {
    return Status(StatusCode::Internal, std::string("kiln: unknown cross entropy op ") + op);
  }
  KILN_RETURN_IF_ERROR(expect_counts(args, plan->backward ? 4 : 2, plan->backward ? 1 : 2, 1, 1));
  const View &logits = args.in[0], &targets = args.in[1];
  if (!arith_float(logits.dtype)) return no_kernel(op, logits.dtype, logits.device.kind);
  if (logits.ndim != 2) return shape_error(op, "logits", logits, "[rows, classes]");
  plan->rows = logits.shape[0];
  plan->classes = logits.shape[1];
  plan->ignore_index = args.ints[0];
  plan->label_smoothing = args.floats[0];
  if (!(plan->label_smoothing >= 0.0 && plan->label_smoothing <= 1.0)) {
    return Status(StatusCode::ValueError,
                  prefix(op) + "label_smoothing must be in [0, 1], got " + std::to_string(plan->label_smoothing));
  }
  const int64_t R = plan->rows;
  if (targets.dtype != DType::Int32) {
    return Status(StatusCode::DTypeError, prefix(op) + "targets must have dtype int32, got " + targets.describe());
  }
  if (!has_shape(targets, 1, R, 0)) return shape_error(op, "targets", targets, dims(R));
  auto f32 = [&](const View& v, const char* role, int ndim) -> Status {
    if (v.dtype != DType::Float32) {
      return Status(StatusCode::DTypeError, prefix(op) + role + " must have dtype float32, got " + v.describe());
    }
    if (!has_shape(v, ndim, R, 0)) return shape_error(op, role, v, ndim == 0 ? "[]" : dims(R));
    return Status::Ok();
  };
  if (!plan->backward) {
    KILN_RETURN_IF_ERROR(f32(args.out[0], "loss", 0));
    return f32(args.out[1], "lse", 1);
  }
  KILN_RETURN_IF_ERROR(f32(args.in[2], "lse", 1));
  KILN_RETURN_IF_ERROR(f32(args.in[3], "gloss", 0));
  const View& g = args.out[0];
  if (g.dtype != logits.dtype) {
    return Status(StatusCode::DTypeError, prefix(op) + "glogits " + g.describe() + " must have the dtype of " + logits.describe());
  }
  if (!has_shape(g, 2, R, plan->classes)) return shape_error(op, "glogits", g, dims(R, plan->classes));
  return Status::Ok();
}

Status cross_entropy_target_error(const char* op, int64_t row, int64_t value, const CrossEntropyPlan& plan) {
  return Status(StatusCode::ValueError, prefix(op) + "target " + std::to_string(value) + " in row " + std::to_string(row) +
                                            " is outside [0, " + std::to_string(plan.classes) + ") (ignore_index " +
                                            std::to_string(plan.ignore_index) + ")");
}

bool register_softmax_kernels(DeviceKind device, KernelFn softmax_fn, KernelFn cross_entropy_fn) {
  for (const char* op : {"softmax", "log_softmax", "softmax_backward", "log_softmax_backward"}) {
    register_kernels(op, device, kFloat16Plus, softmax_fn);
  }
  register_kernels("cross_entropy", device, kFloat16Plus, cross_entropy_fn);
  register_kernels("cross_entropy_backward", device, kFloat16Plus, cross_entropy_fn);
  return true;
}

}  // namespace kiln
