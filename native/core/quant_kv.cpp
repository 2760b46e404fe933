// Validation for the INT4 KV cache ops (kiln/quant_kv.h), for every backend.
// Messages name the op, the operand, its dtype, shape and device.
#include "kiln/quant_kv.h"

#include <cmath>
#include <string>

#include "checks.h"

namespace kiln {
namespace {

using checks::expect_dtype;
using checks::expect_float;
using checks::shape_error;
using checks::value_error;

Status expect_4d(const char* op, const char* role, const View& v) {
  if (v.ndim == 4) return Status::Ok();
  return shape_error(op, std::string(role) + " must be 4-D [batch, heads, seq, ...], got " + v.describe());
}

Status expect_dims(const char* op, const char* role, const View& v, int64_t b, int64_t h, int64_t s, int64_t last) {
  if (v.ndim == 4 && v.shape[0] == b && v.shape[1] == h && v.shape[2] == s && v.shape[3] == last) return Status::Ok();
  return shape_error(op, std::string(role) + " must have shape " + checks::format_dims({b, h, s, last}) + ", got " + v.describe());
}

Status expect_unit_last(const char* op, const char* role, const View& v) {
  if (v.ndim == 0 || v.shape[v.ndim - 1] <= 1 || v.strides[v.ndim - 1] == 1) return Status::Ok();
  return shape_error(op, std::string(role) + " must have unit stride along its last dimension, got " + v.describe());
}

// exponents int8 [h], each in [0, 14] (read on the host when the view is on the CPU).
Status expect_exponents(const char* op, const char* role, const View& e, int64_t h) {
  KILN_RETURN_IF_ERROR(expect_dtype(op, role, e, DType::Int8));
  if (e.ndim != 1 || e.shape[0] != h) return shape_error(op, std::string(role) + " must have shape [" + std::to_string(h) + "], got " + e.describe());
  if (e.device.kind != DeviceKind::CPU) return Status::Ok();
  const int8_t* p = reinterpret_cast<const int8_t*>(e.data());
  for (int64_t i = 0; i < h; ++i) {
    const int v = p[i * e.strides[0]];
    if (v < 0 || v > quant::kMaxExponent) {
      return value_error(op, std::string(role) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                 " must be in [0, 14] (t = 2^e), " + e.describe());
    }
  }
  return Status::Ok();
}

// packed [b, h, s, hd/2] uint8 and scales [b, h, s, hd/G] e4m3; sets *group.
Status expect_int4_rows(const char* op, const char* role, const View& packed, const View& scales, int64_t b, int64_t h,
                        int64_t s, int64_t hd, int64_t* group) {
  const std::string r(role);
  KILN_RETURN_IF_ERROR(expect_dtype(op, (r + " packed").c_str(), packed, DType::UInt8));
  KILN_RETURN_IF_ERROR(expect_dtype(op, (r + " scales").c_str(), scales, DType::Float8E4M3));
  KILN_RETURN_IF_ERROR(expect_dims(op, (r + " packed").c_str(), packed, b, h, s, hd / 2));
  KILN_RETURN_IF_ERROR(expect_4d(op, (r + " scales").c_str(), scales));
  const int64_t ng = scales.shape[3];
  if (scales.shape[0] != b || scales.shape[1] != h || scales.shape[2] != s || ng < 1 || hd % ng != 0) {
    return shape_error(op, r + " scales must have shape " + checks::format_dims({b, h, s}) +
                               " + [head_dim / G] with G dividing head_dim = " + std::to_string(hd) + ", got " + scales.describe());
  }
  KILN_RETURN_IF_ERROR(expect_unit_last(op, (r + " packed").c_str(), packed));
  KILN_RETURN_IF_ERROR(expect_unit_last(op, (r + " scales").c_str(), scales));
  *group = hd / ng;
  return Status::Ok();
}

}  // namespace

Status prepare_int4_kv(const KernelArgs& args, Int4KvPlan* plan) {
  const char* op = args.op;
  KILN_RETURN_IF_ERROR(expect_counts(args, 2, 2, 1, 0));
  const View& x = args.in[0];
  KILN_RETURN_IF_ERROR(expect_float(op, "x", x));
  KILN_RETURN_IF_ERROR(expect_4d(op, "x", x));
  Int4KvPlan p;
  p.b = x.shape[0];
  p.h = x.shape[1];
  p.s = x.shape[2];
  p.hd = x.shape[3];
  if (p.hd < 2 || p.hd % 2 != 0) return shape_error(op, "head_dim must be even (two INT4 values per byte), got " + x.describe());
  p.group = args.ints[0];
  if (p.group < 1 || p.hd % p.group != 0) {
    return value_error(op, "group size " + std::to_string(p.group) + " must divide head_dim = " + std::to_string(p.hd) + " (x " + x.describe() + ")");
  }
  KILN_RETURN_IF_ERROR(expect_exponents(op, "exponents", args.in[1], p.h));
  int64_t g = 0;
  KILN_RETURN_IF_ERROR(expect_int4_rows(op, "the output", args.out[0], args.out[1], p.b, p.h, p.s, p.hd, &g));
  if (g != p.group) {
    return shape_error(op, "the output scales " + args.out[1].describe() + " do not hold groups of " + std::to_string(p.group));
  }
  *plan = p;
  return Status::Ok();
}

Status prepare_attention_int4kv(const KernelArgs& args, AttentionInt4KvPlan* plan) {
  const char* op = args.op;
  KILN_RETURN_IF_ERROR(expect_counts(args, 7, 1, 1, 1));
  const View& q = args.in[0];
  KILN_RETURN_IF_ERROR(expect_dtype(op, "q", q, DType::Float32));
  KILN_RETURN_IF_ERROR(expect_4d(op, "q", q));
  AttentionInt4KvPlan p;
  p.b = q.shape[0];
  p.hq = q.shape[1];
  p.sq = q.shape[2];
  p.hd = q.shape[3];
  if (p.hd < 2 || p.hd % 2 != 0) return shape_error(op, "head_dim must be even, got q " + q.describe());
  const View& kp = args.in[1];
  KILN_RETURN_IF_ERROR(expect_4d(op, "k packed", kp));
  p.hkv = kp.shape[1];
  p.len = kp.shape[2];
  if (p.hkv < 1 || p.hq % p.hkv != 0) {
    return shape_error(op, "the query heads (" + std::to_string(p.hq) + ") must be a multiple of the kv heads (" +
                               std::to_string(p.hkv) + "): q " + q.describe() + ", k packed " + kp.describe());
  }
  int64_t gk = 0, gv = 0;
  KILN_RETURN_IF_ERROR(expect_int4_rows(op, "k", kp, args.in[2], p.b, p.hkv, p.len, p.hd, &gk));
  KILN_RETURN_IF_ERROR(expect_exponents(op, "k exponents", args.in[3], p.hkv));
  KILN_RETURN_IF_ERROR(expect_int4_rows(op, "v", args.in[4], args.in[5], p.b, p.hkv, p.len, p.hd, &gv));
  KILN_RETURN_IF_ERROR(expect_exponents(op, "v exponents", args.in[6], p.hkv));
  if (gk != gv) return shape_error(op, "k and v must share the group size, got " + args.in[2].describe() + " and " + args.in[5].describe());
  p.group = gk;
  if (p.len < 1 && p.sq > 0) return shape_error(op, "attention needs at least one cached position, got k packed " + kp.describe());
  p.causal = args.ints[0] != 0;
  if (p.causal && p.sq > p.len) {
    return shape_error(op, "causal attention needs the " + std::to_string(p.sq) + " queries among the " + std::to_string(p.len) +
                               " cached positions (q " + q.describe() + ", k packed " + kp.describe() + ")");
  }
  p.scale = static_cast<float>(args.floats[0]);
  if (!(p.scale > 0.0f) || p.scale != p.scale || p.scale == INFINITY) {
    return value_error(op, "the softmax scale must be finite and > 0, got " + std::to_string(args.floats[0]));
  }
  const View& o = args.out[0];
  KILN_RETURN_IF_ERROR(expect_dtype(op, "the output o", o, DType::Float32));
  KILN_RETURN_IF_ERROR(expect_dims(op, "the output o", o, p.b, p.hq, p.sq, p.hd));
  if (!o.is_contiguous()) return shape_error(op, "the output o must be contiguous, got " + o.describe());
  *plan = p;
  return Status::Ok();
}

}  // namespace kiln
