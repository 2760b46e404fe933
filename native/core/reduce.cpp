#include "kiln/reduce.h"

#include <cstring>
#include <string>

namespace kiln {

namespace {

const char* const kNames[] = {"sum", "mean", "max", "min", "argmax"};

std::string prefix(const char* op) { return std::string("kiln: ") + op + ": "; }

std::string ints_str(const int64_t* v, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Appends dim (n, strides...) to a list, merging it into the previous entry
// when every stride steps over the new dim exactly.
template <int K>
void push_dim(int* count, int64_t* shape, int64_t* const (&strides)[K], int64_t n, const int64_t (&s)[K]) {
  if (*count > 0) {
    bool merge = true;
    for (int k = 0; k < K; ++k) merge = merge && strides[k][*count - 1] == s[k] * n;
    if (merge) {
      shape[*count - 1] *= n;
      for (int k = 0; k < K; ++k) strides[k][*count - 1] = s[k];
      return;
    }
  }
  shape[*count] = n;
  for (int k = 0; k < K; ++k) strides[k][*count] = s[k];
  ++*count;
}

}  // namespace

bool reduce_op_from_name(const char* name, ReduceOp* op) {
  for (int i = 0; i < 5; ++i) {
    if (std::strcmp(name, kNames[i]) == 0) {
      *op = static_cast<ReduceOp>(i);
      return true;
    }
  }
  return false;
}

bool reduce_supports(ReduceOp op, DType dtype) {
  const bool fl = dtype == DType::Float32 || dtype == DType::Float16 || dtype == DType::BFloat16;
  return fl || (dtype == DType::Int32 && op != ReduceOp::Mean);
}

bool register_reduce_kernels(DeviceKind device, KernelFn fn) {
  for (int op = 0; op < 5; ++op) {
    for (DType t : kAllDTypes) {
      if (reduce_supports(static_cast<ReduceOp>(op), t)) register_kernel(kNames[op], device, t, fn);
    }
  }
  return true;
}

Status prepare_reduce(const KernelArgs& args, ReducePlan* plan) {
  if (!reduce_op_from_name(args.op, &plan->op)) {
    return Status(StatusCode::Internal, std::string("kiln: unknown reduction ") + args.op);
  }
  const bool argmax = plan->op == ReduceOp::Argmax;
  if (args.n_in != 1 || args.n_out != 1 || args.n_floats != 0 || (argmax && args.n_ints != 1) || args.n_ints > kMaxDims) {
    return Status(StatusCode::Internal, prefix(args.op) + "expected 1 input, 1 output, " +
                                            (argmax ? "1 int attribute (the axis)" : "the reduced axes as int attributes") +
                                            " and no float attributes; got " + std::to_string(args.n_in) + ", " +
                                            std::to_string(args.n_out) + ", " + std::to_string(args.n_ints) + ", " +
                                            std::to_string(args.n_floats));
  }
  const View &x = args.in[0], &y = args.out[0];
  if (!reduce_supports(plan->op, x.dtype)) return no_kernel(args.op, x.dtype, x.device.kind);
  const DType want = argmax ? DType::Int32 : x.dtype;
  if (y.dtype != want) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "output must have dtype " + dtype_name(want) + ", got " +
                                              y.describe() + " for input " + x.describe());
  }
  bool reduced[kMaxDims] = {};
  for (int i = 0; i < args.n_ints; ++i) {
    const int64_t a = args.ints[i];
    if (a < 0 || a >= x.ndim || (i > 0 && a <= args.ints[i - 1])) {
      return Status(StatusCode::ValueError, prefix(args.op) + "axes " + ints_str(args.ints, args.n_ints) +
                                                " must be ascending, unique and in [0, " + std::to_string(x.ndim) +
                                                ") for " + x.describe());
    }
    reduced[a] = true;
  }
  bool shape_ok = y.ndim == x.ndim;
  for (int i = 0; shape_ok && i < x.ndim; ++i) shape_ok = y.shape[i] == (reduced[i] ? 1 : x.shape[i]);
  if (!shape_ok) {
    return Status(StatusCode::ShapeError, prefix(args.op) + "output " + y.describe() + " must be the input " + x.describe() +
                                              " with axes " + ints_str(args.ints, args.n_ints) + " set to 1");
  }
  plan->nk = plan->nr = 0;
  plan->n_out = plan->n_red = 1;
  int64_t* const kstr[2] = {plan->kin, plan->kout};
  int64_t* const rstr[1] = {plan->rin};
  for (int i = 0; i < x.ndim; ++i) {
    const int64_t n = x.shape[i];
    if (reduced[i]) {
      plan->n_red *= n;
      if (n != 1) push_dim<1>(&plan->nr, plan->rshape, rstr, n, {x.strides[i]});
    } else {
      plan->n_out *= n;
      if (n != 1) push_dim<2>(&plan->nk, plan->kshape, kstr, n, {x.strides[i], y.strides[i]});
    }
  }
  if (plan->n_out > 0 && plan->n_red == 0 && (plan->op == ReduceOp::Max || plan->op == ReduceOp::Min || argmax)) {
    return Status(StatusCode::ShapeError, prefix(args.op) + "cannot reduce zero elements (" + x.describe() + ", axes " +
                                              ints_str(args.ints, args.n_ints) + ")");
  }
  if (argmax && plan->n_red > 2147483647LL) {
    return Status(StatusCode::ValueError, prefix(args.op) + "axis of length " + std::to_string(plan->n_red) +
                                              " does not fit an int32 index");
  }
  return Status::Ok();
}

}  // namespace kiln
