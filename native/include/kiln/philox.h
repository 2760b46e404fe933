// Counter-based random numbers, identical on the CPU and on CUDA.
//
// Generator: Philox4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy
// as 1, 2, 3", SC'11), key = 64-bit seed, counter = 64-bit block index.
// Normals: Box-Muller on two 32-bit words, computed in float64 with our own
// log / sin / cos made of correctly rounded +, *, /, sqrt only (no fused
// multiply-add: __dmul_rn/__dadd_rn on the device, -ffp-contract=off on the
// host), then rounded once to float32. So the same seed gives bit-identical
// numbers on both backends, whatever libm or the GPU's math library would do.
#pragma once
#include <cstdint>

#include "kiln/dtype.h"
#include "kiln/numerics.h"

#if defined(__CUDA_ARCH__)
#define KILN_DADD(a, b) __dadd_rn((a), (b))
#define KILN_DSUB(a, b) __dsub_rn((a), (b))
#define KILN_DMUL(a, b) __dmul_rn((a), (b))
#define KILN_DDIV(a, b) __ddiv_rn((a), (b))
#define KILN_DSQRT(a) __dsqrt_rn((a))
#else
#include <cmath>
#define KILN_DADD(a, b) ((a) + (b))
#define KILN_DSUB(a, b) ((a) - (b))
#define KILN_DMUL(a, b) ((a) * (b))
#define KILN_DDIV(a, b) ((a) / (b))
#define KILN_DSQRT(a) std::sqrt((a))
#endif

namespace kiln {
namespace rng {

struct Philox4 {
  uint32_t v[4];
};

KILN_HD uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Philox4x32 with 10 rounds on counter (c0, c1, c2, c3) and key (k0, k1).
KILN_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  const uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  const uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const uint32_t lo0 = c0 * kM0, hi0 = mulhi32(c0, kM0);
    const uint32_t lo1 = c2 * kM1, hi1 = mulhi32(c2, kM1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  Philox4 out = {{c0, c1, c2, c3}};
  return out;
}

// The four words of block `block` for `seed`.
KILN_HD Philox4 block(uint64_t seed, uint64_t block) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Uniform in [0, 1) with `bits` significant bits (24 for float32, 8 for
// bfloat16, ...), so that the value is exact in the target dtype and never 1.
KILN_HD float uniform_bits(uint32_t w, int bits) {
  return static_cast<float>(w >> (32 - bits)) * num::bits_f32(static_cast<uint32_t>(127 - bits) << 23);
}

// Significant bits of a rand sample in dtype t (uniform_at's `bits`): as many
// as the dtype's significand holds, so the value is exact in t and never 1.
KILN_HD int uniform_bits_for(DType t) {
  switch (t) {
    case DType::Float16: return 11;
    case DType::BFloat16: return 8;
    case DType::Float8E4M3: return 4;
    case DType::Float8E5M2: return 3;
    default: return 24;
  }
}

// ln(u) for u in (0, 1], u a multiple of 2^-32 (so normal, exponent >= -32).
// u = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m-1)/(m+1).
KILN_HD double log_unit(double u) {
  const uint64_t b = num::f64_bits(u);
  int e = static_cast<int>((b >> 52) & 0x7FF) - 1023;
  double m = num::bits_f64((b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
  if (m > 1.4142135623730951) {
    m = KILN_DMUL(m, 0.5);
    e += 1;
  }
  const double s = KILN_DDIV(KILN_DSUB(m, 1.0), KILN_DADD(m, 1.0));
  const double z = KILN_DMUL(s, s);
  // 1 + z/3 + z^2/5 + ... + z^9/19 (|z| < 0.0295, truncation < 1e-15)
  double p = 1.0 / 19.0;
  p = KILN_DADD(KILN_DMUL(p, z), 1.0 / 17.0);
  p = KILN_DADD(KILN_DMUL(p, z), 1.0 / 15.0);
  p = KILN_DADD(KILN_DMUL(p, z), 1.0 / 13.0);
  p = KILN_DADD(KILN_DMUL(p, z), 1.0 / 11.0);
  p = KILN_DADD(KILN_DMUL(p, z), 1.0 / 9.0);
  p = KILN_DADD(KILN_DMUL(p, z), 1.0 / 7.0);
  p = KILN_DADD(KILN_DMUL(p, z), 1.0 / 5.0);
  p = KILN_DADD(KILN_DMUL(p, z), 1.0 / 3.0);
  p = KILN_DADD(KILN_DMUL(p, z), 1.0);
  const double log_m = KILN_DMUL(KILN_DMUL(2.0, s), p);
  const double de = static_cast<double>(e);
  // ln 2 split so that e * kLn2Hi is exact for |e| <= 64.
  const double kLn2Hi = 6.93147180369123816490e-01;
  const double kLn2Lo = 1.90821492927058770002e-10;
  return KILN_DADD(KILN_DMUL(de, kLn2Hi), KILN_DADD(log_m, KILN_DMUL(de, kLn2Lo)));
}

// (cos 2*pi*v, sin 2*pi*v) for v in [0, 1), v a multiple of 2^-32.
KILN_HD void cos_sin_turn(double v, double* c_out, double* s_out) {
  const double x = KILN_DMUL(v, 4.0);  // exact
  const int q = static_cast<int>(x);   // quadrant 0..3
  const double r = KILN_DSUB(x, static_cast<double>(q));
  const double t = KILN_DMUL(r, 1.5707963267948966);  // angle in [0, pi/2)
  const double t2 = KILN_DMUL(t, t);
  // Taylor series; at t = pi/2 the first omitted terms are < 5e-14.
  double sp = -1.0 / 121645100408832000.0;  // -1/19!
  sp = KILN_DADD(KILN_DMUL(sp, t2), 1.0 / 355687428096000.0);
  sp = KILN_DADD(KILN_DMUL(sp, t2), -1.0 / 1307674368000.0);
  sp = KILN_DADD(KILN_DMUL(sp, t2), 1.0 / 6227020800.0);
  sp = KILN_DADD(KILN_DMUL(sp, t2), -1.0 / 39916800.0);
  sp = KILN_DADD(KILN_DMUL(sp, t2), 1.0 / 362880.0);
  sp = KILN_DADD(KILN_DMUL(sp, t2), -1.0 / 5040.0);
  sp = KILN_DADD(KILN_DMUL(sp, t2), 1.0 / 120.0);
  sp = KILN_DADD(KILN_DMUL(sp, t2), -1.0 / 6.0);
  sp = KILN_DADD(KILN_DMUL(sp, t2), 1.0);
  const double sn = KILN_DMUL(sp, t);
  double cp = -1.0 / 6402373705728000.0;  // -1/18!
  cp = KILN_DADD(KILN_DMUL(cp, t2), 1.0 / 20922789888000.0);
  cp = KILN_DADD(KILN_DMUL(cp, t2), -1.0 / 87178291200.0);
  cp = KILN_DADD(KILN_DMUL(cp, t2), 1.0 / 479001600.0);
  cp = KILN_DADD(KILN_DMUL(cp, t2), -1.0 / 3628800.0);
  cp = KILN_DADD(KILN_DMUL(cp, t2), 1.0 / 40320.0);
  cp = KILN_DADD(KILN_DMUL(cp, t2), -1.0 / 720.0);
  cp = KILN_DADD(KILN_DMUL(cp, t2), 1.0 / 24.0);
  cp = KILN_DADD(KILN_DMUL(cp, t2), -0.5);
  const double cs = KILN_DADD(KILN_DMUL(cp, t2), 1.0);
  switch (q) {
    case 0: *c_out = cs; *s_out = sn; break;
    case 1: *c_out = -sn; *s_out = cs; break;
    case 2: *c_out = -cs; *s_out = -sn; break;
    default: *c_out = sn; *s_out = -cs; break;
  }
}

// Two standard normals from two 32-bit words (Box-Muller).
KILN_HD void normal_pair(uint32_t w0, uint32_t w1, float* z0, float* z1) {
  const double kInv2p32 = 2.3283064365386963e-10;  // 2^-32
  const double u1 = KILN_DMUL(static_cast<double>(w0) + 1.0, kInv2p32);  // (0, 1], exact
  const double u2 = KILN_DMUL(static_cast<double>(w1), kInv2p32);        // [0, 1), exact
  const double radius = KILN_DSQRT(KILN_DMUL(-2.0, log_unit(u1)));
  double c, s;
  cos_sin_turn(u2, &c, &s);
#if defined(__CUDA_ARCH__)
  *z0 = __double2float_rn(KILN_DMUL(radius, c));
  *z1 = __double2float_rn(KILN_DMUL(radius, s));
#else
  *z0 = static_cast<float>(KILN_DMUL(radius, c));
  *z1 = static_cast<float>(KILN_DMUL(radius, s));
#endif
}

// Element i of rand / randn for (seed, counter offset). Both use block
// offset + i/4: rand one word per element, randn one Box-Muller pair per two
// elements. A call over n elements consumes ceil(n/4) blocks.
KILN_HD float uniform_at(uint64_t seed, uint64_t offset, uint64_t i, int bits) {
  const Philox4 r = block(seed, offset + (i >> 2));
  return uniform_bits(r.v[i & 3], bits);
}

KILN_HD float normal_at(uint64_t seed, uint64_t offset, uint64_t i) {
  const Philox4 r = block(seed, offset + (i >> 2));
  const int pair = static_cast<int>((i >> 1) & 1);
  float z0, z1;
  normal_pair(r.v[2 * pair], r.v[2 * pair + 1], &z0, &z1);
  return (i & 1) ? z1 : z0;
}

// All four values of one block: elements 4*block .. 4*block+3 of a run with
// counter `offset`; the same numbers as uniform_at / normal_at, one Philox
// call and two Box-Muller pairs for four elements.
KILN_HD void uniform_block(uint64_t seed, uint64_t offset, uint64_t blk, int bits, float out[4]) {
  const Philox4 r = block(seed, offset + blk);
  for (int j = 0; j < 4; ++j) out[j] = uniform_bits(r.v[j], bits);
}

KILN_HD void normal_block(uint64_t seed, uint64_t offset, uint64_t blk, float out[4]) {
  const Philox4 r = block(seed, offset + blk);
  normal_pair(r.v[0], r.v[1], &out[0], &out[1]);
  normal_pair(r.v[2], r.v[3], &out[2], &out[3]);
}

}  // namespace rng
}  // namespace kiln
