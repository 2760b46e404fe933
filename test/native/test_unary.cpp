// Suite 'unary': the CPU kernels neg abs relu exp log sqrt rsqrt sigmoid tanh
// silu gelu gelu_tanh, their backward ops, where, clamp and pow (binary),
// reached through kiln::run_kernel on every ISA level and with 1, 2 and 3
// threads (all must give the same bits), on contiguous, transposed, strided
// (offset) and expanded (stride 0) inputs and strided outputs, empty tensors
// and 0-d tensors.
//
// References are float64 math written here (libm), rounded to the dtype where
// the contract says so; backward kernels are also checked against central
// finite differences of the float64 forward reference. float32 results must be
// within 1 ulp of the exact value (contract: 2) and are also the same bits as
// the scalar kiln/fastmath.h function (which the 'fastmath' suite sweeps);
// float16 / bfloat16 results are the float32 result rounded once.
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
#include "kiln/element.h"
#include "kiln/elementwise.h"
#include "kiln/fastmath.h"
#include "kiln/registry.h"
#include "kiln/unary_apply.h"
#include "ops_testing.h"

namespace {

using namespace kiln;
using ot::Layout;
using ot::Tensor;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- float64 references --------------------------------------------------------------------

double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double ref_gelu_tanh_u(double x) { return std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x); }

double ref_unary(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Abs: return std::fabs(x);
    case UnaryOp::Relu: return std::isnan(x) ? x : (x > 0 ? x : 0.0);
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return 1.0 / std::sqrt(x);
    case UnaryOp::Sigmoid: return ref_sigmoid(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Silu: return x == -HUGE_VAL ? -0.0 : x / (1.0 + std::exp(-x));
    case UnaryOp::Gelu: return x == -HUGE_VAL ? -0.0 : 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case UnaryOp::GeluTanh: return x == -HUGE_VAL ? -0.0 : x / (1.0 + std::exp(-2.0 * ref_gelu_tanh_u(x)));
  }
  return kNaN;
}

int32_t ref_unary_i32(UnaryOp op, int32_t x) {
  const int64_t v = x;
  int64_t r = op == UnaryOp::Neg ? -v : (op == UnaryOp::Abs ? (v < 0 ? -v : v) : (v > 0 ? v : 0));
  r = ((r % 4294967296LL) + 4294967296LL) % 4294967296LL;  // wrap modulo 2^32
  return static_cast<int32_t>(r >= 2147483648LL ? r - 4294967296LL : r);
}

// The forward function whose derivative each backward op computes (of x).
double ref_forward_of_grad(UnaryGradOp op, double x) {
  switch (op) {
    case UnaryGradOp::Relu: return x > 0 ? x : 0.0;
    case UnaryGradOp::Gelu: return ref_unary(UnaryOp::Gelu, x);
    case UnaryGradOp::GeluTanh: return ref_unary(UnaryOp::GeluTanh, x);  // x sigmoid(2u) = x/2 (1 + tanh u)
    case UnaryGradOp::Silu: return ref_unary(UnaryOp::Silu, x);
    case UnaryGradOp::Sigmoid: return ref_sigmoid(x);
    case UnaryGradOp::Tanh: return std::tanh(x);
  }
  return kNaN;
}

// Analytic derivative at x (written from the textbook formulas, not the kernels').
double ref_derivative(UnaryGradOp op, double x) {
  switch (op) {
    case UnaryGradOp::Relu: return x > 0 ? 1.0 : 0.0;
    case UnaryGradOp::Gelu: {
      const double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
      return cdf + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
    }
    case UnaryGradOp::GeluTanh: {
      // d/dx [x/2 (1 + tanh u)] = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) u', with
      // 1 + tanh u = 2 s(2u) and 1 - tanh^2 u = 4 s(2u) s(-2u) (no cancellation for x << 0).
      const double u = ref_gelu_tanh_u(x);
      const double sp = ref_sigmoid(2 * u), sm = ref_sigmoid(-2 * u);
      const double du = std::sqrt(2.0 / M_PI) * (1.0 + 3.0 * 0.044715 * x * x);
      return sp + 2.0 * x * sp * sm * du;
    }
    case UnaryGradOp::Silu: {
      const double s = ref_sigmoid(x);
      return s + x * s * (1.0 - s);
    }
    case UnaryGradOp::Sigmoid: {
      const double s = ref_sigmoid(x);
      return s * (1.0 - s);
    }
    case UnaryGradOp::Tanh: {
      const double t = std::tanh(x);
      return 1.0 - t * t;
    }
  }
  return kNaN;
}

// The scalar fastmath result for a value of dtype dt (what every ISA's loop must reproduce).
template <UnaryOp OP>
double scalar_unary_t(DType dt, double x) {
  return ot::round_to(dt, static_cast<double>(unary_apply_f32<OP>(static_cast<float>(x))));
}
double scalar_unary(UnaryOp op, DType dt, double x) {
  switch (op) {
    case UnaryOp::Neg: return scalar_unary_t<UnaryOp::Neg>(dt, x);
    case UnaryOp::Abs: return scalar_unary_t<UnaryOp::Abs>(dt, x);
    case UnaryOp::Relu: return scalar_unary_t<UnaryOp::Relu>(dt, x);
    case UnaryOp::Exp: return scalar_unary_t<UnaryOp::Exp>(dt, x);
    case UnaryOp::Log: return scalar_unary_t<UnaryOp::Log>(dt, x);
    case UnaryOp::Sqrt: return scalar_unary_t<UnaryOp::Sqrt>(dt, x);
    case UnaryOp::Rsqrt: return scalar_unary_t<UnaryOp::Rsqrt>(dt, x);
    case UnaryOp::Sigmoid: return scalar_unary_t<UnaryOp::Sigmoid>(dt, x);
    case UnaryOp::Tanh: return scalar_unary_t<UnaryOp::Tanh>(dt, x);
    case UnaryOp::Silu: return scalar_unary_t<UnaryOp::Silu>(dt, x);
    case UnaryOp::Gelu: return scalar_unary_t<UnaryOp::Gelu>(dt, x);
    case UnaryOp::GeluTanh: return scalar_unary_t<UnaryOp::GeluTanh>(dt, x);
  }
  return kNaN;
}

// A value of any magnitude: specials, subnormals, huge, and everyday values.
double wide_value(ot::Rng& r) {
  const int64_t k = r.below(100);
  if (k < 10) {
    const double sp[] = {0.0, -0.0, HUGE_VAL, -HUGE_VAL, kNaN, 1e-40, -1e-44, FLT_MAX, -FLT_MAX, 1.0};
    return sp[k];
  }
  if (k < 20) {  // any float32 bit pattern
    const uint32_t b = static_cast<uint32_t>(r.next());
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  if (k < 40) return r.uniform(-110.0, 110.0);  // the interesting range of exp, sigmoid, ...
  const double sign = r.below(2) ? -1.0 : 1.0;
  return sign * std::ldexp(r.uniform(1.0, 2.0), static_cast<int>(r.below(50)) - 25);
}

void fill_wide(Tensor& t, ot::Rng& r) {
  for (int64_t k = 0; k < t.numel(); ++k) {
    if (t.v.dtype == DType::Int32) {
      const int32_t sp[] = {0, 1, -1, INT32_MAX, INT32_MIN, 7, -123456};
      t.seti(k, r.below(4) == 0 ? sp[r.below(7)] : static_cast<int32_t>(r.next()));
    } else {
      t.set(k, wide_value(r));
    }
  }
}

struct Shape {
  std::vector<int64_t> s;
  bool big;
};
const Shape kShapes[] = {{{}, false},        {{0}, false},     {{7}, false},      {{3, 1, 5}, false},
                         {{2, 0, 3}, false}, {{33, 17}, false}, {{1, 1000}, false}, {{300, 257}, true}};
const Layout kInLayouts[] = {Layout::Contig, Layout::Transposed, Layout::Strided, Layout::Expanded};

const UnaryOp kUnaryOps[] = {UnaryOp::Neg,     UnaryOp::Abs,  UnaryOp::Relu, UnaryOp::Exp,  UnaryOp::Log,  UnaryOp::Sqrt,
                             UnaryOp::Rsqrt,   UnaryOp::Sigmoid, UnaryOp::Tanh, UnaryOp::Silu, UnaryOp::Gelu,
                             UnaryOp::GeluTanh};

KTEST(unary, forward_all_ops_dtypes_layouts_isas_threads) {
  ot::Restore restore;
  int64_t runs = 0, elements = 0;
  double worst32 = 0;
  std::string worst_where;
  uint64_t seed = 1;
  for (UnaryOp op : kUnaryOps) {
    const char* name = unary_op_name(op);
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32}) {
      if (!unary_supports(op, dt)) continue;
      for (const Shape& sh : kShapes) {
        for (Layout lin : kInLayouts) {
          if (sh.big && lin != Layout::Contig && lin != Layout::Strided) continue;
          const Layout lout = lin == Layout::Strided ? Layout::Strided : Layout::Contig;
          ot::Rng r(seed++);
          Tensor x = ot::make(dt, sh.s, lin);
          fill_wide(x, r);
          const std::string ctx = std::string(name) + " " + dtype_name(dt) + " " + ot::shape_str(sh.s) + " " +
                                  ot::layout_name(lin) + " -> " + ot::layout_name(lout);
          Tensor y0 = ot::make(dt, sh.s, lout);
          const std::vector<unsigned char> got = ot::same_everywhere(
              ctx,
              [&] {
                Tensor y = ot::clone(y0);
                const Status s = kt::run(name, dt, {x.v}, {y.v});
                KCHECK(s.ok()) << ctx << ": " << s.message();
                KCHECK(y.guards_intact()) << ctx << ": wrote outside the output view";
                return y.bytes();
              },
              sh.big, &runs);
          // Check the bytes against the references.
          Tensor y = ot::clone(y0);
          if (got.size() == y.bytes().size()) {
            for (int64_t k = 0; k < y.numel(); ++k) std::memcpy(y.ptr(k), got.data() + k * static_cast<int64_t>(y.es), y.es);
          }
          int64_t bad = 0;
          for (int64_t k = 0; k < x.numel(); ++k) {
            ++elements;
            if (dt == DType::Int32) {
              const int32_t want = ref_unary_i32(op, x.geti(k));
              if (y.geti(k) != want && ++bad <= 3) {
                KCHECK(false) << ctx << ": " << x.geti(k) << " -> " << y.geti(k) << ", want " << want;
              }
              continue;
            }
            const double xv = x.get(k), g = y.get(k);
            const double exact = ref_unary(op, xv);
            const double scalar = scalar_unary(op, dt, xv);
            const double u = ot::ulp_diff(dt, g, exact);
            // float32: within 1 ulp; 16-bit: the float32 result (within 1 ulp32) rounded once.
            const bool close = dt == DType::Float32 ? u <= 1.0 : u <= 0.5 + 1.0 / 64;
            const bool same_as_scalar = (std::isnan(g) && std::isnan(scalar)) ||
                                        (g == scalar && std::signbit(g) == std::signbit(scalar));
            const bool sign_ok = std::isnan(exact) || g != 0.0 || exact != 0.0 || std::signbit(g) == std::signbit(exact) ||
                                 op == UnaryOp::Relu;
            if (dt == DType::Float32 && u > worst32 && u < 1e29) {
              worst32 = u;
              worst_where = ctx + " at x = " + std::to_string(xv);
            }
            if ((!close || !same_as_scalar || !sign_ok) && ++bad <= 3) {
              KCHECK(false) << ctx << ": x = " << xv << " gives " << g << ", float64 " << exact << " (" << u
                            << " ulp), scalar fastmath " << scalar;
            }
          }
          KCHECK_EQ(bad, 0) << ctx;
        }
      }
    }
  }
  std::cout << "    " << runs << " kernel runs, " << elements << " elements checked; worst float32 error " << worst32
            << " ulp (" << worst_where << ")" << std::endl;
}

// Every float32 input bit pattern in a few dense windows, through the kernels at every ISA level.
KTEST(unary, dense_windows_match_scalar_fastmath) {
  ot::Restore restore;
  const int64_t n = 1 << 16;
  Tensor x = ot::make(DType::Float32, {n});
  const uint32_t starts[] = {0x00000000u, 0x3F7F8000u, 0x42B10000u, 0xC2CF0000u, 0xBF800000u, 0x7F7F8000u};
  int64_t checked = 0;
  for (uint32_t st : starts) {
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t b = st + static_cast<uint32_t>(k);
      std::memcpy(x.ptr(k), &b, 4);
    }
    for (UnaryOp op : kUnaryOps) {
      const char* name = unary_op_name(op);
      const std::vector<unsigned char> got = ot::same_everywhere(std::string(name) + " window", [&] {
        Tensor y = ot::make(DType::Float32, {n});
        KCHECK(kt::run(name, DType::Float32, {x.v}, {y.v}).ok());
        return y.bytes();
      }, false);
      int64_t bad = 0;
      for (int64_t k = 0; k < n; ++k) {
        float g;
        std::memcpy(&g, got.data() + 4 * k, 4);
        const double s = scalar_unary(op, DType::Float32, x.get(k));
        if (!((std::isnan(g) && std::isnan(s)) || (g == s && std::signbit(g) == std::signbit(s))) && ++bad <= 3) {
          KCHECK(false) << name << ": x = " << x.get(k) << " kernel " << g << " vs scalar " << s;
        }
        ++checked;
      }
      KCHECK_EQ(bad, 0) << name;
    }
  }
  std::cout << "    " << checked << " kernel outputs equal the scalar fastmath functions at every ISA level" << std::endl;
}

const UnaryGradOp kGradOps[] = {UnaryGradOp::Relu, UnaryGradOp::Gelu,    UnaryGradOp::GeluTanh,
                                UnaryGradOp::Silu, UnaryGradOp::Sigmoid, UnaryGradOp::Tanh};

KTEST(unary, backward_vs_formula_and_finite_differences) {
  ot::Restore restore;
  int64_t runs = 0, fd_checks = 0;
  double worst_fd = 0;
  uint64_t seed = 100;
  for (UnaryGradOp op : kGradOps) {
    const char* name = unary_grad_op_name(op);
    const bool takes_y = op == UnaryGradOp::Sigmoid || op == UnaryGradOp::Tanh;
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      for (const Shape& sh : kShapes) {
        for (Layout lin : {Layout::Contig, Layout::Transposed, Layout::Strided, Layout::Expanded}) {
          if (sh.big && lin != Layout::Contig) continue;
          ot::Rng r(seed++);
          // The forward input x; the kernel gets x, or y = f(x) rounded to the dtype.
          std::vector<double> xs(static_cast<size_t>(std::max<int64_t>(1, [&] {
            int64_t n = 1;
            for (int64_t d : sh.s) n *= d;
            return n;
          }())));
          Tensor in = ot::make(dt, sh.s, lin), gy = ot::make(dt, sh.s, lin == Layout::Transposed ? Layout::Strided : Layout::Contig);
          for (int64_t k = 0; k < in.numel(); ++k) {
            const double xv = r.below(10) == 0 ? std::ldexp(r.uniform(-1, 1), -static_cast<int>(r.below(30)))
                                               : r.uniform(-8.0, 8.0);
            xs[static_cast<size_t>(k)] = ot::round_to(dt, xv);
            in.set(k, takes_y ? ref_forward_of_grad(op, xs[static_cast<size_t>(k)]) : xs[static_cast<size_t>(k)]);
            gy.set(k, r.uniform(-3.0, 3.0));
          }
          if (lin == Layout::Expanded) {
            // Elements alias one stored value (the last written): recover x from it; for
            // sigmoid/tanh (given y) x is unknown, and only the formula is checked.
            for (int64_t k = 0; k < in.numel(); ++k) xs[static_cast<size_t>(k)] = takes_y ? kNaN : in.get(k);
          }
          const std::string ctx = std::string(name) + " " + dtype_name(dt) + " " + ot::shape_str(sh.s) + " " + ot::layout_name(lin);
          Tensor gx0 = ot::make(dt, sh.s, lin == Layout::Strided ? Layout::Strided : Layout::Contig);
          const std::vector<unsigned char> got = ot::same_everywhere(ctx, [&] {
            Tensor gx = ot::clone(gx0);
            const Status s = kt::run(name, dt, {in.v, gy.v}, {gx.v});
            KCHECK(s.ok()) << ctx << ": " << s.message();
            KCHECK(gx.guards_intact()) << ctx;
            return gx.bytes();
          }, sh.big, &runs);
          Tensor gx = ot::clone(gx0);
          for (int64_t k = 0; k < gx.numel() && got.size() == static_cast<size_t>(gx.numel()) * gx.es; ++k) {
            std::memcpy(gx.ptr(k), got.data() + k * static_cast<int64_t>(gx.es), gx.es);
          }
          int64_t bad = 0;
          const double eps = dt == DType::Float32 ? 0x1p-24 : (dt == DType::Float16 ? 0x1p-11 : 0x1p-8);
          for (int64_t k = 0; k < gx.numel(); ++k) {
            const double x = xs[static_cast<size_t>(k)], g = gy.get(k), got_v = gx.get(k);
            // Formula (at the kernel's own input: y for sigmoid/tanh).
            double want;
            if (takes_y) {
              const double y = in.get(k);
              want = (op == UnaryGradOp::Sigmoid ? y * (1.0 - y) : 1.0 - y * y) * g;
            } else {
              want = ref_derivative(op, x) * g;
            }
            const double tiny = dt == DType::Float32 ? 1e-44 : (dt == DType::Float16 ? 0x1p-24 : 1e-38);  // subnormal spacing
            // The derivatives are sums of terms of size up to ~(1 + |x|) that the kernel
            // forms with a relative error ~1e-8; near a zero of f' (gelu at x = -0.75)
            // that is what bounds the error.
            const double cond = takes_y || op == UnaryGradOp::Relu ? 0.0 : 3e-8 * (1.0 + std::fabs(x)) * std::fabs(g);
            const double tol = 2 * eps * std::fabs(want) + tiny + cond;
            if (!(std::fabs(got_v - want) <= tol) && ++bad <= 3) {
              KCHECK(false) << ctx << ": x = " << x << ", gy = " << g << ": gx = " << got_v << ", formula " << want;
            }
            // Central differences of the float64 forward reference (float32 only: the
            // 16-bit results are dominated by their rounding).
            if (dt == DType::Float32 && !std::isnan(x) && !(op == UnaryGradOp::Relu && std::fabs(x) < 1e-3)) {
              const double h = 1e-4 * std::max(1.0, std::fabs(x));
              const double fd = (ref_forward_of_grad(op, x + h) - ref_forward_of_grad(op, x - h)) / (2 * h) * g;
              // y = f(x) rounded to float32 moves sigmoid/tanh's derivative by ~1e-7.
              const double fd_tol = 1e-6 * std::fabs(fd) + (takes_y ? 3e-7 : 3e-8 * (1.0 + std::fabs(x))) * std::fabs(g);
              const double err = std::fabs(got_v - fd) / (std::fabs(fd) + 1e-3);
              worst_fd = std::max(worst_fd, err);
              ++fd_checks;
              if (!(std::fabs(got_v - fd) <= fd_tol) && ++bad <= 3) {
                KCHECK(false) << ctx << ": x = " << x << ": gx = " << got_v << ", finite differences " << fd;
              }
            }
          }
          KCHECK_EQ(bad, 0) << ctx;
        }
      }
    }
  }
  // Special inputs: relu' is 0 at 0 and NaN whatever gy is; limits at +-inf.
  Tensor x = ot::make(DType::Float32, {6}), g = ot::make(DType::Float32, {6}), o = ot::make(DType::Float32, {6});
  const double xv[6] = {0.0, -0.0, kNaN, HUGE_VAL, -HUGE_VAL, 1.0}, gv[6] = {kNaN, 2.0, 3.0, 4.0, 5.0, kNaN};
  for (int k = 0; k < 6; ++k) {
    x.set(k, xv[k]);
    g.set(k, gv[k]);
  }
  KCHECK(kt::run("relu_backward", DType::Float32, {x.v, g.v}, {o.v}).ok());
  KCHECK(o.get(0) == 0.0 && o.get(1) == 0.0 && o.get(2) == 0.0 && o.get(3) == 4.0 && o.get(4) == 0.0 && std::isnan(o.get(5)));
  for (const char* op : {"gelu_backward", "gelu_tanh_backward", "silu_backward"}) {
    KCHECK(kt::run(op, DType::Float32, {x.v, g.v}, {o.v}).ok());
    KCHECK(o.get(3) == 4.0 && o.get(4) == 0.0) << op << ": " << o.get(3) << " " << o.get(4);
  }
  std::cout << "    " << runs << " kernel runs; " << fd_checks << " float32 gradients within 1e-6 of central differences"
            << " (largest relative gap " << worst_fd << ")" << std::endl;
}

// ---- where --------------------------------------------------------------------------------------

KTEST(unary, where_all_dtypes_broadcast_strided) {
  ot::Restore restore;
  struct Case {
    std::vector<int64_t> c, a, b;
  } cases[] = {{{3, 1, 5}, {4, 1}, {}}, {{}, {6}, {2, 6}}, {{2, 3}, {2, 3}, {2, 3}}, {{0, 3}, {1, 3}, {3}},
               {{200, 1}, {1, 300}, {300}}};
  const DType all[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2,
                       DType::Int8,    DType::UInt8,   DType::Int32,    DType::Bool};
  int64_t runs = 0, elements = 0;
  uint64_t seed = 500;
  for (const Case& c : cases) {
    for (DType dt : all) {
      for (int variant = 0; variant < 2; ++variant) {
        ot::Rng r(seed++);
        const Layout l = variant ? Layout::Strided : Layout::Contig;
        Tensor cond = ot::make(DType::Bool, c.c, variant ? Layout::Transposed : Layout::Contig);
        Tensor a = ot::make(dt, c.a, l), b = ot::make(dt, c.b, variant ? Layout::Expanded : Layout::Contig);
        for (int64_t k = 0; k < cond.numel(); ++k) *cond.ptr(k) = static_cast<unsigned char>(r.below(3) == 0 ? 2 : r.below(2));
        for (Tensor* t : {&a, &b}) {
          for (int64_t k = 0; k < t->numel(); ++k) {
            const uint64_t bits = r.next();
            std::memcpy(t->ptr(k), &bits, t->es);
          }
        }
        std::vector<int64_t> os;
        const size_t nd = std::max({c.c.size(), c.a.size(), c.b.size()});
        for (size_t i = 0; i < nd; ++i) {
          int64_t d = 1;
          for (const std::vector<int64_t>* s : {&c.c, &c.a, &c.b}) {
            const int64_t j = static_cast<int64_t>(i) - static_cast<int64_t>(nd - s->size());
            if (j >= 0 && (*s)[static_cast<size_t>(j)] != 1) d = (*s)[static_cast<size_t>(j)];
          }
          os.push_back(d);
        }
        const std::string ctx = std::string("where ") + dtype_name(dt) + " " + ot::shape_str(c.c) + " " + ot::shape_str(c.a) +
                                " " + ot::shape_str(c.b) + (variant ? " strided" : "");
        const std::vector<unsigned char> got = ot::same_everywhere(ctx, [&] {
          Tensor o = ot::make(dt, os, l);
          const Status s = kt::run("where", dt, {cond.v, a.v, b.v}, {o.v});
          KCHECK(s.ok()) << ctx << ": " << s.message();
          KCHECK(o.guards_intact()) << ctx;
          return o.bytes();
        }, c.c.size() == 2 && c.c[0] == 200, &runs);
        // Reference: element by element through broadcast indices.
        int64_t bad = 0, n = 1;
        for (int64_t d : os) n *= d;
        for (int64_t k = 0; k < n; ++k) {
          auto src_index = [&](const std::vector<int64_t>& s) {
            int64_t rem = k, idx = 0, mul = 1;
            for (int i = static_cast<int>(nd) - 1; i >= 0; --i) {
              const int64_t oi = rem % os[static_cast<size_t>(i)];
              rem /= os[static_cast<size_t>(i)];
              const int64_t j = i - static_cast<int64_t>(nd - s.size());
              if (j < 0) continue;
              const int64_t d = s[static_cast<size_t>(j)];
              idx += (d == 1 ? 0 : oi) * mul;
              mul *= d;
            }
            return idx;
          };
          const bool pick_a = *cond.ptr(src_index(c.c)) != 0;
          const Tensor& src = pick_a ? a : b;
          const unsigned char* want = src.ptr(src_index(pick_a ? c.a : c.b));
          if (std::memcmp(got.data() + k * static_cast<int64_t>(a.es), want, a.es) != 0 && ++bad <= 3) {
            KCHECK(false) << ctx << ": element " << k << " differs";
          }
          ++elements;
        }
        KCHECK_EQ(bad, 0) << ctx;
      }
    }
  }
  std::cout << "    " << runs << " where runs, " << elements << " elements" << std::endl;
}

// ---- clamp ---------------------------------------------------------------------------------------

// The least value of dt that is >= v (up) or the greatest <= v (down), found by
// walking the ordered codes from the nearest one (independent of the kernel's rounding).
double inside(DType dt, double v, bool up) {
  if (std::isnan(v)) return up ? -HUGE_VAL : HUGE_VAL;
  double r = ot::round_to(dt, v);
  if (dt == DType::Float32) {
    const float f = static_cast<float>(r);
    if (up && r < v) r = std::nextafter(f, HUGE_VALF);
    if (!up && r > v) r = std::nextafter(f, -HUGE_VALF);
    return r;
  }
  // 16-bit: scan neighbouring codes.
  unsigned char b[2];
  ot::encode(dt, r, b);
  uint16_t c;
  std::memcpy(&c, b, 2);
  double best = r;
  for (int d = -2; d <= 2; ++d) {
    const uint16_t cc = static_cast<uint16_t>(c + d);
    std::memcpy(b, &cc, 2);
    const double cv = ot::decode(dt, b);
    if (std::isnan(cv) || (c & 0x8000) != (cc & 0x8000)) continue;
    if (up && cv >= v && (best < v || cv < best)) best = cv;
    if (!up && cv <= v && (best > v || cv > best)) best = cv;
  }
  return best;
}

KTEST(unary, clamp_bounds_rounded_inside) {
  ot::Restore restore;
  struct B {
    double lo, hi;
  } bounds[] = {{-1.5, 2.25}, {kNaN, 0.0}, {0.1, kNaN}, {3.0, 1.0}, {0.1, 0.1}, {-1e6, 1e6}, {kNaN, kNaN},
                {-2.5, 7.9},  {-1e10, 1e10}, {1e-45, 3e38}, {-0.0, 0.0}};
  int64_t runs = 0, elements = 0;
  uint64_t seed = 900;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32}) {
    for (const B& bd : bounds) {
      for (Layout l : {Layout::Contig, Layout::Strided, Layout::Expanded}) {
        ot::Rng r(seed++);
        const std::vector<int64_t> shape = l == Layout::Contig ? std::vector<int64_t>{250, 160} : std::vector<int64_t>{9, 13};
        Tensor x = ot::make(dt, shape, l);
        for (int64_t k = 0; k < x.numel(); ++k) {
          if (dt == DType::Int32) {
            x.seti(k, r.below(5) == 0 ? static_cast<int32_t>(r.next()) : static_cast<int32_t>(r.below(21) - 10));
          } else {
            x.set(k, r.below(8) == 0 ? wide_value(r) : r.uniform(-4, 4));
          }
        }
        const std::string ctx = std::string("clamp ") + dtype_name(dt) + " [" + std::to_string(bd.lo) + ", " +
                                std::to_string(bd.hi) + "] " + ot::layout_name(l);
        const std::vector<unsigned char> got = ot::same_everywhere(ctx, [&] {
          Tensor y = ot::make(dt, shape, l == Layout::Strided ? Layout::Strided : Layout::Contig);
          const Status s = kt::run("clamp", dt, {x.v}, {y.v}, {}, {bd.lo, bd.hi});
          KCHECK(s.ok()) << ctx << ": " << s.message();
          KCHECK(y.guards_intact()) << ctx;
          return y.bytes();
        }, l == Layout::Contig, &runs);
        int64_t bad = 0;
        for (int64_t k = 0; k < x.numel(); ++k) {
          ++elements;
          if (dt == DType::Int32) {
            const double lo = std::isnan(bd.lo) ? -HUGE_VAL : std::ceil(bd.lo), hi = std::isnan(bd.hi) ? HUGE_VAL : std::floor(bd.hi);
            double w = std::min(std::max(static_cast<double>(x.geti(k)), lo), hi);
            w = std::min(std::max(w, -2147483648.0), 2147483647.0);
            int32_t g;
            std::memcpy(&g, got.data() + 4 * k, 4);
            if (g != static_cast<int32_t>(w) && ++bad <= 3) KCHECK(false) << ctx << ": " << x.geti(k) << " -> " << g << ", want " << w;
            continue;
          }
          const double lo = inside(dt, bd.lo, true), hi = inside(dt, bd.hi, false);
          const double xv = x.get(k);
          const double t = xv < lo ? lo : xv;
          const double w = t > hi ? hi : t;
          const double g = ot::decode(dt, got.data() + k * static_cast<int64_t>(x.es));
          const bool ok = (std::isnan(w) && std::isnan(g)) || g == w;
          if (!ok && ++bad <= 3) KCHECK(false) << ctx << ": " << xv << " -> " << g << ", want " << w;
        }
        KCHECK_EQ(bad, 0) << ctx;
      }
    }
  }
  // Hand-checked: float16 bounds 0.1 round inside to 0.1000977 (lo) and 0.09997559 (hi),
  // so [0.1, 0.1] gives hi everywhere; -1e6 as a float16 lower bound is -65504.
  Tensor h = ot::make(DType::Float16, {3}), ho = ot::make(DType::Float16, {3});
  h.set(0, -HUGE_VAL);
  h.set(1, 0.5);
  h.set(2, kNaN);
  KCHECK(kt::run("clamp", DType::Float16, {h.v}, {ho.v}, {}, {0.1, 0.1}).ok());
  KCHECK(ho.get(0) == 0.0999755859375 && ho.get(1) == 0.0999755859375 && std::isnan(ho.get(2)));
  KCHECK(kt::run("clamp", DType::Float16, {h.v}, {ho.v}, {}, {-1e6, kNaN}).ok());
  KCHECK(ho.get(0) == -65504.0 && ho.get(1) == 0.5);
  std::cout << "    " << runs << " clamp runs, " << elements << " elements" << std::endl;
}

// ---- pow (a binary op) ----------------------------------------------------------------------------

KTEST(unary, pow_broadcast_all_isas) {
  ot::Restore restore;
  int64_t runs = 0;
  double worst = 0;
  uint64_t seed = 1200;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
    for (int variant = 0; variant < 3; ++variant) {
      ot::Rng r(seed++);
      const std::vector<int64_t> as = variant == 2 ? std::vector<int64_t>{240, 1} : std::vector<int64_t>{40, 1};
      const std::vector<int64_t> bs = variant == 2 ? std::vector<int64_t>{1, 300} : std::vector<int64_t>{1, 33};
      Tensor a = ot::make(dt, as, variant == 1 ? Layout::Strided : Layout::Contig);
      Tensor b = ot::make(dt, bs, variant == 1 ? Layout::Transposed : Layout::Contig);
      for (int64_t k = 0; k < a.numel(); ++k) a.set(k, r.below(6) == 0 ? wide_value(r) : r.uniform(-4, 4));
      for (int64_t k = 0; k < b.numel(); ++k) {
        b.set(k, r.below(6) == 0 ? wide_value(r) : (r.below(3) == 0 ? static_cast<double>(r.below(9) - 4) : r.uniform(-3, 3)));
      }
      const std::vector<int64_t> os = {as[0], bs[1]};
      const std::string ctx = std::string("pow ") + dtype_name(dt) + " variant " + std::to_string(variant);
      const std::vector<unsigned char> got = ot::same_everywhere(ctx, [&] {
        Tensor o = ot::make(dt, os);
        KCHECK(kt::run("pow", dt, {a.v, b.v}, {o.v}).ok()) << ctx;
        return o.bytes();
      }, variant == 2, &runs);
      int64_t bad = 0;
      const size_t es = dtype_size(dt);
      for (int64_t i = 0; i < os[0]; ++i) {
        for (int64_t j = 0; j < os[1]; ++j) {
          const double x = a.get(i), y = b.get(j);
          const double g = ot::decode(dt, got.data() + (i * os[1] + j) * static_cast<int64_t>(es));
          const double want = std::pow(x, y);
          const double u = ot::ulp_diff(dt, g, want);
          const double scalar = ot::round_to(dt, fm::pow_f32(static_cast<float>(x), static_cast<float>(y)));
          const bool same = (std::isnan(g) && std::isnan(scalar)) || g == scalar;
          if (dt == DType::Float32 && u < 1e29) worst = std::max(worst, u);
          if ((u > (dt == DType::Float32 ? 1.0 : 0.5 + 1.0 / 64) || !same) && ++bad <= 3) {
            KCHECK(false) << ctx << ": pow(" << x << ", " << y << ") = " << g << ", float64 " << want;
          }
        }
      }
      KCHECK_EQ(bad, 0) << ctx;
    }
  }
  Tensor i = ot::make(DType::Int32, {3});
  const Status s = kt::run("pow", DType::Int32, {i.v, i.v}, {i.v});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  std::cout << "    " << runs << " pow runs; worst float32 error " << worst << " ulp" << std::endl;
}

// ---- errors ---------------------------------------------------------------------------------------

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

KTEST(unary, errors_name_op_shapes_dtypes) {
  Tensor f = ot::make(DType::Float32, {3, 4}), h = ot::make(DType::Float16, {3, 4}), w = ot::make(DType::Float32, {4, 3});
  Tensor i = ot::make(DType::Int32, {3, 4}), b = ot::make(DType::Bool, {3, 4}), f3 = ot::make(DType::Float32, {3});
  Status s = kt::run("exp", DType::Int32, {i.v}, {i.v});
  KCHECK(s.code() == StatusCode::NoKernel && s.message() == "kiln: op 'exp' has no kernel for dtype int32 on device cpu") << s.message();
  s = kt::run("exp", DType::Float32, {f.v}, {h.v});
  KCHECK(s.code() == StatusCode::DTypeError && contains(s.message(), "exp") && contains(s.message(), "float16[3, 4]")) << s.message();
  s = kt::run("sqrt", DType::Float32, {f.v}, {w.v});
  KCHECK(s.code() == StatusCode::ShapeError && contains(s.message(), "float32[4, 3]")) << s.message();
  s = kt::run("tanh", DType::Float32, {f.v, f.v}, {f.v});
  KCHECK(s.code() == StatusCode::Internal && contains(s.message(), "expected")) << s.message();
  s = kt::run("neg", DType::Bool, {b.v}, {b.v});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  s = kt::run("gelu_backward", DType::Float32, {f.v, w.v}, {f.v});
  KCHECK(s.code() == StatusCode::ShapeError && contains(s.message(), "gelu_backward")) << s.message();
  s = kt::run("silu_backward", DType::Float32, {f.v, h.v}, {f.v});
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  s = kt::run("relu_backward", DType::Int32, {i.v, i.v}, {i.v});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  s = kt::run("where", DType::Float32, {f.v, f.v, f.v}, {f.v});
  KCHECK(s.code() == StatusCode::DTypeError && contains(s.message(), "cond")) << s.message();
  s = kt::run("where", DType::Float32, {b.v, f.v, h.v}, {f.v});
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  s = kt::run("where", DType::Float32, {b.v, f.v, f3.v}, {f.v});
  KCHECK(s.code() == StatusCode::ShapeError && contains(s.message(), "[3]")) << s.message();
  s = kt::run("where", DType::Float32, {b.v, f.v, f.v}, {w.v});
  KCHECK(s.code() == StatusCode::ShapeError && contains(s.message(), "not the broadcast")) << s.message();
  s = kt::run("clamp", DType::Float32, {f.v}, {f.v}, {}, {1.0});
  KCHECK(s.code() == StatusCode::Internal) << s.message();
  s = kt::run("clamp", DType::Bool, {b.v}, {b.v}, {}, {0.0, 1.0});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  s = kt::run("clamp", DType::Float32, {f.v}, {w.v}, {}, {0.0, 1.0});
  KCHECK(s.code() == StatusCode::ShapeError) << s.message();
  for (const Tensor* t : {&f, &h, &w, &i, &b, &f3}) KCHECK(t->guards_intact() && t->mem[t->mem.size() - 1] == ot::kGuard);
  // Nothing was written into the outputs of failed calls: their elements still hold the guard.
  bool untouched = true;
  for (const Tensor* t : {&h, &w}) {
    for (unsigned char c : t->mem) untouched = untouched && c == ot::kGuard;
  }
  KCHECK(untouched) << "a failed call wrote data";
}

}  // namespace
