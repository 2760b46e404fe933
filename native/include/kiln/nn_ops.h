// Validation shared by every backend for the neural-network kernels of
// native/KERNELS.md: "Normalization", "Rotary embedding" and "Attention".
// A backend kernel calls the prepare_* function for its op first; on Ok every
// shape, dtype, count and attribute named below has been checked and the plan
// holds the sizes. The kernels then read args.in[] / args.out[] themselves
// (any element strides, see each op) in the operand order listed here.
#pragma once
#include <cstdint>

#include "kiln/numerics.h"  // KILN_HDM
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

// True for the dtypes with arithmetic kernels: float32, float16, bfloat16.
bool nn_float_dtype(DType t);

// ---- normalization (last dimension) ---------------------------------------------
//
// rms_norm:            in = [x [R, D], w [D]]                  out = [y [R, D], rstd [R]]        floats = [eps]
// layer_norm:          in = [x [R, D], w [D], b [D]]           out = [y [R, D], mean [R], rstd [R]] floats = [eps]
// rms_norm_backward:   in = [x, w, rstd, gy]                   out = [gx [R, D], gw [D]]
// layer_norm_backward: in = [x, w, mean, rstd, gy]             out = [gx, gw [D], gb [D]]
// x, w, b, y, gy, gx: one float dtype (the key); rstd, mean, gw, gb: float32.
// Every operand may have any element strides.
struct NormPlan {
  bool layer = false;     // layer_norm (mean and bias) rather than rms_norm
  bool backward = false;
  int64_t rows = 0;       // R
  int64_t dim = 0;        // D
  double eps = 0;         // forward only: finite, >= 0
};
// For "rms_norm", "layer_norm", "rms_norm_backward", "layer_norm_backward" (by args.op).
Status prepare_norm(const KernelArgs& args, NormPlan* plan);

// Rows per block of the gw / gb reduction: each block of consecutive rows is
// summed in row order, then the blocks are added in block order. Depends on R
// only (never on the thread count).
inline int64_t norm_backward_rows_per_block(int64_t rows) {
  const int64_t kMinRows = 32, kMaxBlocks = 256;
  const int64_t by_count = (rows + kMaxBlocks - 1) / kMaxBlocks;
  return by_count > kMinRows ? by_count : kMinRows;
}

// ---- rotary embedding ----------------------------------------------------------
//
// rope: in = [x [B, H, S, D], positions int32 [S] or [B, S]], out = [y [B, H, S, D]]
//       floats = [theta], ints = [interleaved (0/1), inverse (0/1)]
// x, y: one float dtype (the key), any strides; D even; theta finite and > 0.
struct RopePlan {
  int64_t batch = 0, heads = 0, seq = 0, dim = 0;
  bool batched_positions = false;  // positions is [B, S] (else [S], shared by every batch)
  bool interleaved = false;        // pairs (2i, 2i+1) instead of (i, i + D/2)
  bool inverse = false;            // rotate by -angle (the backward)
  double theta = 10000.0;
};
Status prepare_rope(const KernelArgs& args, RopePlan* plan);

// ---- attention -----------------------------------------------------------------
//
// attention:          in = [q [B, Hq, Sq, D], k [B, Hk, Sk, D], v [B, Hk, Sk, Dv]]
//                     out = [o [B, Hq, Sq, Dv], lse [B, Hq, Sq] (float32)]
// attention_backward: in = [q, k, v, o, lse, go]   out = [gq, gk, gv]
// ints = [causal (0/1)], floats = [scale (finite)]. q, k, v, o, go, gq, gk, gv:
// one float dtype (the key); lse float32; any strides. Hq % Hk == 0 (Hk == 0
// only when Hq == 0); query head h reads kv head h / (Hq / Hk).
struct AttentionPlan {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, dim = 0, v_dim = 0;
  int64_t group = 1;      // Hq / Hk (1 when Hk == 0)
  bool causal = false;    // query i sees keys j <= i + (Sk - Sq)
  double scale = 1.0;
  bool backward = false;
  // Highest key index query i may see (inclusive); negative: none. (Host and device.)
  KILN_HDM int64_t last_key(int64_t i) const {
    const int64_t lim = causal ? i + (kv_len - q_len) : kv_len - 1;
    return lim < kv_len - 1 ? lim : kv_len - 1;
  }
};
// For "attention" and "attention_backward" (by args.op).
Status prepare_attention(const KernelArgs& args, AttentionPlan* plan);

}  // namespace kiln
