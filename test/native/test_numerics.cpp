// Suite 'numerics': the bit-exact conversions of kiln/numerics.h and the cast
// rules of kiln/element.h, held to specs/quant.md "FP8" and the header comments.
//
// The reference here shares no code and no method with the code under test:
// every format is described only by (exponent bits, mantissa bits, how it
// spends its top exponent, what it does on overflow); its finite values are
// listed with std::ldexp in float64, and a value is encoded by searching that
// sorted list for the nearest entries (midpoints computed in float64, which is
// exact for these narrow formats), ties going to the even code.
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "kiln/element.h"
#include "kiln/numerics.h"

#if defined(KILN_WITH_CUDA)
#include <cuda_fp8.h>  // NVIDIA's host implementation: a second, external reference
#endif

namespace {

using namespace kiln;

// ---- small helpers ---------------------------------------------------------------

uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bitsf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint64_t dbits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}
double bitsd(uint64_t u) {
  double d;
  std::memcpy(&d, &u, 8);
  return d;
}

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}
std::string show(double d) {
  std::ostringstream s;
  s.precision(17);
  s << d << " (" << hex(dbits(d)) << ")";
  return s.str();
}

// splitmix64: a counter-based generator, so any index can be drawn from any thread.
uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

int worker_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::max(1u, std::min(hw, 16u)));
}

// Runs fn(chunk) for chunk in [0, chunks) on worker_count() threads.
template <class F>
void parallel_chunks(int64_t chunks, F&& fn) {
  std::atomic<int64_t> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < worker_count(); ++t) {
    ts.emplace_back([&] {
      for (int64_t c; (c = next.fetch_add(1)) < chunks;) fn(c);
    });
  }
  for (auto& t : ts) t.join();
}

// Mismatches found by worker threads; reported through KCHECK on the main thread.
struct Mismatches {
  std::mutex mu;
  int64_t count = 0;
  std::vector<std::string> first;
  void add(const std::string& what) {
    std::lock_guard<std::mutex> lk(mu);
    ++count;
    if (first.size() < 12) first.push_back(what);
  }
  void report(const char* label) {
    KCHECK_EQ(count, 0) << label;
    for (const auto& s : first) KCHECK(false) << label << ": " << s;
  }
};

// ---- the reference formats -----------------------------------------------------------

struct Format {
  const char* name;
  int ebits, mbits;
  bool has_inf;    // exponent all-ones holds inf (mantissa 0) and NaN (IEEE layout)
  bool fn_nan;     // "fn": no inf, only S.1..1.1..1 is NaN (E4M3)
  bool satfinite;  // overflow and inf saturate to +-max (else overflow -> inf)
  uint32_t nan_pos, nan_neg;  // the NaN the encoders promise for +NaN / -NaN

  int bias = 0;
  uint32_t sign_bit = 0, max_code = 0, inf_code = 0;
  std::vector<double> vals;  // vals[c]: value of the non-negative finite code c (ascending)
  std::vector<double> mids;  // mids[c] = (vals[c] + vals[c+1]) / 2, exact in float64
  double overflow = 0;       // IEEE: |v| >= this rounds to inf

  // Value of `code` straight from the format definition.
  double decode(uint32_t code) const {
    const uint32_t emask = (1u << ebits) - 1, mmask = (1u << mbits) - 1;
    const bool neg = (code >> (ebits + mbits)) & 1u;
    const uint32_t e = (code >> mbits) & emask, m = code & mmask;
    double v;
    if (has_inf && e == emask) {
      v = m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
    } else if (fn_nan && e == emask && m == mmask) {
      v = std::numeric_limits<double>::quiet_NaN();
    } else if (e == 0) {
      v = std::ldexp(static_cast<double>(m), 1 - bias - mbits);
    } else {
      v = std::ldexp(static_cast<double>((1u << mbits) + m), static_cast<int>(e) - bias - mbits);
    }
    return neg ? -v : v;
  }

  void build() {
    bias = (1 << (ebits - 1)) - 1;
    sign_bit = 1u << (ebits + mbits);
    vals.clear();
    for (uint32_t c = 0; c < sign_bit; ++c) {
      const double v = decode(c);
      if (!std::isfinite(v)) break;  // finite codes come first, in increasing order
      vals.push_back(v);
    }
    max_code = static_cast<uint32_t>(vals.size() - 1);
    inf_code = ((1u << ebits) - 1) << mbits;
    mids.resize(vals.size() - 1);
    for (size_t c = 0; c + 1 < vals.size(); ++c) mids[c] = (vals[c] + vals[c + 1]) / 2;
    overflow = vals[max_code] + (vals[max_code] - vals[max_code - 1]) / 2;
  }

  // Finishes an encoding, given j = number of midpoints strictly below |x|.
  uint32_t finish(double a, size_t j, bool neg) const {
    uint32_t code;
    if (j < mids.size() && mids[j] == a) {
      code = static_cast<uint32_t>(j % 2 == 0 ? j : j + 1);  // tie: the even code
    } else {
      code = static_cast<uint32_t>(j);
    }
    if (code == max_code && !satfinite && a >= overflow) code = inf_code;
    return code | (neg ? sign_bit : 0u);
  }

  uint32_t encode(double x) const {
    if (std::isnan(x)) return std::signbit(x) ? nan_neg : nan_pos;
    const bool neg = std::signbit(x);
    const double a = std::fabs(x);
    if (std::isinf(a)) return (satfinite ? max_code : inf_code) | (neg ? sign_bit : 0u);
    const size_t j = static_cast<size_t>(std::lower_bound(mids.begin(), mids.end(), a) - mids.begin());
    return finish(a, j, neg);
  }
};

// Encodes an increasing sequence of finite magnitudes in amortised O(1).
struct Walker {
  const Format* f;
  size_t j;
  Walker(const Format* fmt, double first)
      : f(fmt), j(static_cast<size_t>(std::lower_bound(fmt->mids.begin(), fmt->mids.end(), first) - fmt->mids.begin())) {}
  uint32_t next(double a) {
    while (j < f->mids.size() && f->mids[j] < a) ++j;
    return f->finish(a, j, false);
  }
};

Format make(const char* name, int e, int m, bool has_inf, bool fn_nan, bool sat, uint32_t nan_pos, uint32_t nan_neg) {
  Format f;
  f.name = name;
  f.ebits = e;
  f.mbits = m;
  f.has_inf = has_inf;
  f.fn_nan = fn_nan;
  f.satfinite = sat;
  f.nan_pos = nan_pos;
  f.nan_neg = nan_neg;
  f.build();
  return f;
}

const Format& kE4M3() {
  static const Format f = make("e4m3", 4, 3, false, true, true, 0x7F, 0x7F);
  return f;
}
const Format& kE5M2() {
  static const Format f = make("e5m2", 5, 2, true, false, true, 0x7F, 0x7F);
  return f;
}
const Format& kF16() {
  static const Format f = make("float16", 5, 10, true, false, false, 0x7E00, 0xFE00);
  return f;
}
const Format& kBF16() {
  static const Format f = make("bfloat16", 8, 7, true, false, false, 0x7FC0, 0xFFC0);
  return f;
}

// The encoders under test, by format index (0 e4m3, 1 e5m2, 2 f16, 3 bf16).
const Format* format_at(int k) {
  switch (k) {
    case 0: return &kE4M3();
    case 1: return &kE5M2();
    case 2: return &kF16();
    default: return &kBF16();
  }
}
uint32_t enc32(int k, float x) {
  switch (k) {
    case 0: return num::f32_to_e4m3(x);
    case 1: return num::f32_to_e5m2(x);
    case 2: return num::f32_to_f16(x);
    default: return num::f32_to_bf16(x);
  }
}
uint32_t enc64(int k, double x) {
  switch (k) {
    case 0: return num::f64_to_e4m3(x);
    case 1: return num::f64_to_e5m2(x);
    case 2: return num::f64_to_f16(x);
    default: return num::f64_to_bf16(x);
  }
}
double dec(int k, uint32_t c) {
  switch (k) {
    case 0: return num::e4m3_to_f32(static_cast<uint8_t>(c));
    case 1: return num::e5m2_to_f32(static_cast<uint8_t>(c));
    case 2: return num::f16_to_f32(static_cast<uint16_t>(c));
    default: return num::bf16_to_f32(static_cast<uint16_t>(c));
  }
}

// ---- the reference itself -----------------------------------------------------------

KTEST(numerics, reference_formats_match_their_definitions) {
  // The table has the right size, range and overflow threshold; if these were
  // wrong every comparison below would be meaningless.
  struct Want {
    const Format* f;
    uint32_t max_code;
    double max, min_sub;
    int emax;
  } wants[] = {
      {&kE4M3(), 0x7E, 448.0, std::ldexp(1.0, -9), 8},
      {&kE5M2(), 0x7B, 57344.0, std::ldexp(1.0, -16), 15},
      {&kF16(), 0x7BFF, 65504.0, std::ldexp(1.0, -24), 15},
      {&kBF16(), 0x7F7F, std::ldexp(255.0, 120), std::ldexp(1.0, -133), 127},
  };
  for (const Want& w : wants) {
    const Format& f = *w.f;
    KCHECK_EQ(f.max_code, w.max_code) << f.name;
    KCHECK_EQ(f.vals.back(), w.max) << f.name;
    KCHECK_EQ(f.vals[1], w.min_sub) << f.name;
    KCHECK_EQ(f.vals[0], 0.0) << f.name;
    bool increasing = true;
    for (size_t i = 1; i < f.vals.size(); ++i) increasing = increasing && f.vals[i] > f.vals[i - 1];
    KCHECK(increasing) << f.name;
    if (!f.satfinite) {
      // (2 - 2^-p) * 2^emax with p = mantissa bits + 1
      KCHECK_EQ(f.overflow, std::ldexp(2.0 - std::ldexp(1.0, -(f.mbits + 1)), w.emax)) << f.name;
    }
  }
  KCHECK_EQ(kF16().overflow, 65520.0);
  // A few hand-checked encodings of the reference.
  KCHECK_EQ(kE4M3().encode(464.0), 0x7Eu);
  KCHECK_EQ(kE4M3().encode(std::ldexp(1.0, -10)), 0x00u);
  KCHECK_EQ(kE4M3().encode(std::ldexp(3.0, -10)), 0x02u);
  KCHECK_EQ(kE4M3().encode(-0.0), 0x80u);
  KCHECK_EQ(kF16().encode(65520.0), 0x7C00u);
  KCHECK_EQ(kF16().encode(-65519.0), 0xFBFFu);
  KCHECK_EQ(kBF16().encode(1.0 + std::ldexp(1.0, -8)), 0x3F80u);
  KCHECK_EQ(kBF16().encode(1.0 + std::ldexp(3.0, -8)), 0x3F82u);
}

// ---- decoding, exhaustive -------------------------------------------------------------

KTEST(numerics, decode_every_code_exactly) {
  for (int k = 0; k < 4; ++k) {
    const Format& f = *format_at(k);
    const uint32_t codes = f.sign_bit << 1;
    int64_t bad = 0;
    for (uint32_t c = 0; c < codes; ++c) {
      const double want = f.decode(c);
      const float got = static_cast<float>(dec(k, c));
      const bool ok = std::isnan(want) ? std::isnan(got)
                                       : (static_cast<double>(got) == want && std::signbit(got) == std::signbit(want));
      if (!ok && ++bad <= 5) KCHECK(false) << f.name << " code " << hex(c) << " decodes to " << got << ", want " << want;
    }
    KCHECK_EQ(bad, 0) << f.name << " decode mismatches";
  }
  // Spot values from the formats' published tables.
  KCHECK_EQ(num::e4m3_to_f32(0x7E), 448.0f);
  KCHECK_EQ(num::e4m3_to_f32(0x01), 0.001953125f);
  KCHECK(std::isnan(num::e4m3_to_f32(0x7F)) && std::isnan(num::e4m3_to_f32(0xFF)));
  KCHECK_EQ(num::e4m3_to_f32(0x78), 256.0f);  // e = 15 is finite in E4M3 (fn)
  KCHECK(std::signbit(num::e4m3_to_f32(0x80)) && num::e4m3_to_f32(0x80) == 0.0f);
  KCHECK_EQ(num::e5m2_to_f32(0x7B), 57344.0f);
  KCHECK_EQ(num::e5m2_to_f32(0x7C), std::numeric_limits<float>::infinity());
  KCHECK_EQ(num::e5m2_to_f32(0xFC), -std::numeric_limits<float>::infinity());
  KCHECK(std::isnan(num::e5m2_to_f32(0x7D)));
  KCHECK_EQ(num::e5m2_to_f32(0x01), std::ldexp(1.0f, -16));
  KCHECK_EQ(num::f16_to_f32(0x3C00), 1.0f);
  KCHECK_EQ(num::f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  KCHECK_EQ(num::f16_to_f32(0x7BFF), 65504.0f);
  KCHECK_EQ(num::bf16_to_f32(0x3F80), 1.0f);
  KCHECK_EQ(num::bf16_to_f32(0x0001), std::ldexp(1.0f, -133));
}

KTEST(numerics, encode_of_decode_is_identity) {
  for (int k = 0; k < 4; ++k) {
    const Format& f = *format_at(k);
    const uint32_t codes = f.sign_bit << 1;
    int64_t bad = 0, tested = 0;
    for (uint32_t c = 0; c < codes; ++c) {
      const double v = f.decode(c);
      if (std::isnan(v)) continue;
      ++tested;
      // The satfinite formats have no inf to return to: inf saturates.
      const uint32_t want = std::isinf(v) && f.satfinite ? (f.max_code | (c & f.sign_bit)) : c;
      const uint32_t g32 = enc32(k, static_cast<float>(dec(k, c)));
      const uint32_t g64 = enc64(k, v);
      if ((g32 != want || g64 != want) && ++bad <= 5) {
        KCHECK(false) << f.name << " code " << hex(c) << ": f32 encoder gives " << hex(g32) << ", f64 encoder "
                      << hex(g64) << ", want " << hex(want);
      }
    }
    KCHECK_EQ(bad, 0) << f.name;
    KCHECK(tested >= 250) << f.name;
  }
}

// ---- float32 encoders: specials ---------------------------------------------------------

KTEST(numerics, f32_encoders_on_specials) {
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    float x;
    uint32_t e4m3, e5m2, f16, bf16;
  } cases[] = {
      {0.0f, 0x00, 0x00, 0x0000, 0x0000},
      {-0.0f, 0x80, 0x80, 0x8000, 0x8000},
      {inf, 0x7E, 0x7B, 0x7C00, 0x7F80},
      {-inf, 0xFE, 0xFB, 0xFC00, 0xFF80},
      {448.0f, 0x7E, 0x5F, 0x5F00, 0x43E0},
      {464.0f, 0x7E, 0x5F, 0x5F40, 0x43E8},       // E4M3: midpoint 448|480, 448 is even -> 448
      {480.0f, 0x7E, 0x60, 0x5F80, 0x43F0},       // beyond the E4M3 range: saturates
      {1e30f, 0x7E, 0x7B, 0x7C00, 0x714A},
      {-1e30f, 0xFE, 0xFB, 0xFC00, 0xF14A},
      {57344.0f, 0x7E, 0x7B, 0x7B00, 0x4760},
      {61440.0f, 0x7E, 0x7B, 0x7B80, 0x4770},     // E5M2 midpoint 57344|65536 -> saturates
      {65504.0f, 0x7E, 0x7B, 0x7BFF, 0x4780},
      {65519.996f, 0x7E, 0x7B, 0x7BFF, 0x4780},
      {65520.0f, 0x7E, 0x7B, 0x7C00, 0x4780},     // float16 overflow threshold -> inf
      {std::ldexp(1.0f, -9), 0x01, 0x18, 0x1800, 0x3B00},
      {std::ldexp(1.0f, -10), 0x00, 0x14, 0x1400, 0x3A80},   // E4M3: tie with 0 -> 0
      {std::ldexp(3.0f, -11), 0x01, 0x16, 0x1600, 0x3AC0},   // 0.75 * 2^-9 -> 2^-9
      {std::ldexp(1.0f, -16), 0x00, 0x01, 0x0100, 0x3780},
      {std::ldexp(1.0f, -17), 0x00, 0x00, 0x0080, 0x3700},   // E5M2: tie with 0 -> 0
      {std::ldexp(1.0f, -24), 0x00, 0x00, 0x0001, 0x3380},
      {std::ldexp(1.0f, -25), 0x00, 0x00, 0x0000, 0x3300},   // float16: tie with 0 -> 0
      {std::ldexp(1.5f, -25), 0x00, 0x00, 0x0001, 0x3340},
      {FLT_MAX, 0x7E, 0x7B, 0x7C00, 0x7F80},                  // bfloat16 rounds max float up to inf
      {-FLT_MAX, 0xFE, 0xFB, 0xFC00, 0xFF80},
      {FLT_MIN, 0x00, 0x00, 0x0000, 0x0080},
      {std::numeric_limits<float>::denorm_min(), 0x00, 0x00, 0x0000, 0x0000},
      {-std::numeric_limits<float>::denorm_min(), 0x80, 0x80, 0x8000, 0x8000},
      {bitsf(0x00400000u), 0x00, 0x00, 0x0000, 0x0040},     // float32 subnormal, exact in bfloat16
      {bitsf(0x00008000u), 0x00, 0x00, 0x0000, 0x0000},     // half a bfloat16 subnormal ulp: tie -> 0
      {bitsf(0x00018000u), 0x00, 0x00, 0x0000, 0x0002},     // 1.5 ulp: tie -> even (2)
      {1.0f, 0x38, 0x3C, 0x3C00, 0x3F80},
      {-2.5f, 0xC2, 0xC1, 0xC100, 0xC020},
  };
  for (const Case& c : cases) {
    const uint32_t want[4] = {c.e4m3, c.e5m2, c.f16, c.bf16};
    for (int k = 0; k < 4; ++k) {
      const uint32_t got = enc32(k, c.x);
      KCHECK_EQ(hex(got), hex(want[k])) << format_at(k)->name << " of " << show(c.x);
      KCHECK_EQ(hex(format_at(k)->encode(c.x)), hex(want[k])) << "reference " << format_at(k)->name << " of " << show(c.x);
    }
  }
  // NaNs with assorted payloads and both signs.
  const uint32_t nans[] = {0x7FC00000u, 0x7F800001u, 0x7FFFFFFFu, 0x7FA00000u, 0x7F800100u,
                           0xFFC00000u, 0xFF800001u, 0xFFFFFFFFu, 0xFFBFFFFFu};
  for (uint32_t nb : nans) {
    const float x = bitsf(nb);
    const bool neg = (nb >> 31) != 0;
    KCHECK_EQ(hex(num::f32_to_e4m3(x)), hex(0x7F)) << hex(nb);
    KCHECK_EQ(hex(num::f32_to_e5m2(x)), hex(0x7F)) << hex(nb);
    KCHECK_EQ(hex(num::f32_to_f16(x)), hex(neg ? 0xFE00 : 0x7E00)) << hex(nb);
    KCHECK_EQ(hex(num::f32_to_bf16(x)), hex(neg ? 0xFFC0 : 0x7FC0)) << hex(nb);
  }
}

// ---- float32 encoders: dense sweep + random sample --------------------------------------

// Compares the four float32 encoders on +-x for every magnitude pattern in
// [lo, hi) (finite, increasing) with the reference.
void sweep_range(uint32_t lo, uint32_t hi, Mismatches& bad, Mismatches* nv_bad, std::atomic<int64_t>& tested) {
  const uint32_t kChunk = 1u << 20;
  const int64_t chunks = (static_cast<int64_t>(hi) - lo + kChunk - 1) / kChunk;
  parallel_chunks(chunks, [&](int64_t c) {
    const uint32_t b0 = lo + static_cast<uint32_t>(c) * kChunk;
    const uint32_t b1 = static_cast<uint32_t>(std::min<int64_t>(hi, static_cast<int64_t>(b0) + kChunk));
    const double first = bitsf(b0);
    Walker w[4] = {Walker(&kE4M3(), first), Walker(&kE5M2(), first), Walker(&kF16(), first), Walker(&kBF16(), first)};
    int64_t local_bad = 0;
    for (uint32_t b = b0; b < b1; ++b) {
      const float x = bitsf(b);
      const float nx = bitsf(b | 0x80000000u);
      const double a = x;
      const uint32_t r0 = w[0].next(a), r1 = w[1].next(a), r2 = w[2].next(a), r3 = w[3].next(a);
      const uint32_t g0 = num::f32_to_e4m3(x), n0 = num::f32_to_e4m3(nx);
      const uint32_t g1 = num::f32_to_e5m2(x), n1 = num::f32_to_e5m2(nx);
      const uint32_t g2 = num::f32_to_f16(x), n2 = num::f32_to_f16(nx);
      const uint32_t g3 = num::f32_to_bf16(x), n3 = num::f32_to_bf16(nx);
      const bool ok = g0 == r0 && n0 == (r0 | 0x80u) && g1 == r1 && n1 == (r1 | 0x80u) && g2 == r2 &&
                      n2 == (r2 | 0x8000u) && g3 == r3 && n3 == (r3 | 0x8000u);
      if (!ok) {
        if (++local_bad <= 4) {
          bad.add("x=+-" + show(a) + " e4m3 " + hex(g0) + "/" + hex(n0) + " want " + hex(r0) + "; e5m2 " + hex(g1) +
                  "/" + hex(n1) + " want " + hex(r1) + "; f16 " + hex(g2) + "/" + hex(n2) + " want " + hex(r2) +
                  "; bf16 " + hex(g3) + "/" + hex(n3) + " want " + hex(r3));
        } else {
          std::lock_guard<std::mutex> lk(bad.mu);
          ++bad.count;
        }
      }
#if defined(KILN_WITH_CUDA)
      if (nv_bad != nullptr) {
        const uint32_t v0 = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
        const uint32_t m0 = __nv_cvt_float_to_fp8(nx, __NV_SATFINITE, __NV_E4M3);
        const uint32_t v1 = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E5M2);
        const uint32_t m1 = __nv_cvt_float_to_fp8(nx, __NV_SATFINITE, __NV_E5M2);
        if (v0 != g0 || m0 != n0 || v1 != g1 || m1 != n1) {
          nv_bad->add("x=+-" + show(a) + " kiln e4m3 " + hex(g0) + "/" + hex(n0) + " nvidia " + hex(v0) + "/" +
                      hex(m0) + "; kiln e5m2 " + hex(g1) + "/" + hex(n1) + " nvidia " + hex(v1) + "/" + hex(m1));
        }
      }
#else
      (void)nv_bad;
#endif
    }
    tested.fetch_add(2 * static_cast<int64_t>(b1 - b0));
  });
}

KTEST(numerics, f32_encoders_dense_sweep) {
  // Biased exponent fields [107, 147]: |v| in [2^-20, 2^21), which contains every
  // rounding boundary of E4M3 and E5M2 and float16's overflow; plus [100, 106]
  // for float16's subnormals, and the bottom / top of float32 for bfloat16's
  // subnormals and overflow.
  Mismatches bad, nv_bad;
  std::atomic<int64_t> tested{0};
  sweep_range(100u << 23, 148u << 23, bad, &nv_bad, tested);
  sweep_range(0u, 3u << 23, bad, &nv_bad, tested);
  sweep_range(252u << 23, 255u << 23, bad, &nv_bad, tested);
  bad.report("float32 sweep vs reference");
#if defined(KILN_WITH_CUDA)
  nv_bad.report("float32 sweep vs __nv_cvt_float_to_fp8");
#endif
  KCHECK_EQ(tested.load(), int64_t(2) * ((48 + 3 + 3) << 23));
  std::cout << "    swept " << tested.load() << " float32 values through 4 encoders"
#if defined(KILN_WITH_CUDA)
            << " (and __nv_cvt_float_to_fp8 for E4M3/E5M2)"
#endif
            << std::endl;
  // Every inf / NaN pattern.
  int64_t nan_bad = 0;
  for (uint32_t m = 0; m < (1u << 23); ++m) {
    for (uint32_t s = 0; s < 2; ++s) {
      const uint32_t b = (s << 31) | 0x7F800000u | m;
      const float x = bitsf(b);
      for (int k = 0; k < 4; ++k) {
        const uint32_t want = format_at(k)->encode(x);
        if (enc32(k, x) != want && ++nan_bad <= 4) {
          KCHECK(false) << format_at(k)->name << " of " << hex(b) << " gives " << hex(enc32(k, x)) << " want "
                        << hex(want);
        }
      }
#if defined(KILN_WITH_CUDA)
      if (__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3) != num::f32_to_e4m3(x) ||
          __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E5M2) != num::f32_to_e5m2(x)) {
        if (++nan_bad <= 4) KCHECK(false) << "nvidia disagrees on " << hex(b);
      }
#endif
    }
  }
  KCHECK_EQ(nan_bad, 0) << "inf/NaN patterns";
}

KTEST(numerics, f32_encoders_random_sample) {
  // 10^7 patterns outside the dense sweep, binary-search reference.
  const int64_t kN = 10000000;
  const int64_t kChunk = 1 << 16;
  Mismatches bad, nv_bad;
  std::atomic<int64_t> outside{0};
  parallel_chunks((kN + kChunk - 1) / kChunk, [&](int64_t c) {
    int64_t local_outside = 0;
    for (int64_t i = c * kChunk; i < std::min(kN, (c + 1) * kChunk); ++i) {
      uint32_t b = 0;
      for (uint64_t draw = 0;; ++draw) {  // resample until outside the swept ranges
        b = static_cast<uint32_t>(splitmix(0x51D3u + static_cast<uint64_t>(i) * 977 + draw) >> 17);
        const uint32_t e = (b >> 23) & 0xFFu;
        if (!((e >= 100 && e < 148) || e < 3 || e >= 252)) break;
      }
      ++local_outside;
      const float x = bitsf(b);
      for (int k = 0; k < 4; ++k) {
        const uint32_t want = format_at(k)->encode(x), got = enc32(k, x);
        if (got != want) bad.add(std::string(format_at(k)->name) + " of " + hex(b) + " gives " + hex(got) + " want " + hex(want));
      }
#if defined(KILN_WITH_CUDA)
      const uint32_t v0 = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
      const uint32_t v1 = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E5M2);
      if (v0 != num::f32_to_e4m3(x) || v1 != num::f32_to_e5m2(x)) nv_bad.add("nvidia disagrees on " + hex(b));
#endif
    }
    outside.fetch_add(local_outside);
  });
  bad.report("random float32 vs reference");
#if defined(KILN_WITH_CUDA)
  nv_bad.report("random float32 vs __nv_cvt_float_to_fp8");
#endif
  KCHECK_EQ(outside.load(), kN);
}

#if defined(KILN_WITH_CUDA)
KTEST(numerics, nvidia_host_fp8_agrees_with_reference) {
  // The external reference and ours agree with each other too (so a shared
  // mistake in kiln and the reference would still be caught).
  int64_t bad = 0;
  for (uint32_t b = 0; b < (1u << 31); b += 97) {
    const float x = bitsf(b);
    if (std::isnan(x)) continue;
    if (__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3) != kE4M3().encode(x) ||
        __nv_cvt_float_to_fp8(-x, __NV_SATFINITE, __NV_E5M2) != kE5M2().encode(-x)) {
      if (++bad <= 4) KCHECK(false) << "nvidia vs reference at " << hex(b);
    }
  }
  KCHECK_EQ(bad, 0);
}
#endif

// ---- float64 encoders ---------------------------------------------------------------

void check_f64(double x, int64_t& bad) {
  for (int k = 0; k < 4; ++k) {
    const uint32_t want = format_at(k)->encode(x), got = enc64(k, x);
    if (got != want && ++bad <= 8) {
      KCHECK(false) << format_at(k)->name << " of double " << show(x) << " gives " << hex(got) << " want " << hex(want);
    }
  }
}

KTEST(numerics, f64_encoders_on_int32) {
  int64_t bad = 0, n = 0;
  auto range = [&](int64_t lo, int64_t hi) {
    for (int64_t v = lo; v < hi; ++v, ++n) check_f64(static_cast<double>(static_cast<int32_t>(v)), bad);
  };
  range(-70000, 70000);                                       // float16's range and beyond
  range((1 << 24) - (1 << 17), (1 << 24) + (1 << 19));        // around 2^24
  range((1 << 25) - (1 << 16), (1 << 25) + (1 << 18));        // around 2^25
  range(2147483647LL - (1 << 19), 2147483648LL);              // up to INT32_MAX
  range(-2147483648LL, -2147483648LL + (1 << 19));            // from INT32_MIN
  range(-(1 << 24) - (1 << 18), -(1 << 24) + (1 << 18));
  for (uint64_t i = 0; i < (1u << 19); ++i, ++n) check_f64(static_cast<int32_t>(splitmix(i * 7 + 3)), bad);
  KCHECK_EQ(bad, 0) << "of " << n << " int32 values";
  std::cout << "    " << n << " int32 values through 4 float64 encoders" << std::endl;

  // 2^24 + 2^16 + 1 is not a float32. Rounded once it is above the bfloat16
  // midpoint 2^24 + 2^16 and must go up; through float32 it would land on the
  // midpoint and tie down to 2^24.
  const double v = 16777217.0 + 65536.0;
  KCHECK_EQ(v, std::ldexp(1.0, 24) + std::ldexp(1.0, 16) + 1);
  KCHECK_EQ(hex(num::f64_to_bf16(v)), hex(0x4B81));  // 2^24 + 2^17
  KCHECK_EQ(static_cast<double>(num::bf16_to_f32(num::f64_to_bf16(v))), std::ldexp(1.0, 24) + std::ldexp(1.0, 17));
  KCHECK_EQ(hex(num::f32_to_bf16(static_cast<float>(v))), hex(0x4B80));  // the double-rounded result
  KCHECK_EQ(hex(kBF16().encode(v)), hex(0x4B81));
  // The same for float16: 2048 + 1 + tiny is above the 2048|2050 midpoint.
  KCHECK_EQ(hex(num::f64_to_f16(2049.0 + std::ldexp(1.0, -30))), hex(0x6801));
  KCHECK_EQ(hex(num::f64_to_f16(2049.0)), hex(0x6800));
}

KTEST(numerics, f64_encoders_next_to_rounding_boundaries) {
  // Doubles that are not float32 values, hugging every midpoint of every format:
  // exactly where rounding through float32 first would go wrong.
  int64_t bad = 0, n = 0, not_f32 = 0, double_rounding_differs = 0;
  for (int k = 0; k < 4; ++k) {
    const Format& f = *format_at(k);
    for (size_t i = 0; i < f.mids.size(); ++i) {
      const double m = f.mids[i];
      const double ulp32 = std::ldexp(1.0, std::ilogb(m) - 23);  // float32 ulp at m (normal range)
      const double xs[] = {m,
                           std::nextafter(m, 0.0),
                           std::nextafter(m, HUGE_VAL),
                           m + ulp32 / 4,
                           m - ulp32 / 4,
                           m + ulp32 / 2,
                           m - ulp32 / 2,
                           m * (1 + std::ldexp(1.0, -40)),
                           m * (1 - std::ldexp(1.0, -40)),
                           f.vals[i],
                           f.vals[i + 1]};
      for (double x : xs) {
        for (double sx : {x, -x}) {
          check_f64(sx, bad);
          ++n;
          if (static_cast<double>(static_cast<float>(sx)) != sx) {
            ++not_f32;
            if (enc32(k, static_cast<float>(sx)) != f.encode(sx)) ++double_rounding_differs;
          }
        }
      }
    }
    // The overflow threshold and its neighbours.
    const double t = f.satfinite ? f.vals[f.max_code] + (f.vals[f.max_code] - f.vals[f.max_code - 1]) / 2 : f.overflow;
    for (double x : {t, std::nextafter(t, 0.0), std::nextafter(t, HUGE_VAL), 2 * t, t * 1e10}) {
      check_f64(x, bad);
      check_f64(-x, bad);
    }
  }
  KCHECK_EQ(bad, 0) << "of " << n << " doubles near boundaries";
  std::cout << "    " << n << " doubles next to midpoints, " << not_f32 << " not float32 values, " << double_rounding_differs
            << " where rounding through float32 would be wrong" << std::endl;
  KCHECK(not_f32 > 100000) << not_f32;
  // The set has teeth: rounding these through float32 would be wrong many times.
  KCHECK(double_rounding_differs > 1000) << double_rounding_differs;
}

KTEST(numerics, f64_encoders_on_specials_and_random) {
  int64_t bad = 0;
  const double inf = HUGE_VAL;
  const double xs[] = {0.0, -0.0, inf, -inf, DBL_MAX, -DBL_MAX, DBL_MIN, -DBL_MIN,
                       std::numeric_limits<double>::denorm_min(), -std::numeric_limits<double>::denorm_min(),
                       static_cast<double>(FLT_MAX), std::nextafter(static_cast<double>(FLT_MAX), inf), 1e39, -1e39,
                       std::ldexp(255.5, 120), std::nextafter(std::ldexp(255.5, 120), 0.0), 1e-300, -1e-300,
                       std::ldexp(1.0, -134), std::nextafter(std::ldexp(1.0, -134), inf), std::ldexp(1.0, -150),
                       464.0, 464.00000000000006, 61440.0, 61439.999999999993, 65520.0, 65519.999999999993};
  for (double x : xs) check_f64(x, bad);
  KCHECK_EQ(hex(num::f64_to_bf16(std::ldexp(255.5, 120))), hex(0x7F80));  // bfloat16 overflow threshold
  KCHECK_EQ(hex(num::f64_to_bf16(std::nextafter(std::ldexp(255.5, 120), 0.0))), hex(0x7F7F));
  KCHECK_EQ(hex(num::f64_to_e4m3(1e300)), hex(0x7E));
  KCHECK_EQ(hex(num::f64_to_e5m2(-inf)), hex(0xFB));
  KCHECK_EQ(hex(num::f64_to_f16(-0.0)), hex(0x8000));
  KCHECK_EQ(hex(num::f64_to_e4m3(-1e-300)), hex(0x80));
  const uint64_t nans[] = {0x7FF8000000000000ull, 0x7FF0000000000001ull, 0x7FFFFFFFFFFFFFFFull,
                           0xFFF8000000000000ull, 0xFFF0000000000001ull, 0x7FF0000020000000ull};
  for (uint64_t nb : nans) {
    const double x = bitsd(nb);
    check_f64(x, bad);
    const bool neg = (nb >> 63) != 0;
    KCHECK_EQ(hex(num::f64_to_e4m3(x)), hex(0x7F)) << hex(nb);
    KCHECK_EQ(hex(num::f64_to_e5m2(x)), hex(0x7F)) << hex(nb);
    KCHECK_EQ(hex(num::f64_to_f16(x)), hex(neg ? 0xFE00 : 0x7E00)) << hex(nb);
    KCHECK_EQ(hex(num::f64_to_bf16(x)), hex(neg ? 0xFFC0 : 0x7FC0)) << hex(nb);
  }
  // Random doubles: random bit patterns with the exponent in the narrow formats' reach.
  for (uint64_t i = 0; i < 2000000; ++i) {
    const uint64_t r = splitmix(0xD0B1Eull + i);
    const uint64_t e = 1023 - 140 + (r >> 52) % 280;  // 2^-140 .. 2^140
    check_f64(bitsd((r & 0x800FFFFFFFFFFFFFull) | (e << 52)), bad);
    if (i % 8 == 0) check_f64(bitsd(splitmix(i ^ 0xABCDull)), bad);  // any pattern at all
  }
  KCHECK_EQ(bad, 0);
}

// ---- integer conversions ---------------------------------------------------------------

template <class I>
I ref_int(double d, long double lo, long double hi) {
  if (std::isnan(d)) return I(0);
  const long double t = std::truncl(static_cast<long double>(d));
  if (t < lo) return static_cast<I>(lo);
  if (t > hi) return static_cast<I>(hi);
  return static_cast<I>(t);
}

KTEST(numerics, float_to_int_truncates_saturates_and_zeroes_nan) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = HUGE_VAL;
  // Explicit expectations.
  KCHECK_EQ(num::f64_to_i32(nan), 0);
  KCHECK_EQ(num::f64_to_i32(-nan), 0);
  KCHECK_EQ(num::f64_to_i32(inf), INT32_MAX);
  KCHECK_EQ(num::f64_to_i32(-inf), INT32_MIN);
  KCHECK_EQ(num::f64_to_i32(0.5), 0);
  KCHECK_EQ(num::f64_to_i32(-0.5), 0);
  KCHECK_EQ(num::f64_to_i32(-0.999), 0);
  KCHECK_EQ(num::f64_to_i32(1.999), 1);
  KCHECK_EQ(num::f64_to_i32(-1.999), -1);
  KCHECK_EQ(num::f64_to_i32(2147483647.0), INT32_MAX);
  KCHECK_EQ(num::f64_to_i32(2147483647.75), INT32_MAX);
  KCHECK_EQ(num::f64_to_i32(2147483648.0), INT32_MAX);
  KCHECK_EQ(num::f64_to_i32(2147483646.5), 2147483646);
  KCHECK_EQ(num::f64_to_i32(-2147483648.0), INT32_MIN);
  KCHECK_EQ(num::f64_to_i32(-2147483648.75), INT32_MIN);
  KCHECK_EQ(num::f64_to_i32(-2147483649.0), INT32_MIN);
  KCHECK_EQ(num::f64_to_i32(-2147483647.5), -2147483647);
  KCHECK_EQ(num::f64_to_i32(1e300), INT32_MAX);
  KCHECK_EQ(num::f64_to_i8(127.9), 127);
  KCHECK_EQ(num::f64_to_i8(128.0), 127);
  KCHECK_EQ(num::f64_to_i8(-128.9), -128);
  KCHECK_EQ(num::f64_to_i8(-129.0), -128);
  KCHECK_EQ(num::f64_to_i8(-127.5), -127);
  KCHECK_EQ(num::f64_to_i8(nan), 0);
  KCHECK_EQ(num::f64_to_i8(-inf), -128);
  KCHECK_EQ(static_cast<int>(num::f64_to_u8(256.0)), 255);
  KCHECK_EQ(static_cast<int>(num::f64_to_u8(255.9)), 255);
  KCHECK_EQ(static_cast<int>(num::f64_to_u8(254.9)), 254);
  KCHECK_EQ(static_cast<int>(num::f64_to_u8(-1.0)), 0);
  KCHECK_EQ(static_cast<int>(num::f64_to_u8(-0.9)), 0);
  KCHECK_EQ(static_cast<int>(num::f64_to_u8(nan)), 0);
  KCHECK_EQ(static_cast<int>(num::f64_to_u8(inf)), 255);
  KCHECK_EQ(static_cast<int>(num::f64_to_u8(-inf)), 0);

  // Sweeps against the truncl/clamp reference.
  std::vector<double> xs = {nan, -nan, inf, -inf, 0.0, -0.0, DBL_MIN, -DBL_MIN, DBL_MAX, -DBL_MAX,
                            std::numeric_limits<double>::denorm_min(), 1e19, -1e19};
  for (int k = -300 * 16; k <= 300 * 16; ++k) xs.push_back(k / 16.0);
  for (double c : {2147483648.0, -2147483648.0, 2147483647.0, -2147483647.0, 256.0, 255.0, -129.0, 128.0, 127.0}) {
    for (int k = -40; k <= 40; ++k) xs.push_back(c + k / 8.0);
    xs.push_back(std::nextafter(c, 0.0));
    xs.push_back(std::nextafter(c, HUGE_VAL));
    xs.push_back(std::nextafter(c, -HUGE_VAL));
  }
  for (uint64_t i = 0; i < 100000; ++i) xs.push_back(bitsd(splitmix(i + 77)));
  for (uint64_t i = 0; i < 100000; ++i) xs.push_back(static_cast<double>(static_cast<int64_t>(splitmix(i + 99)) >> (i % 40)) / 4.0);
  int64_t bad = 0;
  for (double x : xs) {
    const int32_t w32 = ref_int<int32_t>(x, -2147483648.0L, 2147483647.0L);
    const int8_t w8 = ref_int<int8_t>(x, -128.0L, 127.0L);
    const uint8_t wu8 = ref_int<uint8_t>(x, 0.0L, 255.0L);
    if ((num::f64_to_i32(x) != w32 || num::f64_to_i8(x) != w8 || num::f64_to_u8(x) != wu8) && ++bad <= 5) {
      KCHECK(false) << "x=" << show(x) << " i32 " << num::f64_to_i32(x) << " want " << w32 << "; i8 "
                    << int(num::f64_to_i8(x)) << " want " << int(w8) << "; u8 " << int(num::f64_to_u8(x)) << " want "
                    << int(wu8);
    }
  }
  KCHECK_EQ(bad, 0) << "of " << xs.size();
}

// ---- el::convert ---------------------------------------------------------------------

// A source element as the reference sees it: its exact value (NaN for NaNs).
struct Src {
  uint64_t raw;  // storage bits
  double value;
};

const Format* narrow_of(DType t) {
  switch (t) {
    case DType::Float8E4M3: return &kE4M3();
    case DType::Float8E5M2: return &kE5M2();
    case DType::Float16: return &kF16();
    case DType::BFloat16: return &kBF16();
    default: return nullptr;
  }
}

// Round-to-nearest-even of a finite double to float32 by scaling to an
// integer significand and std::nearbyint (default rounding mode is to nearest even).
double ref_round_f32(double v) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return v;
  int e = std::ilogb(v);
  if (e < -126) e = -126;
  const double r = std::ldexp(std::nearbyint(std::ldexp(v, 23 - e)), e - 23);
  if (std::fabs(r) > static_cast<double>(FLT_MAX)) return std::copysign(HUGE_VAL, v);
  return r;
}

// Expected storage bits of convert(src) into dtype d, per element.h's rules.
// *nan_ok: for float32 destinations any NaN is accepted.
uint64_t ref_convert(DType s, DType d, const Src& x, bool* any_nan) {
  *any_nan = false;
  const double v = x.value;
  if (s == d) return x.raw;
  if (d == DType::Bool) return (std::isnan(v) || v != 0) ? 1 : 0;
  if (d == DType::Int8 || d == DType::UInt8 || d == DType::Int32) {
    if (dtype_is_float(s)) {
      if (d == DType::Int8) return static_cast<uint8_t>(ref_int<int8_t>(v, -128.0L, 127.0L));
      if (d == DType::UInt8) return ref_int<uint8_t>(v, 0.0L, 255.0L);
      return static_cast<uint32_t>(ref_int<int32_t>(v, -2147483648.0L, 2147483647.0L));
    }
    // integer (or bool) source: wrap modulo 2^bits
    const int bits = d == DType::Int32 ? 32 : 8;
    const int64_t mod = int64_t(1) << bits;
    const int64_t iv = static_cast<int64_t>(v);
    return static_cast<uint64_t>(((iv % mod) + mod) % mod);
  }
  if (d == DType::Float32) {
    if (std::isnan(v)) {
      *any_nan = true;
      return 0;
    }
    return fbits(static_cast<float>(ref_round_f32(v)));  // the cast is exact here
  }
  return narrow_of(d)->encode(v);
}

std::vector<Src> sources_of(DType s) {
  std::vector<Src> out;
  switch (s) {
    case DType::Float8E4M3:
    case DType::Float8E5M2:
    case DType::Float16:
    case DType::BFloat16: {
      const Format& f = *narrow_of(s);
      for (uint32_t c = 0; c < (f.sign_bit << 1); ++c) out.push_back({c, f.decode(c)});
      break;
    }
    case DType::Int8:
      for (int c = 0; c < 256; ++c) out.push_back({static_cast<uint64_t>(c), static_cast<double>(static_cast<int8_t>(c))});
      break;
    case DType::UInt8:
      for (int c = 0; c < 256; ++c) out.push_back({static_cast<uint64_t>(c), static_cast<double>(c)});
      break;
    case DType::Bool:
      out.push_back({0, 0.0});
      out.push_back({1, 1.0});
      break;
    case DType::Int32: {
      std::vector<int64_t> vs = {0, 1, -1, 127, 128, -128, -129, 255, 256, 300, -300, 65504, 65519, 65520, 65536,
                                 16777216, 16777217, 16842753, 33554435, 2147483647, -2147483647 - 1, -2147483647,
                                 57344, 61440, 61439, 448, 464, 465};
      for (uint64_t i = 0; i < 100000; ++i) vs.push_back(static_cast<int32_t>(splitmix(i * 3 + 1) >> (i % 32)));
      for (int64_t v : vs) out.push_back({static_cast<uint32_t>(static_cast<int32_t>(v)), static_cast<double>(static_cast<int32_t>(v))});
      break;
    }
    case DType::Float32: {
      std::vector<float> vs = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 127.5f, 128.0f, -128.5f, -129.0f, 255.5f, 256.0f,
                               -0.99f, 2147483520.0f, 2147483648.0f, -2147483648.0f, -2147483904.0f, 448.0f, 464.0f,
                               65520.0f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX, FLT_MIN,
                               std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(), bitsf(0x7FC00000u), bitsf(0xFF800001u)};
      for (uint64_t i = 0; i < 100000; ++i) vs.push_back(bitsf(static_cast<uint32_t>(splitmix(i + 5))));
      for (uint64_t i = 0; i < 50000; ++i) vs.push_back(static_cast<float>(static_cast<int64_t>(splitmix(i + 11)) >> (33 + i % 30)) / 4.0f);
      for (float f : vs) out.push_back({fbits(f), static_cast<double>(f)});
      break;
    }
  }
  return out;
}

template <class S, class D>
uint64_t run_convert(uint64_t raw) {
  typename S::T x;
  std::memcpy(&x, &raw, sizeof(x));  // little-endian: low bytes hold the value
  const typename D::T y = el::convert<S, D>(x);
  uint64_t out = 0;
  std::memcpy(&out, &y, sizeof(y));
  return out;
}

const DType kAll[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2,
                      DType::Int8,    DType::UInt8,   DType::Int32,    DType::Bool};

KTEST(numerics, convert_follows_cast_rules_for_all_pairs) {
  for (DType s : kAll) {
    const std::vector<Src> srcs = sources_of(s);
    for (DType d : kAll) {
      int64_t bad = 0;
      el::visit(s, [&](auto stag) {
        el::visit(d, [&](auto dtag) {
          using S = decltype(stag);
          using D = decltype(dtag);
          for (const Src& x : srcs) {
            bool any_nan = false;
            const uint64_t want = ref_convert(s, d, x, &any_nan);
            const uint64_t got = run_convert<S, D>(x.raw);
            const bool ok = any_nan ? std::isnan(bitsf(static_cast<uint32_t>(got))) : got == want;
            if (!ok && ++bad <= 3) {
              KCHECK(false) << dtype_name(s) << " -> " << dtype_name(d) << " of " << hex(x.raw) << " (" << x.value
                            << ") gives " << hex(got) << " want " << hex(want);
            }
          }
        });
      });
      KCHECK_EQ(bad, 0) << dtype_name(s) << " -> " << dtype_name(d);
    }
  }
}

KTEST(numerics, convert_spot_values) {
  KCHECK_EQ(int(el::convert<el::I32, el::I8>(300)), 44);
  KCHECK_EQ(int(el::convert<el::I32, el::I8>(-129)), 127);
  KCHECK_EQ(int(el::convert<el::I32, el::I8>(128)), -128);
  KCHECK_EQ(int(el::convert<el::I32, el::U8>(-1)), 255);
  KCHECK_EQ(int(el::convert<el::I32, el::U8>(256)), 0);
  KCHECK_EQ(int(el::convert<el::I8, el::U8>(-1)), 255);
  KCHECK_EQ(int(el::convert<el::U8, el::I8>(200)), -56);
  KCHECK_EQ(int(el::convert<el::I8, el::I32>(-5)), -5);
  KCHECK_EQ(int(el::convert<el::Bool, el::I32>(1)), 1);
  // Anything -> bool is x != 0: NaN is true, -0 is false, 256 does not wrap to 0.
  KCHECK_EQ(int(el::convert<el::F32, el::Bool>(std::numeric_limits<float>::quiet_NaN())), 1);
  KCHECK_EQ(int(el::convert<el::F32, el::Bool>(-0.0f)), 0);
  KCHECK_EQ(int(el::convert<el::F32, el::Bool>(std::numeric_limits<float>::denorm_min())), 1);
  KCHECK_EQ(int(el::convert<el::F16, el::Bool>(0x8000)), 0);
  KCHECK_EQ(int(el::convert<el::F16, el::Bool>(0x7E01)), 1);
  KCHECK_EQ(int(el::convert<el::BF16, el::Bool>(0xFFC0)), 1);
  KCHECK_EQ(int(el::convert<el::E4M3, el::Bool>(0x80)), 0);
  KCHECK_EQ(int(el::convert<el::E4M3, el::Bool>(0x7F)), 1);
  KCHECK_EQ(int(el::convert<el::E5M2, el::Bool>(0x7D)), 1);
  KCHECK_EQ(int(el::convert<el::I32, el::Bool>(256)), 1);
  KCHECK_EQ(int(el::convert<el::I8, el::Bool>(0)), 0);
  // Float -> int truncates, NaN -> 0, saturates.
  KCHECK_EQ(int(el::convert<el::F32, el::I8>(-129.5f)), -128);
  KCHECK_EQ(int(el::convert<el::F32, el::U8>(-3.5f)), 0);
  KCHECK_EQ(int(el::convert<el::F32, el::I32>(std::numeric_limits<float>::quiet_NaN())), 0);
  KCHECK_EQ(int(el::convert<el::E4M3, el::I8>(0x7E)), 127);  // 448
  KCHECK_EQ(int(el::convert<el::BF16, el::U8>(0x437F)), 255);  // 255
  // int32 -> float rounds once from the exact value (not through float32).
  KCHECK_EQ(hex(el::convert<el::I32, el::BF16>(16842753)), hex(0x4B81));
  KCHECK_EQ(hex(el::convert<el::I32, el::F16>(65520)), hex(0x7C00));
  KCHECK_EQ(hex(el::convert<el::I32, el::E4M3>(100000)), hex(0x7E));
  KCHECK_EQ((el::convert<el::I32, el::F32>(16777217)), 16777216.0f);
  KCHECK_EQ((el::convert<el::I32, el::F32>(16777219)), 16777220.0f);
}

}  // namespace
