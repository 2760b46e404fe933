// Branch-free elementary functions for float32 kernels, usable from host C++
// and CUDA: exp, log, tanh, erf, sigmoid, silu, gelu (erf and tanh forms),
// their derivatives, and powf. Loops over them vectorise (no libm calls, no
// tables, no branches: every special case is a select), so each function is
// compiled once per ISA level on the CPU and gives the same bits on each
// (the arithmetic is plain IEEE float/double operations and the build forbids
// FMA contraction; on CUDA compile with -fmad=false for the same bits).
//
// Accuracy (checked over all float32 inputs by test/native/test_fastmath.cpp
// against float64 libm): every float-valued function here is within 1 ulp of
// the correctly rounded result over the whole float range, including
// subnormal inputs and outputs, overflow, +-0, +-inf and NaN (largest errors
// over all 2^32 inputs: exp 0.87, log 0.58, tanh 0.82, sigmoid 0.68, erf 0.51,
// silu 0.73, gelu 0.55, gelu_tanh 0.55 ulp; sqrt, rsqrt correctly rounded). The method:
//   - the argument is reduced exactly (exp: x = n ln2 + r_hi + r_lo with r_hi
//     exact, in float or in double; log: x = 2^k m);
//   - the polynomial part, whose contribution is small, is evaluated in float;
//   - the pieces are assembled in double and rounded once to float (exp_f32
//     alone stays in float, within 0.87 ulp).
// The double helpers (exp_d, exp_sum_d, log_d, erfc_big_d, normal_cdf_d, ...)
// have relative errors of about 1e-8 (exp family) and 1e-15 (log_d).
// A NaN argument comes out as the same NaN, quieted (nan_in), so vectorised
// and scalar code agree bit for bit.
//
// Everything has internal linkage (KILN_HD: static inline / __forceinline__),
// like numerics.h, so that translation units compiled for different ISAs never
// share a copy.
#pragma once
#include <cstdint>

#include "kiln/numerics.h"

namespace kiln {
namespace fm {

// ---- constants -------------------------------------------------------------------

constexpr float kInfF = __builtin_huge_valf();
constexpr float kNanF = __builtin_nanf("");
constexpr double kLog2e = 1.4426950408889634;                  // 1/ln 2
constexpr double kLn2 = 0.69314718055994530942;
constexpr double kLn2Hi = 6.93147180369123816490e-01;          // fdlibm: 32 significant bits
constexpr double kLn2Lo = 1.90821492927058770002e-10;          // ln 2 - kLn2Hi
constexpr double kRoundMagic = 6755399441055744.0;             // 1.5 * 2^52: adding it rounds to an integer
constexpr double kInvSqrt2 = 0.70710678118654752440;           // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;         // 1/sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;        // sqrt(2/pi), gelu_tanh
constexpr double kGeluTanhCubic = 0.044715;                    // gelu_tanh's x^3 coefficient

// ---- small bit helpers ---------------------------------------------------------------

KILN_HD float abs_f(float x) { return num::bits_f32(num::f32_bits(x) & 0x7FFFFFFFu); }
// |m| with the sign of s (NaN included).
KILN_HD float copysign_f(float m, float s) {
  return num::bits_f32((num::f32_bits(m) & 0x7FFFFFFFu) | (num::f32_bits(s) & 0x80000000u));
}
KILN_HD double abs_d(double x) { return num::bits_f64(num::f64_bits(x) & 0x7FFFFFFFFFFFFFFFull); }
// A NaN x quieted, sign and payload kept: x + x on the CPU (x86 and AArch64
// return the quieted NaN operand); on CUDA, where arithmetic on a NaN gives the
// canonical NaN 0x7FFFFFFF instead, by setting the quiet bit (the same bits).
KILN_HD float quiet_nan(float x) {
#if defined(__CUDA_ARCH__)
  return num::bits_f32(num::f32_bits(x) | 0x00400000u);
#else
  return x + x;
#endif
}
// r, or x quieted when x is NaN: a NaN argument comes out as the same NaN
// (sign and payload kept), whatever path the vectorised code took.
KILN_HD float nan_in(float x, float r) { return x != x ? quiet_nan(x) : r; }
// Selects that keep NaN in x: x < lo ? lo : x, x > hi ? hi : x.
KILN_HD float max_keep_nan(float x, float lo) { return x < lo ? lo : x; }
KILN_HD float min_keep_nan(float x, float hi) { return x > hi ? hi : x; }
KILN_HD double dmax_keep_nan(double x, double lo) { return x < lo ? lo : x; }
KILN_HD double dmin_keep_nan(double x, double hi) { return x > hi ? hi : x; }

// ---- exp -----------------------------------------------------------------------------

// q(r) = (e^r - 1 - r) / r^2 on |r| <= 0.36 (a least-squares Chebyshev fit of
// degree 5, relative error 1.3e-8 with these float coefficients). It enters the
// result multiplied by r^2 <= 0.13, so float evaluation costs < 1e-8.
KILN_HD float exp_q(float r) {
  float q = 1.985016715e-4f;
  q = q * r + 1.393711194e-3f;
  q = q * r + 8.333379403e-3f;
  q = q * r + 4.166643322e-2f;
  q = q * r + 1.666666716e-1f;
  q = q * r + 0.5f;
  return q;
}

// 2^n as a double for n in [-1022, 1023].
KILN_HD double pow2_d(int32_t n) {
  return num::bits_f64(static_cast<uint64_t>(static_cast<int64_t>(n) + 1023) << 52);
}

// Float argument reduction of x + x_lo for x in [-160, 89.5] (callers clamp;
// NaN passes) and a small correction |x_lo| <= ulp(x) (0 for a plain float x):
// x = n ln2 + r_hi + r_lo with n = round(x / ln2) (the 1.5*2^23 trick), r_hi =
// x - n C1 exact (C1 = 0.693359375 has 10 bits), r_lo = x_lo - n C2 (C1 + C2 = ln2).
// Returns n; *tail = r_lo + r^2 q(r), so e^(x + x_lo) = 2^n (1 + r_hi + tail).
KILN_HD int32_t exp_reduce_f(float x, float x_lo, float* r_hi, float* tail) {
  const float kMagic = 12582912.0f;  // 1.5 * 2^23
  const float t = x * 1.44269504f + kMagic;
  const float nf = t - kMagic;
  const float hi = x - nf * 0.693359375f;
  const float lo = nf * 2.12194440e-4f + x_lo;  // x_lo - n C2
  const float r = hi + lo;
  *r_hi = hi;
  *tail = lo + (r * r) * exp_q(r);
  return static_cast<int32_t>(num::f32_bits(t) - num::f32_bits(kMagic));
}

// e^x = scale * (1 + s) for float x in [-160, 89.5] (callers clamp): the float
// reduction above, s assembled exactly in double. Relative error ~5e-9.
KILN_HD double exp_parts_f(float x, double* scale) {
  float hi, tail;
  const int32_t n = exp_reduce_f(x, 0.0f, &hi, &tail);
  *scale = pow2_d(n);
  return static_cast<double>(hi) + static_cast<double>(tail);
}

// a - b = d + *err exactly (Knuth's TwoSum); *err = 0 when d is not finite.
KILN_HD float two_diff(float a, float b, float* err) {
  const float d = a - b;
  const float bb = a - d;  // the part of b that made it into d (negated)
  const float e = (a - (d + bb)) + (bb - b);
  *err = abs_f(d) < kInfF ? e : 0.0f;
  return d;
}

// e^(x + x_lo) in double (relative error ~5e-9) for float x with a small
// correction x_lo (see two_diff: e^(a - b) = exp_sum_d(two_diff(a, b, &e), e)):
// 0 below x = -160 (where e^x < 1e-69), x clamped to 89.5 above; NaN gives NaN.
KILN_HD double exp_sum_d(float x, float x_lo) {
  float hi, tail;
  const int32_t n = exp_reduce_f(min_keep_nan(max_keep_nan(x, -160.0f), 89.5f), x_lo, &hi, &tail);
  const double e = pow2_d(n) * (1.0 + (static_cast<double>(hi) + static_cast<double>(tail)));
  return x < -160.0f ? 0.0 : e;
}

// e^x = scale * (1 + s) for double x in [-708, 709.0] (callers clamp): n =
// round(x / ln2) by the 1.5*2^52 trick, r = x - n ln2 in double (Cody-Waite,
// exact to ~1e-19), s = r + r^2 q(r). Returns s; *scale = 2^n. Relative error ~1e-8.
KILN_HD double exp_parts(double x, double* scale) {
  const double t = x * kLog2e + kRoundMagic;
  const double nd = t - kRoundMagic;
  const double r = (x - nd * kLn2Hi) - nd * kLn2Lo;
  const double q = static_cast<double>(exp_q(static_cast<float>(r)));
  // The low bits of t hold n (two's complement, |n| < 2^51): 2^n = (n + 1023) << 52.
  *scale = num::bits_f64((num::f64_bits(t) - num::f64_bits(kRoundMagic) + 1023u) << 52);
  return r + (r * r) * q;
}

// e^x in double, relative error ~1e-8; x is clamped to [-708, 709.0] (so -inf
// gives e^-708 ~ 3e-308, which rounds to 0 in float), NaN gives NaN.
KILN_HD double exp_d(double x) {
  const double xc = dmin_keep_nan(dmax_keep_nan(x, -708.0), 709.0);
  double scale;
  const double s = exp_parts(xc, &scale);
  return scale + scale * s;
}

// e^x all in float (the 'exp' op): within 0.87 ulp. 2^n is applied as two
// factors so that subnormal results round once.
KILN_HD float exp_f32(float x) {
  // Below -104 the result is 0 and above 89 it is inf either way.
  const float xc = min_keep_nan(max_keep_nan(x, -104.0f), 89.0f);
  float hi, tail;
  const int32_t n = exp_reduce_f(xc, 0.0f, &hi, &tail);  // n in [-150, 129]
  const float p = 1.0f + (hi + tail);
  const int32_t n1 = n >> 1, n2 = n - n1;  // each in [-75, 65]
  const float s1 = num::bits_f32(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = num::bits_f32(static_cast<uint32_t>(n2 + 127) << 23);
  return nan_in(x, (p * s1) * s2);
}

// ---- log -----------------------------------------------------------------------------

// log of a positive finite normal double (fdlibm e_log.c without branches,
// error < 1 ulp of double): x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1,
// s = f / (2 + f), log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)).
KILN_HD double log_d(double x) {
  const uint64_t kSqrtHalfBits = 0x3FE6A09E667F3BCDull;  // sqrt(1/2)
  const uint64_t ix = num::f64_bits(x) - kSqrtHalfBits;
  const int32_t k = static_cast<int32_t>(static_cast<uint32_t>(ix >> 32)) >> 20;  // arithmetic: floor
  const double m = num::bits_f64((ix & 0x000FFFFFFFFFFFFFull) + kSqrtHalfBits);
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s, w = z * z;
  const double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const double t2 = z * (6.666666666666735130e-01 +
                         w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  const double R = t2 + t1;
  const double hfsq = 0.5 * f * f;
  const double dk = static_cast<double>(k);
  return dk * kLn2Hi - ((hfsq - (s * (hfsq + R) + dk * kLn2Lo)) - f);
}

// log of a float: the same scheme with s and R in float (they only enter the
// small correction s (f^2/2 + R)), assembled in double (f^2/2 is exact there).
KILN_HD double log_of_float_d(float x) {
  // x > 0 finite; subnormals are scaled by 2^24 first.
  const bool sub = x < 1.17549435e-38f;
  const float xs = sub ? x * 16777216.0f : x;
  const uint32_t kSqrtHalfBits = 0x3F3504F3u;
  const uint32_t ix = num::f32_bits(xs) - kSqrtHalfBits;
  const int32_t k = (static_cast<int32_t>(ix) >> 23) - (sub ? 24 : 0);
  const float m = num::bits_f32((ix & 0x007FFFFFu) + kSqrtHalfBits);
  const float f = m - 1.0f;  // exact (Sterbenz)
  const float s = f / (2.0f + f);
  const float z = s * s, w = z * z;
  // fdlibm e_logf.c coefficients (|error| < 2^-34 for log(1+f) in this form).
  const float R = z * (6.6666662693e-01f + w * 2.8498786688e-01f) + w * (4.0000972152e-01f + w * 2.4279078841e-01f);
  const double fd = f;
  const double hfsq = 0.5 * fd * fd;
  const double l1p = fd - (hfsq - static_cast<double>(s) * (hfsq + static_cast<double>(R)));
  return static_cast<double>(k) * kLn2 + l1p;
}

KILN_HD float log_f32(float x) {
  const bool finite_pos = x > 0.0f && x < kInfF;
  const double r = log_of_float_d(finite_pos ? x : 1.0f);
  // log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, log(NaN) = NaN.
  const float special = x == 0.0f ? -kInfF : (x < 0.0f ? kNanF : nan_in(x, x));  // +inf stays, NaN quieted
  return finite_pos ? static_cast<float>(r) : special;
}

// ---- sqrt, rsqrt -------------------------------------------------------------------

// sqrt is IEEE (correctly rounded) everywhere; rsqrt = 1/sqrt in double, rounded once.
KILN_HD double sqrt_d(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return __builtin_sqrt(x);  // needs -fno-math-errno to vectorise (CMakeLists.txt sets it)
#endif
}
KILN_HD float sqrt_f32(float x) {
#if defined(__CUDA_ARCH__)
  return nan_in(x, __fsqrt_rn(x));  // the CPU's sqrt returns a NaN argument quieted
#else
  return __builtin_sqrtf(x);
#endif
}
KILN_HD float rsqrt_f32(float x) { return nan_in(x, static_cast<float>(1.0 / sqrt_d(static_cast<double>(x)))); }

// ---- tanh, sigmoid, silu -----------------------------------------------------------------

// tanh(x) = sign(x) em1 / (em1 + 2) with em1 = e^(2|x|) - 1 (no cancellation near 0).
KILN_HD float tanh_f32(float x) {
  const float a = min_keep_nan(abs_f(x), 20.0f);  // tanh(20) rounds to 1
  double scale;
  const double s = exp_parts_f(2.0f * a, &scale);  // 2a is exact
  const double em1 = (scale - 1.0) + scale * s;
  return nan_in(x, copysign_f(static_cast<float>(em1 / (em1 + 2.0)), x));
}

// sigmoid(x) = num / den with e = e^-|x|: x >= 0: 1 / (1 + e); x < 0: e / (1 + e).
// *one_minus = the numerator of 1 - sigmoid(x) (= sigmoid(-x)), also without cancellation.
KILN_HD void sigmoid_parts_d(double x, double* num, double* one_minus, double* den) {
  const double e = exp_d(-abs_d(x));
  *num = x >= 0.0 ? 1.0 : e;
  *one_minus = x >= 0.0 ? e : 1.0;
  *den = 1.0 + e;
}

// The same for a float argument, with the cheaper float reduction (e = e^-|x|,
// taken as 0 beyond |x| = 160, where it is below 1e-69 and x e < 1e-30 can no
// longer round to anything but 0 in silu).
KILN_HD void sigmoid_parts_f(float x, double* num, double* one_minus, double* den) {
  double scale;
  const float a = abs_f(x);
  const double s = exp_parts_f(-min_keep_nan(a, 160.0f), &scale);
  const double e = a > 160.0f ? 0.0 : scale + scale * s;
  *num = x >= 0.0f ? 1.0 : e;
  *one_minus = x >= 0.0f ? e : 1.0;
  *den = 1.0 + e;
}

KILN_HD float sigmoid_f32(float x) {
  double n, m, d;
  sigmoid_parts_f(x, &n, &m, &d);
  return nan_in(x, static_cast<float>(n / d));
}

KILN_HD float silu_f32(float x) {
  double n, m, d;
  sigmoid_parts_f(x, &n, &m, &d);
  const float r = static_cast<float>(static_cast<double>(x) * n / d);
  return nan_in(x, x == -kInfF ? -0.0f : r);  // the limit x e^x -> -0
}

// d/dx silu = s (1 + x (1 - s)).
KILN_HD double silu_grad_d(float x) {
  double n, m, d;
  const double xd = static_cast<double>(x);
  sigmoid_parts_f(x, &n, &m, &d);
  const double g = (n / d) * (1.0 + xd * (m / d));
  return x == kInfF ? 1.0 : (x == -kInfF ? 0.0 : g);
}

// ---- erf, gelu ----------------------------------------------------------------------------

// erf(z) / z = E(z^2) for |z| <= 1 (least-squares Chebyshev fit in u = z^2,
// degree 7, relative error 3.4e-11).
KILN_HD double erf_small_d(double z) {
  const double u = z * z;
  double p = -9.634991405269294e-06;
  p = p * u + 1.1254640828378314e-04;
  p = p * u + -8.482507750059657e-04;
  p = p * u + 5.220923216838481e-03;
  p = p * u + -2.6865392124835685e-02;
  p = p * u + 1.1283781839100918e-01;
  p = p * u + -3.7612638425957245e-01;
  p = p * u + 1.128379167057098;
  return z * p;
}

// erfc(w) for w in [1, 10.5]: e^(-w^2) R(t), t = (w - 2) / (w + 2), R a
// least-squares Chebyshev fit of degree 10 to erfc(w) e^(w^2) (relative error 1.5e-10).
// w^2 is formed in double, so e^(-w^2) keeps its accuracy for large w.
KILN_HD double erfc_big_d(double w) {
  const double t = (w - 2.0) / (w + 2.0);
  double p = -5.712454293861733e-05;
  p = p * t + 2.3501125871253415e-04;
  p = p * t + 4.1086083549574946e-05;
  p = p * t + -9.95036545400249e-04;
  p = p * t + -8.436189931126077e-04;
  p = p * t + 6.998215447614451e-03;
  p = p * t + 3.7325696085678916e-03;
  p = p * t + -7.897858915876131e-02;
  p = p * t + 2.416582026087025e-01;
  p = p * t + -4.271858475260093e-01;
  p = p * t + 2.553956762773101e-01;
  return exp_d(-(w * w)) * p;
}

KILN_HD float erf_f32(float x) {
  const double a = static_cast<double>(abs_f(x));
  const bool small = a < 1.0;
  const double small_v = erf_small_d(small ? a : 0.0);
  // erf(a) rounds to 1 in float beyond a = 3.92; clamp the erfc branch to [1, 4].
  const double big_v = 1.0 - erfc_big_d(dmin_keep_nan(small ? 1.0 : a, 4.0));
  return nan_in(x, copysign_f(static_cast<float>(small ? small_v : big_v), x));
}

// Phi(x) = P(N(0,1) <= x) = erfc(-x / sqrt 2) / 2 in double (relative error ~1e-8
// also in the lower tail, where it is computed as erfc, not 1 - erf).
KILN_HD double normal_cdf_d(double x) {
  const double z = x * kInvSqrt2;
  const double w = abs_d(z);
  const bool small = w < 1.0;
  const double e = erf_small_d(small ? w : 0.0);                     // erf(w), w < 1
  const double c = erfc_big_d(dmin_keep_nan(small ? 1.0 : w, 10.5));  // erfc(w), w >= 1
  const double lower = small ? 0.5 - 0.5 * e : (w > 10.5 ? 0.0 : 0.5 * c);  // Phi(-|x|)
  const double upper = small ? 0.5 + 0.5 * e : 1.0 - 0.5 * c;               // Phi(|x|)
  return z >= 0.0 ? upper : lower;  // NaN: lower (NaN)
}

KILN_HD float gelu_f32(float x) {
  const double xd = static_cast<double>(x);
  const float r = static_cast<float>(xd * normal_cdf_d(xd));
  return nan_in(x, x == -kInfF ? -0.0f : r);
}

// d/dx gelu = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi).
KILN_HD double gelu_grad_d(float x) {
  const double xd = static_cast<double>(x);
  const double xc = dmin_keep_nan(abs_d(xd), 40.0);  // beyond 40, x phi(x) < 1e-340
  const double xphi = xd * exp_d(-0.5 * xc * xc) * kInvSqrt2Pi;
  return normal_cdf_d(xd) + (abs_d(xd) > 40.0 ? 0.0 : xphi);
}

// gelu_tanh(x) = x/2 (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3):
// the sigmoid form has no cancellation for negative x.
KILN_HD void gelu_tanh_parts_d(double x, double* u, double* num, double* one_minus, double* den) {
  *u = kSqrt2OverPi * (x + kGeluTanhCubic * (x * x * x));
  sigmoid_parts_d(2.0 * *u, num, one_minus, den);
}

KILN_HD float gelu_tanh_f32(float x) {
  double u, n, m, d;
  const double xd = static_cast<double>(x);
  gelu_tanh_parts_d(xd, &u, &n, &m, &d);
  const float r = static_cast<float>(xd * n / d);
  return nan_in(x, x == -kInfF ? -0.0f : r);
}

// d/dx [x s(2u)] = s + 2 x s (1 - s) u'(x), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
KILN_HD double gelu_tanh_grad_d(float x) {
  double u, n, m, d;
  const double xd = static_cast<double>(x);
  gelu_tanh_parts_d(xd, &u, &n, &m, &d);
  const double s = n / d, sm = m / d;
  const double du = kSqrt2OverPi * (1.0 + 3.0 * kGeluTanhCubic * (xd * xd));
  const double g = s + 2.0 * xd * s * sm * du;
  return x == kInfF ? 1.0 : (x == -kInfF ? 0.0 : g);
}

// ---- pow ----------------------------------------------------------------------------------

// powf with C99 Annex F special cases: pow(x, +-0) = 1 and pow(1, y) = 1 for any
// x, y (even NaN); pow(-1, +-inf) = 1; pow(+-0, y < 0) = +-inf / +inf;
// pow(x < 0 finite, y finite non-integer) = NaN; the sign is negative for x < 0
// (or -0) with an odd integer y. Otherwise e^(y ln|x|) with ln in double
// (fdlibm, < 1 ulp of double) and exp_d: within 1 ulp of the correctly rounded result.
KILN_HD float pow_f32(float x, float y) {
  // Each select tests one comparison, and integer flags are 0/1 integers: the
  // loops over this vectorise (bool arithmetic mixing float and integer
  // comparisons does not).
  const float ax = abs_f(x), ay = abs_f(y);
  const float ax_safe = ax > 0.0f ? (ax < kInfF ? ax : 1.0f) : 1.0f;
  const double l = log_d(static_cast<double>(ax_safe));
  const double inf = static_cast<double>(kInfF);
  const double lx = ax == 0.0f ? -inf : (ax == kInfF ? inf : l);
  const double t = static_cast<double>(y) * lx;  // NaN for 0 * inf: those cases are selected below
  const float mag = static_cast<float>(exp_d(dmin_keep_nan(dmax_keep_nan(t, -800.0), 800.0)));
  // Integer-ness of y from its bits: with y = sig 2^(e-23), the units bit of sig
  // is bit 23 - e and the bits below it are the fraction. |y| >= 2^24 (inf too)
  // is an even integer; |y| < 1 is not an integer (y == 0 is selected below).
  // (Flags by shifts, not comparisons: GCC will not vectorise boolean masks of
  // mixed origin here.)
  const uint32_t yb = num::f32_bits(y);
  const int32_t e = static_cast<int32_t>((yb >> 23) & 0xFFu) - 127;
  const uint32_t sig = (yb & 0x7FFFFFu) | 0x800000u;
  const int32_t sh_raw = 23 - e;
  const uint32_t sh = static_cast<uint32_t>(sh_raw < 0 ? 0 : (sh_raw > 31 ? 31 : sh_raw));
  const uint32_t big = static_cast<uint32_t>(sh_raw) >> 31;                 // e > 23
  const uint32_t whole = ((sig & ((1u << sh) - 1u)) - 1u) >> 31;            // no fraction bits
  const uint32_t yint = big | whole;
  const uint32_t yodd = (big ^ 1u) & whole & (sig >> sh) & 1u;
  const uint32_t neg_odd = (num::f32_bits(x) >> 31) & yodd;  // x < 0 or x == -0, y odd
  float r = neg_odd != 0u ? -mag : mag;
  r = x < 0.0f ? (ax != kInfF ? (yint == 0u ? kNanF : r) : r) : r;  // finite x < 0, y not an integer
  r = x != x ? kNanF : (y != y ? kNanF : r);
  r = ax == 1.0f ? (ay == kInfF ? 1.0f : r) : r;  // pow(-1, +-inf) = 1
  r = y == 0.0f ? 1.0f : (x == 1.0f ? 1.0f : r);  // pow(x, +-0) = pow(1, y) = 1, even for NaN
  return r;
}

}  // namespace fm
}  // namespace kiln
