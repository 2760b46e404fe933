// Suite 'attention': the CPU kernels 'attention' and 'attention_backward',
// reached through kiln::run_kernel, against a float64 reference written here
// (the full softmax(q k^T scale + mask) v with plain loops, lse = log sum exp,
// and the analytic gradients), and the reference gradients against central
// finite differences of the float64 forward. Shapes cover size-1 dims,
// Sq != Sk, causal masks aligned bottom-right (rows that see no key),
// grouped-query ratios 1, 2, 4, D != Dv, several tiles; operands take random
// layouts (permuted, padded with offsets, broadcast); outputs must not write
// outside their elements. Also: every ISA level, thread-count invariance (bit
// for bit), empty tensors and error statuses.
//
// Error units: |got - want| / (u * s), u the unit roundoff of the output's
// dtype, s a magnitude bounding the rounding errors (see Scales below).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cpu_features.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "attention_reference.h"
#include "nn_testing.h"

namespace {

using namespace kiln;
using nnt::Layout;
using nnt::Rng;
using nnt::Tensor;
using vd = std::vector<double>;

const DType kDtypes[] = {DType::Float32, DType::Float16, DType::BFloat16};
const double kNegInf = -std::numeric_limits<double>::infinity();

using attnref::cfg_str;
using attnref::Cfg;
using attnref::ix4;
using attnref::last_key;
using attnref::Ref;
using attnref::reference;

double loss(const Cfg& c, const vd& q, const vd& k, const vd& v, const vd& go) {
  Ref r;
  reference(c, q, k, v, nullptr, &r);
  double s = 0;
  for (size_t i = 0; i < go.size(); ++i) s += go[i] * r.o[i];
  return s;
}

// ---- kernel runs ------------------------------------------------------------------------------

struct Case {
  Cfg c;
  DType dt;
  Tensor q, k, v, go, o, lse, gq, gk, gv;
  std::string name() const {
    return cfg_str(c) + " " + dtype_name(dt) + " q " + q.lay + " k " + k.lay + " v " + v.lay + " o " + o.lay;
  }
};

Case make_case(Cfg c, DType dt, Rng& rng, bool allow_broadcast = true) {
  if (c.scale == 0) c.scale = c.D > 0 ? 1.0 / std::sqrt(static_cast<double>(c.D)) : 1.0;
  Case t{c, dt, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  auto in = [&](std::vector<int64_t> shape) { return nnt::make(dt, shape, nnt::random_layout(rng, allow_broadcast), rng); };
  auto out = [&](DType d, std::vector<int64_t> shape) { return nnt::make(d, shape, static_cast<Layout>(rng.below(3)), rng); };
  t.q = in({c.B, c.Hq, c.Sq, c.D});
  t.k = in({c.B, c.Hk, c.Sk, c.D});
  t.v = in({c.B, c.Hk, c.Sk, c.Dv});
  t.go = in({c.B, c.Hq, c.Sq, c.Dv});
  const double amp = rng.below(3) == 0 ? 3.0 : 1.0;  // sometimes peaked softmax
  t.q.randomize(rng, -amp, amp);
  t.k.randomize(rng, -1, 1);
  t.v.randomize(rng, -1, 1);
  t.go.randomize(rng, -1, 1);
  t.o = out(dt, {c.B, c.Hq, c.Sq, c.Dv});
  t.lse = out(DType::Float32, {c.B, c.Hq, c.Sq});
  t.gq = out(dt, {c.B, c.Hq, c.Sq, c.D});
  t.gk = out(dt, {c.B, c.Hk, c.Sk, c.D});
  t.gv = out(dt, {c.B, c.Hk, c.Sk, c.Dv});
  return t;
}

Status run_forward(Case& t) {
  return kt::run("attention", t.dt, {t.q.v, t.k.v, t.v.v}, {t.o.v, t.lse.v}, {t.c.causal ? 1 : 0}, {t.c.scale});
}
Status run_backward(Case& t) {
  return kt::run("attention_backward", t.dt, {t.q.v, t.k.v, t.v.v, t.o.v, t.lse.v, t.go.v}, {t.gq.v, t.gk.v, t.gv.v},
                 {t.c.causal ? 1 : 0}, {t.c.scale});
}

// Tolerances in the units above: float32 outputs; 16-bit outputs (dominated by
// their one rounding, and for the gradients by the rounded o in delta).
struct Tol {
  double o, lse, g;
};
Tol tol_for(DType dt) { return dt == DType::Float32 ? Tol{8, 8, 16} : Tol{1.1, 8, 3}; }

struct Observed {
  double o[3] = {}, lse[3] = {}, gq[3] = {}, gk[3] = {}, gv[3] = {}, fd[3] = {};
};
Observed g_obs;

bool check_grad(const char* what, const Case& t, const Tensor& got, const vd& want, const vd& scale, double tol,
                double* obs) {
  const double u = nnt::unit_roundoff(t.dt), sub = nnt::subnormal_floor(t.dt);
  nnt::ErrStat e;
  for (int64_t i = 0; i < got.numel(); ++i) e.add(got.get(i), want[static_cast<size_t>(i)], u * (scale[static_cast<size_t>(i)] + sub), i);
  KCHECK(e.max_err <= tol) << t.name() << ": " << what << " error " << e.max_err << " units at " << e.where << " (got "
                           << (e.where >= 0 ? got.get(e.where) : 0.0) << ", want "
                           << (e.where >= 0 ? want[static_cast<size_t>(e.where)] : 0.0) << ")";
  *obs = std::max(*obs, e.max_err);
  return e.max_err <= tol;
}

// Forward and backward against the reference; with_fd: the gradients also
// against finite differences.
void check_case(Case& t, bool with_fd) {
  const int di = nnt::dt_index(t.dt);
  const double u = nnt::unit_roundoff(t.dt), u32 = 0x1.0p-24, sub = nnt::subnormal_floor(t.dt);
  const Tol tol = tol_for(t.dt);
  const vd q = t.q.values(), k = t.k.values(), v = t.v.values(), go = t.go.values();
  Ref r;
  reference(t.c, q, k, v, &go, &r);

  const Status st = run_forward(t);
  KCHECK(st.ok()) << t.name() << ": " << st.message();
  if (!st.ok()) return;
  nnt::ErrStat eo, el;
  for (int64_t i = 0; i < t.o.numel(); ++i) eo.add(t.o.get(i), r.o[static_cast<size_t>(i)], u * (r.o_s[static_cast<size_t>(i)] + sub), i);
  for (int64_t i = 0; i < t.lse.numel(); ++i) el.add(t.lse.get(i), r.lse[static_cast<size_t>(i)], u32 * r.lse_s[static_cast<size_t>(i)], i);
  KCHECK(eo.max_err <= tol.o) << t.name() << ": o error " << eo.max_err << " units at " << eo.where;
  KCHECK(el.max_err <= tol.lse) << t.name() << ": lse error " << el.max_err << " units at " << el.where;
  KCHECK(t.o.guards_intact() && t.lse.guards_intact()) << t.name() << ": forward wrote outside its outputs";
  g_obs.o[di] = std::max(g_obs.o[di], eo.max_err);
  g_obs.lse[di] = std::max(g_obs.lse[di], el.max_err);

  const Status sb = run_backward(t);
  KCHECK(sb.ok()) << t.name() << ": " << sb.message();
  if (!sb.ok()) return;
  check_grad("gq", t, t.gq, r.gq, r.gq_s, tol.g, &g_obs.gq[di]);
  check_grad("gk", t, t.gk, r.gk, r.gk_s, tol.g, &g_obs.gk[di]);
  check_grad("gv", t, t.gv, r.gv, r.gv_s, tol.g, &g_obs.gv[di]);
  KCHECK(t.gq.guards_intact() && t.gk.guards_intact() && t.gv.guards_intact()) << t.name() << ": backward wrote outside its outputs";

  if (!with_fd) return;
  vd qv = q, kv = k, vv = v;
  nnt::ErrStat ef, ek;
  auto fd_check = [&](vd* x, const vd& ana, const vd& scale, const Tensor& got) {
    for (size_t i = 0; i < x->size(); ++i) {
      const double x0 = (*x)[i], h = 1e-5;
      (*x)[i] = x0 + h;
      const double lp = loss(t.c, qv, kv, vv, go);
      (*x)[i] = x0 - h;
      const double lm = loss(t.c, qv, kv, vv, go);
      (*x)[i] = x0;
      const double d = (lp - lm) / (2 * h);
      ef.add(ana[i], d, 1e-7 * (scale[i] + 1), static_cast<int64_t>(i));
      ek.add(got.get(static_cast<int64_t>(i)), d, tol.g * u * (scale[i] + sub) + 1e-7 * (scale[i] + 1), static_cast<int64_t>(i));
    }
  };
  fd_check(&qv, r.gq, r.gq_s, t.gq);
  fd_check(&kv, r.gk, r.gk_s, t.gk);
  fd_check(&vv, r.gv, r.gv_s, t.gv);
  KCHECK(ef.max_err <= 1.0) << t.name() << ": reference gradient vs finite differences " << ef.max_err * 1e-7 << " at " << ef.where;
  KCHECK(ek.max_err <= 1.0) << t.name() << ": kernel gradient vs finite differences, error/tolerance " << ek.max_err;
  g_obs.fd[di] = std::max(g_obs.fd[di], ef.max_err * 1e-7);
}

const Cfg kCfgs[] = {
    // B Hq Hk Sq Sk D Dv causal scale
    {1, 1, 1, 1, 1, 1, 1, false, 0},
    {1, 1, 1, 1, 1, 1, 1, true, 0},
    {2, 2, 1, 3, 5, 4, 3, false, 0},
    {1, 4, 1, 7, 7, 8, 8, true, 0},
    {2, 4, 2, 5, 9, 6, 11, true, 0.7},     // decoding-like: Sq < Sk, causal aligned bottom-right
    {1, 2, 2, 9, 4, 5, 5, true, 0},        // Sq > Sk: the first 5 rows see no key
    {1, 3, 3, 1, 70, 16, 16, true, 0},     // one query, two key tiles
    {1, 8, 2, 70, 70, 64, 64, true, 0},    // GQA 4, two tiles each way
    {2, 2, 1, 65, 130, 13, 80, false, -0.3},
    {1, 2, 1, 130, 65, 80, 24, true, 0},   // Sq > Sk, several tiles
    {1, 1, 1, 64, 64, 64, 1, false, 0},
    {1, 1, 1, 33, 200, 1, 7, true, 2.0},
    {1, 2, 2, 200, 257, 128, 96, true, 0},  // head dims of real models, a partial last tile
};

KTEST(attention, forward_backward_match_f64) {
  Rng rng(21);
  for (DType dt : kDtypes) {
    for (const Cfg& c : kCfgs) {
      Case t = make_case(c, dt, rng);
      check_case(t, false);
      if (kt::failures_in_test() > 0) return;
    }
  }
  std::printf("    observed max error, units of u(dtype) * magnitude [f32 f16 bf16]: o %.2f %.2f %.2f | lse (u32) %.2f %.2f %.2f\n"
              "      gq %.2f %.2f %.2f | gk %.2f %.2f %.2f | gv %.2f %.2f %.2f\n",
              g_obs.o[0], g_obs.o[1], g_obs.o[2], g_obs.lse[0], g_obs.lse[1], g_obs.lse[2], g_obs.gq[0], g_obs.gq[1],
              g_obs.gq[2], g_obs.gk[0], g_obs.gk[1], g_obs.gk[2], g_obs.gv[0], g_obs.gv[1], g_obs.gv[2]);
}

KTEST(attention, gradients_match_finite_differences) {
  Rng rng(22);
  const Cfg cfgs[] = {
      {1, 1, 1, 1, 1, 1, 1, false, 0}, {1, 2, 1, 3, 4, 3, 2, true, 0},  {1, 4, 2, 4, 3, 2, 3, true, 0.9},
      {2, 2, 2, 2, 5, 4, 4, false, 0}, {1, 4, 1, 5, 5, 3, 2, true, 0},
  };
  for (DType dt : kDtypes) {
    for (const Cfg& c : cfgs) {
      Case t = make_case(c, dt, rng);
      check_case(t, true);
      if (kt::failures_in_test() > 0) return;
    }
  }
  std::printf("    reference vs finite differences, max |diff| / (magnitude + 1): %.1e %.1e %.1e\n", g_obs.fd[0],
              g_obs.fd[1], g_obs.fd[2]);
}

KTEST(attention, random_shapes) {
  Rng rng(23);
  for (int rep = 0; rep < 60; ++rep) {
    const int64_t ratios[] = {1, 2, 4};
    Cfg c;
    c.B = 1 + rng.below(2);
    c.Hk = 1 + rng.below(2);
    c.Hq = c.Hk * ratios[rng.below(3)];
    c.Sq = 1 + rng.below(90);
    c.Sk = 1 + rng.below(90);
    c.D = 1 + rng.below(40);
    c.Dv = 1 + rng.below(40);
    c.causal = rng.below(2) == 1;
    c.scale = rng.below(2) ? 0 : rng.uniform(-1, 1);
    Case t = make_case(c, kDtypes[rng.below(3)], rng);
    check_case(t, false);
    if (kt::failures_in_test() > 0) return;
  }
}

KTEST(attention, every_isa_level) {
  for (cpu::IsaLevel level : nnt::isa_levels()) {
    KCHECK(cpu::set_isa(level).ok());
    Rng rng(24);
    const Cfg cfgs[] = {{1, 4, 2, 37, 70, 24, 40, true, 0}, {1, 2, 1, 3, 5, 7, 3, false, 0}};
    for (DType dt : kDtypes) {
      for (const Cfg& c : cfgs) {
        Case t = make_case(c, dt, rng);
        check_case(t, false);
        if (kt::failures_in_test() > 0) {
          std::cerr << "    at ISA level " << cpu::isa_name(level) << "\n";
          cpu::set_isa(cpu::detected_isa());
          return;
        }
      }
    }
  }
  KCHECK(cpu::set_isa(cpu::detected_isa()).ok());
}

KTEST(attention, thread_count_invariant) {
  const Cfg cfgs[] = {{1, 4, 1, 150, 200, 40, 24, true, 0}, {2, 2, 2, 70, 33, 16, 16, false, 0}};
  for (DType dt : {DType::Float32, DType::BFloat16}) {
    for (const Cfg& c : cfgs) {
      Rng rng(25);
      Case t = make_case(c, dt, rng, false);
      std::vector<unsigned char> first[5];
      for (int threads = 1; threads <= 3; ++threads) {
        cpu::set_num_threads(threads);
        KCHECK(run_forward(t).ok());
        KCHECK(run_backward(t).ok());
        const Tensor* outs[5] = {&t.o, &t.lse, &t.gq, &t.gk, &t.gv};
        for (int o = 0; o < 5; ++o) {
          if (threads == 1) {
            first[o] = outs[o]->bytes();
          } else {
            KCHECK(outs[o]->bytes() == first[o]) << t.name() << ": output " << o << " differs with " << threads << " threads";
          }
        }
      }
    }
  }
  cpu::set_num_threads(0);
}

// Grouped-query attention equals attention with the kv heads repeated, and
// gk / gv are the sums over each group's query heads.
KTEST(attention, gqa_equals_repeated_heads) {
  Rng rng(26);
  const Cfg c{1, 4, 2, 20, 30, 8, 8, true, 0};
  Case t = make_case(c, DType::Float32, rng, false);
  Cfg c2 = c;
  c2.Hk = 4;
  Case r = make_case(c2, DType::Float32, rng, false);
  r.q.assign(t.q.values());
  r.go.assign(t.go.values());
  for (int64_t h = 0; h < 4; ++h) {
    for (int64_t j = 0; j < 30 * 8; ++j) {
      r.k.set(h * 240 + j, t.k.get((h / 2) * 240 + j));
      r.v.set(h * 240 + j, t.v.get((h / 2) * 240 + j));
    }
  }
  KCHECK(run_forward(t).ok() && run_backward(t).ok());
  KCHECK(run_forward(r).ok() && run_backward(r).ok());
  KCHECK(t.o.values() == r.o.values());
  KCHECK(t.lse.values() == r.lse.values());
  KCHECK(t.gq.values() == r.gq.values());
  for (int64_t hk = 0; hk < 2; ++hk) {
    for (int64_t j = 0; j < 240; ++j) {
      // each head's sum was accumulated (and rounded) separately: tolerance relative to the parts
      const double k0 = r.gk.get((2 * hk) * 240 + j), k1 = r.gk.get((2 * hk + 1) * 240 + j);
      const double v0 = r.gv.get((2 * hk) * 240 + j), v1 = r.gv.get((2 * hk + 1) * 240 + j);
      const double gk = t.gk.get(hk * 240 + j), gv = t.gv.get(hk * 240 + j);
      KCHECK(std::fabs(gk - (k0 + k1)) <= 1e-6 * (std::fabs(k0) + std::fabs(k1)) + 1e-7) << j << ": " << gk << " vs " << k0 << " + " << k1;
      KCHECK(std::fabs(gv - (v0 + v1)) <= 1e-6 * (std::fabs(v0) + std::fabs(v1)) + 1e-7) << j << ": " << gv << " vs " << v0 << " + " << v1;
    }
  }
}

KTEST(attention, empty_and_degenerate) {
  Rng rng(27);
  for (DType dt : {DType::Float32, DType::Float16}) {
    // Sq == 0: nothing forward; gk, gv are sums over no query: zeros.
    {
      Case t = make_case({1, 2, 1, 0, 5, 4, 3, true, 0}, dt, rng);
      KCHECK(run_forward(t).ok());
      KCHECK(t.o.guards_intact() && t.lse.guards_intact());
      KCHECK(run_backward(t).ok());
      for (int64_t i = 0; i < t.gk.numel(); ++i) KCHECK_EQ(t.gk.get(i), 0.0);
      for (int64_t i = 0; i < t.gv.numel(); ++i) KCHECK_EQ(t.gv.get(i), 0.0);
      KCHECK(t.gq.guards_intact() && t.gk.guards_intact() && t.gv.guards_intact());
    }
    // Sk == 0: every row sees no key: o = 0, lse = -inf, gq = 0.
    {
      Case t = make_case({2, 2, 2, 3, 0, 4, 3, false, 0}, dt, rng);
      KCHECK(run_forward(t).ok());
      for (int64_t i = 0; i < t.o.numel(); ++i) KCHECK_EQ(t.o.get(i), 0.0);
      for (int64_t i = 0; i < t.lse.numel(); ++i) KCHECK_EQ(t.lse.get(i), kNegInf);
      KCHECK(run_backward(t).ok());
      for (int64_t i = 0; i < t.gq.numel(); ++i) KCHECK_EQ(t.gq.get(i), 0.0);
      KCHECK(t.gk.guards_intact() && t.gv.guards_intact());
    }
    // B == 0, heads == 0: nothing at all.
    for (const Cfg& c : {Cfg{0, 2, 1, 3, 4, 5, 6, true, 0}, Cfg{2, 0, 0, 3, 4, 5, 6, false, 0}}) {
      Case t = make_case(c, dt, rng);
      KCHECK(run_forward(t).ok());
      KCHECK(run_backward(t).ok());
      KCHECK(t.o.guards_intact() && t.lse.guards_intact() && t.gq.guards_intact() && t.gk.guards_intact() &&
             t.gv.guards_intact());
    }
    // D == 0 (every score 0: o is the mean of the visible v) and Dv == 0 (o empty, lse = log(#visible)).
    for (const Cfg& c : {Cfg{1, 2, 1, 4, 6, 0, 3, true, 0}, Cfg{1, 2, 2, 4, 6, 3, 0, true, 0}}) {
      Case t = make_case(c, dt, rng);
      check_case(t, false);
    }
  }
}

// A NaN in q poisons its own row only; a NaN in k poisons exactly the rows that see that key.
KTEST(attention, nan_propagates) {
  Rng rng(29);
  for (DType dt : {DType::Float32, DType::BFloat16}) {
    const Cfg c{1, 2, 1, 6, 6, 8, 4, true, 0};
    Case t = make_case(c, dt, rng, false);
    t.q.set(((0 * 2 + 1) * 6 + 2) * 8 + 3, std::nan(""));  // q[0, 1, 2, 3]
    t.k.set((0 * 6 + 4) * 8 + 0, std::nan(""));            // k[0, 0, 4, 0]: seen by rows i >= 4 of both heads
    KCHECK(run_forward(t).ok());
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t i = 0; i < 6; ++i) {
        const bool poisoned = (h == 1 && i == 2) || i >= 4;
        const double l = t.lse.get(h * 6 + i);
        KCHECK(std::isnan(l) == poisoned) << dtype_name(dt) << " head " << h << " row " << i << " lse " << l;
        for (int64_t d = 0; d < 4; ++d) {
          const double o = t.o.get((h * 6 + i) * 4 + d);
          KCHECK(std::isnan(o) == poisoned) << dtype_name(dt) << " head " << h << " row " << i << " o " << o;
        }
      }
    }
  }
}

KTEST(attention, error_statuses) {
  Rng rng(28);
  auto T = [&](DType dt, std::vector<int64_t> shape) { return nnt::make(dt, shape, Layout::Contig, rng); };
  const DType F = DType::Float32;
  Tensor q = T(F, {2, 4, 5, 8}), k = T(F, {2, 2, 7, 8}), v = T(F, {2, 2, 7, 6}), o = T(F, {2, 4, 5, 6}), lse = T(F, {2, 4, 5});
  Tensor gq = T(F, {2, 4, 5, 8}), gk = T(F, {2, 2, 7, 8}), gv = T(F, {2, 2, 7, 6});
  auto fwd = [&](const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& o_, const Tensor& l_,
                 std::initializer_list<int64_t> ints = {0}, std::initializer_list<double> floats = {0.5}) {
    return static_cast<int>(kt::run("attention", q_.dtype(), {q_.v, k_.v, v_.v}, {o_.v, l_.v}, ints, floats).code());
  };
  auto bwd = [&](const Tensor& o_, const Tensor& l_, const Tensor& go_, const Tensor& gq_, const Tensor& gk_,
                 const Tensor& gv_) {
    return static_cast<int>(
        kt::run("attention_backward", F, {q.v, k.v, v.v, o_.v, l_.v, go_.v}, {gq_.v, gk_.v, gv_.v}, {1}, {0.5}).code());
  };
  const int kOk = 0, kShape = static_cast<int>(StatusCode::ShapeError), kDType = static_cast<int>(StatusCode::DTypeError);
  const int kValue = static_cast<int>(StatusCode::ValueError), kNoKernel = static_cast<int>(StatusCode::NoKernel);
  const int kInternal = static_cast<int>(StatusCode::Internal);
  KCHECK_EQ(fwd(q, k, v, o, lse), kOk);
  KCHECK_EQ(bwd(o, lse, o, gq, gk, gv), kOk);
  // Hq % Hk != 0; Hk == 0 with Hq > 0
  Tensor k3 = T(F, {2, 3, 7, 8}), v3 = T(F, {2, 3, 7, 6}), k0 = T(F, {2, 0, 7, 8}), v0 = T(F, {2, 0, 7, 6});
  KCHECK_EQ(fwd(q, k3, v3, o, lse), kShape);
  KCHECK_EQ(fwd(q, k0, v0, o, lse), kShape);
  // mismatched D, Sk, batch, rank
  Tensor kd = T(F, {2, 2, 7, 9}), vs = T(F, {2, 2, 6, 6}), kb = T(F, {1, 2, 7, 8}), vb = T(F, {1, 2, 7, 6}), q3 = T(F, {4, 5, 8});
  KCHECK_EQ(fwd(q, kd, v, o, lse), kShape);
  KCHECK_EQ(fwd(q, k, vs, o, lse), kShape);
  KCHECK_EQ(fwd(q, kb, vb, o, lse), kShape);
  KCHECK_EQ(fwd(q3, k, v, o, lse), kShape);
  // output shapes
  Tensor o8 = T(F, {2, 4, 5, 8}), l4 = T(F, {2, 4, 4}), l2 = T(F, {2, 4, 5, 1});
  KCHECK_EQ(fwd(q, k, v, o8, lse), kShape);
  KCHECK_EQ(fwd(q, k, v, o, l4), kShape);
  KCHECK_EQ(fwd(q, k, v, o, l2), kShape);
  KCHECK_EQ(bwd(o, lse, o, gq, gk, T(F, {2, 2, 7, 8})), kShape);
  KCHECK_EQ(bwd(o, lse, o, gq, T(F, {2, 4, 7, 8}), gv), kShape);
  KCHECK_EQ(bwd(o, lse, o8, gq, gk, gv), kShape);
  // dtypes
  const DType H = DType::Float16;
  Tensor kh = T(H, {2, 2, 7, 8}), oh = T(H, {2, 4, 5, 6}), lh = T(H, {2, 4, 5}), qh = T(H, {2, 4, 5, 8});
  Tensor vh = T(H, {2, 2, 7, 6});
  KCHECK_EQ(fwd(q, kh, v, o, lse), kDType);
  KCHECK_EQ(fwd(q, k, v, oh, lse), kDType);
  KCHECK_EQ(fwd(q, k, v, o, lh), kDType);
  KCHECK_EQ(fwd(qh, kh, vh, oh, lh), kDType);  // lse must be float32
  KCHECK_EQ(fwd(qh, kh, vh, oh, lse), kOk);
  KCHECK_EQ(bwd(o, lh, o, gq, gk, gv), kDType);
  KCHECK_EQ(bwd(o, lse, oh, gq, gk, gv), kDType);
  KCHECK_EQ(bwd(o, lse, o, gq, gk, T(H, {2, 2, 7, 6})), kDType);
  Tensor q8 = T(DType::Float8E4M3, {2, 4, 5, 8});
  KCHECK_EQ(fwd(q8, k, v, o, lse), kNoKernel);
  // attributes and counts
  KCHECK_EQ(fwd(q, k, v, o, lse, {2}), kValue);
  KCHECK_EQ(fwd(q, k, v, o, lse, {0}, {std::nan("")}), kValue);
  KCHECK_EQ(fwd(q, k, v, o, lse, {0}, {HUGE_VAL}), kValue);
  KCHECK_EQ(fwd(q, k, v, o, lse, {}, {0.5}), kInternal);
  KCHECK_EQ(fwd(q, k, v, o, lse, {0}, {}), kInternal);
  const Status s = kt::run("attention", F, {q.v, k3.v, v3.v}, {o.v, lse.v}, {0}, {0.5});
  KCHECK(s.message().find("attention") != std::string::npos && s.message().find("float32[2, 3, 7, 8]") != std::string::npos)
      << s.message();
}

}  // namespace
