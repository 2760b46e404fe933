// The attention_int4kv loops, compiled once per ISA level
// (int4kv_{portable,avx2,avx512}.cpp include int4kv_impl.inc with their own
// flags and namespace); int4kv_attend() picks one at run time. Every level
// gives the same bits: the lookups are exact and the float32 sums run in the
// same order (8 interleaved partial sums; no FMA contraction).
#pragma once
#include <cstdint>

#include "kiln/cpu_features.h"
#include "kiln/quant_kv.h"
#include "kiln/view.h"

namespace kiln {
namespace cpu {

// Element offset of [i0, i1, i2, 0] in a 4-D view, and e[h] of an int8 exponent vector.
inline int64_t offset4(const View& v, int64_t i0, int64_t i1, int64_t i2) {
  return i0 * v.strides[0] + i1 * v.strides[1] + i2 * v.strides[2];
}
inline int exponent_at(const View& e, int64_t h) { return reinterpret_cast<const int8_t*>(e.data())[h * e.strides[0]]; }

// What the tasks read: the validated plan and operands (kiln/quant_kv.h).
struct Int4KvAttend {
  AttentionInt4KvPlan p;
  const View *q, *kp, *ks, *ke, *vp, *vs, *ve;
  float* out;        // o, contiguous [B, Hq, Sq, hd]
  const float* lut;  // w4a8_lut_f32(): e4m3(q s) by scale code and nibble
};

// Tasks [t0, t1) of B x Hkv x Sq: one (b, kv head, query) each, for the Hq / Hkv
// query heads that share the kv head.
using Int4KvAttendFn = void (*)(const Int4KvAttend& a, int64_t t0, int64_t t1);
namespace portable { void int4kv_attend(const Int4KvAttend& a, int64_t t0, int64_t t1); }
namespace avx2 { void int4kv_attend(const Int4KvAttend& a, int64_t t0, int64_t t1); }
namespace avx512 { void int4kv_attend(const Int4KvAttend& a, int64_t t0, int64_t t1); }

inline Int4KvAttendFn int4kv_attend() {
  switch (active_isa()) {
    case IsaLevel::Avx512: return avx512::int4kv_attend;
    case IsaLevel::Avx2: return avx2::int4kv_attend;
    default: return portable::int4kv_attend;
  }
}

}  // namespace cpu
}  // namespace kiln
