// Validation for the quantization kernels (kiln/quant.h), shared by the CPU
// and CUDA backends. Every message names the op, the operand, its dtype,
// shape and device.
#include "kiln/quant.h"
#include "kiln/quant_fireq.h"

#include "checks.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

namespace kiln {
namespace {

using checks::dtype_error;
using checks::expect_dtype;
using checks::expect_float;
using checks::expect_shape;
using checks::shape_error;
using checks::value_error;

Status expect_2d(const char* op, const char* role, const View& v, const char* layout) {
  if (v.ndim == 2) return Status::Ok();
  return shape_error(op, std::string(role) + " must be 2-D " + layout + ", got " + v.describe());
}

Status expect_contiguous(const char* op, const char* role, const View& v) {
  if (v.is_contiguous()) return Status::Ok();
  return shape_error(op, std::string(role) + " must be contiguous (row-major), got " + v.describe());
}

// The FireQ layout is read in 16-byte loads (CUDA) and 32-bit words (CPU).
Status expect_aligned(const char* op, const char* role, const View& v) {
  if (reinterpret_cast<uintptr_t>(v.data()) % 16 == 0) return Status::Ok();
  return value_error(op, std::string(role) + " must start on a 16-byte boundary (a tensor of its own, not a view "
                                             "into one), got " + v.describe());
}

Status expect_exponent_view(const char* op, const View& e) {
  KILN_RETURN_IF_ERROR(expect_dtype(op, "exponent", e, DType::Int8));
  if (e.ndim > 1 || e.numel() != 1) return shape_error(op, "exponent must have shape [] or [1], got " + e.describe());
  return Status::Ok();
}

Status expect_count_range(const KernelArgs& a, int in_lo, int in_hi, int n_out, int floats_hi) {
  if (a.n_in < in_lo || a.n_in > in_hi || a.n_out != n_out || a.n_ints != 0 || a.n_floats < 0 || a.n_floats > floats_hi) {
    return Status(StatusCode::Internal, std::string("kiln: ") + a.op + ": expected " + std::to_string(in_lo) +
                                            (in_hi > in_lo ? " or " + std::to_string(in_hi) : std::string()) +
                                            " inputs, " + std::to_string(n_out) + " outputs, no int and at most " +
                                            std::to_string(floats_hi) + " float attributes; got " +
                                            std::to_string(a.n_in) + ", " + std::to_string(a.n_out) + ", " +
                                            std::to_string(a.n_ints) + ", " + std::to_string(a.n_floats));
  }
  return Status::Ok();
}

// A static activation scale: finite and > 0 once rounded to float32.
Status static_scale(const char* op, double v, float* out) {
  const float f = static_cast<float>(v);
  if (!(std::isfinite(f) && f > 0.0f)) {
    return value_error(op, "the static activation scale must be finite and > 0 in float32, got " + std::to_string(v));
  }
  *out = f;
  return Status::Ok();
}

// packed [N, Kp/2] uint8 (the FireQ layout: [N padded to 16, Kp/2]) and
// scales [N, Kp/G] e4m3 (both contiguous) for N rows and padded length kp;
// sets *group.
Status check_weight(const char* op, const View& packed, const View& scales, int64_t n, int64_t kp, int64_t* group,
                    const std::string& context, bool fireq = false) {
  KILN_RETURN_IF_ERROR(expect_dtype(op, "packed weights", packed, DType::UInt8));
  KILN_RETURN_IF_ERROR(expect_dtype(op, "scales", scales, DType::Float8E4M3));
  const int64_t rows = fireq ? quant::fireq::padded_n(n) : n;
  if (packed.ndim != 2 || packed.shape[0] != rows || packed.shape[1] * 2 != kp) {
    return shape_error(op, std::string(fireq ? "FireQ-layout weights" : "packed weights") + " must have shape " +
                               checks::format_dims({rows, kp / 2}) + " (K padded to " + std::to_string(kp) +
                               (fireq ? ", N = " + std::to_string(n) + " padded to 16" : std::string()) +
                               ", two per byte), got " + packed.describe() + context);
  }
  if (scales.ndim != 2 || scales.shape[0] != n || scales.shape[1] < 1 || kp % scales.shape[1] != 0 ||
      !valid_group(kp / scales.shape[1], kp)) {
    return shape_error(op, "scales must have shape [" + std::to_string(n) +
                               ", Kp / G] with a group size G that is a multiple of 32 and divides Kp = " +
                               std::to_string(kp) + ", got " + scales.describe() + context);
  }
  KILN_RETURN_IF_ERROR(expect_contiguous(op, "packed weights", packed));
  KILN_RETURN_IF_ERROR(expect_contiguous(op, "scales", scales));
  *group = kp / scales.shape[1];
  return Status::Ok();
}

}  // namespace

Status read_exponent(const View& exponent, const char* op, int* e) {
  const int v = static_cast<int>(*reinterpret_cast<const int8_t*>(exponent.data()));
  if (v < 0 || v > quant::kMaxExponent) {
    return value_error(op, "the weight exponent e must be in [0, 14] (t = 2^e), got " + std::to_string(v));
  }
  *e = v;
  return Status::Ok();
}

Status prepare_int4_weight(const KernelArgs& args, Int4WeightPlan* plan) {
  const char* op = args.op;
  KILN_RETURN_IF_ERROR(expect_counts(args, 1, 3, 1, 0));
  const View& w = args.in[0];
  KILN_RETURN_IF_ERROR(expect_float(op, "w", w));
  KILN_RETURN_IF_ERROR(expect_2d(op, "w", w, "[N, K]"));
  const int64_t n = w.shape[0], k = w.shape[1];
  if (k < 1) return shape_error(op, "w must have K >= 1 columns, got " + w.describe());
  const int64_t kp = quant::padded_k(k);
  const int64_t group = args.ints[0];
  if (!valid_group(group, kp)) {
    return value_error(op, "group size " + std::to_string(group) +
                               " must be a multiple of 32 that divides the padded K = " + std::to_string(kp) +
                               " (w " + w.describe() + ")");
  }
  KILN_RETURN_IF_ERROR(expect_dtype(op, "packed weights", args.out[0], DType::UInt8));
  KILN_RETURN_IF_ERROR(expect_shape(op, "packed weights", args.out[0], {n, kp / 2}));
  KILN_RETURN_IF_ERROR(expect_contiguous(op, "packed weights", args.out[0]));
  KILN_RETURN_IF_ERROR(expect_dtype(op, "scales", args.out[1], DType::Float8E4M3));
  KILN_RETURN_IF_ERROR(expect_shape(op, "scales", args.out[1], {n, kp / group}));
  KILN_RETURN_IF_ERROR(expect_contiguous(op, "scales", args.out[1]));
  KILN_RETURN_IF_ERROR(expect_exponent_view(op, args.out[2]));
  plan->n = n;
  plan->k = k;
  plan->kp = kp;
  plan->group = group;
  return Status::Ok();
}

Status prepare_int4_dequantize(const KernelArgs& args, Int4WeightPlan* plan) {
  const char* op = args.op;
  KILN_RETURN_IF_ERROR(expect_counts(args, 3, 1, 0, 0));
  const View& w = args.out[0];
  KILN_RETURN_IF_ERROR(expect_float(op, "the output w", w));
  KILN_RETURN_IF_ERROR(expect_2d(op, "the output w", w, "[N, K]"));
  const int64_t n = w.shape[0], k = w.shape[1];
  if (k < 1) return shape_error(op, "the output w must have K >= 1 columns, got " + w.describe());
  const int64_t kp = quant::padded_k(k);
  KILN_RETURN_IF_ERROR(check_weight(op, args.in[0], args.in[1], n, kp, &plan->group, " (output " + w.describe() + ")"));
  KILN_RETURN_IF_ERROR(expect_exponent_view(op, args.in[2]));
  plan->n = n;
  plan->k = k;
  plan->kp = kp;
  return Status::Ok();
}

Status prepare_fireq_pack(const KernelArgs& args, FireqPackPlan* plan) {
  const char* op = args.op;
  KILN_RETURN_IF_ERROR(expect_counts(args, 1, 1, 0, 0));
  const bool pack = std::strcmp(op, "quant_int4_fireq_pack") == 0;
  const View& canonical = pack ? args.in[0] : args.out[0];
  const View& frags = pack ? args.out[0] : args.in[0];
  const char* crole = pack ? "packed weights" : "the output packed weights";
  const char* frole = pack ? "the output FireQ-layout weights" : "FireQ-layout weights";
  KILN_RETURN_IF_ERROR(expect_dtype(op, crole, canonical, DType::UInt8));
  KILN_RETURN_IF_ERROR(expect_dtype(op, frole, frags, DType::UInt8));
  KILN_RETURN_IF_ERROR(expect_2d(op, crole, canonical, "[N, Kp/2]"));
  const int64_t n = canonical.shape[0], kp = canonical.shape[1] * 2;
  if (kp < quant::kKAlign || kp % quant::kKAlign != 0) {
    return shape_error(op, std::string(crole) + " must have Kp/2 columns with Kp a positive multiple of 128, got " +
                               canonical.describe());
  }
  KILN_RETURN_IF_ERROR(expect_shape(op, frole, frags, {quant::fireq::padded_n(n), kp / 2}));
  KILN_RETURN_IF_ERROR(expect_contiguous(op, crole, canonical));
  KILN_RETURN_IF_ERROR(expect_contiguous(op, frole, frags));
  KILN_RETURN_IF_ERROR(expect_aligned(op, frole, frags));
  plan->n = n;
  plan->kp = kp;
  return Status::Ok();
}

Status prepare_fp8_activation(const KernelArgs& args, Fp8ActivationPlan* plan) {
  const char* op = args.op;
  KILN_RETURN_IF_ERROR(expect_count_range(args, 1, 1, 2, 1));
  const View& x = args.in[0];
  KILN_RETURN_IF_ERROR(expect_float(op, "x", x));
  KILN_RETURN_IF_ERROR(expect_2d(op, "x", x, "[M, K]"));
  const int64_t m = x.shape[0], k = x.shape[1];
  KILN_RETURN_IF_ERROR(expect_dtype(op, "the output a", args.out[0], DType::Float8E4M3));
  KILN_RETURN_IF_ERROR(expect_shape(op, "the output a", args.out[0], {m, k}));
  KILN_RETURN_IF_ERROR(expect_dtype(op, "the output s_a", args.out[1], DType::Float32));
  KILN_RETURN_IF_ERROR(expect_shape(op, "the output s_a", args.out[1], {m}));
  plan->m = m;
  plan->k = k;
  plan->is_static = args.n_floats == 1;
  if (plan->is_static) KILN_RETURN_IF_ERROR(static_scale(op, args.floats[0], &plan->scale));
  return Status::Ok();
}

Status prepare_w4a8(const KernelArgs& args, W4A8Plan* plan) {
  const char* op = args.op;
  W4A8Plan p;
  // w4a8_fireq_gemm / _linear: the operands of w4a8_gemm / _linear, packed in the FireQ layout
  p.fireq = std::strncmp(op, "w4a8_fireq_", 11) == 0;
  const char* kind = p.fireq ? op + 11 : op;
  if (std::strcmp(kind, p.fireq ? "gemm" : "w4a8_gemm") == 0) {
    KILN_RETURN_IF_ERROR(expect_count_range(args, 5, 6, 1, 0));
    p.x = 0;
    p.s_a = 1;
    p.packed = 2;
    p.scales = 3;
    p.exponent = 4;
    p.bias = args.n_in == 6 ? 5 : -1;
  } else if (std::strcmp(kind, p.fireq ? "linear" : "w4a8_linear") == 0) {
    KILN_RETURN_IF_ERROR(expect_count_range(args, 4, 5, 1, 1));
    p.fused = true;
    p.packed = 1;
    p.scales = 2;
    p.exponent = 3;
    p.bias = args.n_in == 5 ? 4 : -1;
    p.is_static = args.n_floats == 1;
    if (p.is_static) KILN_RETURN_IF_ERROR(static_scale(op, args.floats[0], &p.static_scale));
  } else if (std::strcmp(op, "w4a8_reference") == 0) {
    KILN_RETURN_IF_ERROR(expect_counts(args, 3, 2, 0, 0));
    p.reference = true;
    p.packed = 1;
    p.scales = 2;
  } else {
    return Status(StatusCode::Internal, std::string("kiln: unknown W4A8 op ") + op);
  }
  p.has_bias = p.bias >= 0;

  const View& x = args.in[p.x];
  const char* xrole = p.fused ? "x" : "a";
  if (p.fused) {
    KILN_RETURN_IF_ERROR(expect_float(op, xrole, x));
  } else {
    KILN_RETURN_IF_ERROR(expect_dtype(op, xrole, x, DType::Float8E4M3));
  }
  KILN_RETURN_IF_ERROR(expect_2d(op, xrole, x, "[M, K]"));
  p.m = x.shape[0];
  p.k = x.shape[1];
  if (p.k < 1) return shape_error(op, std::string(xrole) + " must have K >= 1 columns, got " + x.describe());
  p.kp = quant::padded_k(p.k);
  const View& packed = args.in[p.packed];
  const View& scales = args.in[p.scales];
  // N: the packed rows (the FireQ layout pads them: N comes from the scales)
  p.n = p.fireq ? (scales.ndim == 2 ? scales.shape[0] : -1) : (packed.ndim == 2 ? packed.shape[0] : -1);
  const std::string context = std::string(" (") + xrole + " " + x.describe() + ")";
  if (p.n < 0) {
    return shape_error(op, p.fireq ? "scales must be 2-D [N, Kp/G], got " + scales.describe() + context
                                   : "packed weights must be 2-D [N, Kp/2], got " + packed.describe() + context);
  }
  KILN_RETURN_IF_ERROR(check_weight(op, packed, scales, p.n, p.kp, &p.group, context, p.fireq));
  if (p.fireq) KILN_RETURN_IF_ERROR(expect_aligned(op, "FireQ-layout weights", packed));
  if (p.reference && p.kp > quant::kReferenceMaxK) {
    return shape_error(op, "the exact reference supports K <= 65536, got " + x.describe());
  }
  if (p.exponent >= 0) KILN_RETURN_IF_ERROR(expect_exponent_view(op, args.in[p.exponent]));
  if (p.s_a >= 0) {
    KILN_RETURN_IF_ERROR(expect_dtype(op, "s_a", args.in[p.s_a], DType::Float32));
    KILN_RETURN_IF_ERROR(expect_shape(op, "s_a", args.in[p.s_a], {p.m}));
  }
  if (p.has_bias) {
    KILN_RETURN_IF_ERROR(expect_float(op, "bias", args.in[p.bias]));
    KILN_RETURN_IF_ERROR(expect_shape(op, "bias", args.in[p.bias], {p.n}));
  }
  if (p.reference) {
    for (int i = 0; i < 2; ++i) {
      const char* role = i == 0 ? "the output P" : "the output A";
      KILN_RETURN_IF_ERROR(expect_dtype(op, role, args.out[i], DType::Float32));
      KILN_RETURN_IF_ERROR(expect_shape(op, role, args.out[i], {p.m, p.n}));
      KILN_RETURN_IF_ERROR(expect_contiguous(op, role, args.out[i]));
    }
    p.out = DType::Float32;
  } else {
    const View& y = args.out[0];
    KILN_RETURN_IF_ERROR(expect_float(op, "the output y", y));
    KILN_RETURN_IF_ERROR(expect_shape(op, "the output y", y, {p.m, p.n}));
    KILN_RETURN_IF_ERROR(expect_contiguous(op, "the output y", y));
    p.out = y.dtype;
  }
  *plan = p;
  return Status::Ok();
}

}  // namespace kiln
