// Suite 'optim': the CPU kernels adamw_step, lamb_step, lars_step (SGD too)
// and optim_grad_sumsq (native/KERNELS.md "Optimizers"), reached through
// kiln::run_kernel:
//   - AdamW and SGD / un-adapted LARS bit for bit against float32 references
//     written here from ../shared/specs/optim.md (each operation rounded once,
//     host scalars in float64 rounded once), for float32, float16 and bfloat16
//     parameters, with and without float32 master weights, every option, several
//     tensors per call with their own step counts and weight decays;
//   - LAMB and adapted LARS against float64 references (the norms differ in
//     their order of summation only);
//   - every ISA level and 1, 2 and 3 threads give the same bits;
//   - gradients are never written; error statuses for bad counts, shapes,
//     dtypes, layouts and hyperparameters.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kiln/cpu_features.h"
#include "kiln/dtype.h"
#include "kiln/numerics.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/threadpool.h"
#include "kiln/view.h"

namespace {

using kiln::DType;
using kiln::KernelArgs;
using kiln::Status;
using kiln::StatusCode;
using kiln::View;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 7) {}
  uint64_t next() {
    uint64_t x = (s += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * (static_cast<double>(next() >> 11) * 0x1.0p-53); }
};

// ---- host tensors -------------------------------------------------------------------------

float to_f32(DType t, uint32_t bits) {
  if (t == DType::Float16) return kiln::num::f16_to_f32(static_cast<uint16_t>(bits));
  if (t == DType::BFloat16) return kiln::num::bf16_to_f32(static_cast<uint16_t>(bits));
  return kiln::num::bits_f32(bits);
}
uint32_t from_f32(DType t, float f) {
  if (t == DType::Float16) return kiln::num::f32_to_f16(f);
  if (t == DType::BFloat16) return kiln::num::f32_to_bf16(f);
  return kiln::num::f32_bits(f);
}

// A 1-D host tensor (64-byte aligned, at element offset `off` of its storage).
struct Buf {
  DType dt = DType::Float32;
  int64_t n = 0, off = 0;
  std::vector<uint64_t> mem;  // 8-byte units, over-allocated for alignment

  Buf() = default;
  Buf(DType t, int64_t count, int64_t offset = 0) : dt(t), n(count), off(offset) {
    mem.assign(static_cast<size_t>((count + offset) * 4 / 8 + 16), 0);
  }
  // Copies keep the elements at the same place relative to the aligned base.
  Buf(const Buf& o) : dt(o.dt), n(o.n), off(o.off), mem(o.mem.size(), 0) {
    std::memcpy(base(), o.base(), static_cast<size_t>((n + off) * esize()));
  }
  Buf& operator=(const Buf& o) {
    if (this != &o) {
      dt = o.dt;
      n = o.n;
      off = o.off;
      mem.assign(o.mem.size(), 0);
      std::memcpy(base(), o.base(), static_cast<size_t>((n + off) * esize()));
    }
    return *this;
  }
  char* base() const {
    uintptr_t a = reinterpret_cast<uintptr_t>(mem.data());
    return reinterpret_cast<char*>((a + 63) & ~uintptr_t(63));
  }
  size_t esize() const { return kiln::dtype_size(dt); }
  char* at(int64_t i) const { return base() + (off + i) * esize(); }
  float get(int64_t i) const {
    uint32_t b = 0;
    std::memcpy(&b, at(i), esize());
    return to_f32(dt, b);
  }
  void set(int64_t i, float f) {
    const uint32_t b = from_f32(dt, f);
    std::memcpy(at(i), &b, esize());
  }
  View view(std::vector<int64_t> shape = {}) const {
    View v;
    v.base = base();
    v.storage_bytes = static_cast<size_t>((n + off) * esize());
    v.dtype = dt;
    if (shape.empty()) shape = {n};
    v.ndim = static_cast<int>(shape.size());
    int64_t stride = 1;
    for (int d = v.ndim - 1; d >= 0; --d) {
      v.shape[d] = shape[d];
      v.strides[d] = stride;
      stride *= shape[d];
    }
    v.offset = off;
    return v;
  }
  std::vector<unsigned char> bytes() const {
    return std::vector<unsigned char>(at(0), at(0) + n * esize());
  }
};

Status run(const char* op, DType key, const std::vector<View>& in, const std::vector<View>& out,
           const std::vector<int64_t>& ints, const std::vector<double>& floats) {
  KernelArgs a;
  a.op = op;
  a.in = in.data();
  a.n_in = static_cast<int>(in.size());
  a.out = out.data();
  a.n_out = static_cast<int>(out.size());
  a.ints = ints.data();
  a.n_ints = static_cast<int>(ints.size());
  a.floats = floats.data();
  a.n_floats = static_cast<int>(floats.size());
  return kiln::run_kernel(key, a);
}

std::vector<kiln::cpu::IsaLevel> isa_levels() {
  std::vector<kiln::cpu::IsaLevel> out;
  for (int l = 0; l <= static_cast<int>(kiln::cpu::detected_isa()); ++l) out.push_back(static_cast<kiln::cpu::IsaLevel>(l));
  return out;
}

// Runs `call` at every ISA level and with 1, 2, 3 threads; every run must leave
// the same bytes (returned by `state`); `reset` restores the inputs before each run.
void same_everywhere(const std::string& ctx, const std::function<void()>& reset, const std::function<Status()>& call,
                     const std::function<std::vector<unsigned char>()>& state) {
  std::vector<std::pair<kiln::cpu::IsaLevel, int>> configs;
  for (auto l : isa_levels()) configs.push_back({l, 0});
  for (int n : {1, 2, 3}) configs.push_back({kiln::cpu::detected_isa(), n});
  std::vector<unsigned char> first;
  bool have = false;
  for (const auto& c : configs) {
    reset();
    kiln::cpu::set_isa(c.first);
    if (c.second) kiln::cpu::set_num_threads(c.second);
    const Status st = call();
    if (c.second) kiln::cpu::set_num_threads(0);
    KCHECK(st.ok()) << ctx << ": " << st.message();
    const std::vector<unsigned char> got = state();
    if (!have) {
      first = got;
      have = true;
    } else if (got != first) {
      KCHECK(false) << ctx << ": isa " << kiln::cpu::isa_name(c.first) << " threads " << c.second << " differs";
    }
  }
  kiln::cpu::set_isa(kiln::cpu::detected_isa());
}

// ---- one optimizer problem: tensors of several sizes and roles -----------------------------------

struct Problem {
  std::vector<DType> dt;
  std::vector<int64_t> sizes;
  std::vector<bool> master;
  std::vector<Buf> p, g, m, v, x, w;  // x: max_exp_avg_sq or momentum buffer; w: master weights
  std::vector<double> step, wd;
  std::vector<bool> adapt, first;

  Problem(const std::vector<int64_t>& n, const std::vector<DType>& types, const std::vector<bool>& masters, uint64_t seed,
          double gscale = 1.0)
      : dt(types), sizes(n), master(masters) {
    Rng r(seed);
    for (size_t i = 0; i < n.size(); ++i) {
      const int64_t off = static_cast<int64_t>(i % 3);  // unaligned starts too
      p.emplace_back(dt[i], n[i], off);
      g.emplace_back(dt[i], n[i], off);
      m.emplace_back(DType::Float32, n[i], off);
      v.emplace_back(DType::Float32, n[i], off);
      x.emplace_back(DType::Float32, n[i], off);
      w.emplace_back(DType::Float32, n[i], off);
      const double pscale = r.uniform(0.1, 2.0);
      for (int64_t k = 0; k < n[i]; ++k) {
        p[i].set(k, static_cast<float>(r.uniform(-pscale, pscale)));
        w[i].set(k, p[i].get(k));
        g[i].set(k, static_cast<float>(r.uniform(-1, 1) * gscale));
        m[i].set(k, static_cast<float>(r.uniform(-0.1, 0.1)));
        v[i].set(k, static_cast<float>(r.uniform(0, 0.01)));
        x[i].set(k, static_cast<float>(v[i].get(k) * r.uniform(0.5, 2)));
      }
      step.push_back(1 + static_cast<double>(r.next() % 20));
      wd.push_back(i % 4 == 1 ? 0.0 : r.uniform(0, 0.2));
      adapt.push_back(i % 5 != 3);
      first.push_back(i % 3 == 2);
    }
  }
  size_t count() const { return sizes.size(); }
  std::vector<unsigned char> state() const {
    std::vector<unsigned char> s;
    for (size_t i = 0; i < count(); ++i) {
      for (const Buf* b : {&p[i], &g[i], &m[i], &v[i], &x[i], &w[i]}) {
        const auto by = b->bytes();
        s.insert(s.end(), by.begin(), by.end());
      }
    }
    return s;
  }
};

template <class T>
std::vector<View> views(const std::vector<T>& bufs) {
  std::vector<View> out;
  for (const auto& b : bufs) out.push_back(b.view());
  return out;
}

std::vector<View> masters_of(const Problem& pr) {
  std::vector<View> out;
  for (size_t i = 0; i < pr.count(); ++i) {
    if (pr.master[i]) out.push_back(pr.w[i].view());
  }
  return out;
}

void append(std::vector<View>* a, const std::vector<View>& b) { a->insert(a->end(), b.begin(), b.end()); }

// ---- AdamW ----------------------------------------------------------------------------------

struct AdamOpts {
  double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, gscale = 1;
  bool amsgrad = false, maximize = false, l2 = false, bias_correction = true;
};

Status run_adamw(Problem& pr, const AdamOpts& o) {
  const int n = static_cast<int>(pr.count());
  std::vector<View> out = views(pr.p);
  append(&out, views(pr.m));
  append(&out, views(pr.v));
  if (o.amsgrad) append(&out, views(pr.x));
  append(&out, masters_of(pr));
  std::vector<int64_t> ints = {n, o.amsgrad, o.maximize, o.l2, o.bias_correction};
  for (int i = 0; i < n; ++i) ints.push_back(pr.master[i]);
  std::vector<double> floats = {o.lr, o.b1, o.b2, o.eps, o.gscale};
  for (int i = 0; i < n; ++i) {
    floats.push_back(pr.step[i]);
    floats.push_back(pr.wd[i]);
  }
  return run("adamw_step", pr.dt[0], views(pr.g), out, ints, floats);
}

// optim.md AdamW, float32 arithmetic (this file is built with -ffp-contract=off).
void ref_adamw(Problem& pr, const AdamOpts& o) {
  for (size_t i = 0; i < pr.count(); ++i) {
    const double t = pr.step[i], wd = pr.wd[i];
    const double bc1 = o.bias_correction ? 1 - std::pow(o.b1, t) : 1, bc2 = o.bias_correction ? 1 - std::pow(o.b2, t) : 1;
    const float step_size = static_cast<float>(o.lr / bc1), bc2s = static_cast<float>(std::sqrt(bc2));
    const float decay = static_cast<float>(1 - o.lr * wd), wdf = static_cast<float>(wd);
    const float b1 = static_cast<float>(o.b1), b2 = static_cast<float>(o.b2);
    const float ob1 = static_cast<float>(1 - o.b1), ob2 = static_cast<float>(1 - o.b2), eps = static_cast<float>(o.eps);
    for (int64_t k = 0; k < pr.sizes[i]; ++k) {
      float p = pr.master[i] ? pr.w[i].get(k) : pr.p[i].get(k);
      float g = pr.g[i].get(k) / static_cast<float>(o.gscale);
      if (o.maximize) g = -g;
      if (o.l2) {
        g = g + wdf * p;
      } else {
        p = p * decay;
      }
      const float m = b1 * pr.m[i].get(k) + ob1 * g;
      const float v = b2 * pr.v[i].get(k) + ob2 * g * g;
      float s = v;
      if (o.amsgrad) {
        s = std::max(pr.x[i].get(k), v);
        pr.x[i].set(k, s);
      }
      const float denom = std::sqrt(s) / bc2s + eps;
      p = p - step_size * m / denom;
      pr.m[i].set(k, m);
      pr.v[i].set(k, v);
      if (pr.master[i]) pr.w[i].set(k, p);
      pr.p[i].set(k, p);
    }
  }
}

void check_same(const std::string& ctx, const Problem& got, const Problem& want) {
  for (size_t i = 0; i < got.count(); ++i) {
    const char* names[] = {"p", "g", "m", "v", "x", "master"};
    const Buf* a[] = {&got.p[i], &got.g[i], &got.m[i], &got.v[i], &got.x[i], &got.w[i]};
    const Buf* b[] = {&want.p[i], &want.g[i], &want.m[i], &want.v[i], &want.x[i], &want.w[i]};
    for (int r = 0; r < 6; ++r) {
      int64_t bad = -1;
      for (int64_t k = 0; k < a[r]->n && bad < 0; ++k) {
        if (std::memcmp(a[r]->at(k), b[r]->at(k), a[r]->esize()) != 0) bad = k;
      }
      KCHECK(bad < 0) << ctx << ": tensor " << i << " (" << kiln::dtype_name(got.dt[i]) << "[" << got.sizes[i] << "]) "
                      << names[r] << "[" << bad << "] = " << (bad >= 0 ? a[r]->get(bad) : 0.0f) << ", want "
                      << (bad >= 0 ? b[r]->get(bad) : 0.0f);
    }
  }
}

const std::vector<int64_t> kSizes = {0, 1, 7, 33, 16384 + 5, 40000};

std::vector<DType> dtypes_for(DType t, size_t n) { return std::vector<DType>(n, t); }
std::vector<bool> masters_for(DType t, bool want, size_t n) {
  std::vector<bool> m(n, false);
  for (size_t i = 0; i < n; ++i) m[i] = want && t != DType::Float32 && i % 2 == 0;
  return m;
}

KTEST(optim, adamw_matches_reference_bit_for_bit) {
  int cases = 0;
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
    for (bool mw : {false, true}) {
      if (t == DType::Float32 && mw) continue;
      for (int mask = 0; mask < 16; ++mask) {
        AdamOpts o;
        o.amsgrad = mask & 1;
        o.maximize = mask & 2;
        o.l2 = mask & 4;
        o.bias_correction = !(mask & 8);
        if (mask == 5) o.gscale = 1024;
        if (mask == 6) o.gscale = 3;
        const std::string ctx = std::string("adamw ") + kiln::dtype_name(t) + (mw ? " master" : "") + " mask " + std::to_string(mask);
        Problem want(kSizes, dtypes_for(t, kSizes.size()), masters_for(t, mw, kSizes.size()), 11 + mask, o.gscale);
        ref_adamw(want, o);
        Problem got(kSizes, dtypes_for(t, kSizes.size()), masters_for(t, mw, kSizes.size()), 11 + mask, o.gscale);
        const Problem init = got;
        same_everywhere(ctx, [&] { got = init; }, [&] { return run_adamw(got, o); }, [&] { return got.state(); });
        check_same(ctx, got, want);
        ++cases;
      }
    }
  }
  KCHECK_EQ(cases, 80);
}

KTEST(optim, adamw_mixed_dtypes_in_one_call) {
  const std::vector<int64_t> sizes = {100, 3000, 17, 20000, 5};
  const std::vector<DType> types = {DType::BFloat16, DType::Float32, DType::Float16, DType::BFloat16, DType::Float32};
  const std::vector<bool> masters = {true, false, false, false, false};
  AdamOpts o;
  o.amsgrad = true;
  Problem want(sizes, types, masters, 5);
  ref_adamw(want, o);
  Problem got(sizes, types, masters, 5);
  KCHECK(run_adamw(got, o).ok());
  check_same("mixed", got, want);
}

// ---- SGD / LARS -----------------------------------------------------------------------------

struct LarsOpts {
  double lr = 0.1, mu = 0.9, damp = 0, eta = 0.001, eps = 1e-8, gscale = 1;
  int style = 1, norm = 0;
  bool nesterov = false, trust_clip = false, maximize = false;
};

Status run_lars(Problem& pr, const LarsOpts& o, bool with_adapt, Buf* ratio = nullptr) {
  const int n = static_cast<int>(pr.count());
  std::vector<View> out = views(pr.p);
  if (o.style != 0) append(&out, views(pr.x));
  append(&out, masters_of(pr));
  if (ratio) out.push_back(ratio->view());
  std::vector<int64_t> ints = {n, o.style, o.nesterov, o.norm, o.trust_clip, o.maximize};
  for (int i = 0; i < n; ++i) ints.push_back(with_adapt && pr.adapt[i]);
  for (int i = 0; i < n; ++i) ints.push_back(pr.first[i]);
  for (int i = 0; i < n; ++i) ints.push_back(pr.master[i]);
  std::vector<double> floats = {o.lr, o.mu, o.damp, o.eta, o.eps, o.gscale};
  for (int i = 0; i < n; ++i) floats.push_back(pr.wd[i]);
  return run("lars_step", pr.dt[0], views(pr.g), out, ints, floats);
}

// optim.md LARS with a = 1 (no adaptation): float32 arithmetic, bit for bit.
void ref_sgd(Problem& pr, const LarsOpts& o) {
  const float lr = static_cast<float>(o.lr), mu = static_cast<float>(o.mu), od = static_cast<float>(1 - o.damp);
  for (size_t i = 0; i < pr.count(); ++i) {
    const float wd = static_cast<float>(pr.wd[i]);
    for (int64_t k = 0; k < pr.sizes[i]; ++k) {
      float p = pr.master[i] ? pr.w[i].get(k) : pr.p[i].get(k);
      float g = pr.g[i].get(k) / static_cast<float>(o.gscale);
      if (o.maximize) g = -g;
      const float d = (g + wd * p) * 1.0f;
      if (o.style == 0) {
        p = p - lr * d;
      } else if (o.style == 1) {
        const float b = pr.first[i] ? d : mu * pr.x[i].get(k) + od * d;
        pr.x[i].set(k, b);
        p = p - lr * (o.nesterov ? d + mu * b : b);
      } else {
        const float b = pr.first[i] ? lr * d : mu * pr.x[i].get(k) + lr * d;
        pr.x[i].set(k, b);
        p = p - (o.nesterov ? mu * b + lr * d : b);
      }
      if (pr.master[i]) pr.w[i].set(k, p);
      pr.p[i].set(k, p);
    }
  }
}

KTEST(optim, sgd_matches_reference_bit_for_bit) {
  int cases = 0;
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
    for (bool mw : {false, true}) {
      if (t == DType::Float32 && mw) continue;
      for (int style = 0; style < 3; ++style) {
        for (int mask = 0; mask < 4; ++mask) {
          LarsOpts o;
          o.style = style;
          o.nesterov = mask & 1;
          o.maximize = mask & 2;
          o.damp = mask == 2 ? 0.25 : 0;
          if (mask == 3) o.gscale = 8;
          const std::string ctx = std::string("sgd ") + kiln::dtype_name(t) + (mw ? " master" : "") + " style " +
                                  std::to_string(style) + " mask " + std::to_string(mask);
          Problem want(kSizes, dtypes_for(t, kSizes.size()), masters_for(t, mw, kSizes.size()), 40 + mask, o.gscale);
          ref_sgd(want, o);
          Problem got(kSizes, dtypes_for(t, kSizes.size()), masters_for(t, mw, kSizes.size()), 40 + mask, o.gscale);
          const Problem init = got;
          same_everywhere(ctx, [&] { got = init; }, [&] { return run_lars(got, o, false); }, [&] { return got.state(); });
          check_same(ctx, got, want);
          ++cases;
        }
      }
    }
  }
  KCHECK_EQ(cases, 60);
}

// Float64 reference of one LARS step (optim.md), returning the new p and buf and a per tensor.
struct Ref64 {
  std::vector<std::vector<double>> p, m, v, x;
  std::vector<double> ratio;
};

// max |got - want| / (|want| + floor), floor = 1% of max |want| (the rounding
// errors of float32 arithmetic scale with the terms, not with a result near 0).
double max_rel(const Buf& got, const std::vector<double>& want) {
  double big = 1e-30;
  for (double w : want) big = std::max(big, std::fabs(w));
  double worst = 0;
  for (int64_t k = 0; k < got.n; ++k) {
    const double e = std::fabs(got.get(k) - want[k]) / (std::fabs(want[k]) + 0.01 * big);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

Ref64 ref_lars64(const Problem& pr, const LarsOpts& o) {
  Ref64 r;
  for (size_t i = 0; i < pr.count(); ++i) {
    const int64_t n = pr.sizes[i];
    const double wd = static_cast<float>(pr.wd[i]);  // the kernel's d uses wd rounded to float32
    std::vector<double> p(n), g(n), b(n);
    double wn = 0, gn = 0;
    for (int64_t k = 0; k < n; ++k) {
      p[k] = pr.master[i] ? pr.w[i].get(k) : pr.p[i].get(k);
      g[k] = pr.g[i].get(k) / o.gscale * (o.maximize ? -1 : 1);
      b[k] = pr.x[i].get(k);
      wn += p[k] * p[k];
      const double c = o.norm == 1 ? g[k] + wd * p[k] : g[k];
      gn += c * c;
    }
    wn = std::sqrt(wn);
    gn = std::sqrt(gn);
    double a = 1;
    if (pr.adapt[i] && wn > 0 && gn > 0) {
      a = o.norm == 1 ? o.eta * wn / (gn + o.eps) : o.eta * wn / (gn + pr.wd[i] * wn + o.eps);
      if (o.trust_clip) a = std::min(a / o.lr, 1.0);
    }
    for (int64_t k = 0; k < n; ++k) {
      const double d = (g[k] + wd * p[k]) * a;
      if (o.style == 1) {
        b[k] = pr.first[i] ? d : o.mu * b[k] + (1 - o.damp) * d;
        p[k] -= o.lr * (o.nesterov ? d + o.mu * b[k] : b[k]);
      } else if (o.style == 2) {
        b[k] = pr.first[i] ? o.lr * d : o.mu * b[k] + o.lr * d;
        p[k] -= o.nesterov ? o.mu * b[k] + o.lr * d : b[k];
      } else {
        p[k] -= o.lr * d;
      }
    }
    r.p.push_back(p);
    r.x.push_back(b);
    r.ratio.push_back(a);
  }
  return r;
}

KTEST(optim, lars_matches_float64_reference) {
  for (DType t : {DType::Float32, DType::BFloat16}) {
    for (int variant = 0; variant < 6; ++variant) {
      LarsOpts o;
      o.style = variant % 3;
      o.norm = variant / 3;
      o.trust_clip = variant == 4;
      o.nesterov = variant == 1;
      o.eta = variant == 4 ? 0.02 : 0.001;
      const bool mw = t != DType::Float32;
      const std::string ctx = std::string("lars ") + kiln::dtype_name(t) + " variant " + std::to_string(variant);
      Problem got(kSizes, dtypes_for(t, kSizes.size()), masters_for(t, mw, kSizes.size()), 70 + variant);
      const Problem init = got;
      const Ref64 want = ref_lars64(init, o);
      Buf ratio(DType::Float32, static_cast<int64_t>(kSizes.size()));
      same_everywhere(ctx, [&] { got = init; }, [&] { return run_lars(got, o, true, &ratio); },
                      [&] {
                        auto s = got.state();
                        auto r = ratio.bytes();
                        s.insert(s.end(), r.begin(), r.end());
                        return s;
                      });
      for (size_t i = 0; i < got.count(); ++i) {
        const Buf& pg = got.master[i] ? got.w[i] : got.p[i];
        const double tol = got.master[i] || t == DType::Float32 ? 1e-5 : 8e-3;  // a 16-bit p rounds once
        KCHECK(max_rel(pg, want.p[i]) < tol) << ctx << " tensor " << i << " p rel err " << max_rel(pg, want.p[i]);
        if (o.style != 0) KCHECK(max_rel(got.x[i], want.x[i]) < 1e-4) << ctx << " tensor " << i << " buf";
        KCHECK(std::fabs(ratio.get(static_cast<int64_t>(i)) - want.ratio[i]) <= 1e-5 * want.ratio[i])
            << ctx << " tensor " << i << " ratio " << ratio.get(static_cast<int64_t>(i)) << " want " << want.ratio[i];
      }
    }
  }
}

// ---- LAMB -----------------------------------------------------------------------------------

struct LambOpts {
  double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-6, gdiv = 1, lo = 0, hi = HUGE_VAL;
  int decay = 0;
  bool bias_correction = true, grad_averaging = true, trust_clip = false;
};

Status run_lamb(Problem& pr, const LambOpts& o, Buf* ratio = nullptr) {
  const int n = static_cast<int>(pr.count());
  std::vector<View> out = views(pr.p);
  append(&out, views(pr.m));
  append(&out, views(pr.v));
  append(&out, masters_of(pr));
  if (ratio) out.push_back(ratio->view());
  std::vector<int64_t> ints = {n, o.decay, o.bias_correction, o.grad_averaging, o.trust_clip};
  for (int i = 0; i < n; ++i) ints.push_back(pr.adapt[i]);
  for (int i = 0; i < n; ++i) ints.push_back(pr.master[i]);
  std::vector<double> floats = {o.lr, o.b1, o.b2, o.eps, o.gdiv, o.lo, o.hi};
  for (int i = 0; i < n; ++i) {
    floats.push_back(pr.step[i]);
    floats.push_back(pr.wd[i]);
  }
  return run("lamb_step", pr.dt[0], views(pr.g), out, ints, floats);
}

Ref64 ref_lamb64(const Problem& pr, const LambOpts& o) {
  Ref64 r;
  for (size_t i = 0; i < pr.count(); ++i) {
    const int64_t n = pr.sizes[i];
    const double t = pr.step[i], wd = static_cast<float>(pr.wd[i]);
    const double bc1 = o.bias_correction ? 1 - std::pow(o.b1, t) : 1, bc2 = o.bias_correction ? 1 - std::pow(o.b2, t) : 1;
    std::vector<double> p(n), m(n), v(n), u(n);
    double wn = 0, un = 0;
    for (int64_t k = 0; k < n; ++k) {
      p[k] = pr.master[i] ? pr.w[i].get(k) : pr.p[i].get(k);
      double g = pr.g[i].get(k) / o.gdiv;
      if (o.decay == 1) g += wd * p[k];
      m[k] = o.b1 * pr.m[i].get(k) + (o.grad_averaging ? 1 - o.b1 : 1) * g;
      v[k] = o.b2 * pr.v[i].get(k) + (1 - o.b2) * g * g;
      u[k] = (m[k] / bc1) / (std::sqrt(v[k] / bc2) + o.eps);
      if (o.decay == 0) u[k] += wd * p[k];
      wn += p[k] * p[k];
      un += u[k] * u[k];
    }
    wn = std::sqrt(wn);
    un = std::sqrt(un);
    double ratio = 1;
    if (pr.adapt[i] && wn > 0 && un > 0) {
      ratio = wn / un;
      if (o.trust_clip) ratio = std::min(ratio, 1.0);
      ratio = std::min(std::max(ratio, o.lo), o.hi);
    }
    for (int64_t k = 0; k < n; ++k) {
      if (o.decay == 2) p[k] *= 1 - o.lr * pr.wd[i];
      p[k] -= o.lr * ratio * u[k];
    }
    r.p.push_back(p);
    r.m.push_back(m);
    r.v.push_back(v);
    r.ratio.push_back(ratio);
  }
  return r;
}

KTEST(optim, lamb_matches_float64_reference) {
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
    for (int variant = 0; variant < 7; ++variant) {
      LambOpts o;
      o.decay = variant % 3;
      o.trust_clip = variant == 3;
      o.grad_averaging = variant != 4;
      o.bias_correction = variant != 5;
      if (variant == 6) {
        o.lo = 0.5;
        o.hi = 2;
        o.gdiv = 2.5;
      }
      const bool mw = t != DType::Float32;
      const std::string ctx = std::string("lamb ") + kiln::dtype_name(t) + " variant " + std::to_string(variant);
      Problem got(kSizes, dtypes_for(t, kSizes.size()), masters_for(t, mw, kSizes.size()), 90 + variant);
      const Problem init = got;
      const Ref64 want = ref_lamb64(init, o);
      Buf ratio(DType::Float32, static_cast<int64_t>(kSizes.size()));
      same_everywhere(ctx, [&] { got = init; }, [&] { return run_lamb(got, o, &ratio); },
                      [&] {
                        auto s = got.state();
                        auto r = ratio.bytes();
                        s.insert(s.end(), r.begin(), r.end());
                        return s;
                      });
      for (size_t i = 0; i < got.count(); ++i) {
        const Buf& pg = got.master[i] ? got.w[i] : got.p[i];
        const double tol = got.master[i] || t == DType::Float32 ? 1e-5 : 8e-3;  // a 16-bit p rounds once
        KCHECK(max_rel(pg, want.p[i]) < tol) << ctx << " tensor " << i << " p rel err " << max_rel(pg, want.p[i]);
        KCHECK(max_rel(got.m[i], want.m[i]) < 1e-5) << ctx << " tensor " << i << " m";
        KCHECK(max_rel(got.v[i], want.v[i]) < 1e-5) << ctx << " tensor " << i << " v";
        KCHECK(std::fabs(ratio.get(static_cast<int64_t>(i)) - want.ratio[i]) <= 1e-5 * want.ratio[i])
            << ctx << " tensor " << i << " ratio " << ratio.get(static_cast<int64_t>(i)) << " want " << want.ratio[i];
      }
    }
  }
}

// ---- gradient sums of squares -------------------------------------------------------------------

KTEST(optim, grad_sumsq_and_nonfinite_flags) {
  const std::vector<int64_t> sizes = {0, 1, 7, 16384 * 3 + 1, 1000, 500};
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
    Problem pr(sizes, dtypes_for(t, sizes.size()), std::vector<bool>(sizes.size(), false), 3, 4.0);
    pr.g[4].set(999, HUGE_VALF);
    pr.g[5].set(0, std::numeric_limits<float>::quiet_NaN());
    Buf out(DType::Float32, static_cast<int64_t>(2 * sizes.size()));
    const double gs = 4.0;
    std::vector<View> outs = {out.view({2, static_cast<int64_t>(sizes.size())})};
    same_everywhere(std::string("sumsq ") + kiln::dtype_name(t), [] {},
                    [&] { return run("optim_grad_sumsq", t, views(pr.g), outs, {}, {gs}); }, [&] { return out.bytes(); });
    for (size_t i = 0; i < sizes.size(); ++i) {
      double want = 0;
      for (int64_t k = 0; k < sizes[i]; ++k) want += static_cast<double>(pr.g[i].get(k) / gs) * (pr.g[i].get(k) / gs);
      const int64_t n = static_cast<int64_t>(sizes.size());
      if (i < 4) {
        KCHECK(std::fabs(out.get(static_cast<int64_t>(i)) - want) <= 1e-5 * want) << kiln::dtype_name(t) << " tensor " << i;
        KCHECK_EQ(out.get(n + static_cast<int64_t>(i)), 0.0f);
      } else {
        KCHECK_EQ(out.get(n + static_cast<int64_t>(i)), 1.0f);
      }
    }
  }
}

// ---- errors ----------------------------------------------------------------------------------

KTEST(optim, error_statuses) {
  Problem pr({10, 20}, {DType::Float32, DType::Float32}, {false, false}, 1);
  AdamOpts o;
  KCHECK(run_adamw(pr, o).ok());
  auto code = [](const Status& s) { return s.code(); };
  // bad hyperparameters
  AdamOpts bad = o;
  bad.lr = -1;
  Status st = run_adamw(pr, bad);
  KCHECK(code(st) == StatusCode::ValueError) << st.message();
  KCHECK(st.message().find("lr") != std::string::npos) << st.message();
  bad = o;
  bad.b2 = 1;
  KCHECK(code(run_adamw(pr, bad)) == StatusCode::ValueError);
  bad = o;
  bad.gscale = 0;
  KCHECK(code(run_adamw(pr, bad)) == StatusCode::ValueError);
  // a step count < 1
  Problem zero_step = pr;
  zero_step.step[1] = 0;
  KCHECK(code(run_adamw(zero_step, o)) == StatusCode::ValueError);
  // state of another shape
  {
    std::vector<View> out = {pr.p[0].view(), pr.p[1].view(), pr.m[0].view(), pr.m[1].view({4, 5}), pr.v[0].view(), pr.v[1].view()};
    st = run("adamw_step", DType::Float32, views(pr.g), out, {2, 0, 0, 0, 1, 0, 0}, {1e-3, 0.9, 0.999, 1e-8, 1, 1, 0, 1, 0});
    KCHECK(code(st) == StatusCode::ShapeError) << st.message();
    KCHECK(st.message().find("exp_avg 1") != std::string::npos) << st.message();
  }
  // state dtype
  {
    Buf m16(DType::BFloat16, 20);
    std::vector<View> out = {pr.p[0].view(), pr.p[1].view(), pr.m[0].view(), m16.view(), pr.v[0].view(), pr.v[1].view()};
    st = run("adamw_step", DType::Float32, views(pr.g), out, {2, 0, 0, 0, 1, 0, 0}, {1e-3, 0.9, 0.999, 1e-8, 1, 1, 0, 1, 0});
    KCHECK(code(st) == StatusCode::DTypeError) << st.message();
  }
  // master weights for a float32 parameter
  {
    std::vector<View> out = {pr.p[0].view(), pr.p[1].view(), pr.m[0].view(), pr.m[1].view(), pr.v[0].view(), pr.v[1].view(), pr.w[0].view()};
    st = run("adamw_step", DType::Float32, views(pr.g), out, {2, 0, 0, 0, 1, 1, 0}, {1e-3, 0.9, 0.999, 1e-8, 1, 1, 0, 1, 0});
    KCHECK(code(st) == StatusCode::DTypeError) << st.message();
  }
  // a non-contiguous parameter
  {
    Buf big(DType::Float32, 40);
    View strided = big.view({20});
    strided.strides[0] = 2;
    std::vector<View> out = {pr.p[0].view(), strided, pr.m[0].view(), pr.m[1].view(), pr.v[0].view(), pr.v[1].view()};
    st = run("adamw_step", DType::Float32, views(pr.g), out, {2, 0, 0, 0, 1, 0, 0}, {1e-3, 0.9, 0.999, 1e-8, 1, 1, 0, 1, 0});
    KCHECK(code(st) == StatusCode::ShapeError) << st.message();
  }
  // wrong counts
  st = run("adamw_step", DType::Float32, views(pr.g), views(pr.p), {2, 0, 0, 0, 1, 0, 0}, {1e-3, 0.9, 0.999, 1e-8, 1, 1, 0, 1, 0});
  KCHECK(code(st) == StatusCode::Internal) << st.message();
  st = run("lamb_step", DType::Float32, views(pr.g), views(pr.p), {2}, {});
  KCHECK(code(st) == StatusCode::Internal) << st.message();
  // LARS dampening outside [0, 1]
  LarsOpts lo;
  lo.damp = 2;
  KCHECK(code(run_lars(pr, lo, false)) == StatusCode::ValueError);
  // LAMB min > max
  LambOpts la;
  la.lo = 3;
  la.hi = 2;
  KCHECK(code(run_lamb(pr, la)) == StatusCode::ValueError);
  // an int8 parameter has no kernel
  Buf i8(DType::Int8, 10);
  st = run("adamw_step", DType::Int8, {i8.view()}, {i8.view(), pr.m[0].view(), pr.v[0].view()}, {1, 0, 0, 0, 1, 0}, {1e-3, 0.9, 0.999, 1e-8, 1, 1, 0});
  KCHECK(code(st) == StatusCode::NoKernel) << st.message();
}

}  // namespace
