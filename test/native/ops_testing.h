// Test tensors and helpers for the suites 'fastmath', 'unary', 'reduce',
// 'softmax' and 'embedding': host tensors (testing.h) in the fixed layouts
// (contiguous, transposed, strided with an offset, expanded with stride 0)
// with guard bytes, element access as float64 (exact decoding from the IEEE
// definitions; writes round once, through kiln's encoders, which the
// 'numerics' suite checks), runs on every ISA level and thread count, and ulp
// distances.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kiln/cpu_features.h"
#include "kiln/threadpool.h"
#include "testing.h"

namespace ot {

using kiln::DType;
using kiln::View;
using kt::clone;
using kt::decode;
using kt::encode;
using kt::isa_levels;
using kt::Layout;
using kt::layout_name;
using kt::max_finite;
using kt::min_exp;
using kt::precision;
using kt::round_to;
using kt::shape_str;
using Tensor = kt::HostTensor;
using Restore = kt::RestoreIsa;

// SplitMix64 seeded through a multiply, so that neighbouring seeds start far apart.
struct Rng : kt::Rng {
  explicit Rng(uint64_t seed) : kt::Rng(seed * 0x9E3779B97F4A7C15ull + 1) {}
};

// |got - want| in units of the last place of dt at `want` (exact reals; inf
// counts as the next power of two after the largest finite value). 0 when both
// are NaN or equal (+0 and -0 are equal here), huge when only one is NaN.
inline double ulp_diff(DType dt, double got, double want) {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want) ? 0.0 : 1e30;
  if (got == want) return 0.0;
  const double top = std::ldexp(1.0, static_cast<int>(std::ilogb(max_finite(dt))) + 1);
  auto fix = [&](double v) { return std::isinf(v) || std::fabs(v) > top ? std::copysign(top, v) : v; };
  const double g = fix(got), w = fix(want);
  const int e = std::max(w == 0 ? min_exp(dt) : std::ilogb(w), min_exp(dt));
  return std::fabs(g - w) / std::ldexp(1.0, e - (precision(dt) - 1));
}

// ---- tensors -----------------------------------------------------------------------------

constexpr unsigned char kGuard = 0xA5;
// Two spare elements after the last one a view addresses (after the offset when it is empty).
constexpr kt::Padding kPadding{kGuard, 2, 2};

// A tensor in a fixed layout (Strided starts at element 3).
inline Tensor make(DType dt, const std::vector<int64_t>& shape, Layout layout = Layout::Contig) {
  return kt::make_fixed(dt, shape, layout, kPadding, 3);
}

// Random value generators for float tensors: mostly moderate values, some
// specials when `specials`.
inline double random_float(Rng& r, double scale, bool specials) {
  if (specials) {
    const int64_t k = r.below(40);
    const double sp[] = {0.0, -0.0, HUGE_VAL, -HUGE_VAL, std::numeric_limits<double>::quiet_NaN(), 1e-40, -3e38, 88.0};
    if (k < 8) return sp[k];
  }
  return r.uniform(-scale, scale);
}

inline void fill(Tensor& t, Rng& r, double scale, bool specials = false) {
  for (int64_t k = 0; k < t.numel(); ++k) {
    if (t.v.dtype == DType::Int32) {
      t.seti(k, static_cast<int32_t>(r.below(2001) - 1000));
    } else {
      t.set(k, random_float(r, scale, specials));
    }
  }
}

// ---- ISA levels and threads ------------------------------------------------------------------

// Runs `call` (a kernel run into fresh outputs, returning their bytes) on
// every ISA level, and with 1, 2 and 3 threads at the first level when
// `threads`; checks that every run gives the same bytes as the first and
// returns them. Counts the runs into *runs.
inline std::vector<unsigned char> same_everywhere(const std::string& ctx, const std::function<std::vector<unsigned char>()>& call,
                                                  bool threads, int64_t* runs = nullptr) {
  std::vector<unsigned char> first;
  bool have = false;
  std::vector<std::pair<kiln::cpu::IsaLevel, int>> configs;
  for (kiln::cpu::IsaLevel l : isa_levels()) configs.push_back({l, 0});
  if (threads) {
    for (int n : {1, 2, 3}) configs.push_back({isa_levels().back(), n});
  }
  for (const auto& c : configs) {
    kiln::cpu::set_isa(c.first);
    if (c.second) kiln::cpu::set_num_threads(c.second);
    std::vector<unsigned char> got = call();
    if (c.second) kiln::cpu::set_num_threads(0);
    if (runs) ++*runs;
    if (!have) {
      first = got;
      have = true;
      continue;
    }
    if (got != first) {
      size_t i = 0;
      while (i < got.size() && i < first.size() && got[i] == first[i]) ++i;
      KCHECK(false) << ctx << ": isa " << kiln::cpu::isa_name(c.first) << " threads " << c.second
                    << " differs from the first run at byte " << i << " of " << first.size();
    }
  }
  kiln::cpu::set_isa(isa_levels().back());
  return first;
}

}  // namespace ot
