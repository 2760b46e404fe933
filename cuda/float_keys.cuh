// Order-preserving int32 keys of float32 values for max / min / argmax on the
// device: the same functions as the CPU's native/cpu/reduce_keys.h (which is
// host-only), so integer max / min over keys give the CPU's bits in any order.
// -0 < +0; NaN (any sign or payload) above +inf for max keys, below -inf for
// min keys; argmax keys put every NaN on one largest key and +-0 on one key.
#pragma once
#include <cstdint>

#include "kiln/numerics.h"

namespace kiln {
namespace cuda {
namespace {

__device__ __forceinline__ int32_t float_key(float f, bool nan_high) {
  uint32_t b = num::f32_bits(f);
  const uint32_t a = b & 0x7FFFFFFFu;
  const uint32_t nan = static_cast<uint32_t>(static_cast<int32_t>(0x7F800000u - a) >> 31);  // all ones for NaN
  b = nan_high ? (b & ~(nan & 0x80000000u)) : (b | (nan & 0x80000000u));
  const int32_t k = static_cast<int32_t>(b);
  return k ^ ((k >> 31) & 0x7FFFFFFF);
}
__device__ __forceinline__ int32_t max_key(float f) { return float_key(f, true); }
__device__ __forceinline__ int32_t min_key(float f) { return float_key(f, false); }

// The float a key came from (a NaN key gives that NaN, sign possibly flipped).
__device__ __forceinline__ float key_float(int32_t k) {
  return num::bits_f32(static_cast<uint32_t>(k ^ ((k >> 31) & 0x7FFFFFFF)));
}

__device__ __forceinline__ int64_t arg_key(float f) {
  const uint32_t a = num::f32_bits(f) & 0x7FFFFFFFu;
  const int32_t k = max_key(f);
  return a > 0x7F800000u ? int64_t(INT32_MAX) : (a == 0 ? int64_t(0) : int64_t(k));
}

}  // namespace
}  // namespace cuda
}  // namespace kiln
