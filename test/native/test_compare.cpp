// Suite 'compare': the CPU kernels 'eq' 'ne' 'lt' 'le' 'gt' 'ge' (float32,
// float16, bfloat16, int32, int8, uint8, bool inputs), 'logical_and'
// 'logical_or' 'logical_not' (bool), reached through kiln::run_kernel on every
// ISA level this CPU supports and with 1, 2 and 3 threads, with broadcasting
// and strided, transposed, offset and expanded (stride 0) operands.
//
// The reference decodes every element here from the IEEE definition (or as
// the integer it is; a bool byte as byte != 0) to float64 and compares in
// float64, which is exact for every input dtype: NaN is unordered (false for
// all but ne), -0 == +0. Outputs must be exactly 0 or 1 bytes, and bytes the
// output view does not address must keep their guard.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/compare.h"
#include "kiln/cpu_features.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "ops_testing.h"

namespace {

using kiln::DType;
using kiln::Status;
using kiln::StatusCode;
using ot::Layout;
using ot::Tensor;

const char* const kCompareOps[] = {"eq", "ne", "lt", "le", "gt", "ge"};
const DType kCompareDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32,
                                DType::Int8,    DType::UInt8,   DType::Bool};

// The exact value of an element of any input dtype (bool: its truth value).
double value_at(DType dt, const unsigned char* p) {
  switch (dt) {
    case DType::Int8: return static_cast<int8_t>(*p);
    case DType::UInt8: return *p;
    case DType::Bool: return *p != 0 ? 1.0 : 0.0;
    default: return ot::decode(dt, p);
  }
}

bool ref_compare(const std::string& op, double a, double b) {
  if (op == "eq") return a == b;
  if (op == "ne") return a != b;
  if (op == "lt") return a < b;
  if (op == "le") return a <= b;
  if (op == "gt") return a > b;
  if (op == "ge") return a >= b;
  if (op == "logical_and") return a != 0 && b != 0;
  return a != 0 || b != 0;  // logical_or
}

// Random element bits: half the time from a small pool (so that equal values,
// -0 vs +0, NaN vs NaN and neighbours meet often), else any bit pattern.
void random_bits(DType dt, ot::Rng& r, unsigned char* p) {
  const bool pool = r.below(2) == 0;
  switch (dt) {
    case DType::Float32: {
      static const uint32_t kPool[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
                                       0x7F800001u, 0x3F800000u, 0xBF800000u, 0x3F800001u, 0x00000001u, 0x80000001u,
                                       0x7F7FFFFFu, 0xFF7FFFFFu, 0x00800000u, 0x40000000u};
      const uint32_t u = pool ? kPool[r.below(16)] : static_cast<uint32_t>(r.next());
      std::memcpy(p, &u, 4);
      break;
    }
    case DType::Float16:
    case DType::BFloat16: {
      const bool f16 = dt == DType::Float16;
      const uint16_t kF16Pool[] = {0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x3C00,
                                   0xBC00, 0x3C01, 0x0001, 0x8001, 0x7BFF, 0xFBFF, 0x0400, 0x03FF};
      const uint16_t kBF16Pool[] = {0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x3F80,
                                    0xBF80, 0x3F81, 0x0001, 0x8001, 0x7F7F, 0xFF7F, 0x0080, 0x007F};
      const uint16_t h = pool ? (f16 ? kF16Pool : kBF16Pool)[r.below(16)] : static_cast<uint16_t>(r.next());
      std::memcpy(p, &h, 2);
      break;
    }
    case DType::Int32: {
      static const int32_t kPool[] = {0, 1, -1, 2, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1};
      const int32_t i = pool ? kPool[r.below(8)] : static_cast<int32_t>(r.next());
      std::memcpy(p, &i, 4);
      break;
    }
    case DType::Bool: {
      // mostly 0 / 1, sometimes another nonzero byte (true)
      const int64_t k = r.below(10);
      *p = static_cast<unsigned char>(k < 4 ? 0 : (k < 8 ? 1 : (k == 8 ? 2 : 255)));
      break;
    }
    default: {  // int8, uint8
      static const unsigned char kPool[] = {0, 1, 0x7F, 0x80, 0xFF, 0x81, 0xFE, 2};
      *p = pool ? kPool[r.below(8)] : static_cast<unsigned char>(r.next());
      break;
    }
  }
}

void fill_bits(Tensor& t, ot::Rng& r) {
  const size_t elems = t.mem.size() / t.es;
  for (size_t i = 0; i < elems; ++i) random_bits(t.v.dtype, r, t.mem.data() + i * t.es);
}

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

// Row-major index into `in_shape` of the input element broadcast to output element k.
int64_t input_element(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape, int64_t k) {
  int64_t idx = 0, mul = 1;
  const size_t lead = out_shape.size() - in_shape.size();
  for (size_t i = out_shape.size(); i-- > 0;) {
    const int64_t d = out_shape[i];
    const int64_t pos = k % d;
    k /= d;
    if (i >= lead) {
      const int64_t di = in_shape[i - lead];
      idx += (di == 1 ? 0 : pos) * mul;
      mul *= di;
    }
  }
  return idx;
}

struct Totals {
  int64_t runs = 0, elements = 0, trues = 0;
};

// Runs one case on every ISA level (and 1, 2, 3 threads when big), checks the
// result against the float64 reference, the guards, and 0/1 bytes.
void check_case(const char* op, DType dt, const std::vector<int64_t>& as, const std::vector<int64_t>& bs, Layout la,
                Layout lb, Layout lo, uint64_t seed, Totals& tot) {
  const std::vector<int64_t> os = broadcast_shape(as, bs);
  ot::Rng r(seed);
  Tensor a = ot::make(dt, as, la), b = ot::make(dt, bs, lb);
  fill_bits(a, r);
  fill_bits(b, r);
  const std::string ctx = std::string(op) + " " + kiln::dtype_name(dt) + " " + ot::shape_str(as) + " " +
                          ot::layout_name(la) + " x " + ot::shape_str(bs) + " " + ot::layout_name(lb) + " -> " +
                          ot::layout_name(lo);
  int64_t n_out = 1;
  for (int64_t d : os) n_out *= d;
  const bool big = n_out > 2 * (1 << 15);
  const std::vector<unsigned char> got = ot::same_everywhere(
      ctx,
      [&] {
        Tensor o = ot::make(DType::Bool, os, lo);
        const Status s = kt::run_binary(op, a.v, b.v, o.v);
        KCHECK(s.ok()) << ctx << ": " << s.message();
        KCHECK(o.guards_intact()) << ctx << ": wrote outside the output view";
        return o.bytes();
      },
      big, &tot.runs);
  if (static_cast<int64_t>(got.size()) != n_out) return;
  int64_t bad = 0;
  for (int64_t k = 0; k < n_out; ++k) {
    const double x = value_at(dt, a.ptr(input_element(as, os, k)));
    const double y = value_at(dt, b.ptr(input_element(bs, os, k)));
    const unsigned char want = ref_compare(op, x, y) ? 1 : 0;
    tot.trues += want;
    if (got[static_cast<size_t>(k)] != want && ++bad <= 3) {
      KCHECK(false) << ctx << ": element " << k << ": " << x << " " << op << " " << y << " gives "
                    << static_cast<int>(got[static_cast<size_t>(k)]) << ", want " << static_cast<int>(want);
    }
  }
  tot.elements += n_out;
  KCHECK_EQ(bad, 0) << ctx;
}

struct ShapeCase {
  std::vector<int64_t> a, b;
};

const std::vector<ShapeCase>& shape_cases() {
  static const std::vector<ShapeCase> cases = {
      {{3, 1, 5}, {4, 1}},  {{}, {7}},          {{2, 3}, {}},       {{}, {}},           {{1}, {5}},
      {{0, 3}, {1, 3}},     {{5, 0}, {5, 1}},   {{1, 1, 1}, {1}},   {{37, 129}, {129}}, {{2, 1, 3, 1, 4}, {1, 5, 1, 6, 1}},
      {{1000}, {1000}},     {{1000}, {1}},      {{1}, {999}},
  };
  return cases;
}

const Layout kLayouts[][3] = {
    {Layout::Contig, Layout::Contig, Layout::Contig},
    {Layout::Transposed, Layout::Strided, Layout::Contig},
    {Layout::Strided, Layout::Expanded, Layout::Strided},
    {Layout::Expanded, Layout::Transposed, Layout::Transposed},
};

KTEST(compare, comparisons_broadcast_strided_all_isas) {
  ot::Restore restore;
  Totals tot;
  uint64_t seed = 1;
  for (const ShapeCase& c : shape_cases()) {
    for (const auto& ls : kLayouts) {
      for (DType dt : kCompareDTypes) {
        for (const char* op : kCompareOps) check_case(op, dt, c.a, c.b, ls[0], ls[1], ls[2], seed++, tot);
      }
    }
  }
  std::cout << "    " << tot.runs << " kernel runs on " << ot::isa_levels().size() << " ISA level(s) (detected "
            << kiln::cpu::isa_name(kiln::cpu::detected_isa()) << "), " << tot.elements << " elements checked, "
            << tot.trues << " true" << std::endl;
}

KTEST(compare, split_over_threads) {
  // 147840 outputs: the pool splits them; every thread count gives the same bytes.
  ot::Restore restore;
  Totals tot;
  uint64_t seed = 500;
  for (DType dt : kCompareDTypes) {
    for (const char* op : kCompareOps) {
      check_case(op, dt, {64, 1, 33}, {1, 70, 33}, Layout::Contig, Layout::Contig, Layout::Contig, seed++, tot);
    }
    check_case("lt", dt, {64, 1, 33}, {1, 70, 33}, Layout::Strided, Layout::Transposed, Layout::Strided, seed++, tot);
  }
  for (const char* op : {"logical_and", "logical_or"}) {
    check_case(op, DType::Bool, {70001}, {70001}, Layout::Contig, Layout::Contig, Layout::Contig, seed++, tot);
    check_case(op, DType::Bool, {300, 257}, {257}, Layout::Strided, Layout::Contig, Layout::Transposed, seed++, tot);
  }
  std::cout << "    " << tot.runs << " runs, " << tot.elements << " elements" << std::endl;
}

// Every float16 / bfloat16 code against a set of codes (specials, neighbours of
// zero and of inf, random), every op: exhaustive in the first operand.
KTEST(compare, every_16bit_code) {
  ot::Restore restore;
  for (DType dt : {DType::Float16, DType::BFloat16}) {
    const bool f16 = dt == DType::Float16;
    std::vector<uint16_t> others = {0x0000, 0x8000, 0x0001, 0x8001, 0x3C00, 0xBC00, 0x3F80, 0xBF80, 0x7BFF, 0xFBFF,
                                    0x7F7F, 0xFF7F, 0x7C00, 0xFC00, 0x7F80, 0xFF80, 0x7E00, 0x7FC0, 0xFFFF, 0x7C01,
                                    0x7F81, 0x03FF, 0x0400, 0x007F, 0x0080};
    ot::Rng r(f16 ? 16 : 17);
    for (int i = 0; i < 15; ++i) others.push_back(static_cast<uint16_t>(r.next()));
    const int64_t m = static_cast<int64_t>(others.size());
    Tensor a = ot::make(dt, {65536}), b = ot::make(dt, {m, 1});
    for (int64_t i = 0; i < 65536; ++i) {
      const uint16_t h = static_cast<uint16_t>(i);
      std::memcpy(a.ptr(i), &h, 2);
    }
    for (int64_t i = 0; i < m; ++i) std::memcpy(b.ptr(i), &others[static_cast<size_t>(i)], 2);
    std::vector<double> values(65536);
    for (int64_t i = 0; i < 65536; ++i) values[static_cast<size_t>(i)] = ot::decode(dt, a.ptr(i));
    for (const char* op : kCompareOps) {
      const std::string ctx = std::string(op) + " " + kiln::dtype_name(dt) + " every code";
      const std::vector<unsigned char> got = ot::same_everywhere(
          ctx,
          [&] {
            Tensor o = ot::make(DType::Bool, {m, 65536});
            const Status s = kt::run_binary(op, b.v, a.v, o.v);  // [m,1] x [65536]
            KCHECK(s.ok()) << ctx << ": " << s.message();
            return o.bytes();
          },
          false);
      int64_t bad = 0;
      for (int64_t j = 0; j < m && static_cast<int64_t>(got.size()) == m * 65536; ++j) {
        const double x = ot::decode(dt, b.ptr(j));
        for (int64_t i = 0; i < 65536; ++i) {
          const double y = values[static_cast<size_t>(i)];
          const unsigned char want = ref_compare(op, x, y) ? 1 : 0;
          if (got[static_cast<size_t>(j * 65536 + i)] != want && ++bad <= 3) {
            KCHECK(false) << ctx << ": code " << std::hex << others[static_cast<size_t>(j)] << " vs " << i << std::dec
                          << " (" << x << ", " << y << ") gives " << static_cast<int>(got[static_cast<size_t>(j * 65536 + i)]);
          }
        }
      }
      KCHECK_EQ(bad, 0) << ctx;
    }
  }
}

KTEST(compare, ieee_special_values) {
  // Hand-checked: NaN (either sign, any payload) compares false except ne; -0 == +0;
  // infinities order; subnormals are not flushed.
  ot::Restore restore;
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = HUGE_VAL;
  const double xs[] = {nan, -nan, 0.0, -0.0, inf, -inf, 1.0, std::ldexp(1.0, -24), std::ldexp(1.0, -133), 1.0};
  const double ys[] = {1.0, nan, -0.0, 0.0, inf, inf, nan, 0.0, 0.0, 1.0};
  //                       eq ne lt le gt ge
  const int want[][6] = {{0, 1, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0}, {1, 0, 0, 1, 0, 1}, {1, 0, 0, 1, 0, 1},
                         {1, 0, 0, 1, 0, 1}, {0, 1, 1, 1, 0, 0}, {0, 1, 0, 0, 0, 0}, {0, 1, 0, 0, 1, 1},
                         {0, 1, 0, 0, 1, 1}, {1, 0, 0, 1, 0, 1}};
  const int n = 10;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
    for (kiln::cpu::IsaLevel isa : ot::isa_levels()) {
      KCHECK(kiln::cpu::set_isa(isa).ok());
      Tensor a = ot::make(dt, {n}), b = ot::make(dt, {n});
      for (int i = 0; i < n; ++i) {
        a.set(i, xs[i]);
        b.set(i, ys[i]);
      }
      for (int op = 0; op < 6; ++op) {
        Tensor o = ot::make(DType::Bool, {n});
        KCHECK(kt::run_binary(kCompareOps[op], a.v, b.v, o.v).ok());
        for (int i = 0; i < n; ++i) {
          // 2^-24 and 2^-133 underflow to 0 in bfloat16 / float16 (rows 7, 8 become 0 vs 0)
          const double x = a.get(i);
          const int w = x == 0 && (i == 7 || i == 8) ? (op == 0 || op == 3 || op == 5) : want[i][op];
          KCHECK_EQ(static_cast<int>(o.mem[static_cast<size_t>(i)]), w)
              << kCompareOps[op] << " " << kiln::dtype_name(dt) << " " << xs[i] << ", " << ys[i] << " isa "
              << kiln::cpu::isa_name(isa);
        }
      }
    }
  }
}

KTEST(compare, logical_ops) {
  ot::Restore restore;
  Totals tot;
  uint64_t seed = 900;
  for (const ShapeCase& c : shape_cases()) {
    for (const auto& ls : kLayouts) {
      for (const char* op : {"logical_and", "logical_or"}) check_case(op, DType::Bool, c.a, c.b, ls[0], ls[1], ls[2], seed++, tot);
    }
  }
  // logical_not: every layout pair, nonzero bytes are true, output 0 / 1.
  const std::vector<std::vector<int64_t>> shapes = {{}, {0, 4}, {7}, {5, 1, 6}, {33, 40}, {70001}};
  for (const auto& shape : shapes) {
    for (const auto& ls : kLayouts) {
      ot::Rng r(seed++);
      Tensor x = ot::make(DType::Bool, shape, ls[0]);
      fill_bits(x, r);
      const std::string ctx = "logical_not " + ot::shape_str(shape) + " " + ot::layout_name(ls[0]) + " -> " + ot::layout_name(ls[2]);
      const std::vector<unsigned char> got = ot::same_everywhere(
          ctx,
          [&] {
            Tensor y = ot::make(DType::Bool, shape, ls[2]);
            const Status s = kt::run("logical_not", DType::Bool, {x.v}, {y.v});
            KCHECK(s.ok()) << ctx << ": " << s.message();
            KCHECK(y.guards_intact()) << ctx << ": wrote outside the output view";
            return y.bytes();
          },
          x.numel() > 65536, &tot.runs);
      int64_t bad = 0;
      for (int64_t k = 0; k < x.numel() && static_cast<int64_t>(got.size()) == x.numel(); ++k) {
        if (got[static_cast<size_t>(k)] != (*x.ptr(k) == 0 ? 1 : 0)) ++bad;
      }
      KCHECK_EQ(bad, 0) << ctx;
    }
  }
  // In place: a = a && b, a = !a.
  Tensor a = ot::make(DType::Bool, {4, 3}), b = ot::make(DType::Bool, {3});
  const unsigned char av[12] = {0, 1, 2, 0, 1, 1, 255, 0, 1, 1, 1, 0}, bv[3] = {1, 7, 0};
  std::memcpy(a.mem.data(), av, 12);
  std::memcpy(b.mem.data(), bv, 3);
  KCHECK(kt::run_binary("logical_and", a.v, b.v, a.v).ok());
  const unsigned char want_and[12] = {0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0};
  KCHECK(std::memcmp(a.mem.data(), want_and, 12) == 0);
  KCHECK(kt::run("logical_not", DType::Bool, {a.v}, {a.v}).ok());
  bool ok = true;
  for (int i = 0; i < 12; ++i) ok = ok && a.mem[static_cast<size_t>(i)] == (want_and[i] ? 0 : 1);
  KCHECK(ok) << "in-place logical_not";
}

KTEST(compare, errors_and_registrations) {
  Tensor f = ot::make(DType::Float32, {3, 4}), h = ot::make(DType::Float16, {3, 4});
  Tensor o = ot::make(DType::Bool, {3, 4}), of = ot::make(DType::Float32, {3, 4});
  Status s = kt::run_binary("lt", f.v, h.v, o.v);
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  KCHECK_EQ(s.message(), std::string("kiln: lt: dtypes differ: float32[3, 4] on cpu, float16[3, 4] on cpu"));
  s = kt::run("eq", DType::Float32, {f.v, f.v}, {of.v});  // the output must be bool
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  KCHECK_EQ(s.message(), std::string("kiln: eq: output must have dtype bool, got float32[3, 4] on cpu"));
  Tensor w = ot::make(DType::Float32, {3, 5});
  s = kt::run("ge", DType::Float32, {f.v, w.v}, {o.v});
  KCHECK(s.code() == StatusCode::ShapeError) << s.message();
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{4}, {2, 3, 4}, {3, 1}}) {
    Tensor ob = ot::make(DType::Bool, bad);
    s = kt::run("ne", DType::Float32, {f.v, f.v}, {ob.v});
    KCHECK(s.code() == StatusCode::ShapeError) << ot::shape_str(bad) << ": " << s.message();
    KCHECK(ob.guards_intact());
  }
  // No kernels: float8 comparisons, logical ops on non-bool inputs.
  Tensor e = ot::make(DType::Float8E4M3, {2});
  Tensor ob2 = ot::make(DType::Bool, {2});
  s = kt::run("eq", DType::Float8E4M3, {e.v, e.v}, {ob2.v});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  s = kt::run("logical_and", DType::Float32, {f.v, f.v}, {o.v});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  s = kt::run("logical_not", DType::Float32, {f.v}, {o.v});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  Tensor bx = ot::make(DType::Bool, {3, 4});
  s = kt::run("logical_not", DType::Bool, {bx.v}, {of.v});
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  Tensor by = ot::make(DType::Bool, {4, 3});
  s = kt::run("logical_not", DType::Bool, {bx.v}, {by.v});
  KCHECK(s.code() == StatusCode::ShapeError) << s.message();
  KCHECK(o.guards_intact() && of.guards_intact() && by.guards_intact() && ob2.guards_intact());

  const std::vector<std::string> names = kiln::registered_kernels();
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  for (const char* op : kCompareOps) {
    for (DType t : kiln::kAllDTypes) {
      const bool want = t != DType::Float8E4M3 && t != DType::Float8E5M2;
      KCHECK_EQ(has(std::string(op) + "/cpu/" + kiln::dtype_name(t)), want) << op << " " << kiln::dtype_name(t);
    }
  }
  for (const char* op : {"logical_and", "logical_or", "logical_not"}) {
    for (DType t : kiln::kAllDTypes) {
      KCHECK_EQ(has(std::string(op) + "/cpu/" + kiln::dtype_name(t)), t == DType::Bool) << op << " " << kiln::dtype_name(t);
    }
  }
}

}  // namespace
