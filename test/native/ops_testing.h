// Test tensors and helpers for the suites 'fastmath', 'unary', 'reduce',
// 'softmax' and 'embedding': host storage filled with guard bytes, views in
// several layouts (contiguous, transposed, strided with an offset, expanded
// with stride 0), element access as float64 (exact decoding written here from
// the IEEE definitions; writes round once, through kiln's encoders, which the
// 'numerics' suite checks), runs on every ISA level and thread count, and ulp
// distances.
#pragma once
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kiln/cpu_features.h"
#include "kiln/element.h"
#include "kiln/threadpool.h"
#include "kiln/view.h"

namespace ot {

using kiln::DType;
using kiln::View;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t x = (s += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }
};

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

// ---- decoding (from the IEEE definitions) and encoding ---------------------------------

inline double ieee_value(uint32_t code, int E, int M) {
  const int bias = (1 << (E - 1)) - 1;
  const bool neg = (code >> (E + M)) & 1u;
  const uint32_t e = (code >> M) & ((1u << E) - 1), m = code & ((1u << M) - 1);
  double v;
  if (e == (1u << E) - 1) {
    v = m ? std::numeric_limits<double>::quiet_NaN() : HUGE_VAL;
  } else if (e == 0) {
    v = std::ldexp(static_cast<double>(m), 1 - bias - M);
  } else {
    v = std::ldexp(static_cast<double>((1u << M) | m), static_cast<int>(e) - bias - M);
  }
  return neg ? -v : v;
}

inline double decode(DType dt, const unsigned char* p) {
  switch (dt) {
    case DType::Float32: {
      uint32_t u;
      std::memcpy(&u, p, 4);
      return ieee_value(u, 8, 23);
    }
    case DType::Float16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return ieee_value(h, 5, 10);
    }
    case DType::BFloat16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return ieee_value(h, 8, 7);
    }
    case DType::Int32: {
      int32_t i;
      std::memcpy(&i, p, 4);
      return i;
    }
    default: return static_cast<double>(*p);
  }
}

// Rounds v once to dt and stores it (float dtypes via kiln's f64 encoders; int32 truncates).
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
    case DType::Int32: {
      const int32_t i = static_cast<int32_t>(v);
      std::memcpy(p, &i, 4);
      break;
    }
    default: *p = static_cast<unsigned char>(v != 0);
  }
}

// v rounded to the nearest value of float dtype dt (ties to even), as a double.
inline double round_to(DType dt, double v) {
  unsigned char b[4];
  encode(dt, v, b);
  return decode(dt, b);
}

// Mantissa bits (incl. the implicit one) and minimum normal exponent of a float dtype.
inline int precision(DType dt) { return dt == DType::Float32 ? 24 : (dt == DType::Float16 ? 11 : 8); }
inline int min_exp(DType dt) { return dt == DType::Float16 ? -14 : -126; }
inline double max_finite(DType dt) {
  return dt == DType::Float32 ? FLT_MAX : (dt == DType::Float16 ? 65504.0 : std::ldexp(255.0, 120));
}

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

enum class Layout { Contig, Transposed, Strided, Expanded };
inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contig: return "contiguous";
    case Layout::Transposed: return "transposed";
    case Layout::Strided: return "strided+offset";
    default: return "expanded";
  }
}

constexpr unsigned char kGuard = 0xA5;

struct Tensor {
  std::vector<unsigned char> mem;
  View v;
  size_t es = 0;
  std::vector<int64_t> shape;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  // Storage element index of row-major element k.
  int64_t addr(int64_t k) const {
    int64_t a = v.offset;
    for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
      const int64_t d = shape[static_cast<size_t>(i)];
      a += (k % d) * v.strides[i];
      k /= d;
    }
    return a;
  }
  unsigned char* ptr(int64_t k) { return mem.data() + addr(k) * static_cast<int64_t>(es); }
  const unsigned char* ptr(int64_t k) const { return mem.data() + addr(k) * static_cast<int64_t>(es); }
  double get(int64_t k) const { return decode(v.dtype, ptr(k)); }
  void set(int64_t k, double x) { encode(v.dtype, x, ptr(k)); }
  int32_t geti(int64_t k) const {
    int32_t i;
    std::memcpy(&i, ptr(k), 4);
    return i;
  }
  void seti(int64_t k, int32_t x) { std::memcpy(ptr(k), &x, 4); }
  // The view's elements in row-major order, as raw bytes.
  std::vector<unsigned char> bytes() const {
    std::vector<unsigned char> out(static_cast<size_t>(numel()) * es);
    for (int64_t k = 0; k < numel(); ++k) std::memcpy(out.data() + k * static_cast<int64_t>(es), ptr(k), es);
    return out;
  }
  // True when every byte the view does not address still holds the guard.
  bool guards_intact() const {
    std::vector<bool> used(mem.size() / es, false);
    for (int64_t k = 0; k < numel(); ++k) used[static_cast<size_t>(addr(k))] = true;
    for (size_t e = 0; e < used.size(); ++e) {
      if (used[e]) continue;
      for (size_t b = 0; b < es; ++b) {
        if (mem[e * es + b] != kGuard) return false;
      }
    }
    return true;
  }
};

inline Tensor make(DType dt, const std::vector<int64_t>& shape, Layout layout = Layout::Contig) {
  Tensor t;
  t.es = kiln::dtype_size(dt);
  t.shape = shape;
  const int nd = static_cast<int>(shape.size());
  View& v = t.v;
  v.dtype = dt;
  v.ndim = nd;
  for (int i = 0; i < nd; ++i) v.shape[i] = shape[static_cast<size_t>(i)];
  int64_t stride = 1;
  switch (layout) {
    case Layout::Contig:
      for (int i = nd - 1; i >= 0; --i) {
        v.strides[i] = stride;
        stride *= shape[static_cast<size_t>(i)];
      }
      break;
    case Layout::Transposed:  // dims stored in reverse order
      for (int i = 0; i < nd; ++i) {
        v.strides[i] = stride;
        stride *= shape[static_cast<size_t>(i)];
      }
      break;
    case Layout::Strided:  // every other element, rows padded by one, offset 3
      stride = 2;
      for (int i = nd - 1; i >= 0; --i) {
        v.strides[i] = stride;
        stride = stride * shape[static_cast<size_t>(i)] + 1;
      }
      v.offset = 3;
      break;
    case Layout::Expanded: {  // the first dim longer than 1 has stride 0
      for (int i = nd - 1; i >= 0; --i) {
        v.strides[i] = stride;
        stride *= shape[static_cast<size_t>(i)];
      }
      for (int i = 0; i < nd; ++i) {
        if (shape[static_cast<size_t>(i)] > 1) {
          v.strides[i] = 0;
          break;
        }
      }
      v.offset = 1;
      break;
    }
  }
  int64_t last = v.offset;
  bool empty = false;
  for (int i = 0; i < nd; ++i) {
    if (shape[static_cast<size_t>(i)] == 0) empty = true;
    last += (shape[static_cast<size_t>(i)] - 1) * v.strides[i];
  }
  const int64_t elems = empty ? v.offset + 2 : last + 3;
  t.mem.assign(static_cast<size_t>(elems) * t.es, kGuard);
  v.base = t.mem.data();
  v.storage_bytes = t.mem.size();
  return t;
}

// A copy of t with fresh storage (the View points at the copy).
inline Tensor clone(const Tensor& t) {
  Tensor c = t;
  c.v.base = c.mem.data();
  return c;
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

inline std::vector<kiln::cpu::IsaLevel> isa_levels() {
  std::vector<kiln::cpu::IsaLevel> out;
  for (int l = 0; l <= static_cast<int>(kiln::cpu::detected_isa()); ++l) out.push_back(static_cast<kiln::cpu::IsaLevel>(l));
  return out;
}

// Restores the ISA level and thread count when a test ends.
struct Restore {
  kiln::cpu::IsaLevel saved = kiln::cpu::active_isa();
  ~Restore() {
    kiln::cpu::set_isa(saved);
    kiln::cpu::set_num_threads(0);
  }
};

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
