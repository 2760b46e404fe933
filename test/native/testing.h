// Host-side test data shared by the native suites: a seeded generator,
// element values decoded exactly from the IEEE definitions (no kiln code) and
// encoded with one rounding, the float formats' constants, host tensors whose
// storage holds a guard byte in every element a view does not address, the
// fixed layouts (contiguous, transposed, strided with an offset, expanded), and
// the ISA levels this CPU supports. Kernel calls are in kernel_calls.h; the
// suite families add their own pieces in ops_testing.h (fixed layouts) and
// nn_testing.h (random layouts), the CUDA suites in device_testing.h.
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kiln/cpu_features.h"
#include "kiln/dtype.h"
#include "kiln/numerics.h"
#include "kiln/threadpool.h"
#include "kiln/view.h"

namespace kt {

// SplitMix64 from a raw state.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t state) : s(state) {}
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

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

// ---- element values --------------------------------------------------------------------------

// Value of an IEEE-layout code with E exponent and M mantissa bits, from the definition.
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

// The element of dtype dt at p: float32, float16 and bfloat16 exactly (a NaN
// decodes to the default quiet NaN with the code's sign), int32, and the
// 1-byte dtypes as their unsigned byte.
inline double decode(kiln::DType dt, const unsigned char* p) {
  switch (dt) {
    case kiln::DType::Float32: {
      uint32_t u;
      std::memcpy(&u, p, 4);
      return ieee_value(u, 8, 23);
    }
    case kiln::DType::Float16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return ieee_value(h, 5, 10);
    }
    case kiln::DType::BFloat16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return ieee_value(h, 8, 7);
    }
    case kiln::DType::Int32: {
      int32_t i;
      std::memcpy(&i, p, 4);
      return i;
    }
    default: return static_cast<double>(*p);
  }
}

// Rounds v once to dt and stores it (float dtypes via kiln's f64 encoders;
// int32 truncates; the 1-byte dtypes store v != 0).
inline void encode(kiln::DType dt, double v, unsigned char* p) {
  switch (dt) {
    case kiln::DType::Float32: {
      const float f = static_cast<float>(v);
      std::memcpy(p, &f, 4);
      break;
    }
    case kiln::DType::Float16: {
      const uint16_t h = kiln::num::f64_to_f16(v);
      std::memcpy(p, &h, 2);
      break;
    }
    case kiln::DType::BFloat16: {
      const uint16_t h = kiln::num::f64_to_bf16(v);
      std::memcpy(p, &h, 2);
      break;
    }
    case kiln::DType::Int32: {
      const int32_t i = static_cast<int32_t>(v);
      std::memcpy(p, &i, 4);
      break;
    }
    default: *p = static_cast<unsigned char>(v != 0);
  }
}

// v rounded to the nearest value of float dtype dt (ties to even), as a double.
inline double round_to(kiln::DType dt, double v) {
  unsigned char b[4];
  encode(dt, v, b);
  return decode(dt, b);
}

// ---- float formats (float32, float16, bfloat16) ----------------------------------------------

// Mantissa bits (incl. the implicit one) and minimum normal exponent.
inline int precision(kiln::DType dt) {
  return dt == kiln::DType::Float32 ? 24 : (dt == kiln::DType::Float16 ? 11 : 8);
}
inline int min_exp(kiln::DType dt) { return dt == kiln::DType::Float16 ? -14 : -126; }
inline double max_finite(kiln::DType dt) {
  return dt == kiln::DType::Float32 ? FLT_MAX : (dt == kiln::DType::Float16 ? 65504.0 : std::ldexp(255.0, 120));
}

// Unit roundoff (half an ulp of 1).
inline double unit_roundoff(kiln::DType dt) {
  switch (dt) {
    case kiln::DType::Float16: return 0x1.0p-11;
    case kiln::DType::BFloat16: return 0x1.0p-8;
    default: return 0x1.0p-24;
  }
}

// Half the smallest subnormal.
inline double half_min_subnormal(kiln::DType dt) {
  switch (dt) {
    case kiln::DType::Float16: return 0x1.0p-25;
    case kiln::DType::BFloat16: return 0x1.0p-134;
    default: return 0x1.0p-150;
  }
}

// half_min_subnormal over unit_roundoff: a magnitude to add to error scales
// so that results in the subnormal range are judged by their absolute error.
inline double subnormal_floor(kiln::DType dt) { return half_min_subnormal(dt) / unit_roundoff(dt); }

// ---- host tensors ----------------------------------------------------------------------------

// A view over host storage that holds a guard byte in every element the view
// does not address (gaps between elements, an offset, spare elements at the
// end), so that writes outside the view are seen. Elements are addressed by
// their row-major (flat) index. A copy's view still points at the original's
// storage: clone() makes one that points at its own.
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<unsigned char> mem;  // the whole storage
  kiln::View v;
  size_t es = 0;            // element size
  unsigned char guard = 0;  // the byte the storage started as
  std::string lay;          // the layout's name, for messages

  kiln::DType dtype() const { return v.dtype; }
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
  // Storage element of the multi-index `idx`.
  int64_t elem(const std::vector<int64_t>& idx) const {
    int64_t a = v.offset;
    for (size_t i = 0; i < shape.size(); ++i) a += idx[i] * v.strides[i];
    return a;
  }
  // Bytes of storage element `e`.
  unsigned char* at(int64_t e) { return mem.data() + e * static_cast<int64_t>(es); }
  const unsigned char* at(int64_t e) const { return mem.data() + e * static_cast<int64_t>(es); }
  unsigned char* ptr(int64_t flat) { return at(elem(flat)); }
  const unsigned char* ptr(int64_t flat) const { return at(elem(flat)); }

  double get(int64_t flat) const { return decode(v.dtype, ptr(flat)); }
  void set(int64_t flat, double x) { encode(v.dtype, x, ptr(flat)); }
  int32_t geti(int64_t flat) const {
    int32_t i;
    std::memcpy(&i, ptr(flat), 4);
    return i;
  }
  void seti(int64_t flat, int32_t x) { std::memcpy(ptr(flat), &x, 4); }
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
  // The view's elements in row-major order, as raw bytes.
  std::vector<unsigned char> bytes() const {
    std::vector<unsigned char> out(static_cast<size_t>(numel()) * es);
    for (int64_t i = 0; i < numel(); ++i) std::memcpy(out.data() + i * static_cast<int64_t>(es), ptr(i), es);
    return out;
  }
  // True when every byte of every storage element the view does not address still holds the guard.
  bool guards_intact() const {
    std::vector<bool> used(mem.size() / es, false);
    for (int64_t i = 0; i < numel(); ++i) used[static_cast<size_t>(elem(i))] = true;
    for (size_t e = 0; e < used.size(); ++e) {
      if (used[e]) continue;
      for (size_t b = 0; b < es; ++b) {
        if (mem[e * es + b] != guard) return false;
      }
    }
    return true;
  }
  std::string describe() const { return std::string(kiln::dtype_name(v.dtype)) + shape_str(shape) + " " + lay; }
};

// A copy of t whose view addresses the copy's own storage.
inline HostTensor clone(const HostTensor& t) {
  HostTensor c = t;
  c.v.base = c.mem.data();
  c.v.storage_bytes = c.mem.size();
  return c;
}

// How a family of suites lays out host storage around a view.
struct Padding {
  unsigned char guard;  // the byte every element starts as
  int64_t spare;        // elements after the last one the view addresses
  int64_t empty_spare;  // elements after the offset when the view is empty
};

// A host tensor of `dt` and `shape` viewed with `strides` and `offset`, its
// storage the elements up to the last one addressed plus the padding's spare
// ones, every byte the padding's guard.
inline HostTensor with_storage(kiln::DType dt, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                               int64_t offset, const Padding& pad, const std::string& lay) {
  HostTensor t;
  t.es = kiln::dtype_size(dt);
  t.shape = shape;
  t.guard = pad.guard;
  t.lay = lay;
  const int nd = static_cast<int>(shape.size());
  kiln::View& v = t.v;
  v.dtype = dt;
  v.ndim = nd;
  for (int i = 0; i < nd; ++i) {
    v.shape[i] = shape[static_cast<size_t>(i)];
    v.strides[i] = strides[static_cast<size_t>(i)];
  }
  v.offset = offset;
  int64_t last = v.offset;
  bool empty = false;
  for (int i = 0; i < nd; ++i) {
    if (shape[static_cast<size_t>(i)] == 0) empty = true;
    last += (shape[static_cast<size_t>(i)] - 1) * v.strides[i];
  }
  const int64_t elems = empty ? v.offset + pad.empty_spare : last + 1 + pad.spare;
  t.mem.assign(static_cast<size_t>(elems) * t.es, pad.guard);
  v.base = t.mem.data();
  v.storage_bytes = t.mem.size();
  return t;
}

// Fixed layouts.
enum class Layout { Contig, Transposed, Strided, Expanded };
inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contig: return "contiguous";
    case Layout::Transposed: return "transposed";
    case Layout::Strided: return "strided+offset";
    default: return "expanded";
  }
}

// A host tensor in a fixed layout: Contig row-major; Transposed with the dims
// stored in reverse order; Strided every other element, rows padded by one,
// starting at element `strided_offset`; Expanded row-major with the first dim
// longer than 1 broadcast (stride 0), starting at element 1.
inline HostTensor make_fixed(kiln::DType dt, const std::vector<int64_t>& shape, Layout layout, const Padding& pad,
                             int64_t strided_offset) {
  const int nd = static_cast<int>(shape.size());
  std::vector<int64_t> strides(static_cast<size_t>(nd));
  int64_t offset = 0;
  int64_t stride = 1;
  switch (layout) {
    case Layout::Contig:
      for (int i = nd - 1; i >= 0; --i) {
        strides[static_cast<size_t>(i)] = stride;
        stride *= shape[static_cast<size_t>(i)];
      }
      break;
    case Layout::Transposed:
      for (int i = 0; i < nd; ++i) {
        strides[static_cast<size_t>(i)] = stride;
        stride *= shape[static_cast<size_t>(i)];
      }
      break;
    case Layout::Strided:
      stride = 2;
      for (int i = nd - 1; i >= 0; --i) {
        strides[static_cast<size_t>(i)] = stride;
        stride = stride * shape[static_cast<size_t>(i)] + 1;
      }
      offset = strided_offset;
      break;
    case Layout::Expanded:
      for (int i = nd - 1; i >= 0; --i) {
        strides[static_cast<size_t>(i)] = stride;
        stride *= shape[static_cast<size_t>(i)];
      }
      for (int i = 0; i < nd; ++i) {
        if (shape[static_cast<size_t>(i)] > 1) {
          strides[static_cast<size_t>(i)] = 0;
          break;
        }
      }
      offset = 1;
      break;
  }
  return with_storage(dt, shape, strides, offset, pad, layout_name(layout));
}

// ---- ISA levels and threads --------------------------------------------------------------------

// ISA levels this CPU supports, lowest first.
inline std::vector<kiln::cpu::IsaLevel> isa_levels() {
  std::vector<kiln::cpu::IsaLevel> out;
  for (int l = 0; l <= static_cast<int>(kiln::cpu::detected_isa()); ++l) out.push_back(static_cast<kiln::cpu::IsaLevel>(l));
  return out;
}

// Restores the ISA level and the thread count when a test ends.
struct RestoreIsa {
  kiln::cpu::IsaLevel saved = kiln::cpu::active_isa();
  ~RestoreIsa() {
    kiln::cpu::set_isa(saved);
    kiln::cpu::set_num_threads(0);
  }
};

}  // namespace kt
