// Pieces of the 'quant' suite: an E4M3 reference that shares no code with
// kiln (values listed from the format's definition in float64, encoding by
// searching them, ties to the even code), the FireQ recipe written again in
// float32 from specs/quant.md, exact W4A8 sums in integers, host tensors for
// the quantization kernels, and the CPU paths to run (every ISA level, and
// the avx512 level with and without its AVX512-BF16 path).
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cpu_features.h"
#include "kiln/threadpool.h"
#include "ops_testing.h"
#include "testing.h"

namespace kiln {
namespace cpu {
// native/cpu/w4a8.h (not on the test include path): the tables and the bf16 switch.
const float* w4a8_lut_f32();
const uint16_t* w4a8_lut_bf16();
void w4a8_set_bf16_for_testing(bool enabled);
}  // namespace cpu
}  // namespace kiln

namespace qt {

using kiln::DType;
using Tensor = kt::HostTensor;

// ---- E4M3 from its definition ----------------------------------------------------------

// The value of an E4M3 ("fn": no infinities, S.1111.111 is NaN) code.
inline double e4m3_value(uint8_t code) {
  const int e = (code >> 3) & 0xF, m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
  return (code & 0x80) ? -mag : mag;
}

// v rounded to E4M3: nearest of the 127 finite magnitudes (ties to the even
// code), saturating at 448; NaN -> 0x7F; the sign kept (also for zero).
inline uint8_t e4m3_round(double v) {
  if (std::isnan(v)) return 0x7F;
  const uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  const double a = std::fabs(v);
  if (a >= 448.0) return sign | 0x7E;
  int lo = 0;
  while (lo < 0x7E && e4m3_value(static_cast<uint8_t>(lo + 1)) <= a) ++lo;
  const double dl = a - e4m3_value(static_cast<uint8_t>(lo));
  const double dh = e4m3_value(static_cast<uint8_t>(lo + 1)) - a;
  const int code = (dl < dh || (dl == dh && lo % 2 == 0)) ? lo : lo + 1;
  return static_cast<uint8_t>(sign | code);
}

// w8 = e4m3(q * s): the product is exact in float64 (memoised: 256 codes x 16 q).
inline uint8_t w8_ref(int q, uint8_t s_code) {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(256 * 16);
    for (int c = 0; c < 256; ++c) {
      for (int v = -8; v < 8; ++v) t[static_cast<size_t>(c * 16 + v + 8)] = e4m3_round(v * e4m3_value(static_cast<uint8_t>(c)));
    }
    return t;
  }();
  return table[static_cast<size_t>(s_code) * 16 + static_cast<size_t>(q + 8)];
}

inline int nibble(int q) { return q & 0xF; }
inline int from_nibble(int nib) { return nib >= 8 ? nib - 16 : nib; }

inline int64_t padded(int64_t k) { return (k + 127) / 128 * 128; }

// ---- host tensors -----------------------------------------------------------------------

inline Tensor make(DType dt, const std::vector<int64_t>& shape, kt::Layout layout = kt::Layout::Contig) {
  return ot::make(dt, shape, layout);
}
inline uint8_t byte_at(const Tensor& t, int64_t flat) { return *t.ptr(flat); }
inline void set_byte(Tensor& t, int64_t flat, uint8_t b) { *t.ptr(flat) = b; }
inline float f32_at(const Tensor& t, int64_t flat) { return static_cast<float>(t.get(flat)); }

// An INT4 weight in the canonical layout with its scales and exponent.
struct Weight {
  int64_t n = 0, k = 0, kp = 0, group = 0;
  Tensor packed, scales, exponent;
  int q(int64_t row, int64_t col) const {
    const uint8_t b = byte_at(packed, row * (kp / 2) + col / 2);
    return from_nibble((col & 1) ? (b >> 4) : (b & 0xF));
  }
  uint8_t s(int64_t row, int64_t col) const { return byte_at(scales, row * (kp / group) + col / group); }
  int e() const { return static_cast<int8_t>(byte_at(exponent, 0)); }
};

inline Weight empty_weight(int64_t n, int64_t k, int64_t group) {
  Weight w;
  w.n = n;
  w.k = k;
  w.kp = padded(k);
  w.group = group;
  w.packed = make(DType::UInt8, {n, w.kp / 2});
  w.scales = make(DType::Float8E4M3, {n, w.kp / group});
  w.exponent = make(DType::Int8, {});
  return w;
}

// Sets q (the padding stays 0) and the scale codes; the exponent.
inline void set_q(Weight& w, int64_t row, int64_t col, int q) {
  const int64_t at = row * (w.kp / 2) + col / 2;
  uint8_t b = byte_at(w.packed, at);
  b = (col & 1) ? static_cast<uint8_t>((b & 0x0F) | (nibble(q) << 4)) : static_cast<uint8_t>((b & 0xF0) | nibble(q));
  set_byte(w.packed, at, b);
}
inline void clear(Weight& w) {
  for (int64_t i = 0; i < w.packed.numel(); ++i) set_byte(w.packed, i, 0);
  for (int64_t i = 0; i < w.scales.numel(); ++i) set_byte(w.scales, i, 0x38);  // 1.0
  set_byte(w.exponent, 0, 0);
}

// ---- exact sums -------------------------------------------------------------------------

// P and A = sum |a w8| exactly (integers of 2^-18 in int64, as doubles: exact below 2^53).
struct Exact {
  double p = 0, a = 0;
  bool nan = false;
};
inline Exact exact_dot(const Tensor& acodes, int64_t m, int64_t K, const Weight& w, int64_t n) {
  int64_t p = 0, a = 0;
  Exact out;
  for (int64_t k = 0; k < w.kp; ++k) {
    const double wv = e4m3_value(w8_ref(w.q(n, k), w.s(n, k)));
    const double av = k < K ? e4m3_value(byte_at(acodes, m * K + k)) : 0.0;
    if (std::isnan(wv) || std::isnan(av)) {
      out.nan = true;
      continue;
    }
    const int64_t prod = static_cast<int64_t>(av * 512.0) * static_cast<int64_t>(wv * 512.0);
    p += prod;
    a += prod < 0 ? -prod : prod;
  }
  out.p = std::ldexp(static_cast<double>(p), -18);
  out.a = std::ldexp(static_cast<double>(a), -18);
  return out;
}

// exact_dot for every (m, n), row-major.
inline std::vector<Exact> exact_all(const Tensor& acodes, const Weight& w) {
  const int64_t M = acodes.shape[0], K = acodes.shape[1];
  std::vector<Exact> out;
  out.reserve(static_cast<size_t>(M * w.n));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < w.n; ++n) out.push_back(exact_dot(acodes, m, K, w, n));
  }
  return out;
}

// ---- the recipe (specs/quant.md "INT4 weights"), float32 -------------------------------

struct RecipeWeight {
  int e = 0;
  std::vector<uint8_t> scales;  // [n][kp / group]
  std::vector<int> q;           // [n][kp]
};
inline RecipeWeight recipe(const std::vector<float>& w, int64_t n, int64_t k, int64_t group) {
  RecipeWeight r;
  const int64_t kp = padded(k), ng = kp / group;
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  r.e = 0;
  if (amax > 0) {
    // floor(log2(448 / amax)) evaluated exactly: the largest e with amax 2^e <= 448
    while (r.e < 14 && static_cast<double>(amax) * std::ldexp(1.0, r.e + 1) <= 448.0) ++r.e;
  }
  const float t = std::ldexp(1.0f, r.e);
  r.scales.assign(static_cast<size_t>(n * ng), 0);
  r.q.assign(static_cast<size_t>(n * kp), 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t g = 0; g < ng; ++g) {
      float ag = 0;
      for (int64_t c = g * group; c < std::min(k, (g + 1) * group); ++c) ag = std::max(ag, std::fabs(w[static_cast<size_t>(i * k + c)]));
      const float y = (ag * t) / 7.0f;
      uint8_t s = e4m3_round(static_cast<double>(y));
      if (e4m3_value(s) < std::ldexp(1.0, -9)) s = 0x01;
      r.scales[static_cast<size_t>(i * ng + g)] = s;
      const float sv = static_cast<float>(e4m3_value(s));
      for (int64_t c = g * group; c < std::min(k, (g + 1) * group); ++c) {
        const float v = (w[static_cast<size_t>(i * k + c)] * t) / sv;
        // round half to even, from the definition
        double fl = std::floor(static_cast<double>(v));
        const double frac = static_cast<double>(v) - fl;
        if (frac > 0.5 || (frac == 0.5 && std::fmod(fl, 2.0) != 0.0)) fl += 1.0;
        r.q[static_cast<size_t>(i * kp + c)] = static_cast<int>(std::min(7.0, std::max(-8.0, fl)));
      }
    }
  }
  return r;
}

// ---- kernel calls -----------------------------------------------------------------------

inline kiln::Status quantize_weight(const Tensor& w, Weight& out) {
  return kt::run("quant_int4_weight", w.dtype(), {w.v}, {out.packed.v, out.scales.v, out.exponent.v}, {out.group});
}

inline kiln::Status quantize_activation(const Tensor& x, Tensor& a, Tensor& sa, double static_scale = 0) {
  std::vector<double> floats;
  if (static_scale != 0) floats.push_back(static_scale);
  return kt::run("quant_fp8_activation", x.dtype(), {x.v}, {a.v, sa.v}, {}, floats);
}

// w4a8_linear (x float) or w4a8_gemm (a e4m3 with s_a), optional bias.
inline kiln::Status linear(const Tensor& x, const Weight& w, const Tensor* bias, Tensor& y, double static_scale = 0) {
  std::vector<kiln::View> ins = {x.v, w.packed.v, w.scales.v, w.exponent.v};
  if (bias) ins.push_back(bias->v);
  std::vector<double> floats;
  if (static_scale != 0) floats.push_back(static_scale);
  return kt::run("w4a8_linear", y.dtype(), ins, {y.v}, {}, floats);
}
inline kiln::Status gemm(const Tensor& a, const Tensor& sa, const Weight& w, const Tensor* bias, Tensor& y) {
  std::vector<kiln::View> ins = {a.v, sa.v, w.packed.v, w.scales.v, w.exponent.v};
  if (bias) ins.push_back(bias->v);
  return kt::run("w4a8_gemm", y.dtype(), ins, {y.v});
}
inline kiln::Status reference(const Tensor& a, const Weight& w, Tensor& P, Tensor& A) {
  return kt::run("w4a8_reference", DType::Float8E4M3, {a.v, w.packed.v, w.scales.v}, {P.v, A.v});
}

// ---- CPU paths --------------------------------------------------------------------------

struct Path {
  kiln::cpu::IsaLevel level;
  bool bf16;
  std::string name() const { return std::string(kiln::cpu::isa_name(level)) + (bf16 ? "+bf16" : ""); }
  void activate() const {
    kiln::cpu::set_isa(level);
    kiln::cpu::w4a8_set_bf16_for_testing(bf16);
  }
};

// Every path this CPU can run, lowest first.
inline std::vector<Path> paths() {
  std::vector<Path> out;
  for (kiln::cpu::IsaLevel l : kt::isa_levels()) out.push_back({l, false});
  if (kiln::cpu::detected_isa() == kiln::cpu::IsaLevel::Avx512 && kiln::cpu::features().avx512bf16) {
    out.push_back({kiln::cpu::IsaLevel::Avx512, true});
  }
  return out;
}

// Restores the ISA level, the bf16 switch and the thread count.
struct Restore {
  kt::RestoreIsa isa;
  ~Restore() { kiln::cpu::w4a8_set_bf16_for_testing(true); }
};

}  // namespace qt
