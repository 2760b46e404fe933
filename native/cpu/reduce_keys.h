// Order-preserving int32 keys of float32 values, for max / min / argmax: the
// integer max / min of keys vectorises (a float compare-and-select with NaN
// rules does not), and the order is total: -0 < +0, and NaN (any sign or
// payload) above +inf for max keys, below -inf for min keys, so a NaN wins.
// Used by reduce_impl.inc (per ISA) and reduce.cpp; internal linkage.
#pragma once
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kiln/element.h"
#include "kiln/numerics.h"
#include "reduce_table.h"

namespace kiln {
namespace cpu {
namespace {

// NaN with the sign bit cleared (max) or set (min), then sign-magnitude -> two's complement order.
inline int32_t float_key(float f, bool nan_high) {
  uint32_t b = num::f32_bits(f);
  const uint32_t a = b & 0x7FFFFFFFu;
  const uint32_t nan = static_cast<uint32_t>(static_cast<int32_t>(0x7F800000u - a) >> 31);  // all ones for NaN
  b = nan_high ? (b & ~(nan & 0x80000000u)) : (b | (nan & 0x80000000u));
  const int32_t k = static_cast<int32_t>(b);
  return k ^ ((k >> 31) & 0x7FFFFFFF);
}
inline int32_t max_key(float f) { return float_key(f, true); }
inline int32_t min_key(float f) { return float_key(f, false); }

// The float a key came from (a NaN key gives that NaN, sign possibly flipped).
inline float key_float(int32_t k) { return num::bits_f32(static_cast<uint32_t>(k ^ ((k >> 31) & 0x7FFFFFFF))); }

// argmax keys: every NaN is the one largest key (so the first NaN wins a tie),
// above every number, and -0 has +0's key (equal values: the first index wins);
// int32 values are their own keys. Lanes start at INT64_MIN.
inline int64_t arg_key(float f) {
  const uint32_t a = num::f32_bits(f) & 0x7FFFFFFFu;
  const int32_t k = max_key(f);
  return a > 0x7F800000u ? int64_t(INT32_MAX) : (a == 0 ? int64_t(0) : int64_t(k));
}

// The accumulator of sum / max / min over dtype E: double (float sums) or
// uint32 (int32 sums, wrapping); int32 keys (float max / min) or the int32
// values. identity() and combine() are also how lanes and blocks are merged.
template <int KIND, class E>
struct Acc {
  static constexpr bool kInt = std::is_same<E, el::I32>::value;
  using A = typename std::conditional<KIND == kReduceSum, typename std::conditional<kInt, uint32_t, double>::type,
                                      int32_t>::type;
  static inline A identity() {
    if constexpr (KIND == kReduceSum) {
      return kInt ? A(0) : A(-0.0);  // -0.0: the exact identity of IEEE addition
    } else {
      return KIND == kReduceMax ? std::numeric_limits<int32_t>::min() : std::numeric_limits<int32_t>::max();
    }
  }
  static inline A combine(A a, A b) {
    if constexpr (KIND == kReduceSum) {
      return a + b;
    } else {
      return KIND == kReduceMax ? (b > a ? b : a) : (b < a ? b : a);
    }
  }
  static inline A add(A a, typename E::T v) {
    if constexpr (KIND == kReduceSum) {
      if constexpr (kInt) {
        return a + static_cast<uint32_t>(v);
      } else {
        return a + static_cast<double>(E::to_f32(v));
      }
    } else {
      int32_t k;
      if constexpr (kInt) {
        k = v;
      } else {
        k = KIND == kReduceMax ? max_key(E::to_f32(v)) : min_key(E::to_f32(v));
      }
      return KIND == kReduceMax ? (k > a ? k : a) : (k < a ? k : a);
    }
  }
  // The 16 lanes merged pairwise (8, 4, 2, 1 apart).
  static inline A lanes_total(A* l) {
    for (int w = kLanes / 2; w >= 1; w /= 2) {
      for (int j = 0; j < w; ++j) l[j] = combine(l[j], l[j + w]);
    }
    return l[0];
  }
};

// argmax lanes (keys, indices; index -1 = empty) merged: the largest key, then the smallest index.
inline void arg_lanes_best(const int64_t* k, const int64_t* i, int64_t* best_k, int64_t* best_i) {
  int64_t bk = std::numeric_limits<int64_t>::min(), bi = -1;
  for (int j = 0; j < kLanes; ++j) {
    if (i[j] < 0) continue;
    if (bi < 0 || k[j] > bk || (k[j] == bk && i[j] < bi)) {
      bk = k[j];
      bi = i[j];
    }
  }
  *best_k = bk;
  *best_i = bi;
}

}  // namespace
}  // namespace cpu
}  // namespace kiln
