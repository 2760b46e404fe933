// The rope cases and float64 reference shared by the CPU suite (test_rope.cpp)
// and the CUDA suite (test_cuda_nn.cpp): random layouts, positions including
// negative and extreme ones, both pair layouts, two thetas.
#pragma once
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "nn_testing.h"

namespace roperef {

using kiln::DType;
using nnt::Layout;
using nnt::Rng;
using nnt::Tensor;
using vd = std::vector<double>;

struct Case {
  DType dt;
  int64_t B, H, S, D;
  bool batched, interleaved;
  double theta;
  Tensor x, pos, y;
  std::string name() const {
    return "rope " + x.describe() + " y " + y.lay + (batched ? " positions [B,S]" : " positions [S]") +
           (interleaved ? " interleaved" : " half") + " theta " + std::to_string(theta);
  }
};

inline Case make_case(DType dt, int64_t B, int64_t H, int64_t S, int64_t D, Rng& rng) {
  Case c{dt, B, H, S, D, rng.below(2) == 1, rng.below(2) == 1, rng.below(2) ? 10000.0 : 500000.0, {}, {}, {}};
  c.x = nnt::make(dt, {B, H, S, D}, nnt::random_layout(rng, true), rng);
  c.x.randomize(rng, -2, 2);
  if (c.batched) {
    c.pos = nnt::make(DType::Int32, {B, S}, nnt::random_layout(rng, true), rng);
  } else {
    c.pos = nnt::make(DType::Int32, {S}, nnt::random_layout(rng, false), rng);
  }
  for (int64_t i = 0; i < c.pos.numel(); ++i) {
    const int64_t kind = rng.below(10);
    double p = static_cast<double>(rng.below(4096));
    if (kind == 0) p = -static_cast<double>(rng.below(100));
    if (kind == 1) p = rng.below(2) ? INT_MAX : INT_MIN;
    if (kind == 2) p = static_cast<double>(rng.below(1 << 30));
    c.pos.set(i, p);
  }
  c.y = nnt::make(dt, {B, H, S, D}, static_cast<Layout>(rng.below(3)), rng);
  return c;
}

// Pair indices of pair i.
inline void pair(const Case& c, int64_t i, int64_t* i0, int64_t* i1) {
  *i0 = c.interleaved ? 2 * i : i;
  *i1 = c.interleaved ? 2 * i + 1 : i + c.D / 2;
}

// float64 rope of row-major values x (the layout of x's shape).
inline vd ref_rope(const Case& c, const vd& x, bool inverse) {
  vd y(x.size());
  const int64_t half = c.D / 2;
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t h = 0; h < c.H; ++h) {
      for (int64_t s = 0; s < c.S; ++s) {
        const double p = c.pos.get(c.batched ? b * c.S + s : s);
        const int64_t row = ((b * c.H + h) * c.S + s) * c.D;
        for (int64_t i = 0; i < half; ++i) {
          const double a = p * std::pow(c.theta, -static_cast<double>(2 * i) / static_cast<double>(c.D));
          const double cs = std::cos(a), sn = inverse ? -std::sin(a) : std::sin(a);
          int64_t i0, i1;
          pair(c, i, &i0, &i1);
          const double x0 = x[static_cast<size_t>(row + i0)], x1 = x[static_cast<size_t>(row + i1)];
          y[static_cast<size_t>(row + i0)] = x0 * cs - x1 * sn;
          y[static_cast<size_t>(row + i1)] = x1 * cs + x0 * sn;
        }
      }
    }
  }
  return y;
}

// |x0| + |x1| of the pair each element belongs to.
inline vd pair_scale(const Case& c, const vd& x) {
  vd s(x.size());
  for (int64_t r = 0; r < c.B * c.H * c.S; ++r) {
    for (int64_t i = 0; i < c.D / 2; ++i) {
      int64_t i0, i1;
      pair(c, i, &i0, &i1);
      const double m = std::fabs(x[static_cast<size_t>(r * c.D + i0)]) + std::fabs(x[static_cast<size_t>(r * c.D + i1)]);
      s[static_cast<size_t>(r * c.D + i0)] = m + 1e-30;
      s[static_cast<size_t>(r * c.D + i1)] = m + 1e-30;
    }
  }
  return s;
}

}  // namespace roperef
