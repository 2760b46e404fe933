// Validation for the 'matmul' kernels, shared by the CPU and CUDA backends
// (kiln/matmul.h).
#include <string>

#include "kiln/matmul.h"

#include "checks.h"

namespace kiln {
namespace {

using checks::shape_error;

std::string operands(const View& a, const View& b) { return "A " + a.describe() + ", B " + b.describe(); }

}  // namespace

Status check_matmul(const View& a, const View& b, const View& c, const char* op) {
  if (a.dtype != DType::Float32 && a.dtype != DType::Float16 && a.dtype != DType::BFloat16) {
    return Status(StatusCode::DTypeError, std::string("kiln: ") + op +
                                              ": operands must be float32, float16 or bfloat16, got A " + a.describe());
  }
  if (b.dtype != a.dtype || c.dtype != a.dtype) {
    return Status(StatusCode::DTypeError, std::string("kiln: ") + op + ": A, B and the output must have one dtype, got " +
                                              operands(a, b) + ", output " + c.describe());
  }
  if (a.ndim < 2 || a.ndim > kMaxDims) {
    return shape_error(op, "A must have at least 2 dimensions [..., M, K], got " + a.describe());
  }
  if (b.ndim != a.ndim || c.ndim != a.ndim) {
    return shape_error(op, "A, B and the output must have the same rank (batch dims broadcast first), got " +
                               operands(a, b) + ", output " + c.describe());
  }
  const int r = a.ndim;
  const int64_t m = a.shape[r - 2], k = a.shape[r - 1], n = b.shape[r - 1];
  if (b.shape[r - 2] != k) {
    return shape_error(op, "inner dimensions differ: " + a.shape_str() + " @ " + b.shape_str() + " (" + operands(a, b) + ")");
  }
  for (int d = 0; d < r - 2; ++d) {
    if (a.shape[d] != b.shape[d] || c.shape[d] != a.shape[d]) {
      return shape_error(op, "batch dimensions differ (broadcast them first): " + operands(a, b) + ", output " +
                                 c.describe());
    }
  }
  if (c.shape[r - 2] != m || c.shape[r - 1] != n) {
    std::string want = "[";
    for (int d = 0; d < r - 2; ++d) want += std::to_string(a.shape[d]) + ", ";
    want += std::to_string(m) + ", " + std::to_string(n) + "]";
    return shape_error(op, "the output must have shape " + want + ", got " + c.describe() + " (" + operands(a, b) + ")");
  }
  if (!c.is_contiguous()) {
    std::string strides = "[";
    for (int d = 0; d < r; ++d) strides += (d ? ", " : "") + std::to_string(c.strides[d]);
    return shape_error(op, "the output must be contiguous (row-major), got " + c.describe() + " with strides " +
                               strides + "]");
  }
  return Status::Ok();
}

Status check_matmul_args(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 2, 1, 0, 0));
  return check_matmul(args.in[0], args.in[1], args.out[0], args.op);
}

}  // namespace kiln
