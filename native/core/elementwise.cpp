#include "kiln/elementwise.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "kiln/compare.h"
#include "kiln/element.h"
#include "kiln/philox.h"

namespace kiln {

namespace {
const char* const kBinaryNames[kNumBinaryOps] = {"add", "sub", "mul", "div", "maximum", "minimum", "pow"};
}  // namespace

bool binary_op_from_name(const char* name, BinaryOp* op) {
  const char* const* kNames = kBinaryNames;
  for (int i = 0; i < kNumBinaryOps; ++i) {
    if (std::strcmp(name, kNames[i]) == 0) {
      *op = static_cast<BinaryOp>(i);
      return true;
    }
  }
  return false;
}

Status broadcast_strides(const View& in, const View& out, const char* op, int64_t* strides) {
  if (in.ndim > out.ndim) {
    return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": input " + in.describe() +
                                              " has more dimensions than the output " + out.describe());
  }
  const int lead = out.ndim - in.ndim;
  for (int i = 0; i < out.ndim; ++i) {
    if (i < lead) {
      strides[i] = 0;
      continue;
    }
    const int64_t n = in.shape[i - lead];
    if (n == out.shape[i]) {
      strides[i] = n == 1 ? 0 : in.strides[i - lead];
    } else if (n == 1) {
      strides[i] = 0;
    } else {
      return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": cannot broadcast " + in.describe() +
                                                " to shape " + out.shape_str());
    }
  }
  return Status::Ok();
}

Status check_binary(const char* op, const View& a, const View& b, const View& out) {
  if (a.dtype != b.dtype || a.dtype != out.dtype) {
    return Status(StatusCode::DTypeError, std::string("kiln: ") + op + ": dtypes differ: " + a.describe() + ", " +
                                              b.describe() + " -> " + out.describe());
  }
  const int nd = a.ndim > b.ndim ? a.ndim : b.ndim;
  bool ok = out.ndim == nd;
  for (int i = 0; ok && i < nd; ++i) {
    const int ia = i - (nd - a.ndim), ib = i - (nd - b.ndim);
    const int64_t da = ia >= 0 ? a.shape[ia] : 1, db = ib >= 0 ? b.shape[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": shapes " + a.shape_str() + " and " +
                                                b.shape_str() + " cannot be broadcast (" + a.describe() + ", " +
                                                b.describe() + ")");
    }
    ok = out.shape[i] == (da == 1 ? db : da);
  }
  if (!ok) {
    return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": output " + out.describe() +
                                              " is not the broadcast of " + a.shape_str() + " and " + b.shape_str());
  }
  return Status::Ok();
}

Status check_cast(const View& src, const View& dst) {
  bool same = src.ndim == dst.ndim;
  for (int i = 0; same && i < src.ndim; ++i) same = src.shape[i] == dst.shape[i];
  if (!same) return Status(StatusCode::ShapeError, "kiln: cast: shapes differ: " + src.describe() + " -> " + dst.describe());
  return Status::Ok();
}

bool binary_supports(BinaryOp op, DType dtype) {
  return dtype == DType::Float32 || dtype == DType::Float16 || dtype == DType::BFloat16 ||
         (dtype == DType::Int32 && op != BinaryOp::Div && op != BinaryOp::Pow);
}

bool register_binary_op(BinaryOp op, DeviceKind device, KernelFn fn) {
  for (DType t : kAllDTypes) {
    if (binary_supports(op, t)) register_kernel(kBinaryNames[static_cast<int>(op)], device, t, fn);
  }
  return true;
}

bool register_binary_kernels(DeviceKind device, KernelFn fn) {
  for (int op = 0; op <= static_cast<int>(BinaryOp::Minimum); ++op) register_binary_op(static_cast<BinaryOp>(op), device, fn);
  return true;
}

Status prepare_binary(const KernelArgs& args, BinaryPlan* plan) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 2, 1, 0, 0));
  const View &a = args.in[0], &b = args.in[1], &out = args.out[0];
  if (!binary_op_from_name(args.op, &plan->op)) {
    return Status(StatusCode::Internal, std::string("kiln: unknown binary op ") + args.op);
  }
  KILN_RETURN_IF_ERROR(check_binary(args.op, a, b, out));
  if (!binary_supports(plan->op, out.dtype)) return no_kernel(args.op, out.dtype, out.device.kind);
  KILN_RETURN_IF_ERROR(broadcast_strides(a, out, args.op, plan->a_strides));
  return broadcast_strides(b, out, args.op, plan->b_strides);
}

Status prepare_random(const KernelArgs& args, RandomPlan* plan) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 0, 1, 2, 0));
  const View& dst = args.out[0];
  if (!dtype_is_float(dst.dtype)) {
    return Status(StatusCode::DTypeError, std::string("kiln: ") + args.op + ": dtype must be floating, got " + dst.describe());
  }
  if (!dst.is_contiguous()) {
    return Status(StatusCode::ShapeError, std::string("kiln: ") + args.op + ": output " + dst.describe() + " must be contiguous");
  }
  plan->normal = std::strcmp(args.op, "randn") == 0;
  plan->seed = static_cast<uint64_t>(args.ints[0]);
  plan->offset = static_cast<uint64_t>(args.ints[1]);
  plan->bits = rng::uniform_bits_for(dst.dtype);
  return Status::Ok();
}

// ---- unary ops -------------------------------------------------------------------------

namespace {

const char* const kUnaryNames[kNumUnaryOps] = {"neg",     "abs",  "relu", "exp",  "log",  "sqrt",
                                               "rsqrt",   "sigmoid", "tanh", "silu", "gelu", "gelu_tanh"};
const char* const kUnaryGradNames[kNumUnaryGradOps] = {"relu_backward", "gelu_backward",    "gelu_tanh_backward",
                                                       "silu_backward", "sigmoid_backward", "tanh_backward"};

bool is_arith_float(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16; }

bool same_shape(const View& a, const View& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.shape[i] != b.shape[i]) return false;
  }
  return true;
}

std::string prefix(const char* op) { return std::string("kiln: ") + op + ": "; }

// out's shape must be exactly the NumPy broadcast of the inputs' shapes.
Status check_broadcast_output(const char* op, const View* in, int n, const View& out) {
  int nd = 0;
  for (int k = 0; k < n; ++k) nd = in[k].ndim > nd ? in[k].ndim : nd;
  std::string shapes;
  for (int k = 0; k < n; ++k) shapes += (k ? " and " : "") + in[k].shape_str();
  for (int i = 0; i < nd; ++i) {
    int64_t d = 1;
    for (int k = 0; k < n; ++k) {
      const int j = i - (nd - in[k].ndim);
      const int64_t dk = j >= 0 ? in[k].shape[j] : 1;
      if (dk == 1) continue;
      if (d != 1 && d != dk) {
        return Status(StatusCode::ShapeError, prefix(op) + "shapes " + shapes + " cannot be broadcast");
      }
      d = dk;
    }
    if (out.ndim != nd || out.shape[i] != d) {
      return Status(StatusCode::ShapeError,
                    prefix(op) + "output " + out.describe() + " is not the broadcast of " + shapes);
    }
  }
  if (out.ndim != nd) {
    return Status(StatusCode::ShapeError, prefix(op) + "output " + out.describe() + " is not the broadcast of " + shapes);
  }
  return Status::Ok();
}

// Next value of a sign-magnitude code with `bits` bits toward +inf (up) or -inf (down).
uint32_t next_code(uint32_t code, int bits, bool up) {
  const uint32_t sign = 1u << (bits - 1), mag = code & (sign - 1);
  const bool neg = (code & sign) != 0;
  if (mag == 0) return up ? 1u : (sign | 1u);  // from +-0 to the smallest subnormal
  return (neg == up) ? code - 1 : code + 1;   // toward zero : away from zero
}

// The least (up) / greatest (down) value of float dtype dt that is >= / <= v, as float32.
float round_inside(DType dt, double v, bool up) {
  if (dt == DType::Float32) {
    float f = static_cast<float>(v);
    const double back = static_cast<double>(f);
    if (up ? back < v : back > v) f = num::bits_f32(next_code(num::f32_bits(f), 32, up));
    return f;
  }
  const bool f16 = dt == DType::Float16;
  uint32_t code = f16 ? num::f64_to_f16(v) : num::f64_to_bf16(v);
  auto value = [&](uint32_t c) {
    return f16 ? num::f16_to_f32(static_cast<uint16_t>(c)) : num::bf16_to_f32(static_cast<uint16_t>(c));
  };
  const double back = static_cast<double>(value(code));
  if (up ? back < v : back > v) code = next_code(code, 16, up);
  return value(code);
}

}  // namespace

bool unary_op_from_name(const char* name, UnaryOp* op) {
  for (int i = 0; i < kNumUnaryOps; ++i) {
    if (std::strcmp(name, kUnaryNames[i]) == 0) {
      *op = static_cast<UnaryOp>(i);
      return true;
    }
  }
  return false;
}

const char* unary_op_name(UnaryOp op) { return kUnaryNames[static_cast<int>(op)]; }

bool unary_supports(UnaryOp op, DType dtype) {
  if (is_arith_float(dtype)) return true;
  return dtype == DType::Int32 && (op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Relu);
}

bool register_unary_kernels(DeviceKind device, KernelFn fn) {
  for (int op = 0; op < kNumUnaryOps; ++op) {
    for (DType t : kAllDTypes) {
      if (unary_supports(static_cast<UnaryOp>(op), t)) register_kernel(kUnaryNames[op], device, t, fn);
    }
  }
  return true;
}

Status prepare_unary(const KernelArgs& args, UnaryOp* op) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 1, 1, 0, 0));
  if (!unary_op_from_name(args.op, op)) return Status(StatusCode::Internal, std::string("kiln: unknown unary op ") + args.op);
  const View &x = args.in[0], &y = args.out[0];
  if (x.dtype != y.dtype) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "dtypes differ: " + x.describe() + " -> " + y.describe());
  }
  if (!unary_supports(*op, x.dtype)) return no_kernel(args.op, x.dtype, x.device.kind);
  if (!same_shape(x, y)) {
    return Status(StatusCode::ShapeError, prefix(args.op) + "output " + y.describe() + " differs in shape from the input " + x.describe());
  }
  return Status::Ok();
}

bool unary_grad_op_from_name(const char* name, UnaryGradOp* op) {
  for (int i = 0; i < kNumUnaryGradOps; ++i) {
    if (std::strcmp(name, kUnaryGradNames[i]) == 0) {
      *op = static_cast<UnaryGradOp>(i);
      return true;
    }
  }
  return false;
}

const char* unary_grad_op_name(UnaryGradOp op) { return kUnaryGradNames[static_cast<int>(op)]; }

bool register_unary_grad_kernels(DeviceKind device, KernelFn fn) {
  for (int op = 0; op < kNumUnaryGradOps; ++op) register_kernels(kUnaryGradNames[op], device, kFloat16Plus, fn);
  return true;
}

Status prepare_unary_grad(const KernelArgs& args, UnaryGradOp* op) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 2, 1, 0, 0));
  if (!unary_grad_op_from_name(args.op, op)) return Status(StatusCode::Internal, std::string("kiln: unknown op ") + args.op);
  const View &x = args.in[0], &gy = args.in[1], &gx = args.out[0];
  if (x.dtype != gy.dtype || x.dtype != gx.dtype) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "dtypes differ: " + x.describe() + ", gradient " + gy.describe() +
                                              " -> " + gx.describe());
  }
  if (!is_arith_float(x.dtype)) return no_kernel(args.op, x.dtype, x.device.kind);
  if (!same_shape(x, gy) || !same_shape(x, gx)) {
    return Status(StatusCode::ShapeError, prefix(args.op) + "shapes differ: " + x.describe() + ", gradient " + gy.describe() +
                                              " -> " + gx.describe());
  }
  return Status::Ok();
}

Status prepare_where(const KernelArgs& args, WherePlan* plan) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 3, 1, 0, 0));
  const View &c = args.in[0], &a = args.in[1], &b = args.in[2], &out = args.out[0];
  if (c.dtype != DType::Bool) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "cond must have dtype bool, got " + c.describe());
  }
  if (a.dtype != b.dtype || a.dtype != out.dtype) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "dtypes differ: " + a.describe() + ", " + b.describe() + " -> " +
                                              out.describe());
  }
  KILN_RETURN_IF_ERROR(check_broadcast_output(args.op, args.in, 3, out));
  KILN_RETURN_IF_ERROR(broadcast_strides(c, out, args.op, plan->cond_strides));
  KILN_RETURN_IF_ERROR(broadcast_strides(a, out, args.op, plan->a_strides));
  return broadcast_strides(b, out, args.op, plan->b_strides);
}

// ---- comparisons and logical ops (kiln/compare.h) -----------------------------------------

namespace {
const char* const kCompareNames[kNumCompareOps] = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or"};
}  // namespace

bool compare_op_from_name(const char* name, CompareOp* op) {
  for (int i = 0; i < kNumCompareOps; ++i) {
    if (std::strcmp(name, kCompareNames[i]) == 0) {
      *op = static_cast<CompareOp>(i);
      return true;
    }
  }
  return false;
}

const char* compare_op_name(CompareOp op) { return kCompareNames[static_cast<int>(op)]; }

bool compare_supports(CompareOp op, DType dtype) {
  if (op == CompareOp::LogicalAnd || op == CompareOp::LogicalOr) return dtype == DType::Bool;
  return is_arith_float(dtype) || dtype == DType::Int32 || dtype == DType::Int8 || dtype == DType::UInt8 ||
         dtype == DType::Bool;
}

bool register_compare_kernels(DeviceKind device, KernelFn fn) {
  for (int op = 0; op < kNumCompareOps; ++op) {
    for (DType t : kAllDTypes) {
      if (compare_supports(static_cast<CompareOp>(op), t)) register_kernel(kCompareNames[op], device, t, fn);
    }
  }
  return true;
}

Status prepare_compare(const KernelArgs& args, ComparePlan* plan) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 2, 1, 0, 0));
  if (!compare_op_from_name(args.op, &plan->op)) {
    return Status(StatusCode::Internal, std::string("kiln: unknown comparison op ") + args.op);
  }
  const View &a = args.in[0], &b = args.in[1], &out = args.out[0];
  if (a.dtype != b.dtype) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "dtypes differ: " + a.describe() + ", " + b.describe());
  }
  if (out.dtype != DType::Bool) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "output must have dtype bool, got " + out.describe());
  }
  if (!compare_supports(plan->op, a.dtype)) return no_kernel(args.op, a.dtype, a.device.kind);
  KILN_RETURN_IF_ERROR(check_broadcast_output(args.op, args.in, 2, out));
  KILN_RETURN_IF_ERROR(broadcast_strides(a, out, args.op, plan->a_strides));
  return broadcast_strides(b, out, args.op, plan->b_strides);
}

Status prepare_logical_not(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 1, 1, 0, 0));
  const View &x = args.in[0], &y = args.out[0];
  if (x.dtype != DType::Bool || y.dtype != DType::Bool) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "input and output must have dtype bool: " + x.describe() +
                                              " -> " + y.describe());
  }
  if (!same_shape(x, y)) {
    return Status(StatusCode::ShapeError, prefix(args.op) + "output " + y.describe() + " differs in shape from the input " + x.describe());
  }
  return Status::Ok();
}

Status prepare_clamp(const KernelArgs& args, ClampPlan* plan) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 1, 1, 0, 2));
  const View &x = args.in[0], &y = args.out[0];
  if (x.dtype != y.dtype) {
    return Status(StatusCode::DTypeError, prefix(args.op) + "dtypes differ: " + x.describe() + " -> " + y.describe());
  }
  if (!is_arith_float(x.dtype) && x.dtype != DType::Int32) return no_kernel(args.op, x.dtype, x.device.kind);
  if (!same_shape(x, y)) {
    return Status(StatusCode::ShapeError, prefix(args.op) + "output " + y.describe() + " differs in shape from the input " + x.describe());
  }
  const double lo = args.floats[0], hi = args.floats[1];
  const float inf = std::numeric_limits<float>::infinity();
  plan->lo = std::isnan(lo) ? -inf : (is_arith_float(x.dtype) ? round_inside(x.dtype, lo, true) : 0.0f);
  plan->hi = std::isnan(hi) ? inf : (is_arith_float(x.dtype) ? round_inside(x.dtype, hi, false) : 0.0f);
  auto to_i32 = [](double v) {
    return v <= -2147483648.0 ? INT32_MIN : (v >= 2147483647.0 ? INT32_MAX : static_cast<int32_t>(v));
  };
  plan->ilo = std::isnan(lo) ? INT32_MIN : to_i32(std::ceil(lo));
  plan->ihi = std::isnan(hi) ? INT32_MAX : to_i32(std::floor(hi));
  return Status::Ok();
}

}  // namespace kiln
