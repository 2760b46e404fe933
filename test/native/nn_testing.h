// Test tensors for the suites 'norm', 'rope' and 'attention': host storage
// with guard bytes around (and between) the elements a view addresses, random
// layouts (contiguous, permuted, padded with an offset and a non-unit last
// stride, broadcast), and element access as float64 (values are decoded
// exactly; writes round once to the dtype).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kiln/cpu_features.h"
#include "kiln/numerics.h"
#include "kiln/view.h"

namespace nnt {

using kiln::DType;
using kiln::View;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t x = (s += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }
  double normal() {  // Box-Muller
    const double u = (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53, v = unit();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
};

enum class Layout { Contig, Permuted, Padded, Broadcast };
inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contig: return "contig";
    case Layout::Permuted: return "permuted";
    case Layout::Padded: return "padded";
    default: return "broadcast";
  }
}

const unsigned char kGuard = 0xCD;

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

inline double decode(DType dt, const unsigned char* p) {
  switch (dt) {
    case DType::Float32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::Float16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return kiln::num::f16_to_f32(h);
    }
    case DType::BFloat16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return kiln::num::bf16_to_f32(h);
    }
    default: {
      int32_t i;
      std::memcpy(&i, p, 4);
      return i;
    }
  }
}

inline void encode(DType dt, double v, unsigned char* p) {
  switch (dt) {
    case DType::Float32: {
      const float f = static_cast<float>(v);
      std::memcpy(p, &f, 4);
      break;
    }
    case DType::Float16: {
      const uint16_t h = kiln::num::f64_to_f16(v);
      std::memcpy(p, &h, 2);
      break;
    }
    case DType::BFloat16: {
      const uint16_t h = kiln::num::f64_to_bf16(v);
      std::memcpy(p, &h, 2);
      break;
    }
    default: {
      const int32_t i = static_cast<int32_t>(v);
      std::memcpy(p, &i, 4);
      break;
    }
  }
}

// Unit roundoff of a dtype (half an ulp of 1).
inline double unit_roundoff(DType dt) {
  switch (dt) {
    case DType::Float16: return 0x1.0p-11;
    case DType::BFloat16: return 0x1.0p-8;
    default: return 0x1.0p-24;
  }
}

// Half the smallest subnormal of a dtype over its unit roundoff: a magnitude to
// add to error scales so that results in the subnormal range are judged by
// their absolute error.
inline double subnormal_floor(DType dt) {
  switch (dt) {
    case DType::Float16: return 0x1.0p-25 / 0x1.0p-11;
    case DType::BFloat16: return 0x1.0p-134 / 0x1.0p-8;
    default: return 0x1.0p-150 / 0x1.0p-24;
  }
}

struct Tensor {
  DType dt = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> mem;
  View v;
  size_t es = 4;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  // Storage element of the row-major flat index `flat`.
  int64_t elem(int64_t flat) const {
    int64_t a = v.offset;
    for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
      const int64_t n = shape[static_cast<size_t>(i)];
      a += (flat % n) * v.strides[i];
      flat /= n;
    }
    return a;
  }
  double get(int64_t flat) const { return decode(dt, mem.data() + elem(flat) * es); }
  void set(int64_t flat, double x) { encode(dt, x, mem.data() + elem(flat) * es); }
  // Row-major values.
  std::vector<double> values() const {
    std::vector<double> out(static_cast<size_t>(numel()));
    for (int64_t i = 0; i < numel(); ++i) out[static_cast<size_t>(i)] = get(i);
    return out;
  }
  void assign(const std::vector<double>& vals) {
    for (int64_t i = 0; i < numel(); ++i) set(i, vals[static_cast<size_t>(i)]);
  }
  // Random values, rounded to the dtype (a broadcast view keeps its last write).
  void randomize(Rng& rng, double lo = -1.0, double hi = 1.0) {
    for (int64_t i = 0; i < numel(); ++i) set(i, rng.uniform(lo, hi));
  }
  // Bytes of every element the view addresses.
  std::vector<unsigned char> bytes() const {
    std::vector<unsigned char> out(static_cast<size_t>(numel()) * es);
    for (int64_t i = 0; i < numel(); ++i) std::memcpy(out.data() + i * es, mem.data() + elem(i) * es, es);
    return out;
  }
  // True when every storage byte the view does not address still holds kGuard.
  bool guards_intact() const {
    std::vector<char> used(mem.size() / es, 0);
    for (int64_t i = 0; i < numel(); ++i) used[static_cast<size_t>(elem(i))] = 1;
    for (size_t e = 0; e < used.size(); ++e) {
      if (used[e]) continue;
      for (size_t b = 0; b < es; ++b) {
        if (mem[e * es + b] != kGuard) return false;
      }
    }
    return true;
  }
  std::string describe() const { return std::string(kiln::dtype_name(dt)) + shape_str(shape) + " " + lay; }
  std::string lay = "contig";
};

// A tensor of `shape` in `layout`: Permuted stores the dims in a random order;
// Padded pads every dim's stride, uses last-dim stride 1 or 2 and an offset;
// Broadcast gives the first dim longer than 1 stride 0 (inputs only).
inline Tensor make(DType dt, const std::vector<int64_t>& shape, Layout layout, Rng& rng) {
  Tensor t;
  t.dt = dt;
  t.shape = shape;
  t.es = kiln::dtype_size(dt);
  t.lay = layout_name(layout);
  const int nd = static_cast<int>(shape.size());
  View& v = t.v;
  v.dtype = dt;
  v.ndim = nd;
  for (int i = 0; i < nd; ++i) v.shape[i] = shape[static_cast<size_t>(i)];
  std::vector<int> order(static_cast<size_t>(nd));  // order[0] = innermost dim in memory
  for (int i = 0; i < nd; ++i) order[static_cast<size_t>(i)] = nd - 1 - i;
  if (layout == Layout::Permuted) {
    for (int i = nd - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.below(i + 1))]);
  }
  int64_t stride = layout == Layout::Padded ? 1 + rng.below(2) : 1;
  for (int i = 0; i < nd; ++i) {
    const int d = order[static_cast<size_t>(i)];
    v.strides[d] = stride;
    stride *= std::max<int64_t>(1, shape[static_cast<size_t>(d)]);
    if (layout == Layout::Padded) stride += rng.below(3);
  }
  if (layout == Layout::Padded) v.offset = 1 + rng.below(5);
  if (layout == Layout::Broadcast) {
    for (int i = 0; i < nd; ++i) {
      if (shape[static_cast<size_t>(i)] > 1) {
        v.strides[i] = 0;
        break;
      }
    }
  }
  int64_t last = v.offset;
  bool empty = false;
  for (int i = 0; i < nd; ++i) {
    if (shape[static_cast<size_t>(i)] == 0) empty = true;
    last += (shape[static_cast<size_t>(i)] - 1) * v.strides[i];
  }
  const int64_t elems = empty ? v.offset + 3 : last + 3;
  t.mem.assign(static_cast<size_t>(elems) * t.es, kGuard);
  v.base = t.mem.data();
  v.storage_bytes = t.mem.size();
  return t;
}

inline Layout random_layout(Rng& rng, bool allow_broadcast) {
  return static_cast<Layout>(rng.below(allow_broadcast ? 4 : 3));
}

// ISA levels this CPU supports, lowest first.
inline std::vector<kiln::cpu::IsaLevel> isa_levels() {
  std::vector<kiln::cpu::IsaLevel> out;
  for (int l = 0; l <= static_cast<int>(kiln::cpu::detected_isa()); ++l) out.push_back(static_cast<kiln::cpu::IsaLevel>(l));
  return out;
}

// Largest |a[i] - b[i]| / scale (NaN when either is NaN and the other is not).
struct ErrStat {
  double max_err = 0;
  int64_t where = -1;
  void add(double got, double want, double scale, int64_t i) {
    double e;
    if (std::isnan(got) || std::isnan(want)) {
      e = (std::isnan(got) && std::isnan(want)) ? 0 : std::numeric_limits<double>::infinity();
    } else if (std::isinf(got) || std::isinf(want)) {
      e = got == want ? 0 : std::numeric_limits<double>::infinity();
    } else {
      e = std::fabs(got - want) / scale;
    }
    if (where < 0 || e > max_err) {
      max_err = e;
      where = i;
    }
  }
};

}  // namespace nnt
