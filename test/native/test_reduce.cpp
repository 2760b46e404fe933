// Suite 'reduce': the CPU kernels sum, mean, max, min, argmax through
// kiln::run_kernel, on random shapes (ranks 0-4, size-1 and empty dims) and
// axis sets, contiguous / transposed / strided / expanded inputs and strided
// outputs, and large cases that take every path (reductions over the last
// axis and over leading axes, long runs cut into blocks, few outputs with the
// blocks spread over threads). Every ISA level and 1, 2 and 3 threads must give
// the same bits.
//
// References are computed here: sums in float64 with Neumaier compensation,
// rounded to the dtype (the kernel sums in float64 and rounds once, so it may
// differ only by the float64 rounding of n terms: the tolerance is half an ulp
// of the dtype plus n * 2^-52 * sum |x|); int32 sums in int64 reduced modulo
// 2^32; max / min / argmax exactly (NaN wins; argmax takes the first maximum).
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
#include "kiln/reduce.h"
#include "kiln/registry.h"
#include "ops_testing.h"

namespace {

using namespace kiln;
using ot::Layout;
using ot::Tensor;

const char* const kOps[] = {"sum", "mean", "max", "min", "argmax"};

struct RefAcc {
  double sum = -0.0, comp = 0.0, abs_sum = 0.0;  // Neumaier
  int64_t isum = 0;
  int64_t n = 0;
  double best = 0;
  int64_t best_i = -1;
  bool nan = false;
  bool any_nan = false, pinf = false, ninf = false;  // for sums
  void add_sum(double v) {
    any_nan = any_nan || std::isnan(v);
    pinf = pinf || v == HUGE_VAL;
    ninf = ninf || v == -HUGE_VAL;
    if (!std::isfinite(v)) return;
    const double t = sum + v;
    if (std::fabs(sum) >= std::fabs(v)) {
      comp += (sum - t) + v;
    } else {
      comp += (v - t) + sum;
    }
    sum = t;
    abs_sum += std::fabs(v);
  }
};

int32_t wrap32(int64_t v) {
  const int64_t m = ((v % 4294967296LL) + 4294967296LL) % 4294967296LL;
  return static_cast<int32_t>(m >= 2147483648LL ? m - 4294967296LL : m);
}

// Runs reduction `op` over `axes` of `in` into `out`.
Status run_axes(const char* op, const Tensor& in, const Tensor& out, const std::vector<int64_t>& axes) {
  return kt::run(op, in.v.dtype, {in.v}, {out.v}, axes);
}

struct Totals {
  int64_t runs = 0, outputs = 0;
  double worst_sum_ulp = 0;
};

// Runs op over `axes` of x, on every ISA level (and 1/2/3 threads when `threads`),
// and checks against the reference.
void check_reduce(const char* op, const Tensor& x, const std::vector<int64_t>& axes, Layout out_layout, bool threads,
                  const std::string& ctx0, Totals& tot) {
  const int nd = static_cast<int>(x.shape.size());
  const bool argmax = std::string(op) == "argmax";
  const DType odt = argmax ? DType::Int32 : x.v.dtype;
  std::vector<bool> red(static_cast<size_t>(nd), false);
  for (int64_t a : axes) red[static_cast<size_t>(a)] = true;
  std::vector<int64_t> os(x.shape);
  for (int i = 0; i < nd; ++i) {
    if (red[static_cast<size_t>(i)]) os[static_cast<size_t>(i)] = 1;
  }
  const std::string ctx = ctx0 + " " + op + " " + dtype_name(x.v.dtype) + " " + ot::shape_str(x.shape) + " axes " +
                          ot::shape_str(axes) + " -> " + ot::layout_name(out_layout);
  Tensor y0 = ot::make(odt, os, out_layout);
  const std::vector<unsigned char> got = ot::same_everywhere(ctx, [&] {
    Tensor y = ot::clone(y0);
    const Status s = run_axes(op, x, y, axes);
    KCHECK(s.ok()) << ctx << ": " << s.message();
    KCHECK(y.guards_intact()) << ctx << ": wrote outside the output view";
    return y.bytes();
  }, threads, &tot.runs);
  // Reference over x in row-major order.
  int64_t n_out = 1;
  for (int64_t d : os) n_out *= d;
  std::vector<RefAcc> acc(static_cast<size_t>(n_out));
  const int64_t n = x.numel();
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t rem = k, o = 0, mul = 1, axis_pos = 0;
    for (int i = nd - 1; i >= 0; --i) {
      const int64_t d = x.shape[static_cast<size_t>(i)];
      const int64_t c = rem % d;
      rem /= d;
      if (red[static_cast<size_t>(i)]) {
        axis_pos = c;  // argmax has one axis
      } else {
        o += c * mul;
      }
      mul *= os[static_cast<size_t>(i)];
    }
    RefAcc& a = acc[static_cast<size_t>(o)];
    if (x.v.dtype == DType::Int32) {
      const int64_t v = x.geti(k);
      a.isum += v;
      const bool take = a.best_i < 0 || (std::string(op) == "min" ? v < a.best : v > a.best);
      if (take) {
        a.best = static_cast<double>(v);
        a.best_i = axis_pos;
      }
    } else {
      const double v = x.get(k);
      a.add_sum(v);
      if (std::isnan(v)) {
        if (!a.nan) a.best_i = axis_pos;
        a.nan = true;
      } else if (!a.nan) {
        const bool take = a.best_i < 0 || (std::string(op) == "min" ? v < a.best : v > a.best);
        if (take) {
          a.best = v;
          a.best_i = axis_pos;
        }
      }
    }
    ++a.n;
  }
  int64_t bad = 0;
  const size_t es = dtype_size(odt);
  int64_t n_red = 1;
  for (int64_t a : axes) n_red *= x.shape[static_cast<size_t>(a)];
  for (int64_t o = 0; o < n_out && got.size() == static_cast<size_t>(n_out) * es; ++o) {
    const RefAcc& a = acc[static_cast<size_t>(o)];
    const unsigned char* gp = got.data() + o * static_cast<int64_t>(es);
    bool ok = true;
    std::string want_s;
    double gv = ot::decode(odt, gp);
    if (argmax) {
      ok = static_cast<int64_t>(gv) == a.best_i;
      want_s = std::to_string(a.best_i);
    } else if (x.v.dtype == DType::Int32) {
      const std::string s(op);
      const int32_t want = s == "sum" ? wrap32(a.isum) : static_cast<int32_t>(a.best);
      ok = static_cast<int32_t>(gv) == want;
      want_s = std::to_string(want);
    } else if (std::string(op) == "sum" || std::string(op) == "mean") {
      const bool mean = std::string(op) == "mean";
      double exact = (n_red == 0 ? 0.0 : a.sum + a.comp) / (mean ? static_cast<double>(n_red) : 1.0);
      if (a.any_nan || (a.pinf && a.ninf)) {
        exact = std::numeric_limits<double>::quiet_NaN();
      } else if (a.pinf || a.ninf) {
        exact = a.pinf ? HUGE_VAL : -HUGE_VAL;
      }
      const double want = ot::round_to(x.v.dtype, exact);
      if (std::isnan(exact) || (n_red == 0 && mean)) {
        ok = std::isnan(gv);
      } else if (std::isinf(want)) {
        ok = gv == want;
      } else {
        const double slack = static_cast<double>(n_red) * 0x1p-52 * a.abs_sum / (mean ? static_cast<double>(n_red) : 1.0);
        const int e = std::max(want == 0 ? ot::min_exp(x.v.dtype) : std::ilogb(want), ot::min_exp(x.v.dtype));
        const double half_ulp = 0.5 * std::ldexp(1.0, e - (ot::precision(x.v.dtype) - 1));
        ok = std::fabs(gv - exact) <= half_ulp + slack;
        if (n_red > 0 && ok) tot.worst_sum_ulp = std::max(tot.worst_sum_ulp, ot::ulp_diff(x.v.dtype, gv, exact));
      }
      want_s = std::to_string(exact);
    } else {
      const double want = a.nan ? std::numeric_limits<double>::quiet_NaN() : a.best;
      ok = (std::isnan(want) && std::isnan(gv)) || gv == want;
      want_s = std::to_string(want);
    }
    if (!ok && ++bad <= 3) KCHECK(false) << ctx << ": output " << o << " is " << gv << ", want " << want_s;
  }
  tot.outputs += n_out;
  KCHECK_EQ(bad, 0) << ctx;
}

// Random float values in [-1, 1] with occasional specials; int32 any.
void fill_values(Tensor& t, ot::Rng& r, bool specials) {
  for (int64_t k = 0; k < t.numel(); ++k) {
    if (t.v.dtype == DType::Int32) {
      t.seti(k, r.below(3) == 0 ? static_cast<int32_t>(r.next()) : static_cast<int32_t>(r.below(201) - 100));
    } else if (specials && r.below(50) == 0) {
      const double sp[] = {std::numeric_limits<double>::quiet_NaN(), HUGE_VAL, -HUGE_VAL, -0.0, 0.0};
      t.set(k, sp[r.below(5)]);
    } else if (r.below(20) == 0) {
      t.set(k, static_cast<double>(r.below(5) - 2));  // ties for max / argmax
    } else {
      t.set(k, r.uniform(-1, 1));
    }
  }
}

KTEST(reduce, random_shapes_axes_layouts) {
  ot::Restore restore;
  Totals tot;
  ot::Rng r(11);
  const int64_t dims[] = {1, 2, 3, 5, 7, 16, 33};
  const Layout layouts[] = {Layout::Contig, Layout::Transposed, Layout::Strided, Layout::Expanded};
  for (int iter = 0; iter < 120; ++iter) {
    const int nd = static_cast<int>(r.below(5));
    std::vector<int64_t> shape;
    for (int i = 0; i < nd; ++i) shape.push_back(dims[r.below(7)]);
    if (iter % 17 == 5 && nd > 0) shape[static_cast<size_t>(r.below(nd))] = 0;  // empty
    std::vector<int64_t> axes;
    for (int i = 0; i < nd; ++i) {
      if (r.below(2)) axes.push_back(i);
    }
    const Layout lin = layouts[r.below(4)];
    const Layout lout = r.below(2) ? Layout::Strided : Layout::Contig;
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32}) {
      Tensor x = ot::make(dt, shape, lin);
      fill_values(x, r, iter % 3 == 0);
      int64_t n_red = 1;
      for (int64_t a : axes) n_red *= shape[static_cast<size_t>(a)];
      for (const char* op : kOps) {
        const std::string s(op);
        if (s == "mean" && dt == DType::Int32) continue;
        int64_t numel_out = 1;
        for (int i = 0; i < nd; ++i) numel_out *= std::find(axes.begin(), axes.end(), i) != axes.end() ? 1 : shape[static_cast<size_t>(i)];
        if ((s == "max" || s == "min" || s == "argmax") && n_red == 0 && numel_out > 0) continue;  // a ShapeError, tested below
        if (s == "argmax") {
          if (nd == 0) continue;
          const int64_t axis = r.below(nd);
          int64_t arg_out = 1;
          for (int i = 0; i < nd; ++i) arg_out *= i == axis ? 1 : shape[static_cast<size_t>(i)];
          if (shape[static_cast<size_t>(axis)] == 0 && arg_out > 0) continue;
          check_reduce(op, x, {axis}, lout, false, "random", tot);
        } else {
          check_reduce(op, x, axes, lout, false, "random", tot);
        }
      }
    }
  }
  std::cout << "    " << tot.runs << " kernel runs, " << tot.outputs << " outputs checked; float sums within "
            << tot.worst_sum_ulp << " ulp of the exact value" << std::endl;
}

KTEST(reduce, large_cases_every_path_threads_isas) {
  ot::Restore restore;
  Totals tot;
  struct Case {
    std::vector<int64_t> shape, axes;
    Layout layout;
    const char* what;
  } cases[] = {
      {{3, 70000}, {1}, Layout::Contig, "last axis, long runs cut into blocks, few outputs"},
      {{600, 1000}, {1}, Layout::Contig, "last axis, many outputs"},
      {{12, 40000}, {1}, Layout::Contig, "last axis, long runs, one output per thread chunk"},
      {{20, 600, 16}, {1}, Layout::Contig, "middle axis into columns, many tasks of several blocks"},
      {{70000, 3}, {0}, Layout::Contig, "leading axis, narrow columns, blocks over threads"},
      {{1000, 700}, {0}, Layout::Contig, "leading axis, two column tiles"},
      {{64, 50, 80}, {0, 1}, Layout::Contig, "two leading axes into columns"},
      {{50, 40, 60}, {0, 2}, Layout::Contig, "outer and inner axes (runs of 60, 50 per output)"},
      {{200, 300, 5}, {0, 1, 2}, Layout::Contig, "everything, one output"},
      {{700, 500}, {0}, Layout::Transposed, "transposed: reduced dim contiguous"},
      {{700, 500}, {1}, Layout::Transposed, "transposed: kept dim contiguous"},
      {{300, 400}, {0, 1}, Layout::Strided, "strided everything"},
  };
  uint64_t seed = 77;
  for (const Case& c : cases) {
    for (DType dt : {DType::Float32, DType::BFloat16, DType::Int32}) {
      ot::Rng r(seed++);
      Tensor x = ot::make(dt, c.shape, c.layout);
      fill_values(x, r, false);
      for (const char* op : kOps) {
        const std::string s(op);
        if (s == "mean" && dt == DType::Int32) continue;
        if (s == "argmax") {
          if (c.axes.size() != 1) continue;
        } else if (dt == DType::BFloat16 && s != "sum") {
          continue;  // keep the run short
        }
        check_reduce(op, x, c.axes, Layout::Contig, true, c.what, tot);
      }
    }
  }
  std::cout << "    " << tot.runs << " kernel runs, " << tot.outputs << " outputs checked; float sums within "
            << tot.worst_sum_ulp << " ulp of the exact value" << std::endl;
}

KTEST(reduce, nan_inf_zero_and_empty) {
  ot::Restore restore;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = ot::make(DType::Float32, {4, 5});
  const double v[4][5] = {{1, nan, 3, nan, 2}, {-HUGE_VAL, -1, -HUGE_VAL, -2, -3}, {-0.0, -0.0, -0.0, -0.0, -0.0},
                          {2, 5, 5, 1, HUGE_VAL}};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 5; ++j) x.set(i * 5 + j, v[i][j]);
  }
  auto run1 = [&](const char* op, std::vector<int64_t> axes, DType odt, const std::vector<int64_t>& os) {
    Tensor y = ot::make(odt, os);
    const Status s2 = run_axes(op, x, y, axes);
    KCHECK(s2.ok()) << op << ": " << s2.message();
    return y;
  };
  Tensor sum = run1("sum", {1}, DType::Float32, {4, 1});
  KCHECK(std::isnan(sum.get(0)) && sum.get(1) == -HUGE_VAL && sum.get(2) == 0.0 && std::signbit(sum.get(2)) &&
         sum.get(3) == HUGE_VAL);
  Tensor mx = run1("max", {1}, DType::Float32, {4, 1});
  KCHECK(std::isnan(mx.get(0)) && mx.get(1) == -1 && mx.get(2) == 0.0 && mx.get(3) == HUGE_VAL);
  Tensor mn = run1("min", {1}, DType::Float32, {4, 1});
  KCHECK(std::isnan(mn.get(0)) && mn.get(1) == -HUGE_VAL && mn.get(3) == 1);
  Tensor am = run1("argmax", {1}, DType::Int32, {4, 1});
  KCHECK(am.geti(0) == 1 && am.geti(1) == 1 && am.geti(2) == 0 && am.geti(3) == 4) << am.geti(0) << am.geti(1) << am.geti(2) << am.geti(3);
  Tensor am0 = run1("argmax", {0}, DType::Int32, {1, 5});
  KCHECK(am0.geti(0) == 3 && am0.geti(1) == 0 && am0.geti(2) == 3 && am0.geti(3) == 0 && am0.geti(4) == 3);
  // Empty: sum of nothing is +0, mean NaN; max / min / argmax of nothing a ShapeError;
  // an empty output is fine for every op.
  Tensor e = ot::make(DType::Float32, {3, 0}), e1 = ot::make(DType::Float32, {3, 1}), ei = ot::make(DType::Int32, {3, 1});
  KCHECK(run_axes("sum", e, e1, {1}).ok());
  KCHECK(e1.get(0) == 0.0 && !std::signbit(e1.get(0)) && e1.get(2) == 0.0);
  KCHECK(run_axes("mean", e, e1, {1}).ok());
  KCHECK(std::isnan(e1.get(1)));
  for (const char* op : {"max", "min"}) {
    const Status s = run_axes(op, e, e1, {1});
    KCHECK(s.code() == StatusCode::ShapeError && s.message().find("zero elements") != std::string::npos) << s.message();
  }
  KCHECK(run_axes("argmax", e, ei, {1}).code() == StatusCode::ShapeError);
  Tensor e0 = ot::make(DType::Float32, {1, 0});
  for (const char* op : {"sum", "mean", "max", "min"}) KCHECK(run_axes(op, e, e0, {0}).ok()) << op;
  // Reducing no axes (or only size-1 axes) copies.
  Tensor c = ot::make(DType::Float32, {2, 1, 3}), c1 = ot::make(DType::Float32, {2, 1, 3});
  for (int k = 0; k < 6; ++k) c.set(k, k * 1.5 - 2);
  KCHECK(run_axes("sum", c, c1, {}).ok());
  KCHECK(run_axes("mean", c, c1, {1}).ok());
  bool same = true;
  for (int k = 0; k < 6; ++k) same = same && c1.get(k) == c.get(k);
  KCHECK(same);
  Tensor ci = ot::make(DType::Int32, {2, 1, 3});
  KCHECK(run_axes("argmax", c, ci, {1}).ok());
  KCHECK(ci.geti(0) == 0 && ci.geti(5) == 0);
  // max / min order -0 below +0; argmax treats them as equal (the first wins).
  Tensor z = ot::make(DType::Float32, {4}), z1 = ot::make(DType::Float32, {1}), zi = ot::make(DType::Int32, {1});
  const double zv[4] = {-0.0, 0.0, -0.0, 0.0};
  for (int k = 0; k < 4; ++k) z.set(k, zv[k]);
  KCHECK(run_axes("max", z, z1, {0}).ok());
  KCHECK(z1.get(0) == 0.0 && !std::signbit(z1.get(0)));
  KCHECK(run_axes("min", z, z1, {0}).ok());
  KCHECK(z1.get(0) == 0.0 && std::signbit(z1.get(0)));
  KCHECK(run_axes("argmax", z, zi, {0}).ok());
  KCHECK_EQ(zi.geti(0), 0);
  // int32 sums wrap.
  Tensor w = ot::make(DType::Int32, {3}), w1 = ot::make(DType::Int32, {1});
  w.seti(0, INT32_MAX);
  w.seti(1, INT32_MAX);
  w.seti(2, 5);
  KCHECK(run_axes("sum", w, w1, {0}).ok());
  KCHECK_EQ(w1.geti(0), wrap32(2LL * INT32_MAX + 5));
}

KTEST(reduce, errors) {
  Tensor x = ot::make(DType::Float32, {3, 4}), y = ot::make(DType::Float32, {3, 1}), yi = ot::make(DType::Int32, {3, 1});
  Tensor xi = ot::make(DType::Int32, {3, 4}), xb = ot::make(DType::Bool, {3, 4}), y2 = ot::make(DType::Float32, {1, 4});
  auto has = [](const Status& s, const char* part) { return s.message().find(part) != std::string::npos; };
  Status s = run_axes("sum", x, y, {2});
  KCHECK(s.code() == StatusCode::ValueError && has(s, "axes [2]") && has(s, "float32[3, 4]")) << s.message();
  s = run_axes("sum", x, y, {1, 1});
  KCHECK(s.code() == StatusCode::ValueError) << s.message();
  s = run_axes("sum", x, y, {1, 0});
  KCHECK(s.code() == StatusCode::ValueError) << s.message();
  s = run_axes("sum", x, y, {-1});
  KCHECK(s.code() == StatusCode::ValueError) << s.message();
  s = run_axes("sum", x, y2, {1});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "float32[1, 4]")) << s.message();
  s = run_axes("sum", x, yi, {1});
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  s = run_axes("argmax", x, y, {1});
  KCHECK(s.code() == StatusCode::DTypeError && has(s, "int32")) << s.message();
  s = run_axes("argmax", x, yi, {0, 1});
  KCHECK(s.code() == StatusCode::Internal) << s.message();
  s = run_axes("mean", xi, yi, {1});
  KCHECK(s.code() == StatusCode::NoKernel && s.message() == "kiln: op 'mean' has no kernel for dtype int32 on device cpu") << s.message();
  s = run_axes("max", xb, y, {1});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  for (const Tensor* t : {&y, &yi, &y2}) {
    bool untouched = true;
    for (unsigned char c : t->mem) untouched = untouched && c == ot::kGuard;
    KCHECK(untouched) << "a failed call wrote data";
  }
}

}  // namespace
