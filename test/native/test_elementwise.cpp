// Suite 'elementwise': the CPU kernels 'add' 'sub' 'mul' 'div' 'maximum'
// 'minimum', 'cast' and 'fill', reached through kiln::run_kernel, on every ISA
// level this CPU supports (kiln::cpu::set_isa), with broadcasting and strided,
// transposed, offset and expanded (stride 0) operands.
//
// Binary results are checked against float64 arithmetic done here and rounded
// once to the dtype by a generic scale / nearbyint / unscale rounding (no bit
// manipulation, no kiln code); int32 against int64 arithmetic reduced modulo
// 2^32. Element addresses are computed here from shape / strides / offset.
// 'cast' is checked against el::convert (itself held to an independent
// reference by the 'numerics' suite).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cpu_features.h"
#include "kiln/element.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "kiln/view.h"
#include "testing.h"

namespace {

using namespace kiln;
using kt::run_binary;
using kt::run_cast;
using kt::run_fill;
using kt::run_random;
using kt::isa_levels;
using kt::Layout;
using kt::layout_name;
using kt::Rng;
using kt::shape_str;
using Tensor = kt::HostTensor;

// Round-to-nearest-even to p significant bits with minimum normal exponent emin,
// overflow (beyond max) to inf: scale so the last kept bit is the units digit,
// std::nearbyint (round half to even in the default mode), scale back.
double round_to(double x, int p, int emin, double max) {
  if (std::isnan(x) || std::isinf(x) || x == 0) return x;
  const int e = std::max(std::ilogb(x), emin);
  const double r = std::ldexp(std::nearbyint(std::ldexp(x, p - 1 - e)), e - (p - 1));
  if (std::fabs(r) > max) return std::copysign(HUGE_VAL, x);
  return r;  // nearbyint keeps the sign of a zero result
}

double round_dtype(DType dt, double x) {
  switch (dt) {
    case DType::Float32: return round_to(x, 24, -126, FLT_MAX);
    case DType::Float16: return round_to(x, 11, -14, 65504.0);
    default: return round_to(x, 8, -126, std::ldexp(255.0, 120));
  }
}

const char* kOps[] = {"add", "sub", "mul", "div", "maximum", "minimum"};

// Reference for one element; int32 results in *iout.
double ref_binary(int op, DType dt, double a, double b, int32_t* iout) {
  if (dt == DType::Int32) {
    const int64_t x = static_cast<int64_t>(a), y = static_cast<int64_t>(b);
    int64_t r = 0;
    switch (op) {
      case 0: r = x + y; break;
      case 1: r = x - y; break;
      case 2: r = x * y; break;
      case 4: r = std::max(x, y); break;
      case 5: r = std::min(x, y); break;
    }
    const int64_t m = ((r % 4294967296LL) + 4294967296LL) % 4294967296LL;  // modulo 2^32
    *iout = static_cast<int32_t>(m >= 2147483648LL ? m - 4294967296LL : m);
    return 0;
  }
  switch (op) {
    case 0: return round_dtype(dt, a + b);
    case 1: return round_dtype(dt, a - b);
    case 2: return round_dtype(dt, a * b);
    case 3: return round_dtype(dt, a / b);
    case 4:
      if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
      return a > b ? a : b;  // the sign of an equal zero is not specified
    default:
      if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
      return a < b ? a : b;
  }
}

// ---- tensors -----------------------------------------------------------------------------

const unsigned char kGuard = 0xCD;
// Three spare elements after the last one a view addresses (after the offset when it is empty).
constexpr kt::Padding kPadding{kGuard, 3, 3};

// A tensor in a fixed layout (Strided starts at element 5).
Tensor make_tensor(DType dt, const std::vector<int64_t>& shape, Layout layout) {
  return kt::make_fixed(dt, shape, layout, kPadding, 5);
}

// Visits every multi-index of `shape` in row-major order.
template <class F>
void for_each_index(const std::vector<int64_t>& shape, F&& fn) {
  for (int64_t d : shape) {
    if (d == 0) return;
  }
  std::vector<int64_t> idx(shape.size(), 0);
  for (;;) {
    fn(idx);
    int d = static_cast<int>(shape.size()) - 1;
    while (d >= 0 && ++idx[static_cast<size_t>(d)] == shape[static_cast<size_t>(d)]) {
      idx[static_cast<size_t>(d)] = 0;
      --d;
    }
    if (d < 0) return;
  }
}

// Random element bits for dtype dt: a mix of specials, ordinary values and any pattern.
void random_element(DType dt, Rng& r, unsigned char* p) {
  const int64_t kind = r.below(100);
  switch (dt) {
    case DType::Float32: {
      float f;
      if (kind < 45) {
        f = static_cast<float>((r.unit() * 2 - 1) * std::ldexp(1.0, static_cast<int>(r.below(40)) - 20));
      } else if (kind < 60) {
        f = static_cast<float>(r.below(41) - 20);
      } else if (kind < 70) {
        const float sp[] = {0.0f, -0.0f, HUGE_VALF, -HUGE_VALF, std::numeric_limits<float>::quiet_NaN(), 1.0f, -1.0f,
                            FLT_MAX, -FLT_MAX, FLT_MIN, std::numeric_limits<float>::denorm_min(), 3e38f, 1e-38f};
        f = sp[r.below(13)];
      } else if (kind < 80) {
        f = static_cast<float>((r.unit() * 2 - 1) * std::ldexp(1.0, -120 - static_cast<int>(r.below(30))));  // tiny
      } else {
        const uint32_t b = static_cast<uint32_t>(r.next());
        std::memcpy(&f, &b, 4);
      }
      std::memcpy(p, &f, 4);
      break;
    }
    case DType::Float16:
    case DType::BFloat16: {
      uint16_t h;
      if (kind < 50) {
        h = static_cast<uint16_t>(r.next());
      } else {
        // moderate magnitudes: exponent field within +-6 of the bias, random sign and mantissa
        const int E = dt == DType::Float16 ? 5 : 8, M = dt == DType::Float16 ? 10 : 7;
        const uint32_t bias = (1u << (E - 1)) - 1;
        const uint32_t e = bias - 6 + static_cast<uint32_t>(r.below(13));
        h = static_cast<uint16_t>(((r.next() & 1) << (E + M)) | (e << M) | (r.next() & ((1u << M) - 1)));
      }
      std::memcpy(p, &h, 2);
      break;
    }
    case DType::Int32: {
      int32_t i;
      if (kind < 40) {
        i = static_cast<int32_t>(r.next());
      } else if (kind < 80) {
        i = static_cast<int32_t>(r.below(2001) - 1000);
      } else {
        const int32_t sp[] = {0, 1, -1, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1, 65536, -65536, 46341};
        i = sp[r.below(10)];
      }
      std::memcpy(p, &i, 4);
      break;
    }
    case DType::Bool:
      *p = static_cast<unsigned char>(r.next() & 1);
      break;
    default: {
      // any byte pattern, occasionally a 'typical' small value for the integer types
      const uint64_t b = r.next();
      std::memcpy(p, &b, dtype_size(dt));
      break;
    }
  }
}

void fill_random(Tensor& t, Rng& r) {
  const int64_t elems = static_cast<int64_t>(t.mem.size() / t.es);
  for (int64_t i = 0; i < elems; ++i) random_element(t.v.dtype, r, t.at(i));
}

// ---- binary ops ------------------------------------------------------------------------------

struct BinaryCase {
  std::vector<int64_t> a, b;
};

std::vector<int64_t> broadcast_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t nd = std::max(a.size(), b.size());
  std::vector<int64_t> out(nd);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t da = i + a.size() >= nd ? a[i + a.size() - nd] : 1;
    const int64_t db = i + b.size() >= nd ? b[i + b.size() - nd] : 1;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Multi-index of an input broadcast to `out_idx`.
std::vector<int64_t> input_index(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_idx) {
  std::vector<int64_t> idx(in_shape.size());
  const size_t lead = out_idx.size() - in_shape.size();
  for (size_t i = 0; i < in_shape.size(); ++i) idx[i] = in_shape[i] == 1 ? 0 : out_idx[i + lead];
  return idx;
}

struct Totals {
  int64_t runs = 0, elements = 0, nan_only_diffs = 0;
};

// Runs one binary case on every ISA level (and, for big cases, several thread
// counts), checks the first run against the reference and every run against the first.
void check_binary_case(int op, DType dt, const BinaryCase& c, Layout la, Layout lb, Layout lo, uint64_t seed,
                       Totals& tot) {
  const std::vector<int64_t> os = broadcast_shape(c.a, c.b);
  Rng r(seed);
  Tensor a = make_tensor(dt, c.a, la), b = make_tensor(dt, c.b, lb);
  fill_random(a, r);
  fill_random(b, r);
  const std::string ctx = std::string(kOps[op]) + " " + dtype_name(dt) + " " + shape_str(c.a) + " " +
                          layout_name(la) + " x " + shape_str(c.b) + " " + layout_name(lb) + " -> " + layout_name(lo);
  std::vector<unsigned char> first;
  bool have_first = false;
  const int64_t n_out = [&] {
    int64_t n = 1;
    for (int64_t d : os) n *= d;
    return n;
  }();
  std::vector<int> thread_counts = {0};
  if (n_out > 2 * (1 << 15)) thread_counts = {0, 1, 3};
  for (cpu::IsaLevel isa : isa_levels()) {
    KCHECK(cpu::set_isa(isa).ok());
    for (int threads : thread_counts) {
      if (threads) cpu::set_num_threads(threads);
      Tensor o = make_tensor(dt, os, lo);
      const Status s = run_binary(kOps[op], a.v, b.v, o.v);
      if (threads) cpu::set_num_threads(0);
      ++tot.runs;
      KCHECK(s.ok()) << ctx << ": " << s.message();
      if (!s.ok()) return;
      KCHECK(o.guards_intact()) << ctx << ": wrote outside the output view (isa " << cpu::isa_name(isa) << ")";
      std::vector<unsigned char> got = o.bytes();
      if (have_first) {
        // Bit-identical, except that a NaN result may differ in sign and payload:
        // IEEE leaves which operand's NaN propagates open, and compilers may
        // commute a + b when they vectorise (seen with GCC 12 at -O2).
        int64_t diffs = 0, nan_diffs = 0, first_diff = -1;
        for (size_t e = 0; (e + 1) * o.es <= got.size(); ++e) {
          if (std::memcmp(got.data() + e * o.es, first.data() + e * o.es, o.es) == 0) continue;
          if (dt != DType::Int32 && std::isnan(kt::decode(dt, got.data() + e * o.es)) &&
              std::isnan(kt::decode(dt, first.data() + e * o.es))) {
            ++nan_diffs;
            continue;
          }
          if (diffs++ == 0) first_diff = static_cast<int64_t>(e);
        }
        tot.nan_only_diffs += nan_diffs;
        if (diffs) {
          uint32_t g1 = 0, g0 = 0;
          std::memcpy(&g1, got.data() + first_diff * static_cast<int64_t>(o.es), o.es);
          std::memcpy(&g0, first.data() + first_diff * static_cast<int64_t>(o.es), o.es);
          KCHECK(false) << ctx << ": isa " << cpu::isa_name(isa) << " threads " << threads << " differs from the first run in "
                        << diffs << " elements, first at " << first_diff << ": " << std::hex << g1 << " vs " << g0 << std::dec;
        }
        continue;
      }
      have_first = true;
      first = got;
      // Reference, once.
      int64_t bad = 0, k = 0;
      for_each_index(os, [&](const std::vector<int64_t>& idx) {
        const double x = kt::decode(dt, a.at(a.elem(input_index(c.a, idx))));
        const double y = kt::decode(dt, b.at(b.elem(input_index(c.b, idx))));
        const unsigned char* gp = got.data() + k * static_cast<int64_t>(o.es);
        ++k;
        int32_t iw = 0;
        const double want = ref_binary(op, dt, x, y, &iw);
        bool ok;
        double g;
        if (dt == DType::Int32) {
          int32_t gi;
          std::memcpy(&gi, gp, 4);
          g = gi;
          ok = gi == iw;
        } else {
          g = kt::decode(dt, gp);
          ok = std::isnan(want) ? std::isnan(g)
                                : (g == want && (op >= 4 || std::signbit(g) == std::signbit(want)));
        }
        if (!ok && ++bad <= 3) {
          KCHECK(false) << ctx << ": at element " << (k - 1) << ": " << x << " op " << y << " gives " << g
                        << " want " << (dt == DType::Int32 ? static_cast<double>(iw) : want);
        }
      });
      tot.elements += k;
      KCHECK_EQ(bad, 0) << ctx;
    }
  }
}

KTEST(elementwise, binary_ops_broadcast_strided_all_isas) {
  kt::RestoreIsa restore;
  const std::vector<BinaryCase> cases = {
      {{3, 1, 5}, {4, 1}},        {{}, {7}},          {{2, 3}, {}},        {{}, {}},
      {{1}, {5}},                 {{0, 3}, {1, 3}},   {{5, 0}, {5, 1}},    {{1, 1, 1}, {1}},
      {{257, 129}, {129}},        {{2, 1, 3, 1, 4}, {1, 5, 1, 6, 1}},     {{1000}, {1000}},
      {{64, 1, 33}, {1, 70, 33}},  // 147840 outputs: split over threads
  };
  const Layout in_layouts[][3] = {
      {Layout::Contig, Layout::Contig, Layout::Contig},
      {Layout::Transposed, Layout::Strided, Layout::Contig},
      {Layout::Strided, Layout::Expanded, Layout::Strided},
      {Layout::Expanded, Layout::Transposed, Layout::Transposed},
  };
  const DType dts[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32};
  Totals tot;
  uint64_t seed = 1;
  for (const BinaryCase& c : cases) {
    for (const auto& ls : in_layouts) {
      for (DType dt : dts) {
        for (int op = 0; op < 6; ++op) {
          if (dt == DType::Int32 && op == 3) continue;  // no int32 division
          const bool big = c.a.size() == 3 && c.a[0] == 64;
          if (big && ls[0] == Layout::Expanded && dt != DType::Float32) continue;  // keep the run short
          check_binary_case(op, dt, c, ls[0], ls[1], ls[2], seed++, tot);
        }
      }
    }
  }
  std::cout << "    " << tot.runs << " kernel runs on " << isa_levels().size() << " ISA level(s) (detected "
            << cpu::isa_name(cpu::detected_isa()) << "), " << tot.elements << " elements checked against float64; "
            << tot.nan_only_diffs << " NaN results differed in sign/payload between runs" << std::endl;
}

KTEST(elementwise, binary_special_values) {
  kt::RestoreIsa restore;
  // Exhaustive over a set of specials on both sides, for each float dtype, as [n,1] x [n].
  const double sp[] = {0.0, -0.0, 1.0, -1.0, 0.5, 3.0, -7.25, HUGE_VAL, -HUGE_VAL,
                       std::numeric_limits<double>::quiet_NaN(), 65504.0, 65520.0, 1e-7, 6e-8, 3e38, -3e38,
                       1e-40, 1e-45, std::ldexp(1.0, -133), std::ldexp(1.0, -126)};
  const int n = sizeof(sp) / sizeof(sp[0]);
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
    for (cpu::IsaLevel isa : isa_levels()) {
      KCHECK(cpu::set_isa(isa).ok());
      Tensor a = make_tensor(dt, {n, 1}, Layout::Contig), b = make_tensor(dt, {n}, Layout::Contig);
      for (int i = 0; i < n; ++i) {
        // the specials as the dtype holds them (values rounded into the dtype by el)
        el::visit(dt, [&](auto tag) {
          using E = decltype(tag);
          if constexpr (E::is_float) {
            const typename E::T v = E::from_f64(sp[i]);
            std::memcpy(a.at(i), &v, sizeof(v));
            std::memcpy(b.at(i), &v, sizeof(v));
          }
        });
      }
      for (int op = 0; op < 6; ++op) {
        Tensor o = make_tensor(dt, {n, n}, Layout::Contig);
        KCHECK(run_binary(kOps[op], a.v, b.v, o.v).ok());
        int64_t bad = 0;
        for (int i = 0; i < n; ++i) {
          for (int j = 0; j < n; ++j) {
            const double x = kt::decode(dt, a.at(i)), y = kt::decode(dt, b.at(j));
            const double g = kt::decode(dt, o.at(i * n + j));
            int32_t unused;
            const double w = ref_binary(op, dt, x, y, &unused);
            const bool ok = std::isnan(w) ? std::isnan(g) : (g == w && (op >= 4 || std::signbit(g) == std::signbit(w)));
            if (!ok && ++bad <= 3) {
              KCHECK(false) << kOps[op] << " " << dtype_name(dt) << " " << x << ", " << y << " gives " << g << " want "
                            << w << " (isa " << cpu::isa_name(isa) << ")";
            }
          }
        }
        KCHECK_EQ(bad, 0) << kOps[op] << " " << dtype_name(dt);
      }
    }
  }
  // Hand-checked: NaN propagates through maximum/minimum from either side,
  // int32 wraps, float16 overflows to inf and underflows to 0 / subnormals.
  Tensor x = make_tensor(DType::Int32, {4}, Layout::Contig), y = make_tensor(DType::Int32, {4}, Layout::Contig);
  const int32_t xv[4] = {INT32_MAX, INT32_MIN, 65536, -7}, yv[4] = {1, 1, 65536, 3};
  std::memcpy(x.at(0), xv, 16);
  std::memcpy(y.at(0), yv, 16);
  Tensor o = make_tensor(DType::Int32, {4}, Layout::Contig);
  KCHECK(run_binary("add", x.v, y.v, o.v).ok());
  int32_t ov[4];
  std::memcpy(ov, o.at(0), 16);
  KCHECK_EQ(ov[0], INT32_MIN);
  KCHECK(run_binary("sub", y.v, x.v, o.v).ok());
  std::memcpy(ov, o.at(0), 16);
  KCHECK_EQ(ov[1], INT32_MIN + 1);  // 1 - INT32_MIN wraps
  KCHECK(run_binary("mul", x.v, y.v, o.v).ok());
  std::memcpy(ov, o.at(0), 16);
  KCHECK_EQ(ov[2], 0);  // 2^32 wraps to 0
  KCHECK_EQ(ov[3], -21);
  Tensor f = make_tensor(DType::Float32, {2}, Layout::Contig), g = make_tensor(DType::Float32, {2}, Layout::Contig);
  const float fv[2] = {std::numeric_limits<float>::quiet_NaN(), 1.0f}, gv[2] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  std::memcpy(f.at(0), fv, 8);
  std::memcpy(g.at(0), gv, 8);
  Tensor fo = make_tensor(DType::Float32, {2}, Layout::Contig);
  for (const char* op : {"maximum", "minimum"}) {
    KCHECK(run_binary(op, f.v, g.v, fo.v).ok());
    float r[2];
    std::memcpy(r, fo.at(0), 8);
    KCHECK(std::isnan(r[0]) && std::isnan(r[1])) << op;
  }
}

KTEST(elementwise, binary_in_place_and_errors) {
  kt::RestoreIsa restore;
  // out aliasing an input exactly (a += b), contiguous and strided.
  for (Layout l : {Layout::Contig, Layout::Strided}) {
    for (DType dt : {DType::Float32, DType::BFloat16, DType::Int32}) {
      Rng r(99);
      Tensor a = make_tensor(dt, {3, 40, 5}, l), b = make_tensor(dt, {40, 5}, Layout::Contig);
      fill_random(a, r);
      fill_random(b, r);
      const Tensor a0 = a;
      KCHECK(run_binary("mul", a.v, b.v, a.v).ok());
      int64_t bad = 0;
      for_each_index(a.shape, [&](const std::vector<int64_t>& idx) {
        const double x = kt::decode(dt, a0.at(a0.elem(idx)));
        const double y = kt::decode(dt, b.at(b.elem(input_index(b.shape, idx))));
        int32_t iw = 0;
        const double w = ref_binary(2, dt, x, y, &iw);
        const unsigned char* gp = a.at(a.elem(idx));
        bool ok;
        if (dt == DType::Int32) {
          int32_t gi;
          std::memcpy(&gi, gp, 4);
          ok = gi == iw;
        } else {
          const double g = kt::decode(dt, gp);
          ok = std::isnan(w) ? std::isnan(g) : (g == w && std::signbit(g) == std::signbit(w));
        }
        if (!ok) ++bad;
      });
      KCHECK_EQ(bad, 0) << "in-place mul " << dtype_name(dt) << " " << layout_name(l);
    }
  }
  // Errors.
  Tensor f = make_tensor(DType::Float32, {3, 4}, Layout::Contig), h = make_tensor(DType::Float16, {3, 4}, Layout::Contig);
  Tensor o = make_tensor(DType::Float32, {3, 4}, Layout::Contig);
  Status s = run_binary("add", f.v, h.v, o.v);
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  Tensor w = make_tensor(DType::Float32, {3, 5}, Layout::Contig);
  s = run_binary("add", f.v, w.v, o.v);  // [3,4] x [3,5]
  KCHECK(s.code() == StatusCode::ShapeError) << s.message();
  Tensor o2 = make_tensor(DType::Float32, {4}, Layout::Contig);
  s = run_binary("add", f.v, f.v, o2.v);  // output is not the broadcast shape
  KCHECK(s.code() == StatusCode::ShapeError) << s.message();
  Tensor o3 = make_tensor(DType::Float32, {2, 3, 4}, Layout::Contig);
  s = run_binary("add", f.v, f.v, o3.v);  // output may not add dimensions either
  KCHECK(s.code() == StatusCode::ShapeError) << s.message();
  Tensor o4 = make_tensor(DType::Float32, {3, 1}, Layout::Contig);
  s = run_binary("add", f.v, f.v, o4.v);  // nor be smaller than the broadcast
  KCHECK(s.code() == StatusCode::ShapeError) << s.message();
  KCHECK(o2.guards_intact() && o3.guards_intact() && o4.guards_intact());
}

KTEST(elementwise, set_isa_limits) {
  kt::RestoreIsa restore;
  for (cpu::IsaLevel l : isa_levels()) {
    KCHECK(cpu::set_isa(l).ok());
    KCHECK(cpu::active_isa() == l);
  }
  if (cpu::detected_isa() != cpu::IsaLevel::Avx512) {
    const Status s = cpu::set_isa(cpu::IsaLevel::Avx512);
    KCHECK(s.code() == StatusCode::ValueError) << s.message();
  }
  std::cout << "    detected ISA: " << cpu::isa_name(cpu::detected_isa()) << std::endl;
}

// ---- cast --------------------------------------------------------------------------------

const DType kAll[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2,
                      DType::Int8,    DType::UInt8,   DType::Int32,    DType::Bool};

template <class S, class D>
void expect_convert(const unsigned char* sp, unsigned char* out) {
  typename S::T x;
  std::memcpy(&x, sp, sizeof(x));
  const typename D::T y = el::convert<S, D>(x);
  std::memcpy(out, &y, sizeof(y));
}

KTEST(elementwise, cast_all_pairs_strided_all_isas) {
  kt::RestoreIsa restore;
  struct Shape {
    std::vector<int64_t> shape;
    Layout src, dst;
  } shapes[] = {
      {{37, 29}, Layout::Strided, Layout::Transposed},
      {{5, 1, 7, 3}, Layout::Transposed, Layout::Strided},
      {{70001}, Layout::Contig, Layout::Contig},  // contiguous fast path, split over threads
      {{300, 257}, Layout::Expanded, Layout::Strided},
      {{}, Layout::Strided, Layout::Contig},
      {{4, 0}, Layout::Contig, Layout::Contig},
  };
  int64_t runs = 0, elements = 0;
  uint64_t seed = 1000;
  for (DType s : kAll) {
    for (DType d : kAll) {
      for (const Shape& sh : shapes) {
        Rng r(seed++);
        Tensor src = make_tensor(s, sh.shape, sh.src);
        fill_random(src, r);
        // Expected bytes, row-major, via el::convert.
        const std::vector<unsigned char> sb = src.bytes();
        const size_t ses = dtype_size(s), des = dtype_size(d);
        std::vector<unsigned char> want(sb.size() / ses * des);
        el::visit(s, [&](auto stag) {
          el::visit(d, [&](auto dtag) {
            for (size_t i = 0; i < sb.size() / ses; ++i) {
              expect_convert<decltype(stag), decltype(dtag)>(sb.data() + i * ses, want.data() + i * des);
            }
          });
        });
        const bool big = sh.shape.size() == 1 || (sh.shape.size() == 2 && sh.shape[0] == 300);
        const std::vector<int> threads = big ? std::vector<int>{0, 1, 3} : std::vector<int>{0};
        for (cpu::IsaLevel isa : isa_levels()) {
          KCHECK(cpu::set_isa(isa).ok());
          for (int t : threads) {
            if (t) cpu::set_num_threads(t);
            Tensor dst = make_tensor(d, sh.shape, sh.dst);
            const Status st = run_cast(src.v, dst.v);
            if (t) cpu::set_num_threads(0);
            ++runs;
            const std::string ctx = std::string(dtype_name(s)) + " -> " + dtype_name(d) + " " + shape_str(sh.shape) +
                                    " isa " + cpu::isa_name(isa) + " threads " + std::to_string(t);
            KCHECK(st.ok()) << ctx << ": " << st.message();
            const std::vector<unsigned char> got = dst.bytes();
            if (got != want) {
              size_t i = 0;
              while (i + des <= got.size() && std::memcmp(got.data() + i, want.data() + i, des) == 0) i += des;
              KCHECK(false) << ctx << ": first difference at element " << i / des;
            }
            KCHECK(dst.guards_intact()) << ctx << ": wrote outside the view";
            elements += static_cast<int64_t>(got.size() / des);
          }
        }
      }
    }
  }
  // Shape mismatches are ShapeErrors.
  Tensor a = make_tensor(DType::Float32, {3, 4}, Layout::Contig), b = make_tensor(DType::Int8, {4, 3}, Layout::Contig);
  Tensor c = make_tensor(DType::Int8, {12}, Layout::Contig);
  KCHECK(run_cast(a.v, b.v).code() == StatusCode::ShapeError);
  KCHECK(run_cast(a.v, c.v).code() == StatusCode::ShapeError);
  KCHECK(b.guards_intact() && c.guards_intact());
  std::cout << "    " << runs << " cast runs, " << elements << " elements compared with el::convert" << std::endl;
}

// ---- fill --------------------------------------------------------------------------------

KTEST(elementwise, fill_writes_only_the_view) {
  kt::RestoreIsa restore;
  struct Case {
    std::vector<int64_t> shape;
    Layout layout;
  } cases[] = {
      {{5, 7}, Layout::Strided},      {{5, 7}, Layout::Transposed}, {{3, 4, 5}, Layout::Expanded},
      {{}, Layout::Strided},          {{0, 9}, Layout::Strided},    {{200001}, Layout::Contig},
      {{513, 300}, Layout::Strided},  {{1, 1, 6}, Layout::Strided},
  };
  int64_t runs = 0;
  for (DType dt : kAll) {
    const size_t es = dtype_size(dt);
    const uint64_t pattern = es == 4 ? 0xDEADBEEFu : es == 2 ? 0xBEEFu : 0x3Cu;
    for (const Case& c : cases) {
      for (int threads : {1, 2, 3}) {
        cpu::set_num_threads(threads);
        Tensor t = make_tensor(dt, c.shape, c.layout);
        const Status s = run_fill(t.v, static_cast<int64_t>(pattern));
        ++runs;
        const std::string ctx = std::string(dtype_name(dt)) + " " + shape_str(c.shape) + " " + layout_name(c.layout) +
                                " threads " + std::to_string(threads);
        KCHECK(s.ok()) << ctx << ": " << s.message();
        KCHECK(t.guards_intact()) << ctx << ": wrote outside the view";
        const std::vector<unsigned char> got = t.bytes();
        bool all = true;
        for (size_t i = 0; i < got.size(); i += es) {
          uint64_t v = 0;
          std::memcpy(&v, got.data() + i, es);
          all = all && v == pattern;
        }
        KCHECK(all) << ctx << ": an element missed the value";
      }
    }
  }
  cpu::set_num_threads(0);
  std::cout << "    " << runs << " fill runs" << std::endl;
}

}  // namespace
