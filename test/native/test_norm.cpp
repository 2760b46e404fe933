// Suite 'norm': the CPU kernels 'rms_norm', 'layer_norm' and their backward
// kernels, reached through kiln::run_kernel, against float64 references
// written here (plain loops over the dtype-rounded inputs), and the
// references' gradients against central finite differences of the float64
// forward. Operands take random layouts (permuted, padded rows and columns
// with an offset, broadcast rows); outputs must leave every byte they do not
// address untouched. Also: every ISA level, thread-count invariance (bit for
// bit), empty tensors and error statuses.
//
// Error units: |got - want| / (u * s), with u the unit roundoff of the output
// dtype (2^-24, 2^-11, 2^-8) and s a magnitude that bounds the rounding
// errors of the computation (e.g. |xhat w| + |b| for layer_norm's y).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cpu_features.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "nn_testing.h"
#include "norm_reference.h"

namespace {

using namespace kiln;
using nnt::Layout;
using nnt::Rng;
using nnt::Tensor;
using vd = std::vector<double>;

const DType kDtypes[] = {DType::Float32, DType::Float16, DType::BFloat16};

using normref::NormRef;
using normref::ref_backward;
using normref::ref_forward;

double loss(bool layer, int64_t R, int64_t D, const vd& x, const vd& w, const vd& b, const vd& gy, double eps) {
  NormRef f;
  ref_forward(layer, R, D, x, w, b, eps, &f);
  double s = 0;
  for (size_t k = 0; k < gy.size(); ++k) s += gy[k] * f.y[k];
  return s;
}

// Central difference of loss() with respect to element k of *which.
double fd(bool layer, int64_t R, int64_t D, vd& x, vd& w, vd& b, const vd& gy, double eps, vd* which, size_t k) {
  const double x0 = (*which)[k], h = 1e-5 * std::max(1.0, std::fabs(x0));
  (*which)[k] = x0 + h;
  const double lp = loss(layer, R, D, x, w, b, gy, eps);
  (*which)[k] = x0 - h;
  const double lm = loss(layer, R, D, x, w, b, gy, eps);
  (*which)[k] = x0;
  return (lp - lm) / (2 * h);
}

// ---- kernel runs ------------------------------------------------------------------------

struct Case {
  bool layer;
  DType dt;
  int64_t R, D;
  double eps;
  Tensor x, w, b, gy;  // inputs
  Tensor y, mean, rstd, gx, gw, gb;
  std::string name() const {
    return std::string(layer ? "layer_norm" : "rms_norm") + " " + x.describe() + " w " + w.lay + " eps " +
           std::to_string(eps);
  }
};

Layout rand_out(Rng& rng) { return static_cast<Layout>(rng.below(3)); }

Case make_case(bool layer, DType dt, int64_t R, int64_t D, Rng& rng, bool allow_broadcast = true) {
  Case c{layer, dt, R, D, rng.below(2) ? 1e-5 : 0.1, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  c.x = nnt::make(dt, {R, D}, nnt::random_layout(rng, allow_broadcast), rng);
  c.w = nnt::make(dt, {D}, nnt::random_layout(rng, false), rng);
  c.b = nnt::make(dt, {D}, nnt::random_layout(rng, false), rng);
  c.gy = nnt::make(dt, {R, D}, nnt::random_layout(rng, allow_broadcast), rng);
  // x with a row offset (layer_norm subtracts it), w around 1, b and gy around 0.
  const double off = rng.uniform(-2, 2);
  c.x.randomize(rng, off - 1.5, off + 1.5);
  c.w.randomize(rng, 0.5, 1.5);
  c.b.randomize(rng, -0.5, 0.5);
  c.gy.randomize(rng, -1, 1);
  c.y = nnt::make(dt, {R, D}, rand_out(rng), rng);
  c.mean = nnt::make(DType::Float32, {R}, rand_out(rng), rng);
  c.rstd = nnt::make(DType::Float32, {R}, rand_out(rng), rng);
  c.gx = nnt::make(dt, {R, D}, rand_out(rng), rng);
  c.gw = nnt::make(DType::Float32, {D}, rand_out(rng), rng);
  c.gb = nnt::make(DType::Float32, {D}, rand_out(rng), rng);
  return c;
}

Status run_forward(Case& c) {
  if (c.layer) {
    return kt::run("layer_norm", c.dt, {c.x.v, c.w.v, c.b.v}, {c.y.v, c.mean.v, c.rstd.v}, {}, {c.eps});
  }
  return kt::run("rms_norm", c.dt, {c.x.v, c.w.v}, {c.y.v, c.rstd.v}, {}, {c.eps});
}

Status run_backward(Case& c) {
  if (c.layer) {
    return kt::run("layer_norm_backward", c.dt, {c.x.v, c.w.v, c.mean.v, c.rstd.v, c.gy.v}, {c.gx.v, c.gw.v, c.gb.v});
  }
  return kt::run("rms_norm_backward", c.dt, {c.x.v, c.w.v, c.rstd.v, c.gy.v}, {c.gx.v, c.gw.v});
}

// Observed worst errors (in units, see the top of the file), per op and dtype.
struct Observed {
  double y[2][3] = {}, stat[2][3] = {}, gx[2][3] = {}, gw[2][3] = {}, fd[2][3] = {};
};
Observed g_obs;

// Runs forward then backward and checks both against the references.
void check_case(Case& c, bool with_fd) {
  const int li = c.layer ? 1 : 0, di = nnt::dt_index(c.dt);
  const double u = nnt::unit_roundoff(c.dt), u32 = 0x1.0p-24;
  const double sub = nnt::subnormal_floor(c.dt);  // added to magnitudes: results near the subnormal range
  const vd x = c.x.values(), w = c.w.values(), b = c.b.values(), gy = c.gy.values();
  NormRef ref;
  ref_forward(c.layer, c.R, c.D, x, w, b, c.eps, &ref);
  ref_backward(c.layer, c.R, c.D, x, w, gy, c.eps, &ref);

  const Status st = run_forward(c);
  KCHECK(st.ok()) << c.name() << ": " << st.message();
  if (!st.ok()) return;
  // y: float32 arithmetic (a few roundings) then one rounding to the dtype.
  const double y_tol = c.dt == DType::Float32 ? 6.0 : 1.01;
  nnt::ErrStat ey, es;
  for (int64_t k = 0; k < c.R * c.D; ++k) ey.add(c.y.get(k), ref.y[static_cast<size_t>(k)], u * (ref.y_scale[static_cast<size_t>(k)] + sub), k);
  KCHECK(ey.max_err <= y_tol) << c.name() << ": y error " << ey.max_err << " units at " << ey.where;
  // rstd and mean: float64 values rounded once to float32.
  for (int64_t i = 0; i < c.R; ++i) {
    const double rs = ref.rstd[static_cast<size_t>(i)];
    es.add(c.rstd.get(i), rs, u32 * std::fabs(rs), i);
    if (c.layer) {
      const double mu = ref.mean[static_cast<size_t>(i)];
      // the mean's error is judged against the spread of the row (|mu| may be ~0)
      es.add(c.mean.get(i), mu, u32 * (std::fabs(mu) + 1e-3 / rs), i);
    }
  }
  KCHECK(es.max_err <= 1.01) << c.name() << ": rstd/mean error " << es.max_err << " units at row " << es.where;
  KCHECK(c.y.guards_intact() && c.rstd.guards_intact() && (!c.layer || c.mean.guards_intact()))
      << c.name() << ": forward wrote outside its outputs";
  g_obs.y[li][di] = std::max(g_obs.y[li][di], ey.max_err);
  g_obs.stat[li][di] = std::max(g_obs.stat[li][di], es.max_err);

  const Status sb = run_backward(c);
  KCHECK(sb.ok()) << c.name() << ": " << sb.message();
  if (!sb.ok()) return;
  // gx: float32 arithmetic from the saved float32 mean / rstd, one rounding to the dtype.
  const double gx_tol = c.dt == DType::Float32 ? 12.0 : 1.05;
  nnt::ErrStat egx, egw;
  for (int64_t k = 0; k < c.R * c.D; ++k) {
    egx.add(c.gx.get(k), ref.gx[static_cast<size_t>(k)], u * (ref.gx_scale[static_cast<size_t>(k)] + sub), k);
  }
  KCHECK(egx.max_err <= gx_tol) << c.name() << ": gx error " << egx.max_err << " units at " << egx.where;
  // gw, gb (float32 outputs): float32 products summed in float64.
  for (int64_t j = 0; j < c.D; ++j) {
    egw.add(c.gw.get(j), ref.gw[static_cast<size_t>(j)], u32 * ref.gw_scale[static_cast<size_t>(j)], j);
    if (c.layer) egw.add(c.gb.get(j), ref.gb[static_cast<size_t>(j)], u32 * ref.gb_scale[static_cast<size_t>(j)], j);
  }
  KCHECK(egw.max_err <= 8.0) << c.name() << ": gw/gb error " << egw.max_err << " units at " << egw.where;
  KCHECK(c.gx.guards_intact() && c.gw.guards_intact() && (!c.layer || c.gb.guards_intact()))
      << c.name() << ": backward wrote outside its outputs";
  g_obs.gx[li][di] = std::max(g_obs.gx[li][di], egx.max_err);
  g_obs.gw[li][di] = std::max(g_obs.gw[li][di], egw.max_err);

  if (!with_fd) return;
  // The reference gradients against central differences of the float64 forward,
  // and the kernel's against the same differences (its own tolerance plus 1e-6).
  vd xv = x, wv = w, bv = b;
  nnt::ErrStat ef, ek;
  for (size_t k = 0; k < xv.size(); ++k) {
    const double d = fd(c.layer, c.R, c.D, xv, wv, bv, gy, c.eps, &xv, k);
    ef.add(ref.gx[k], d, 1e-6 * (ref.gx_scale[k] + 1), static_cast<int64_t>(k));
    ek.add(c.gx.get(static_cast<int64_t>(k)), d, gx_tol * u * ref.gx_scale[k] + 1e-6 * (ref.gx_scale[k] + 1),
           static_cast<int64_t>(k));
  }
  for (size_t j = 0; j < wv.size(); ++j) {
    const double d = fd(c.layer, c.R, c.D, xv, wv, bv, gy, c.eps, &wv, j);
    ef.add(ref.gw[j], d, 1e-6 * (ref.gw_scale[j] + 1), static_cast<int64_t>(j));
    ek.add(c.gw.get(static_cast<int64_t>(j)), d, 8 * u32 * ref.gw_scale[j] + 1e-6 * (ref.gw_scale[j] + 1),
           static_cast<int64_t>(j));
    if (c.layer) {
      const double db = fd(c.layer, c.R, c.D, xv, wv, bv, gy, c.eps, &bv, j);
      ef.add(ref.gb[j], db, 1e-6 * (ref.gb_scale[j] + 1), static_cast<int64_t>(j));
      ek.add(c.gb.get(static_cast<int64_t>(j)), db, 8 * u32 * ref.gb_scale[j] + 1e-6 * (ref.gb_scale[j] + 1),
             static_cast<int64_t>(j));
    }
  }
  KCHECK(ef.max_err <= 1.0) << c.name() << ": reference gradient vs finite differences " << ef.max_err * 1e-6;
  KCHECK(ek.max_err <= 1.0) << c.name() << ": kernel gradient vs finite differences, error/tolerance " << ek.max_err;
  g_obs.fd[li][di] = std::max(g_obs.fd[li][di], ef.max_err * 1e-6);
}

const int64_t kShapes[][2] = {{1, 1}, {1, 8}, {3, 7}, {2, 1}, {5, 64}, {17, 33}, {40, 100}, {3, 1000}, {300, 24}};

KTEST(norm, forward_backward_match_f64) {
  Rng rng(1);
  for (int layer = 0; layer < 2; ++layer) {
    for (DType dt : kDtypes) {
      for (const auto& s : kShapes) {
        for (int rep = 0; rep < 2; ++rep) {
          Case c = make_case(layer == 1, dt, s[0], s[1], rng);
          check_case(c, false);
          if (kt::failures_in_test() > 0) return;
        }
      }
    }
  }
  std::printf("    observed max error, units of u(dtype) * magnitude [f32 f16 bf16]:\n");
  for (int l = 0; l < 2; ++l) {
    std::printf("      %-10s y %.2f %.2f %.2f | rstd/mean %.2f %.2f %.2f | gx %.2f %.2f %.2f | gw/gb (u32) %.2f %.2f %.2f\n",
                l ? "layer_norm" : "rms_norm", g_obs.y[l][0], g_obs.y[l][1], g_obs.y[l][2], g_obs.stat[l][0],
                g_obs.stat[l][1], g_obs.stat[l][2], g_obs.gx[l][0], g_obs.gx[l][1], g_obs.gx[l][2], g_obs.gw[l][0],
                g_obs.gw[l][1], g_obs.gw[l][2]);
  }
}

KTEST(norm, gradients_match_finite_differences) {
  Rng rng(2);
  const int64_t shapes[][2] = {{1, 1}, {1, 5}, {3, 7}, {4, 16}, {9, 3}};
  for (int layer = 0; layer < 2; ++layer) {
    for (DType dt : kDtypes) {
      for (const auto& s : shapes) {
        Case c = make_case(layer == 1, dt, s[0], s[1], rng);
        check_case(c, true);
        if (kt::failures_in_test() > 0) return;
      }
    }
  }
  std::printf("    reference vs finite differences, max |diff| / (magnitude + 1): rms %.1e %.1e %.1e, layer %.1e %.1e %.1e\n",
              g_obs.fd[0][0], g_obs.fd[0][1], g_obs.fd[0][2], g_obs.fd[1][0], g_obs.fd[1][1], g_obs.fd[1][2]);
}

KTEST(norm, every_isa_level) {
  for (cpu::IsaLevel level : nnt::isa_levels()) {
    KCHECK(cpu::set_isa(level).ok());
    Rng rng(3);
    for (int layer = 0; layer < 2; ++layer) {
      for (DType dt : kDtypes) {
        for (const auto& s : {std::vector<int64_t>{7, 45}, std::vector<int64_t>{70, 256}}) {
          Case c = make_case(layer == 1, dt, s[0], s[1], rng);
          check_case(c, false);
          if (kt::failures_in_test() > 0) {
            std::cerr << "    at ISA level " << cpu::isa_name(level) << "\n";
            cpu::set_isa(cpu::detected_isa());
            return;
          }
        }
      }
    }
  }
  KCHECK(cpu::set_isa(cpu::detected_isa()).ok());
}

// Bit-identical outputs with 1, 2 and 3 threads (gw / gb over many row blocks).
KTEST(norm, thread_count_invariant) {
  const int64_t shapes[][2] = {{300, 70}, {9000, 5}, {33, 513}};
  for (int layer = 0; layer < 2; ++layer) {
    for (DType dt : {DType::Float32, DType::BFloat16}) {
      for (const auto& s : shapes) {
        Rng rng(4 + static_cast<uint64_t>(s[0]));
        Case c = make_case(layer == 1, dt, s[0], s[1], rng, false);
        std::vector<unsigned char> first[5];
        for (int threads = 1; threads <= 3; ++threads) {
          cpu::set_num_threads(threads);
          KCHECK(run_forward(c).ok());
          KCHECK(run_backward(c).ok());
          const Tensor* outs[5] = {&c.y, &c.rstd, &c.gx, &c.gw, layer ? &c.gb : &c.mean};
          for (int o = 0; o < 5; ++o) {
            if (threads == 1) {
              first[o] = outs[o]->bytes();
            } else {
              KCHECK(outs[o]->bytes() == first[o]) << c.name() << ": output " << o << " differs with " << threads
                                                   << " threads";
            }
          }
        }
      }
    }
  }
  cpu::set_num_threads(0);
}

KTEST(norm, empty_tensors) {
  Rng rng(5);
  for (int layer = 0; layer < 2; ++layer) {
    // R == 0: nothing to normalise; gw / gb are sums over no rows: zeros.
    Case c = make_case(layer == 1, DType::Float32, 0, 6, rng);
    KCHECK(run_forward(c).ok());
    KCHECK(c.y.guards_intact() && c.rstd.guards_intact());
    KCHECK(run_backward(c).ok());
    for (int64_t j = 0; j < 6; ++j) {
      KCHECK_EQ(c.gw.get(j), 0.0);
      if (layer) KCHECK_EQ(c.gb.get(j), 0.0);
    }
    KCHECK(c.gx.guards_intact() && c.gw.guards_intact());
    // D == 0: rows of nothing: mean 0, rstd 1/sqrt(eps).
    Case e = make_case(layer == 1, DType::BFloat16, 3, 0, rng);
    e.eps = 0.25;
    KCHECK(run_forward(e).ok());
    for (int64_t i = 0; i < 3; ++i) {
      KCHECK_EQ(e.rstd.get(i), 2.0);
      if (layer) KCHECK_EQ(e.mean.get(i), 0.0);
    }
    KCHECK(run_backward(e).ok());
    KCHECK(e.gx.guards_intact());
  }
}

KTEST(norm, error_statuses) {
  Rng rng(6);
  auto T = [&](DType dt, std::vector<int64_t> shape) { return nnt::make(dt, shape, Layout::Contig, rng); };
  const DType F = DType::Float32, H = DType::Float16;
  Tensor x = T(F, {4, 8}), w = T(F, {8}), b = T(F, {8}), y = T(F, {4, 8}), r = T(F, {4}), m = T(F, {4});
  Tensor gw = T(F, {8}), gb = T(F, {8});
  auto code = [](const Status& s) { return static_cast<int>(s.code()); };
  const int kShape = static_cast<int>(StatusCode::ShapeError), kDType = static_cast<int>(StatusCode::DTypeError);
  const int kValue = static_cast<int>(StatusCode::ValueError), kNoKernel = static_cast<int>(StatusCode::NoKernel);
  const int kInternal = static_cast<int>(StatusCode::Internal);
  // sanity: the good call passes
  KCHECK(kt::run("rms_norm", F, {x.v, w.v}, {y.v, r.v}, {}, {1e-5}).ok());
  KCHECK(kt::run("layer_norm", F, {x.v, w.v, b.v}, {y.v, m.v, r.v}, {}, {1e-5}).ok());
  // shapes
  Tensor w7 = T(F, {7}), y48 = T(F, {4, 9}), r5 = T(F, {5}), x3 = T(F, {2, 2, 8}), w2 = T(F, {1, 8});
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w7.v}, {y.v, r.v}, {}, {1e-5})), kShape);
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w2.v}, {y.v, r.v}, {}, {1e-5})), kShape);
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w.v}, {y48.v, r.v}, {}, {1e-5})), kShape);
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w.v}, {y.v, r5.v}, {}, {1e-5})), kShape);
  KCHECK_EQ(code(kt::run("rms_norm", F, {x3.v, w.v}, {y.v, r.v}, {}, {1e-5})), kShape);
  KCHECK_EQ(code(kt::run("layer_norm", F, {x.v, w.v, w7.v}, {y.v, m.v, r.v}, {}, {1e-5})), kShape);
  KCHECK_EQ(code(kt::run("layer_norm_backward", F, {x.v, w.v, m.v, r5.v, y.v}, {y.v, gw.v, gb.v})), kShape);
  KCHECK_EQ(code(kt::run("rms_norm_backward", F, {x.v, w.v, r.v, y48.v}, {y.v, gw.v})), kShape);
  KCHECK_EQ(code(kt::run("rms_norm_backward", F, {x.v, w.v, r.v, y.v}, {y.v, w7.v})), kShape);
  // dtypes
  Tensor wh = T(H, {8}), yh = T(H, {4, 8}), rh = T(H, {4}), xh = T(H, {4, 8}), gwh = T(H, {8});
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, wh.v}, {y.v, r.v}, {}, {1e-5})), kDType);
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w.v}, {yh.v, r.v}, {}, {1e-5})), kDType);
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w.v}, {y.v, rh.v}, {}, {1e-5})), kDType);
  KCHECK_EQ(code(kt::run("rms_norm", H, {xh.v, wh.v}, {yh.v, rh.v}, {}, {1e-5})), kDType);  // rstd must be float32
  KCHECK(kt::run("rms_norm", H, {xh.v, wh.v}, {yh.v, r.v}, {}, {1e-5}).ok());
  KCHECK_EQ(code(kt::run("rms_norm_backward", H, {xh.v, wh.v, r.v, yh.v}, {yh.v, gwh.v})), kDType);  // gw float32
  KCHECK_EQ(code(kt::run("layer_norm_backward", F, {x.v, w.v, m.v, r.v, yh.v}, {y.v, gw.v, gb.v})), kDType);
  Tensor x8 = T(DType::Float8E4M3, {4, 8});
  KCHECK_EQ(code(kt::run("rms_norm", DType::Float8E4M3, {x8.v, w.v}, {y.v, r.v}, {}, {1e-5})), kNoKernel);
  Tensor xi = T(DType::Int32, {4, 8});
  KCHECK_EQ(code(kt::run("layer_norm", DType::Int32, {xi.v, w.v, b.v}, {y.v, m.v, r.v}, {}, {1e-5})), kNoKernel);
  // attributes and counts
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w.v}, {y.v, r.v}, {}, {-1.0})), kValue);
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w.v}, {y.v, r.v}, {}, {std::nan("")})), kValue);
  KCHECK_EQ(code(kt::run("layer_norm", F, {x.v, w.v, b.v}, {y.v, m.v, r.v}, {}, {HUGE_VAL})), kValue);
  KCHECK_EQ(code(kt::run("rms_norm", F, {x.v, w.v}, {y.v, r.v}, {}, {})), kInternal);
  KCHECK_EQ(code(kt::run("layer_norm", F, {x.v, w.v}, {y.v, m.v, r.v}, {}, {1e-5})), kInternal);
  // messages name the op and the operands
  const Status s = kt::run("rms_norm", F, {x.v, w7.v}, {y.v, r.v}, {}, {1e-5});
  KCHECK(s.message().find("rms_norm") != std::string::npos && s.message().find("float32[7]") != std::string::npos)
      << s.message();
}

}  // namespace
