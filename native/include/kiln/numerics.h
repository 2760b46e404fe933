// Bit-exact conversions between float32/float64 and the narrow float formats
// (float16, bfloat16, float8 E4M3 / E5M2), usable from host C++ and CUDA.
//
// Contract: ../shared/specs/quant.md "FP8". Every encoder rounds to nearest
// even, once, with integer bit operations (no library casts):
//   - float16, bfloat16: IEEE semantics, overflow -> inf, NaN -> the canonical
//     quiet NaN (0x7E00 / 0x7FC0) with the input's sign.
//   - E4M3 (the "fn" variant: no inf, NaN = S.1111.111) and E5M2: satfinite,
//     i.e. |v| that rounds above the largest finite value (448 / 57344) and
//     +-inf give +-max; NaN -> 0x7F; -0 stays -0; subnormals kept.
// These match CUDA's __nv_cvt_float_to_fp8(v, __NV_SATFINITE, ...) and
// cvt.rn.satfinite.{e4m3,e5m2}x2.f32.
//
// Everything here has internal linkage (static inline / __forceinline__) so
// that translation units compiled for different ISAs never share a copy.
#pragma once
#include <cstdint>
#include <cstring>

// KILN_HD: free functions; KILN_HDM: member functions (inside anonymous namespaces).
#if defined(__CUDACC__)
#define KILN_HD __host__ __device__ __forceinline__
#define KILN_HDM __host__ __device__ __forceinline__
#else
#define KILN_HD static inline __attribute__((always_inline))
#define KILN_HDM inline __attribute__((always_inline))
#endif

namespace kiln {
namespace num {

KILN_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

KILN_HD float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

KILN_HD uint64_t f64_bits(double d) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(d));
#else
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
#endif
}

KILN_HD double bits_f64(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  std::memcpy(&d, &u, 8);
  return d;
#endif
}

// How a narrow format treats values beyond its range.
enum NarrowKind { kIeee = 0, kSatFinite = 1 };

// Encodes the IEEE binary value `bits` (SRC_E exponent bits, SRC_M mantissa
// bits, sign on top) into a narrow float with DST_E / DST_M bits, rounding to
// nearest even once. MAX_FINITE is the largest finite magnitude code, NAN_CODE
// the code for NaN (sign added for kIeee only).
template <int SRC_E, int SRC_M, int DST_E, int DST_M, int KIND, uint32_t MAX_FINITE, uint32_t NAN_CODE>
KILN_HD uint32_t encode_narrow(uint64_t bits) {
  constexpr int kSrcBias = (1 << (SRC_E - 1)) - 1;
  constexpr int kDstBias = (1 << (DST_E - 1)) - 1;
  constexpr uint64_t kSrcMantMask = (uint64_t(1) << SRC_M) - 1;
  constexpr uint64_t kSrcExpMax = (uint64_t(1) << SRC_E) - 1;
  constexpr int kDrop = SRC_M - DST_M;  // mantissa bits rounded away for normals
  constexpr uint32_t kSignShift = DST_E + DST_M;

  const uint32_t sign = static_cast<uint32_t>(bits >> (SRC_E + SRC_M)) & 1u;
  const uint64_t e = (bits >> SRC_M) & kSrcExpMax;
  const uint64_t m = bits & kSrcMantMask;

  if (e == kSrcExpMax) {
    if (m != 0) return KIND == kIeee ? (NAN_CODE | (sign << kSignShift)) : NAN_CODE;
    // infinity
    const uint32_t mag = KIND == kIeee ? ((uint32_t(1) << DST_E) - 1) << DST_M : MAX_FINITE;
    return mag | (sign << kSignShift);
  }

  // value = sig * 2^(max(e,1) - bias - SRC_M); T is the target biased exponent.
  const int64_t t = static_cast<int64_t>(e == 0 ? 1 : e) - kSrcBias + kDstBias;
  const uint64_t sig = (e == 0 ? 0 : (uint64_t(1) << SRC_M)) | m;
  uint64_t code;
  if (e != 0 && t >= 1) {
    if (t > static_cast<int64_t>((uint64_t(1) << DST_E))) {
      code = uint64_t(MAX_FINITE) + 1;  // far beyond range: overflow
    } else {
      code = (static_cast<uint64_t>(t) << DST_M) | (m >> kDrop);
      const uint64_t rem = m & ((uint64_t(1) << kDrop) - 1);
      const uint64_t half = uint64_t(1) << (kDrop - 1);
      if (rem > half || (rem == half && (code & 1))) ++code;
    }
  } else {
    // Target subnormal: units of 2^(1 - dstBias - DST_M).
    const int64_t shift = kDrop + 1 - t;
    if (shift >= SRC_M + 2) {
      code = 0;  // below half the smallest subnormal
    } else {
      code = sig >> shift;
      const uint64_t rem = sig & ((uint64_t(1) << shift) - 1);
      const uint64_t half = uint64_t(1) << (shift - 1);
      if (rem > half || (rem == half && (code & 1))) ++code;
    }
  }
  if (code > MAX_FINITE) {
    code = KIND == kIeee ? ((uint64_t(1) << DST_E) - 1) << DST_M : MAX_FINITE;
  }
  return static_cast<uint32_t>(code) | (sign << kSignShift);
}

// ---- encoders from float32 -------------------------------------------------

KILN_HD uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7FC0u);  // canonical quiet NaN
  const uint32_t lsb = (u >> 16) & 1u;
  return static_cast<uint16_t>((u + 0x7FFFu + lsb) >> 16);
}

// float32 -> a narrow format with at most 5 exponent bits, without branches so
// that loops over it vectorise (the generic encode_narrow above is the
// definition; this computes the same codes, and the tests hold it to that):
//   subnormal results: |v| + 2^k rounds |v| to the target's subnormal grid in
//     one IEEE float add (F. Giesen's "denorm magic");
//   normal results: rebias the exponent and round the mantissa in integers
//     (add half-ulp - 1, plus 1 when the kept LSB is odd: ties to even);
//   then overflow (inf or saturation) and NaN by selects.
#if defined(__CUDA_ARCH__)
#define KILN_F32_ADD_RN(a, b) __fadd_rn((a), (b))
#else
#define KILN_F32_ADD_RN(a, b) ((a) + (b))
#endif
template <int DST_E, int DST_M, int KIND, uint32_t MAX_FINITE, uint32_t NAN_CODE>
KILN_HD uint32_t f32_to_narrow(float f) {
  constexpr int kBias = (1 << (DST_E - 1)) - 1;
  constexpr int kShift = 23 - DST_M;
  constexpr uint32_t kMinNormalBits = static_cast<uint32_t>(127 - kBias + 1) << 23;
  constexpr uint32_t kMagicBits = static_cast<uint32_t>((127 - kBias) + kShift + 1) << 23;
  constexpr uint32_t kRebias = static_cast<uint32_t>(kBias - 127) << 23;  // wraps: fine mod 2^32
  constexpr uint32_t kInfCode = ((uint32_t(1) << DST_E) - 1) << DST_M;
  const uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 31) << (DST_E + DST_M);
  const uint32_t u = x & 0x7FFFFFFFu;
  const uint32_t sub = f32_bits(KILN_F32_ADD_RN(bits_f32(u), bits_f32(kMagicBits))) - kMagicBits;
  const uint32_t nrm = (u + kRebias + ((uint32_t(1) << (kShift - 1)) - 1) + ((u >> kShift) & 1u)) >> kShift;
  uint32_t code = u < kMinNormalBits ? sub : nrm;
  // u > max float means inf (too big) or NaN; both exceed MAX_FINITE via nrm.
  code = (u >= 0x7F800000u || code > MAX_FINITE) ? (KIND == kIeee ? kInfCode : MAX_FINITE) : code;
  const uint32_t nan = KIND == kIeee ? (NAN_CODE | sign) : NAN_CODE;
  return u > 0x7F800000u ? nan : (code | sign);
}

KILN_HD uint16_t f32_to_f16(float f) {
  return static_cast<uint16_t>(f32_to_narrow<5, 10, kIeee, 0x7BFFu, 0x7E00u>(f));
}

KILN_HD uint8_t f32_to_e4m3(float f) {
  return static_cast<uint8_t>(f32_to_narrow<4, 3, kSatFinite, 0x7Eu, 0x7Fu>(f));
}

KILN_HD uint8_t f32_to_e5m2(float f) {
  return static_cast<uint8_t>(f32_to_narrow<5, 2, kSatFinite, 0x7Bu, 0x7Fu>(f));
}

// ---- encoders from float64 (one rounding, e.g. for int32 or JS numbers) ----

KILN_HD uint16_t f64_to_bf16(double d) {
  return static_cast<uint16_t>(encode_narrow<11, 52, 8, 7, kIeee, 0x7F7Fu, 0x7FC0u>(f64_bits(d)));
}

KILN_HD uint16_t f64_to_f16(double d) {
  return static_cast<uint16_t>(encode_narrow<11, 52, 5, 10, kIeee, 0x7BFFu, 0x7E00u>(f64_bits(d)));
}

KILN_HD uint8_t f64_to_e4m3(double d) {
  return static_cast<uint8_t>(encode_narrow<11, 52, 4, 3, kSatFinite, 0x7Eu, 0x7Fu>(f64_bits(d)));
}

KILN_HD uint8_t f64_to_e5m2(double d) {
  return static_cast<uint8_t>(encode_narrow<11, 52, 5, 2, kSatFinite, 0x7Bu, 0x7Fu>(f64_bits(d)));
}

// ---- decoders (exact) --------------------------------------------------------

KILN_HD float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

KILN_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu;
  const uint32_t m = h & 0x3FFu;
  if (e == 0x1Fu) return bits_f32(sign | 0x7F800000u | (m << 13));
  if (e != 0) return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
  // subnormal: m * 2^-24, exact in float32
  const float v = static_cast<float>(m) * 5.9604644775390625e-08f;
  return sign ? -v : v;
}

KILN_HD float e4m3_to_f32(uint8_t b) {
  const bool neg = (b & 0x80u) != 0;
  const uint32_t e = (b >> 3) & 0xFu;
  const uint32_t m = b & 0x7u;
  if (e == 0xFu && m == 0x7u) return bits_f32(0x7FC00000u | (neg ? 0x80000000u : 0u));
  float v;
  if (e == 0) {
    v = static_cast<float>(m) * 0.001953125f;  // m * 2^-9
  } else {
    v = bits_f32(((e + 120u) << 23) | (m << 20));
  }
  return neg ? -v : v;
}

KILN_HD float e5m2_to_f32(uint8_t b) {
  // E5M2 is the top byte of a float16.
  return f16_to_f32(static_cast<uint16_t>(static_cast<uint16_t>(b) << 8));
}

// ---- integer conversions -------------------------------------------------------

// float -> integer: round toward zero, NaN -> 0, saturate to the type's range.
template <typename I>
KILN_HD I f64_to_int_sat(double d, double lo, double hi) {
  if (d != d) return I(0);
  if (d <= lo) return static_cast<I>(lo);
  if (d >= hi) return static_cast<I>(hi);
  return static_cast<I>(d);
}

KILN_HD int32_t f64_to_i32(double d) { return f64_to_int_sat<int32_t>(d, -2147483648.0, 2147483647.0); }
KILN_HD int8_t f64_to_i8(double d) { return f64_to_int_sat<int8_t>(d, -128.0, 127.0); }
KILN_HD uint8_t f64_to_u8(double d) { return f64_to_int_sat<uint8_t>(d, 0.0, 255.0); }

}  // namespace num
}  // namespace kiln
