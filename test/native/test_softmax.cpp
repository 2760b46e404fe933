// Suite 'softmax': the CPU kernels softmax, log_softmax, softmax_backward,
// log_softmax_backward, cross_entropy, cross_entropy_backward on [R, N] views
// (contiguous, transposed, strided with an offset, rows broadcast with stride
// 0), float32 / float16 / bfloat16, empty shapes, rows with -inf, NaN and large
// values; every ISA level and 1, 2 and 3 threads must give the same bits.
//
// References are float64 math written here (libm exp / log). The backward
// kernels are checked against their formulas at the kernel's own inputs and
// against central finite differences of the float64 forward functions, which
// proves the formulas. Cross entropy follows PyTorch (mean over the rows that
// are not ignore_index; label smoothing ls: -(1-ls) log p[t] - ls/C sum_c log p[c]).
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
#include "kiln/registry.h"
#include "ops_testing.h"

namespace {

using namespace kiln;
using ot::Layout;
using ot::Tensor;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
using Row = std::vector<double>;

// ---- float64 references -------------------------------------------------------------------------

Row ref_softmax(const Row& x, bool log) {
  double m = -HUGE_VAL;
  bool nan = false;
  for (double v : x) {
    nan = nan || std::isnan(v);
    m = std::max(m, v);
  }
  Row y(x.size(), kNaN);
  if (nan || x.empty()) return y;
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  for (size_t i = 0; i < x.size(); ++i) y[i] = log ? (x[i] - m) - std::log(s) : std::exp(x[i] - m) / s;
  return y;
}

double ref_lse(const Row& x) {
  double m = -HUGE_VAL;
  for (double v : x) {
    if (std::isnan(v)) return kNaN;
    m = std::max(m, v);
  }
  if (x.empty()) return -HUGE_VAL;
  if (std::isinf(m)) return m == HUGE_VAL ? kNaN : kNaN;  // all -inf: NaN (inf - inf), as the kernel
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  return m + std::log(s);
}

// Mean cross entropy over the rows whose target is not `ignore`.
double ref_cross_entropy(const std::vector<Row>& x, const std::vector<int64_t>& t, int64_t ignore, double ls) {
  double total = 0;
  int64_t count = 0;
  for (size_t r = 0; r < x.size(); ++r) {
    if (t[r] == ignore) continue;
    const Row lp = ref_softmax(x[r], true);
    double sum_lp = 0;
    for (double v : lp) sum_lp += v;
    total += -(1 - ls) * lp[static_cast<size_t>(t[r])] - ls / static_cast<double>(lp.size()) * sum_lp;
    ++count;
  }
  return count ? total / static_cast<double>(count) : kNaN;
}

// ---- helpers -------------------------------------------------------------------------------------

std::vector<Row> rows_of(const Tensor& t) {
  const int64_t R = t.shape[0], N = t.shape[1];
  std::vector<Row> out(static_cast<size_t>(R), Row(static_cast<size_t>(N)));
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t c = 0; c < N; ++c) out[static_cast<size_t>(r)][static_cast<size_t>(c)] = t.get(r * N + c);
  }
  return out;
}

// Row r of a logits-like tensor: values in [-scale, scale], with some rows special.
void fill_rows(Tensor& t, ot::Rng& r, double scale, bool specials) {
  const int64_t R = t.shape[0], N = t.shape[1];
  for (int64_t i = 0; i < R; ++i) {
    const int64_t kind = specials ? i % 9 : 0;
    for (int64_t c = 0; c < N; ++c) {
      double v = r.uniform(-scale, scale);
      if (kind == 3 && c % 3 == 0) v = -HUGE_VAL;              // masked entries
      if (kind == 5) v += 3e4;                                   // large values (stability)
      if (kind == 6 && c == N / 2) v = kNaN;                     // a NaN
      if (kind == 7) v = -HUGE_VAL;                              // all masked
      t.set(i * N + c, v);
    }
  }
}

double eps_of(DType dt) { return dt == DType::Float32 ? 0x1p-24 : (dt == DType::Float16 ? 0x1p-11 : 0x1p-8); }
double tiny_of(DType dt) { return dt == DType::Float32 ? 1e-44 : (dt == DType::Float16 ? 0x1p-24 : 1e-38); }

bool close(double got, double want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= tol;
}

struct Shape2 {
  int64_t r, n;
  Layout layout;
  bool threads;
};
const Shape2 kShapes[] = {{0, 5, Layout::Contig, false},     {3, 0, Layout::Contig, false},     {1, 1, Layout::Contig, false},
                          {4, 7, Layout::Transposed, false}, {9, 100, Layout::Strided, false},  {18, 33, Layout::Contig, false},
                          {5, 1000, Layout::Expanded, false}, {3000, 40, Layout::Contig, true}, {2, 20000, Layout::Strided, true}};

// Copies bytes returned by a run into a tensor shaped like `like` (row-major order).
Tensor from_bytes(const Tensor& like, const std::vector<unsigned char>& b) {
  Tensor t = ot::clone(like);
  for (int64_t k = 0; k < t.numel() && b.size() == static_cast<size_t>(t.numel()) * t.es; ++k) {
    std::memcpy(t.ptr(k), b.data() + k * static_cast<int64_t>(t.es), t.es);
  }
  return t;
}

KTEST(softmax, forward_softmax_log_softmax) {
  ot::Restore restore;
  int64_t runs = 0, checked = 0;
  uint64_t seed = 1;
  for (const char* op : {"softmax", "log_softmax"}) {
    const bool log = std::string(op) == "log_softmax";
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      for (const Shape2& sh : kShapes) {
        ot::Rng r(seed++);
        Tensor x = ot::make(dt, {sh.r, sh.n}, sh.layout);
        fill_rows(x, r, 12.0, true);
        const std::string ctx = std::string(op) + " " + dtype_name(dt) + " [" + std::to_string(sh.r) + ", " +
                                std::to_string(sh.n) + "] " + ot::layout_name(sh.layout);
        Tensor y0 = ot::make(dt, {sh.r, sh.n}, sh.layout == Layout::Strided ? Layout::Strided : Layout::Contig);
        const Tensor y = from_bytes(y0, ot::same_everywhere(ctx, [&] {
          Tensor out = ot::clone(y0);
          const Status s = kt::run(op, dt, {x.v}, {out.v});
          KCHECK(s.ok()) << ctx << ": " << s.message();
          KCHECK(out.guards_intact()) << ctx;
          return out.bytes();
        }, sh.threads, &runs));
        const std::vector<Row> xs = rows_of(x), ys = rows_of(y);
        int64_t bad = 0;
        for (size_t i = 0; i < xs.size(); ++i) {
          const Row want = ref_softmax(xs[i], log);
          double m = -HUGE_VAL;
          for (double v : xs[i]) m = std::max(m, v);
          for (size_t c = 0; c < want.size(); ++c) {
            // 1 ulp of the dtype (the float32 result is within ~0.5 ulp + 1e-8; 16-bit ones add
            // their rounding); log_softmax also 1e-16 of |max| (x - max - log s in float64).
            const double tol = 2 * eps_of(dt) * std::fabs(want[c]) + tiny_of(dt) + (log ? 4e-16 * std::fabs(m) : 0.0);
            ++checked;
            if (!close(ys[i][c], want[c], tol) && ++bad <= 3) {
              KCHECK(false) << ctx << ": row " << i << " col " << c << ": " << ys[i][c] << ", float64 " << want[c];
            }
          }
        }
        KCHECK_EQ(bad, 0) << ctx;
      }
    }
  }
  std::cout << "    " << runs << " kernel runs, " << checked << " outputs checked" << std::endl;
}

KTEST(softmax, backward_formula_and_finite_differences) {
  ot::Restore restore;
  int64_t runs = 0, fd_checked = 0;
  uint64_t seed = 50;
  for (const char* op : {"softmax_backward", "log_softmax_backward"}) {
    const bool log = std::string(op) == "log_softmax_backward";
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      for (const Shape2& sh : kShapes) {
        ot::Rng r(seed++);
        // x -> y = forward(x) rounded to the dtype (the kernel's input), gy random.
        Tensor xt = ot::make(DType::Float32, {sh.r, sh.n});
        fill_rows(xt, r, 4.0, false);
        const std::vector<Row> xs = rows_of(xt);
        Tensor y = ot::make(dt, {sh.r, sh.n}, sh.layout == Layout::Expanded ? Layout::Contig : sh.layout);
        Tensor gy = ot::make(dt, {sh.r, sh.n}, sh.layout == Layout::Transposed ? Layout::Strided : Layout::Contig);
        for (int64_t i = 0; i < sh.r; ++i) {
          const Row yr = ref_softmax(xs[static_cast<size_t>(i)], log);
          for (int64_t c = 0; c < sh.n; ++c) {
            y.set(i * sh.n + c, yr[static_cast<size_t>(c)]);
            gy.set(i * sh.n + c, r.uniform(-2, 2));
          }
        }
        const std::string ctx = std::string(op) + " " + dtype_name(dt) + " [" + std::to_string(sh.r) + ", " +
                                std::to_string(sh.n) + "] " + ot::layout_name(sh.layout);
        Tensor g0 = ot::make(dt, {sh.r, sh.n}, sh.layout == Layout::Strided ? Layout::Strided : Layout::Contig);
        const Tensor gx = from_bytes(g0, ot::same_everywhere(ctx, [&] {
          Tensor out = ot::clone(g0);
          const Status s = kt::run(op, dt, {y.v, gy.v}, {out.v});
          KCHECK(s.ok()) << ctx << ": " << s.message();
          KCHECK(out.guards_intact()) << ctx;
          return out.bytes();
        }, sh.threads, &runs));
        const std::vector<Row> ys = rows_of(y), gys = rows_of(gy), gxs = rows_of(gx);
        int64_t bad = 0;
        for (size_t i = 0; i < ys.size(); ++i) {
          const size_t n = ys[i].size();
          // Formula at the kernel's inputs.
          double dot = 0, sg = 0, scale = 0;
          for (size_t c = 0; c < n; ++c) {
            dot += gys[i][c] * ys[i][c];
            sg += gys[i][c];
            scale = std::max(scale, std::fabs(gys[i][c]));
          }
          for (size_t c = 0; c < n; ++c) {
            const double want = log ? gys[i][c] - std::exp(ys[i][c]) * sg : ys[i][c] * (gys[i][c] - dot);
            const double tol = 2 * eps_of(dt) * std::fabs(want) + tiny_of(dt) + 1e-15 * (std::fabs(sg) + std::fabs(dot)) +
                               (dt == DType::Float32 ? 1e-8 * std::fabs(sg) * std::exp(ys[i][c]) : 0.0);
            if (!close(gxs[i][c], want, tol) && ++bad <= 3) {
              KCHECK(false) << ctx << ": row " << i << " col " << c << ": " << gxs[i][c] << ", formula " << want;
            }
          }
          // Central differences of the float64 forward at x (float32 rows up to 100 wide):
          // gx_c = sum_j gy_j d y_j / d x_c.
          if (dt != DType::Float32 || n > 100) continue;
          for (size_t c = 0; c < n; ++c) {
            Row xp = xs[i], xm = xs[i];
            const double h = 1e-5;
            xp[c] += h;
            xm[c] -= h;
            const Row yp = ref_softmax(xp, log), ym = ref_softmax(xm, log);
            double fd = 0;
            for (size_t j = 0; j < n; ++j) fd += gys[i][j] * (yp[j] - ym[j]) / (2 * h);
            // The kernel's y is the forward rounded to float32: ~1e-7 relative per element.
            const double tol = 1e-6 * std::fabs(fd) + 4e-7 * scale * (log ? 1.0 + std::fabs(sg) : 1.0);
            ++fd_checked;
            if (!(std::fabs(gxs[i][c] - fd) <= tol) && ++bad <= 3) {
              KCHECK(false) << ctx << ": row " << i << " col " << c << ": " << gxs[i][c] << ", finite differences " << fd;
            }
          }
        }
        KCHECK_EQ(bad, 0) << ctx;
      }
    }
  }
  std::cout << "    " << runs << " kernel runs, " << fd_checked << " gradients checked against finite differences" << std::endl;
}

// Runs cross_entropy; returns {loss, lse...}.
struct CeOut {
  double loss;
  Row lse;
};

KTEST(softmax, cross_entropy_forward_backward) {
  ot::Restore restore;
  struct Case {
    int64_t r, c;
    Layout layout;
    int64_t ignore;
    double ls;
    bool threads;
  } cases[] = {{1, 1, Layout::Contig, -100, 0.0, false},    {6, 5, Layout::Contig, -100, 0.0, false},
               {9, 11, Layout::Transposed, 2, 0.1, false},  {12, 40, Layout::Strided, -1, 0.25, false},
               {4, 3, Layout::Contig, 0, 1.0, false},       {3, 4, Layout::Contig, 7, 0.0, false},
               {2000, 50, Layout::Contig, -100, 0.1, true}, {3, 30000, Layout::Contig, -100, 0.0, true},
               {0, 5, Layout::Contig, -100, 0.0, false}};
  int64_t runs = 0, fd_checked = 0;
  uint64_t seed = 300;
  for (const Case& cs : cases) {
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      ot::Rng r(seed++);
      Tensor logits = ot::make(dt, {cs.r, cs.c}, cs.layout);
      fill_rows(logits, r, 6.0, false);
      Tensor targets = ot::make(DType::Int32, {cs.r}, cs.layout == Layout::Strided ? Layout::Strided : Layout::Contig);
      std::vector<int64_t> tv(static_cast<size_t>(cs.r));
      for (int64_t i = 0; i < cs.r; ++i) {
        // ignore_index on every 4th row (all rows when ignore = 7 is not a class of 4).
        tv[static_cast<size_t>(i)] = (i % 4 == 1 || (cs.ignore == 7)) ? cs.ignore : r.below(cs.c);
        targets.seti(i, static_cast<int32_t>(tv[static_cast<size_t>(i)]));
      }
      const std::string ctx = std::string("cross_entropy ") + dtype_name(dt) + " [" + std::to_string(cs.r) + ", " +
                              std::to_string(cs.c) + "] " + ot::layout_name(cs.layout) + " ignore " +
                              std::to_string(cs.ignore) + " ls " + std::to_string(cs.ls);
      Tensor loss0 = ot::make(DType::Float32, {}), lse0 = ot::make(DType::Float32, {cs.r}, Layout::Strided);
      const std::vector<unsigned char> fwd = ot::same_everywhere(ctx, [&] {
        Tensor loss = ot::clone(loss0), lse = ot::clone(lse0);
        const Status s = kt::run("cross_entropy", dt, {logits.v, targets.v}, {loss.v, lse.v}, {cs.ignore}, {cs.ls});
        KCHECK(s.ok()) << ctx << ": " << s.message();
        KCHECK(loss.guards_intact() && lse.guards_intact()) << ctx;
        std::vector<unsigned char> b = loss.bytes(), l = lse.bytes();
        b.insert(b.end(), l.begin(), l.end());
        return b;
      }, cs.threads, &runs);
      const std::vector<Row> xs = rows_of(logits);
      const double want_loss = ref_cross_entropy(xs, tv, cs.ignore, cs.ls);
      float got_loss;
      std::memcpy(&got_loss, fwd.data(), 4);
      KCHECK(close(got_loss, want_loss, 4e-7 * std::fabs(want_loss) + 1e-30)) << ctx << ": loss " << got_loss << ", float64 " << want_loss;
      Tensor lse = ot::clone(lse0);
      for (int64_t i = 0; i < cs.r; ++i) {
        float v;
        std::memcpy(&v, fwd.data() + 4 + 4 * i, 4);
        lse.set(i, v);
        const double want = ref_lse(xs[static_cast<size_t>(i)]);
        KCHECK(close(v, want, 2 * 0x1p-24 * std::fabs(want))) << ctx << ": lse row " << i << " " << v << ", float64 " << want;
      }
      // Backward with gloss = 1.7, at the saved (float32) lse.
      Tensor gloss = ot::make(DType::Float32, {});
      gloss.set(0, 1.7);
      Tensor g0 = ot::make(dt, {cs.r, cs.c}, cs.layout == Layout::Transposed ? Layout::Strided : Layout::Contig);
      const Tensor g = from_bytes(g0, ot::same_everywhere(ctx + " backward", [&] {
        Tensor out = ot::clone(g0);
        const Status s = kt::run("cross_entropy_backward", dt, {logits.v, targets.v, lse.v, gloss.v}, {out.v}, {cs.ignore}, {cs.ls});
        KCHECK(s.ok()) << ctx << ": " << s.message();
        KCHECK(out.guards_intact()) << ctx;
        return out.bytes();
      }, cs.threads, &runs));
      int64_t count = 0;
      for (int64_t t : tv) count += t != cs.ignore;
      int64_t bad = 0;
      const std::vector<Row> gs = rows_of(g);
      for (int64_t i = 0; i < cs.r; ++i) {
        const Row& x = xs[static_cast<size_t>(i)];
        const bool ignored = tv[static_cast<size_t>(i)] == cs.ignore;
        for (int64_t c = 0; c < cs.c; ++c) {
          // Formula: gloss / count * (p_c - (1 - ls) [c == t] - ls / C), p_c = e^(x_c - lse_row).
          double want = 0;
          if (!ignored) {
            const double p = std::exp(x[static_cast<size_t>(c)] - lse.get(i));
            want = 1.7 / static_cast<double>(count) *
                   (p - (c == tv[static_cast<size_t>(i)] ? 1 - cs.ls : 0.0) - cs.ls / static_cast<double>(cs.c));
          }
          const double got = gs[static_cast<size_t>(i)][static_cast<size_t>(c)];
          if (!close(got, want, 2 * eps_of(dt) * std::fabs(want) + tiny_of(dt) + 1e-8 / std::max<int64_t>(1, count)) && ++bad <= 3) {
            KCHECK(false) << ctx << ": glogits[" << i << ", " << c << "] = " << got << ", formula " << want;
          }
        }
      }
      // Central differences of the float64 loss (float32, small cases).
      if (dt == DType::Float32 && cs.r * cs.c <= 500) {
        std::vector<Row> xp = xs;
        for (int64_t i = 0; i < cs.r; ++i) {
          for (int64_t c = 0; c < cs.c; ++c) {
            const double h = 1e-5, x0 = xs[static_cast<size_t>(i)][static_cast<size_t>(c)];
            xp[static_cast<size_t>(i)][static_cast<size_t>(c)] = x0 + h;
            const double lp = ref_cross_entropy(xp, tv, cs.ignore, cs.ls);
            xp[static_cast<size_t>(i)][static_cast<size_t>(c)] = x0 - h;
            const double lm = ref_cross_entropy(xp, tv, cs.ignore, cs.ls);
            xp[static_cast<size_t>(i)][static_cast<size_t>(c)] = x0;
            const double fd = count ? 1.7 * (lp - lm) / (2 * h) : 0.0;
            const double got = gs[static_cast<size_t>(i)][static_cast<size_t>(c)];
            ++fd_checked;
            // lse is saved in float32: p moves by up to |lse| 2^-24 relative.
            if (!(std::fabs(got - fd) <= 1e-6 * std::fabs(fd) + 2e-7 * (1.0 + std::fabs(lse.get(i))) * 1.7 / std::max<int64_t>(1, count)) &&
                ++bad <= 3) {
              KCHECK(false) << ctx << ": glogits[" << i << ", " << c << "] = " << got << ", finite differences " << fd;
            }
          }
        }
      }
      KCHECK_EQ(bad, 0) << ctx;
    }
  }
  std::cout << "    " << runs << " kernel runs, " << fd_checked << " gradients checked against finite differences" << std::endl;
}

KTEST(softmax, errors) {
  Tensor x = ot::make(DType::Float32, {3, 4}), y = ot::make(DType::Float32, {3, 4}), h = ot::make(DType::Float16, {3, 4});
  Tensor x3 = ot::make(DType::Float32, {2, 3, 4}), w = ot::make(DType::Float32, {4, 3}), xi = ot::make(DType::Int32, {3, 4});
  Tensor t = ot::make(DType::Int32, {3}), tf = ot::make(DType::Float32, {3}), t4 = ot::make(DType::Int32, {4});
  Tensor loss = ot::make(DType::Float32, {}), lse = ot::make(DType::Float32, {3}), lse16 = ot::make(DType::Float16, {3});
  auto has = [](const Status& s, const char* part) { return s.message().find(part) != std::string::npos; };
  Status s = kt::run("softmax", DType::Float32, {x3.v}, {x3.v});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "[rows, cols]")) << s.message();
  s = kt::run("softmax", DType::Float32, {x.v}, {w.v});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "float32[4, 3]")) << s.message();
  s = kt::run("log_softmax", DType::Float32, {x.v}, {h.v});
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  s = kt::run("softmax", DType::Int32, {xi.v}, {xi.v});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  s = kt::run("softmax_backward", DType::Float32, {x.v, w.v}, {y.v});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "gy")) << s.message();
  s = kt::run("softmax_backward", DType::Float32, {x.v}, {y.v});
  KCHECK(s.code() == StatusCode::Internal) << s.message();
  // Cross entropy: a target outside [0, C) is a ValueError naming the row and the value.
  for (int i = 0; i < 3; ++i) t.seti(i, i);
  t.seti(1, 9);
  s = kt::run("cross_entropy", DType::Float32, {x.v, t.v}, {loss.v, lse.v}, {-100}, {0.0});
  KCHECK(s.code() == StatusCode::ValueError && has(s, "target 9 in row 1") && has(s, "[0, 4)")) << s.message();
  t.seti(1, -5);
  s = kt::run("cross_entropy_backward", DType::Float32, {x.v, t.v, lse.v, loss.v}, {y.v}, {-100}, {0.0});
  KCHECK(s.code() == StatusCode::ValueError && has(s, "target -5 in row 1")) << s.message();
  t.seti(1, -100);
  KCHECK(kt::run("cross_entropy", DType::Float32, {x.v, t.v}, {loss.v, lse.v}, {-100}, {0.0}).ok());
  s = kt::run("cross_entropy", DType::Float32, {x.v, tf.v}, {loss.v, lse.v}, {-100}, {0.0});
  KCHECK(s.code() == StatusCode::DTypeError && has(s, "targets")) << s.message();
  s = kt::run("cross_entropy", DType::Float32, {x.v, t4.v}, {loss.v, lse.v}, {-100}, {0.0});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "targets")) << s.message();
  s = kt::run("cross_entropy", DType::Float32, {x.v, t.v}, {loss.v, lse16.v}, {-100}, {0.0});
  KCHECK(s.code() == StatusCode::DTypeError && has(s, "lse")) << s.message();
  s = kt::run("cross_entropy", DType::Float32, {x.v, t.v}, {lse.v, lse.v}, {-100}, {0.0});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "loss")) << s.message();
  s = kt::run("cross_entropy", DType::Float32, {x.v, t.v}, {loss.v, lse.v}, {-100}, {1.5});
  KCHECK(s.code() == StatusCode::ValueError && has(s, "label_smoothing")) << s.message();
  s = kt::run("cross_entropy", DType::Float32, {x.v, t.v}, {loss.v, lse.v}, {}, {0.0});
  KCHECK(s.code() == StatusCode::Internal) << s.message();
  s = kt::run("cross_entropy_backward", DType::Float32, {x.v, t.v, lse.v, loss.v}, {h.v}, {-100}, {0.0});
  KCHECK(s.code() == StatusCode::DTypeError && has(s, "glogits")) << s.message();
  // All rows ignored: loss NaN, gradient zero.
  for (int i = 0; i < 3; ++i) t.seti(i, -100);
  KCHECK(kt::run("cross_entropy", DType::Float32, {x.v, t.v}, {loss.v, lse.v}, {-100}, {0.0}).ok());
  KCHECK(std::isnan(loss.get(0)));
  loss.set(0, 1.0);
  KCHECK(kt::run("cross_entropy_backward", DType::Float32, {x.v, t.v, lse.v, loss.v}, {y.v}, {-100}, {0.0}).ok());
  bool zeros = true;
  for (int k = 0; k < 12; ++k) zeros = zeros && y.get(k) == 0.0;
  KCHECK(zeros);
}

}  // namespace
