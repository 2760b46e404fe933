// The INT4 KV cache of FireQ's attention stage (specs/quant.md "Attention"):
// keys / values stored as INT4 with one E4M3 scale per token, head and group
// of G along head_dim, and a static per-head 2^e (from calibration) applied
// first; the recipe is the weight recipe of specs/quant.md with t = 2^e[h]
// given instead of derived. Queries stay float (kiln.quant rounds them to FP8
// before, as FireQ). The ops (CPU: native/cpu/attention_int4kv.cpp):
//
//   quant_int4_kv      in [x [B, H, S, hd] float, exponents int8 [H]]
//                      out [packed uint8 [B, H, S, hd/2], scales e4m3 [B, H, S, hd/G]]
//                      ints [G]                                         (x)
//   attention_int4kv   in [q float32 [B, Hq, Sq, hd], k packed, k scales,
//                          k exponents, v packed, v scales, v exponents]
//                      out [o float32 [B, Hq, Sq, hd]]
//                      floats [softmax scale]; ints [causal (0/1)]   (float32)
//
// x and q may have any strides; packed and scales need unit stride along
// their last dimension (narrowed views of a cache buffer along S are fine);
// o is contiguous. hd is even, G divides hd, e in [0, 14], Hq a multiple of
// H (grouped-query attention: query head h reads kv head h / (Hq / H)).
// Causal: the Sq queries are the last Sq of the L cached positions, query i
// attends keys 0 .. L - Sq + i. Dequantized value: e4m3(q * s) / 2^e.
#pragma once
#include <cmath>
#include <cstdint>

#include "kiln/numerics.h"
#include "kiln/quant.h"
#include "kiln/registry.h"
#include "kiln/status.h"

namespace kiln {
namespace quant {

// The scale code of a group with largest magnitude amax (finite) at t = 2^e:
// max(e4m3(fl32(amax t) / 7), 2^-9) (specs/quant.md recipe, t given).
KILN_HD uint8_t kv_scale_code(float amax, float t) {
  const uint8_t c = num::f32_to_e4m3((amax * t) / 7.0f);
  return c < 0x01 ? uint8_t(0x01) : c;
}

// q = clamp(rne(fl32(x t) / s), -8, 7).
KILN_HD int kv_q(float x, float t, float s) {
#if defined(__CUDA_ARCH__)
  const float r = rintf((x * t) / s);  // round half to even
#else
  const float r = std::nearbyint((x * t) / s);  // the default rounding mode: half to even
#endif
  return r > 7.0f ? 7 : r < -8.0f ? -8 : static_cast<int>(r);
}

}  // namespace quant

struct Int4KvPlan {
  int64_t b = 0, h = 0, s = 0, hd = 0, group = 0;
};
Status prepare_int4_kv(const KernelArgs& args, Int4KvPlan* plan);

struct AttentionInt4KvPlan {
  int64_t b = 0, hq = 0, hkv = 0, sq = 0, len = 0, hd = 0, group = 0;
  float scale = 0;
  bool causal = false;
};
Status prepare_attention_int4kv(const KernelArgs& args, AttentionInt4KvPlan* plan);

}  // namespace kiln
