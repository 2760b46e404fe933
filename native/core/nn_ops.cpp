// Validation for the normalization, rotary-embedding and attention kernels,
// shared by the CPU and CUDA backends (kiln/nn_ops.h).
#include "kiln/nn_ops.h"

#include "checks.h"

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>

namespace kiln {
namespace {

using checks::dtype_error;
using checks::expect_dtype;
using checks::expect_shape;
using checks::shape_error;
using checks::value_error;

Status expect_rank(const char* op, const char* role, const View& v, int ndim, const char* layout) {
  if (v.ndim == ndim) return Status::Ok();
  return shape_error(op, std::string(role) + " must be " + std::to_string(ndim) + "-D " + layout + ", got " +
                             v.describe());
}

// A float key dtype (float32, float16 or bfloat16).
Status expect_float_key(const char* op, const char* role, const View& v) { return checks::expect_float(op, role, v); }

Status expect_flag(const char* op, const char* name, int64_t v) {
  if (v == 0 || v == 1) return Status::Ok();
  return value_error(op, std::string(name) + " must be 0 or 1, got " + std::to_string(v));
}

}  // namespace

bool nn_float_dtype(DType t) { return checks::is_float(t); }

// ---- normalization ------------------------------------------------------------------

Status prepare_norm(const KernelArgs& args, NormPlan* plan) {
  const char* op = args.op;
  const bool layer = std::strncmp(op, "layer_norm", 10) == 0;
  const bool backward = std::strstr(op, "_backward") != nullptr;
  if (!layer && std::strncmp(op, "rms_norm", 8) != 0) {
    return Status(StatusCode::Internal, std::string("kiln: unknown normalization op ") + op);
  }
  if (!backward) {
    KILN_RETURN_IF_ERROR(expect_counts(args, layer ? 3 : 2, layer ? 3 : 2, 0, 1));
  } else {
    KILN_RETURN_IF_ERROR(expect_counts(args, layer ? 5 : 4, layer ? 3 : 2, 0, 0));
  }
  const View& x = args.in[0];
  KILN_RETURN_IF_ERROR(expect_float_key(op, "x", x));
  KILN_RETURN_IF_ERROR(expect_rank(op, "x", x, 2, "[R, D]"));
  const int64_t R = x.shape[0], D = x.shape[1];
  const DType dt = x.dtype;
  auto same = [&](const char* role, const View& v, std::initializer_list<int64_t> dims) -> Status {
    KILN_RETURN_IF_ERROR(expect_shape(op, role, v, dims));
    return expect_dtype(op, role, v, dt);
  };
  auto f32 = [&](const char* role, const View& v, std::initializer_list<int64_t> dims) -> Status {
    KILN_RETURN_IF_ERROR(expect_shape(op, role, v, dims));
    return expect_dtype(op, role, v, DType::Float32);
  };
  KILN_RETURN_IF_ERROR(same("w", args.in[1], {D}));
  if (!backward) {
    if (layer) KILN_RETURN_IF_ERROR(same("b", args.in[2], {D}));
    KILN_RETURN_IF_ERROR(same("y", args.out[0], {R, D}));
    if (layer) {
      KILN_RETURN_IF_ERROR(f32("mean", args.out[1], {R}));
      KILN_RETURN_IF_ERROR(f32("rstd", args.out[2], {R}));
    } else {
      KILN_RETURN_IF_ERROR(f32("rstd", args.out[1], {R}));
    }
    const double eps = args.floats[0];
    if (!(eps >= 0) || !std::isfinite(eps)) {
      return value_error(op, "eps must be finite and >= 0, got " + std::to_string(eps));
    }
    plan->eps = eps;
  } else {
    if (layer) {
      KILN_RETURN_IF_ERROR(f32("mean", args.in[2], {R}));
      KILN_RETURN_IF_ERROR(f32("rstd", args.in[3], {R}));
      KILN_RETURN_IF_ERROR(same("gy", args.in[4], {R, D}));
    } else {
      KILN_RETURN_IF_ERROR(f32("rstd", args.in[2], {R}));
      KILN_RETURN_IF_ERROR(same("gy", args.in[3], {R, D}));
    }
    KILN_RETURN_IF_ERROR(same("gx", args.out[0], {R, D}));
    KILN_RETURN_IF_ERROR(f32("gw", args.out[1], {D}));
    if (layer) KILN_RETURN_IF_ERROR(f32("gb", args.out[2], {D}));
    plan->eps = 0;
  }
  plan->layer = layer;
  plan->backward = backward;
  plan->rows = R;
  plan->dim = D;
  return Status::Ok();
}

// ---- rotary embedding ------------------------------------------------------------------

Status prepare_rope(const KernelArgs& args, RopePlan* plan) {
  const char* op = args.op;
  KILN_RETURN_IF_ERROR(expect_counts(args, 2, 1, 2, 1));
  const View &x = args.in[0], &pos = args.in[1], &y = args.out[0];
  KILN_RETURN_IF_ERROR(expect_float_key(op, "x", x));
  KILN_RETURN_IF_ERROR(expect_rank(op, "x", x, 4, "[B, H, S, D]"));
  const int64_t B = x.shape[0], H = x.shape[1], S = x.shape[2], D = x.shape[3];
  KILN_RETURN_IF_ERROR(expect_shape(op, "y", y, {B, H, S, D}));
  KILN_RETURN_IF_ERROR(expect_dtype(op, "y", y, x.dtype));
  KILN_RETURN_IF_ERROR(expect_dtype(op, "positions", pos, DType::Int32));
  bool batched = false;
  if (pos.ndim == 1 && pos.shape[0] == S) {
    batched = false;
  } else if (pos.ndim == 2 && pos.shape[0] == B && pos.shape[1] == S) {
    batched = true;
  } else {
    return shape_error(op, "positions must have shape [" + std::to_string(S) + "] or [" + std::to_string(B) + ", " +
                               std::to_string(S) + "] for x " + x.describe() + ", got " + pos.describe());
  }
  if (D % 2 != 0) return shape_error(op, "the last dimension of x must be even, got " + x.describe());
  KILN_RETURN_IF_ERROR(expect_flag(op, "interleaved", args.ints[0]));
  KILN_RETURN_IF_ERROR(expect_flag(op, "inverse", args.ints[1]));
  const double theta = args.floats[0];
  if (!(theta > 0) || !std::isfinite(theta)) {
    return value_error(op, "theta must be finite and > 0, got " + std::to_string(theta));
  }
  plan->batch = B;
  plan->heads = H;
  plan->seq = S;
  plan->dim = D;
  plan->batched_positions = batched;
  plan->interleaved = args.ints[0] == 1;
  plan->inverse = args.ints[1] == 1;
  plan->theta = theta;
  return Status::Ok();
}

// ---- attention -----------------------------------------------------------------------------

Status prepare_attention(const KernelArgs& args, AttentionPlan* plan) {
  const char* op = args.op;
  const bool backward = std::strcmp(op, "attention_backward") == 0;
  if (!backward && std::strcmp(op, "attention") != 0) {
    return Status(StatusCode::Internal, std::string("kiln: unknown attention op ") + op);
  }
  KILN_RETURN_IF_ERROR(expect_counts(args, backward ? 6 : 3, backward ? 3 : 2, 1, 1));
  const View &q = args.in[0], &k = args.in[1], &v = args.in[2];
  KILN_RETURN_IF_ERROR(expect_float_key(op, "q", q));
  KILN_RETURN_IF_ERROR(expect_rank(op, "q", q, 4, "[B, Hq, Sq, D]"));
  KILN_RETURN_IF_ERROR(expect_rank(op, "k", k, 4, "[B, Hk, Sk, D]"));
  KILN_RETURN_IF_ERROR(expect_rank(op, "v", v, 4, "[B, Hk, Sk, Dv]"));
  const DType dt = q.dtype;
  KILN_RETURN_IF_ERROR(expect_dtype(op, "k", k, dt));
  KILN_RETURN_IF_ERROR(expect_dtype(op, "v", v, dt));
  const int64_t B = q.shape[0], Hq = q.shape[1], Sq = q.shape[2], D = q.shape[3];
  const int64_t Hk = k.shape[1], Sk = k.shape[2], Dv = v.shape[3];
  if (k.shape[0] != B || k.shape[3] != D) {
    return shape_error(op, "k " + k.describe() + " must have the batch and head size of q " + q.describe());
  }
  if (v.shape[0] != B || v.shape[1] != Hk || v.shape[2] != Sk) {
    return shape_error(op, "v " + v.describe() + " must match k " + k.describe() + " in batch, heads and length");
  }
  if (Hk == 0 ? Hq != 0 : Hq % Hk != 0) {
    return shape_error(op, "query heads (" + std::to_string(Hq) + ") must be a multiple of key/value heads (" +
                               std::to_string(Hk) + "): q " + q.describe() + ", k " + k.describe());
  }
  auto same = [&](const char* role, const View& t, std::initializer_list<int64_t> dims) -> Status {
    KILN_RETURN_IF_ERROR(expect_shape(op, role, t, dims));
    return expect_dtype(op, role, t, dt);
  };
  auto f32 = [&](const char* role, const View& t, std::initializer_list<int64_t> dims) -> Status {
    KILN_RETURN_IF_ERROR(expect_shape(op, role, t, dims));
    return expect_dtype(op, role, t, DType::Float32);
  };
  if (!backward) {
    KILN_RETURN_IF_ERROR(same("o", args.out[0], {B, Hq, Sq, Dv}));
    KILN_RETURN_IF_ERROR(f32("lse", args.out[1], {B, Hq, Sq}));
  } else {
    KILN_RETURN_IF_ERROR(same("o", args.in[3], {B, Hq, Sq, Dv}));
    KILN_RETURN_IF_ERROR(f32("lse", args.in[4], {B, Hq, Sq}));
    KILN_RETURN_IF_ERROR(same("go", args.in[5], {B, Hq, Sq, Dv}));
    KILN_RETURN_IF_ERROR(same("gq", args.out[0], {B, Hq, Sq, D}));
    KILN_RETURN_IF_ERROR(same("gk", args.out[1], {B, Hk, Sk, D}));
    KILN_RETURN_IF_ERROR(same("gv", args.out[2], {B, Hk, Sk, Dv}));
  }
  KILN_RETURN_IF_ERROR(expect_flag(op, "causal", args.ints[0]));
  const double scale = args.floats[0];
  if (!std::isfinite(scale)) return value_error(op, "scale must be finite, got " + std::to_string(scale));
  plan->batch = B;
  plan->q_heads = Hq;
  plan->kv_heads = Hk;
  plan->q_len = Sq;
  plan->kv_len = Sk;
  plan->dim = D;
  plan->v_dim = Dv;
  plan->group = Hk > 0 ? Hq / Hk : 1;
  plan->causal = args.ints[0] == 1;
  plan->scale = scale;
  plan->backward = backward;
  return Status::Ok();
}

}  // namespace kiln
