// Suite 'rng': kiln/philox.h and the 'rand' / 'randn' CPU kernels.
//
// References: Random123's published Philox4x32-10 known-answer vectors; a
// second Philox written here from the paper (64-bit products); long double
// libm (logl, cosl, sinl, erfcl) for the float64 log / cos / sin / Box-Muller;
// exact moments of the target distributions for the statistical checks.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/numerics.h"
#include "kiln/philox.h"
#include "kiln/registry.h"
#include "kiln/storage.h"
#include "kiln/threadpool.h"
#include "kiln/view.h"

namespace {

using namespace kiln;
using kt::run_binary;
using kt::run_cast;
using kt::run_fill;
using kt::run_random;

const long double kPi = 3.141592653589793238462643383279502884L;

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Philox4x32-10 from Salmon et al. (SC'11), written independently:
// round: (hi(M0*c0), lo(M0*c0)), (hi(M1*c2), lo(M1*c2)) ->
//        c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); key += (W0, W1) after each round.
struct RefPhilox {
  uint32_t w[4];
};
RefPhilox ref_philox(const uint32_t ctr_in[4], const uint32_t key_in[2]) {
  uint32_t c[4] = {ctr_in[0], ctr_in[1], ctr_in[2], ctr_in[3]};
  uint32_t k[2] = {key_in[0], key_in[1]};
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = 0xD2511F53ull * c[0];
    const uint64_t p1 = 0xCD9E8D57ull * c[2];
    const uint32_t n[4] = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
                           static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    std::memcpy(c, n, sizeof(c));
    k[0] += 0x9E3779B9u;
    k[1] += 0xBB67AE85u;
  }
  return RefPhilox{{c[0], c[1], c[2], c[3]}};
}

// The block for (seed, counter) as philox.h documents it: counter = 64-bit
// block index in words 0-1, words 2-3 zero; key = the 64-bit seed.
RefPhilox ref_block(uint64_t seed, uint64_t counter) {
  const uint32_t c[4] = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0, 0};
  const uint32_t k[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  return ref_philox(c, k);
}

double ref_uniform(uint64_t seed, uint64_t offset, uint64_t i, int bits) {
  const uint32_t w = ref_block(seed, offset + i / 4).w[i % 4];
  return std::ldexp(static_cast<double>(w >> (32 - bits)), -bits);
}

// Box-Muller in long double: element 2j uses radius * cos, 2j+1 radius * sin,
// pair j%2 of block offset + i/4 supplies the two words.
long double ref_normal(uint64_t seed, uint64_t offset, uint64_t i, long double* radius) {
  const RefPhilox b = ref_block(seed, offset + i / 4);
  const int pair = static_cast<int>((i / 2) % 2);
  const long double u1 = (static_cast<long double>(b.w[2 * pair]) + 1) / 4294967296.0L;
  const long double u2 = static_cast<long double>(b.w[2 * pair + 1]) / 4294967296.0L;
  const long double r = std::sqrt(-2 * std::log(u1));
  if (radius) *radius = r;
  return i % 2 == 0 ? r * std::cos(2 * kPi * u2) : r * std::sin(2 * kPi * u2);
}

double ulp_of(float f) {
  const float a = std::fabs(f);
  return static_cast<double>(std::nextafter(a, FLT_MAX)) - static_cast<double>(a);
}

// ---- Philox -------------------------------------------------------------------------

KTEST(rng, philox_known_answer_vectors) {
  // Random123 kat_vectors, "philox4x32 10".
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  } kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    const rng::Philox4 got = rng::philox4x32_10(k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], k.key[0], k.key[1]);
    const RefPhilox ref = ref_philox(k.ctr, k.key);
    for (int w = 0; w < 4; ++w) {
      KCHECK_EQ(got.v[w], k.out[w]) << "kiln word " << w << " for ctr " << std::hex << k.ctr[0];
      KCHECK_EQ(ref.w[w], k.out[w]) << "reference word " << w;
    }
  }
}

KTEST(rng, philox_matches_reference_and_block_layout) {
  int64_t bad = 0;
  for (uint64_t i = 0; i < 200000; ++i) {
    const uint64_t r0 = splitmix(4 * i), r1 = splitmix(4 * i + 1), r2 = splitmix(4 * i + 2);
    const uint32_t c[4] = {static_cast<uint32_t>(r0), static_cast<uint32_t>(r0 >> 32), static_cast<uint32_t>(r1),
                           static_cast<uint32_t>(r1 >> 32)};
    const uint32_t k[2] = {static_cast<uint32_t>(r2), static_cast<uint32_t>(r2 >> 32)};
    const rng::Philox4 got = rng::philox4x32_10(c[0], c[1], c[2], c[3], k[0], k[1]);
    const RefPhilox want = ref_philox(c, k);
    const rng::Philox4 blk = rng::block(r2, r0);
    const RefPhilox want_blk = ref_block(r2, r0);
    for (int w = 0; w < 4; ++w) {
      if ((got.v[w] != want.w[w] || blk.v[w] != want_blk.w[w]) && ++bad <= 4) KCHECK(false) << "case " << i;
    }
  }
  KCHECK_EQ(bad, 0);
}

// ---- log_unit / cos_sin_turn ----------------------------------------------------------

KTEST(rng, log_unit_accuracy) {
  std::vector<uint64_t> ks;
  for (uint64_t k = 1; k <= (1u << 16); ++k) ks.push_back(k);                            // tiny u
  for (uint64_t j = 0; j < (1u << 16); ++j) ks.push_back((uint64_t(1) << 32) - j);         // u -> 1, incl. u = 1
  const uint64_t kSqrtHalf = 3037000500ull;                                               // sqrt(1/2) * 2^32, rounded
  for (int64_t d = -(1 << 16); d <= (1 << 16); ++d) ks.push_back(kSqrtHalf + d);
  for (int p = 1; p < 32; ++p) {
    for (int64_t d = -64; d <= 64; ++d) ks.push_back((uint64_t(1) << p) + d);             // binade edges
  }
  for (uint64_t i = 0; i < 1000000; ++i) ks.push_back(1 + splitmix(i) % (uint64_t(1) << 32));
  double max_rel = 0, max_abs_near1 = 0;
  int64_t bad = 0;
  for (uint64_t k : ks) {
    if (k == 0 || k > (uint64_t(1) << 32)) continue;
    const double u = std::ldexp(static_cast<double>(k), -32);
    const double got = rng::log_unit(u);
    const long double ref = std::log(static_cast<long double>(u));
    const double abs_err = static_cast<double>(std::fabs(static_cast<long double>(got) - ref));
    const double rel = ref == 0 ? abs_err : static_cast<double>(abs_err / std::fabs(ref));
    max_rel = std::max(max_rel, rel);
    const bool near1 = u > 0.999;
    if (near1) max_abs_near1 = std::max(max_abs_near1, abs_err);
    if ((rel >= 1e-13 || (near1 && abs_err >= 1e-15)) && ++bad <= 5) {
      KCHECK(false) << "log_unit(" << k << " * 2^-32) = " << got << ", logl gives " << static_cast<double>(ref);
    }
  }
  KCHECK_EQ(bad, 0);
  KCHECK_EQ(rng::log_unit(1.0), 0.0);
  KCHECK(std::fabs(rng::log_unit(std::ldexp(1.0, -32)) + 32 * 0.69314718055994530942) < 1e-13);
  std::cout << "    log_unit: max relative error " << max_rel << ", max absolute error near 1 " << max_abs_near1
            << " over " << ks.size() << " points" << std::endl;
}

KTEST(rng, cos_sin_turn_accuracy) {
  std::vector<uint64_t> ks;
  for (uint64_t q = 0; q < 4; ++q) {
    const int64_t base = static_cast<int64_t>(q << 30);  // 0, .25, .5, .75 turns
    for (int64_t d = -(1 << 14); d <= (1 << 14); ++d) {
      const int64_t k = base + d;
      if (k >= 0) ks.push_back(static_cast<uint64_t>(k));
    }
    for (int64_t d = -(1 << 10); d <= (1 << 10); ++d) ks.push_back(static_cast<uint64_t>(base + (1 << 29) + d));  // eighths
  }
  for (int64_t d = 1; d <= (1 << 14); ++d) ks.push_back((uint64_t(1) << 32) - d);  // up to 1 - 2^-32
  for (uint64_t i = 0; i < 1000000; ++i) ks.push_back(splitmix(i + 1234) >> 32);
  double max_err = 0;
  int64_t bad = 0;
  for (uint64_t k : ks) {
    const double v = std::ldexp(static_cast<double>(k), -32);
    double c, s;
    rng::cos_sin_turn(v, &c, &s);
    const long double a = 2 * kPi * static_cast<long double>(v);
    const double ec = static_cast<double>(std::fabs(c - std::cos(a)));
    const double es = static_cast<double>(std::fabs(s - std::sin(a)));
    max_err = std::max(max_err, std::max(ec, es));
    if ((ec >= 1e-13 || es >= 1e-13) && ++bad <= 5) {
      KCHECK(false) << "cos_sin_turn(" << k << " * 2^-32) = (" << c << ", " << s << ")";
    }
  }
  KCHECK_EQ(bad, 0);
  // Quadrant boundaries are exact.
  const double quads[4][2] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}};
  for (int q = 0; q < 4; ++q) {
    double c, s;
    rng::cos_sin_turn(q * 0.25, &c, &s);
    KCHECK_EQ(c, quads[q][0]) << "quadrant " << q;
    KCHECK_EQ(s, quads[q][1]) << "quadrant " << q;
  }
  std::cout << "    cos_sin_turn: max absolute error " << max_err << " over " << ks.size() << " points" << std::endl;
}

// ---- uniform_at / normal_at -------------------------------------------------------------

KTEST(rng, uniform_and_normal_match_independent_formulas) {
  int64_t bad = 0, normal_exact = 0, normal_n = 0;
  double worst_ulps = 0;
  const uint64_t seeds[] = {0, 1, 42, 0xDEADBEEFCAFEF00Dull, ~uint64_t(0)};
  const uint64_t offsets[] = {0, 3, 0xFFFFFFFEull, uint64_t(1) << 40, ~uint64_t(0) - 100};
  for (uint64_t seed : seeds) {
    for (uint64_t off : offsets) {
      for (uint64_t i = 0; i < 4096; ++i) {
        for (int bits : {24, 11, 8, 4, 3}) {
          const double got = rng::uniform_at(seed, off, i, bits);
          if (got != ref_uniform(seed, off, i, bits) && ++bad <= 5) {
            KCHECK(false) << "uniform_at(" << seed << ", " << off << ", " << i << ", " << bits << ")";
          }
        }
        long double radius;
        const float got = rng::normal_at(seed, off, i);
        const long double ref = ref_normal(seed, off, i, &radius);
        const double err = static_cast<double>(std::fabs(static_cast<long double>(got) - ref));
        ++normal_n;
        if (got == static_cast<float>(ref)) ++normal_exact;
        // float32 rounding (half an ulp) plus the float64 pipeline's own error.
        const double allowed = 0.5 * ulp_of(got) + 1e-13 * static_cast<double>(radius);
        worst_ulps = std::max(worst_ulps, err / ulp_of(got));
        if (err > allowed && ++bad <= 10) {
          KCHECK(false) << "normal_at(" << seed << ", " << off << ", " << i << ") = " << got << " vs "
                        << static_cast<double>(ref);
        }
      }
    }
  }
  KCHECK_EQ(bad, 0);
  // Nearly always the correctly rounded float32 of the exact Box-Muller value.
  KCHECK(normal_exact >= normal_n - normal_n / 10000) << normal_exact << " of " << normal_n;
  std::cout << "    normal_at: " << normal_exact << " of " << normal_n << " correctly rounded; worst "
            << worst_ulps << " ulp" << std::endl;
}

KTEST(rng, uniform_bits_range_and_exactness) {
  for (int bits = 1; bits <= 24; ++bits) {
    KCHECK_EQ(rng::uniform_bits(0u, bits), 0.0f) << bits;
    KCHECK_EQ(static_cast<double>(rng::uniform_bits(0xFFFFFFFFu, bits)), 1.0 - std::ldexp(1.0, -bits)) << bits;
    KCHECK(rng::uniform_bits(0xFFFFFFFFu, bits) < 1.0f) << bits;
  }
  const uint64_t kN = uint64_t(1) << 22;
  for (int bits : {24, 11, 8, 4, 3}) {
    const double scale = std::ldexp(1.0, bits);
    int64_t bad = 0;
    std::vector<int64_t> hist(bits <= 11 ? (size_t(1) << bits) : 0, 0);
    for (uint64_t i = 0; i < kN; ++i) {
      const float v = rng::uniform_at(77, 5, i, bits);
      const double k = v * scale;
      if (!(v >= 0.0f && v < 1.0f && k == std::floor(k)) && ++bad <= 3) {
        KCHECK(false) << "bits " << bits << " sample " << i << " = " << v;
      }
      if (!hist.empty()) ++hist[static_cast<size_t>(k)];
    }
    KCHECK_EQ(bad, 0) << "bits " << bits;
    if (!hist.empty()) {
      // Every value occurs; chi-square against equal frequencies within 5 sd of its mean.
      const double expect = static_cast<double>(kN) / hist.size();
      double chi2 = 0;
      bool all = true;
      for (int64_t h : hist) {
        chi2 += (h - expect) * (h - expect) / expect;
        all = all && h > 0;
      }
      const double dof = static_cast<double>(hist.size() - 1);
      KCHECK(all) << "bits " << bits;
      KCHECK(chi2 < dof + 5 * std::sqrt(2 * dof)) << "bits " << bits << " chi2 " << chi2 << " dof " << dof;
    }
  }
}

// Checks the central moments 1..4 of `xs` about the distribution's exact mean
// against the exact values mu[k], each within 5 standard errors
// sqrt((mu[2k] - mu[k]^2) / n).
void check_moments(const std::vector<double>& xs, double mean, const long double mu[9], const char* what) {
  long double m[5] = {0, 0, 0, 0, 0};
  for (double x : xs) {
    const long double d = x - mean;
    long double p = 1;
    for (int k = 1; k <= 4; ++k) {
      p *= d;
      m[k] += p;
    }
  }
  const long double n = static_cast<long double>(xs.size());
  const char* names[5] = {"", "mean", "variance", "third moment (skewness)", "fourth moment (kurtosis)"};
  for (int k = 1; k <= 4; ++k) {
    const long double got = m[k] / n;
    const long double se = std::sqrt((mu[2 * k] - mu[k] * mu[k]) / n);
    KCHECK(std::fabs(got - mu[k]) < 5 * se) << what << " " << names[k] << ": " << static_cast<double>(got)
                                            << " vs " << static_cast<double>(mu[k]) << " (se "
                                            << static_cast<double>(se) << ")";
  }
}

KTEST(rng, uniform_moments) {
  const uint64_t kN = uint64_t(1) << 22;
  for (int bits : {24, 11, 8, 4, 3}) {
    // Exact moments of the discrete uniform on {0, ..., N-1} / N about its mean.
    const uint64_t N = uint64_t(1) << bits;
    const long double mean = static_cast<long double>(N - 1) / (2 * N);
    long double mu[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    for (uint64_t k = 0; k < N; ++k) {
      const long double d = static_cast<long double>(k) / N - mean;
      long double p = 1;
      for (int j = 1; j <= 8; ++j) {
        p *= d;
        mu[j] += p;
      }
    }
    for (int j = 1; j <= 8; ++j) mu[j] /= N;
    std::vector<double> xs(kN);
    for (uint64_t i = 0; i < kN; ++i) xs[i] = rng::uniform_at(0xC0FFEE, 11, i, bits);
    check_moments(xs, static_cast<double>(mean), mu, ("uniform bits " + std::to_string(bits)).c_str());
  }
}

KTEST(rng, normal_moments_and_ks) {
  const uint64_t kN = uint64_t(1) << 22;
  std::vector<double> xs(kN);
  for (uint64_t i = 0; i < kN; ++i) xs[i] = rng::normal_at(0xBADC0DE, 3, i);
  const long double mu[9] = {1, 0, 1, 0, 3, 0, 15, 0, 105};
  check_moments(xs, 0.0, mu, "normal");
  // Kolmogorov-Smirnov against the normal CDF for 2^20 samples of another stream.
  const size_t kM = size_t(1) << 20;
  std::vector<double> ys(kM);
  for (size_t i = 0; i < kM; ++i) ys[i] = rng::normal_at(2024, 1000, i);
  std::sort(ys.begin(), ys.end());
  long double d = 0;
  for (size_t i = 0; i < kM; ++i) {
    const long double cdf = 0.5L * std::erfc(-static_cast<long double>(ys[i]) / std::sqrt(2.0L));
    d = std::max(d, std::max(static_cast<long double>(i + 1) / kM - cdf, cdf - static_cast<long double>(i) / kM));
  }
  const double ks = static_cast<double>(d * std::sqrt(static_cast<long double>(kM)));
  KCHECK(ks < 1.95) << "KS statistic sqrt(n) D = " << ks << " (p < 0.001 beyond 1.95)";
  // The same test detects a wrong distribution: a scaled normal fails it.
  long double d_bad = 0;
  for (size_t i = 0; i < kM; ++i) {
    const long double cdf = 0.5L * std::erfc(-static_cast<long double>(ys[i] * 1.01) / std::sqrt(2.0L));
    d_bad = std::max(d_bad, std::max(static_cast<long double>(i + 1) / kM - cdf, cdf - static_cast<long double>(i) / kM));
  }
  KCHECK(static_cast<double>(d_bad * std::sqrt(static_cast<long double>(kM))) > 1.95) << "KS has no power";
  // Uniform (24 bits) against U(0, 1) too.
  std::vector<double> us(kM);
  for (size_t i = 0; i < kM; ++i) us[i] = rng::uniform_at(99, 0, i, 24);
  std::sort(us.begin(), us.end());
  double du = 0;
  for (size_t i = 0; i < kM; ++i) {
    du = std::max(du, std::max(static_cast<double>(i + 1) / kM - us[i], us[i] - static_cast<double>(i) / kM));
  }
  KCHECK(du * std::sqrt(static_cast<double>(kM)) < 1.95) << "uniform KS " << du * std::sqrt(static_cast<double>(kM));
  std::cout << "    KS sqrt(n) D: normal " << ks << ", uniform " << du * std::sqrt(static_cast<double>(kM)) << std::endl;
}

KTEST(rng, counter_arithmetic_and_streams) {
  // Element i of offset o is element i + 4k of offset o - k.
  int64_t bad = 0;
  for (uint64_t o : {uint64_t(5), uint64_t(1000), (uint64_t(1) << 32) + 3, uint64_t(1) << 32}) {
    for (uint64_t k : {uint64_t(1), uint64_t(2), uint64_t(5)}) {
      for (uint64_t i = 0; i < 64; ++i) {
        if (rng::uniform_at(9, o, i, 24) != rng::uniform_at(9, o - k, i + 4 * k, 24)) ++bad;
        if (fbits(rng::normal_at(9, o, i)) != fbits(rng::normal_at(9, o - k, i + 4 * k))) ++bad;
      }
    }
  }
  KCHECK_EQ(bad, 0);
  // Different seeds (also differing only in the high word), offsets or elements give different numbers.
  auto same = [](uint64_t s1, uint64_t o1, uint64_t s2, uint64_t o2) {
    int64_t eq = 0;
    for (uint64_t i = 0; i < 4096; ++i) eq += rng::uniform_at(s1, o1, i, 24) == rng::uniform_at(s2, o2, i, 24);
    return eq;
  };
  KCHECK(same(1, 0, 2, 0) < 4) << "seeds 1 and 2";
  KCHECK(same(1, 0, 1 + (uint64_t(1) << 32), 0) < 4) << "seeds differing in the high word";
  KCHECK(same(1, 0, 1, uint64_t(1) << 32) < 4) << "offsets differing in the high word";
  KCHECK(same(1, 0, 1, 2000) < 4) << "offsets 0 and 2000";
  KCHECK_EQ(same(7, 3, 7, 3), 4096);
  // The four words of a block feed four consecutive elements.
  const rng::Philox4 b = rng::block(123, 10);
  for (int w = 0; w < 4; ++w) {
    KCHECK_EQ(static_cast<double>(rng::uniform_at(123, 8, 8 + w, 24)), std::ldexp(static_cast<double>(b.v[w] >> 8), -24));
  }
}

// ---- the 'rand' / 'randn' kernels ---------------------------------------------------------

struct Buffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t n) : bytes(n) {
    const Status s = storage_alloc(Device{}, n, &p);
    KCHECK(s.ok()) << s.message();
  }
  ~Buffer() { storage_free(Device{}, p, bytes); }
};

View make_view(void* base, size_t bytes, DType dt, std::vector<int64_t> shape, int64_t offset) {
  View v;
  v.base = base;
  v.storage_bytes = bytes;
  v.dtype = dt;
  v.ndim = static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int i = v.ndim - 1; i >= 0; --i) {
    v.shape[i] = shape[i];
    v.strides[i] = stride;
    stride *= shape[i];
  }
  v.offset = offset;
  return v;
}

int bits_for(DType t) {
  switch (t) {
    case DType::Float16: return 11;
    case DType::BFloat16: return 8;
    case DType::Float8E4M3: return 4;
    case DType::Float8E5M2: return 3;
    default: return 24;
  }
}
float decode(DType t, const unsigned char* p) {
  switch (t) {
    case DType::Float32: { float f; std::memcpy(&f, p, 4); return f; }
    case DType::Float16: { uint16_t h; std::memcpy(&h, p, 2); return num::f16_to_f32(h); }
    case DType::BFloat16: { uint16_t h; std::memcpy(&h, p, 2); return num::bf16_to_f32(h); }
    case DType::Float8E4M3: return num::e4m3_to_f32(*p);
    default: return num::e5m2_to_f32(*p);
  }
}
uint32_t encode(DType t, float f) {
  switch (t) {
    case DType::Float32: return fbits(f);
    case DType::Float16: return num::f32_to_f16(f);
    case DType::BFloat16: return num::f32_to_bf16(f);
    case DType::Float8E4M3: return num::f32_to_e4m3(f);
    default: return num::f32_to_e5m2(f);
  }
}

KTEST(rng, rand_randn_kernels_match_and_ignore_thread_count) {
  const DType dts[] = {DType::Float32, DType::BFloat16, DType::Float16, DType::Float8E4M3, DType::Float8E5M2};
  const int64_t seed = static_cast<int64_t>(0x0123456789ABCDEFull), offset = 7;
  const std::vector<int64_t> shape = {317, 331};  // 104927 elements: not a multiple of 4, several chunks
  const int64_t n = 317 * 331, lead = 3;         // the view starts 3 elements into its storage
  for (const char* op : {"rand", "randn"}) {
    const bool normal = op[4] == 'n';
    for (DType dt : dts) {
      const size_t es = dtype_size(dt);
      std::vector<std::vector<unsigned char>> runs;
      for (int threads : {1, 2, 3}) {
        cpu::set_num_threads(threads);
        Buffer buf((n + lead + 5) * es);
        std::memset(buf.p, 0xA5, buf.bytes);
        const View v = make_view(buf.p, buf.bytes, dt, shape, lead);
        const Status s = run_random(op, v, seed, offset);
        KCHECK(s.ok()) << op << " " << dtype_name(dt) << ": " << s.message();
        const unsigned char* bytes = static_cast<const unsigned char*>(buf.p);
        bool guards = true;
        for (size_t b = 0; b < lead * es; ++b) guards = guards && bytes[b] == 0xA5;
        for (size_t b = (n + lead) * es; b < buf.bytes; ++b) guards = guards && bytes[b] == 0xA5;
        KCHECK(guards) << op << " " << dtype_name(dt) << " wrote outside its view";
        runs.emplace_back(bytes + lead * es, bytes + (n + lead) * es);
      }
      KCHECK(runs[0] == runs[1] && runs[0] == runs[2]) << op << " " << dtype_name(dt) << " depends on the thread count";
      int64_t bad = 0;
      for (int64_t i = 0; i < n; ++i) {
        const unsigned char* p = runs[0].data() + i * es;
        uint32_t got = 0;
        std::memcpy(&got, p, es);
        const uint64_t u = static_cast<uint64_t>(i);
        const float v = normal ? rng::normal_at(static_cast<uint64_t>(seed), offset, u)
                               : rng::uniform_at(static_cast<uint64_t>(seed), offset, u, bits_for(dt));
        // rand is exact in the dtype; randn is rounded once from float32.
        const bool ok = got == encode(dt, v) && (normal || decode(dt, p) == v);
        if (!ok && ++bad <= 3) KCHECK(false) << op << " " << dtype_name(dt) << " element " << i;
      }
      KCHECK_EQ(bad, 0) << op << " " << dtype_name(dt);
    }
  }
  // A float32 randn element against the long double Box-Muller directly.
  {
    Buffer buf(64 * 4);
    const View v = make_view(buf.p, buf.bytes, DType::Float32, {64}, 0);
    KCHECK(run_random("randn", v, 5, 0).ok());
    const float* f = static_cast<const float*>(buf.p);
    for (int i = 0; i < 64; ++i) {
      const long double ref = ref_normal(5, 0, static_cast<uint64_t>(i), nullptr);
      KCHECK(std::fabs(f[i] - ref) <= ulp_of(f[i])) << "randn element " << i;
    }
  }
  cpu::set_num_threads(0);
}

KTEST(rng, rand_kernel_argument_errors) {
  Buffer buf(256);
  View v = make_view(buf.p, buf.bytes, DType::Float32, {4, 4}, 0);
  std::swap(v.strides[0], v.strides[1]);  // transposed: not contiguous
  Status s = run_random("rand", v, 1, 0);
  KCHECK(s.code() == StatusCode::ShapeError) << s.message();
  const View iv = make_view(buf.p, buf.bytes, DType::Int32, {4}, 0);
  s = run_random("randn", iv, 1, 0);
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  KCHECK_EQ(s.message(), std::string("kiln: op 'randn' has no kernel for dtype int32 on device cpu"));
  const View fv = make_view(buf.p, buf.bytes, DType::Float32, {4}, 0);
  KernelArgs a;
  a.op = "rand";
  a.out = &fv;
  a.n_out = 1;
  s = run_kernel(DType::Float32, a);  // no seed / offset
  KCHECK(s.code() == StatusCode::Internal) << s.message();
  // An empty output is fine and writes nothing.
  const View ev = make_view(nullptr, 0, DType::Float32, {0, 5}, 0);
  s = run_random("rand", ev, 1, 0);
  KCHECK(s.ok()) << s.message();
}

}  // namespace
