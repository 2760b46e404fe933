#include "kiln/elementwise.h"

#include <cstring>
#include <string>

#include "kiln/philox.h"

namespace kiln {

bool binary_op_from_name(const char* name, BinaryOp* op) {
  static const char* const kNames[kNumBinaryOps] = {"add", "sub", "mul", "div", "maximum", "minimum"};
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
         (dtype == DType::Int32 && op != BinaryOp::Div);
}

bool register_binary_kernels(DeviceKind device, KernelFn fn) {
  static const char* const kNames[kNumBinaryOps] = {"add", "sub", "mul", "div", "maximum", "minimum"};
  for (int op = 0; op < kNumBinaryOps; ++op) {
    for (DType t : kAllDTypes) {
      if (binary_supports(static_cast<BinaryOp>(op), t)) register_kernel(kNames[op], device, t, fn);
    }
  }
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

}  // namespace kiln
