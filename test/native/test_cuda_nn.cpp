// Suite 'cuda_nn': the CUDA kernels 'rms_norm', 'layer_norm' (+ backward),
// 'rope', 'attention' and 'attention_backward' (cuda/norm.cu, cuda/rope.cu,
// cuda/attention*.cu*) against the CPU kernels (the reference backend) and
// float64 references written here, through kiln::run_kernel, on the same
// random operands: each operand's whole host storage (guard bytes and the
// gaps of strided views included) is copied to cuda:0 and viewed with the same
// layout; outputs come back as whole storages, so writes outside the viewed
// elements are caught. Random layouts: contiguous, permuted, padded with an
// offset and a non-unit last stride, broadcast (stride 0) inputs.
//
// Errors are in units of u * s: u the unit roundoff of the output dtype
// (2^-24, 2^-11, 2^-8; 2^-24 for the float32 statistics / lse / gw) and s a
// magnitude bounding the rounding errors of the computation (as in the CPU
// suites test_norm.cpp, test_rope.cpp, test_attention.cpp). Tolerances of the
// CUDA kernels, where they differ from the CPU's:
//   norms: row sums in float32 (CPU float64): rstd / mean 8 (CPU 1.01),
//     y 8 | 1.02 (float32 | 16-bit; CPU 6 | 1.01), gx 16 | 1.1 (CPU 12 | 1.05),
//     gw / gb 16 (CPU 8: float32 sums over runs of rows, float64 across runs);
//   rope: the CPU's (4 | 1.01): the same float64 angles, CUDA's sincos;
//   attention, float32 and 16-bit head dims > 128 (SIMT kernels, the CPU's
//     arithmetic): the CPU's tolerances (o 8 | 1.1, lse 8, gradients 16 | 3);
//   attention, 16-bit head dims <= 128 (tensor cores): P is rounded to the
//     dtype for P V (o 2.5 instead of 1.1), scores are tensor-core float32
//     sums (lse 32 instead of 8), gradients 6 instead of 3 (dS and P rounded
//     to the dtype for the tensor cores).
// Bit-level agreement with the CPU where the arithmetic is the same: rope
// (all but a rare last-bit difference of CUDA's sincos), attention float32
// forward at the CPU's AVX-512 level and float32 backward at the FMA levels
// (given the same o and lse), the backward prep (delta) everywhere.
// Also: determinism (two runs, same bits), empty tensors, NaN propagation,
// grouped-query heads equal repeated heads, error statuses equal to the CPU's.
//
// Without a usable GPU (or built without CUDA) every test skips. The file
// uses only kiln's backend-neutral headers, so it compiles either way.
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "device_testing.h"
#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cpu_features.h"
#include "kiln/cuda.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/storage.h"
#include "attention_reference.h"
#include "nn_testing.h"
#include "norm_reference.h"
#include "rope_reference.h"

namespace {

using namespace kiln;
using dvt::Buffer;
using dvt::kCpu;
using dvt::kGpu;
using dvt::require_cuda;
using nnt::clone;
using nnt::Layout;
using nnt::Rng;
using nnt::Tensor;
using vd = std::vector<double>;

const DType kDtypes[] = {DType::Float32, DType::Float16, DType::BFloat16};
const double kNegInf = -std::numeric_limits<double>::infinity();

bool fma_isa() { return cpu::active_isa() != cpu::IsaLevel::Portable; }
bool avx512_isa() { return cpu::active_isa() == cpu::IsaLevel::Avx512; }

// ---- device copies of test tensors -----------------------------------------------------------------

// t's whole storage on cuda:0, viewed with t's layout.
struct Dev {
  explicit Dev(const Tensor& t) : host(clone(t)), buf(kGpu, t.mem.size()) {
    status = buf.status();
    if (status.ok()) status = storage_copy(kGpu, buf.ptr(), kCpu, t.mem.data(), t.mem.size());
    v = t.v;
    v.base = buf.ptr();
    v.storage_bytes = buf.bytes();
    v.device = kGpu;
  }
  // The storage as it is now on the device, as a host tensor of the same layout.
  Tensor back() const {
    Tensor r = clone(host);
    const Status s = storage_copy(kCpu, r.mem.data(), kGpu, buf.ptr(), r.mem.size());
    KCHECK(s.ok()) << s.message();
    return r;
  }
  Tensor host;
  Buffer buf;
  View v;
  Status status;
};

// Runs op on cuda:0 over device copies of the host tensors `ins` and `outs`;
// *results gets the outputs' storages afterwards.
Status run_gpu(const char* op, DType key, const std::vector<const Tensor*>& ins, const std::vector<const Tensor*>& outs,
               const std::vector<int64_t>& ints, const std::vector<double>& floats, std::vector<Tensor>* results) {
  std::vector<std::unique_ptr<Dev>> din, dout;
  std::vector<View> vin, vout;
  for (const Tensor* t : ins) {
    din.emplace_back(new Dev(*t));
    KILN_RETURN_IF_ERROR(din.back()->status);
    vin.push_back(din.back()->v);
  }
  for (const Tensor* t : outs) {
    dout.emplace_back(new Dev(*t));
    KILN_RETURN_IF_ERROR(dout.back()->status);
    vout.push_back(dout.back()->v);
  }
  const Status st = kt::run(op, key, vin, vout, ints, floats);
  results->clear();
  for (const auto& d : dout) results->push_back(d->back());
  return st;
}

Status run_cpu(const char* op, DType key, const std::vector<const Tensor*>& ins, const std::vector<Tensor*>& outs,
               const std::vector<int64_t>& ints, const std::vector<double>& floats) {
  std::vector<View> vin, vout;
  for (const Tensor* t : ins) vin.push_back(t->v);
  for (Tensor* t : outs) vout.push_back(t->v);
  return kt::run(op, key, vin, vout, ints, floats);
}

// Worst error of got against want in units of u * (scale + sub); NaN matches NaN.
nnt::ErrStat errors(const Tensor& got, const vd& want, const vd& scale, double u, double sub) {
  nnt::ErrStat e;
  for (int64_t i = 0; i < got.numel(); ++i) e.add(got.get(i), want[static_cast<size_t>(i)], u * (scale[static_cast<size_t>(i)] + sub), i);
  return e;
}

// Elements of a and b (same layout) whose bits differ (NaNs of any payload are equal).
int64_t bit_diffs(const Tensor& a, const Tensor& b, int64_t* first = nullptr) {
  int64_t n = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const int64_t e = a.elem(i);
    if (std::memcmp(a.mem.data() + e * a.es, b.mem.data() + e * b.es, a.es) == 0) continue;
    if (std::isnan(a.get(i)) && std::isnan(b.get(i))) continue;
    if (n++ == 0 && first) *first = i;
  }
  return n;
}

// The same status code (and the op named in the message) on the CPU and on cuda:0.
void same_status(const std::string& what, const char* op, DType key, const std::vector<const Tensor*>& ins,
                 const std::vector<const Tensor*>& outs, const std::vector<int64_t>& ints,
                 const std::vector<double>& floats) {
  std::vector<Tensor> cpu_outs;
  for (const Tensor* t : outs) cpu_outs.push_back(clone(*t));
  std::vector<Tensor*> po;
  for (Tensor& t : cpu_outs) po.push_back(&t);
  const Status sc = run_cpu(op, key, ins, po, ints, floats);
  std::vector<Tensor> res;
  const Status sg = run_gpu(op, key, ins, outs, ints, floats, &res);
  KCHECK(sc.code() == sg.code()) << what << ": cpu " << status_code_name(sc.code()) << " (" << sc.message() << ") vs cuda "
                                 << status_code_name(sg.code()) << " (" << sg.message() << ")";
  if (!sg.ok()) KCHECK(sg.message().find(op) != std::string::npos) << what << ": " << sg.message();
}

// =====================================================================================================
// Normalization
// =====================================================================================================

namespace norm {

using Ref = normref::NormRef;
using normref::ref_backward;
using normref::ref_forward;

struct Case {
  bool layer;
  DType dt;
  int64_t R, D;
  double eps;
  Tensor x, w, b, gy, y, mean, rstd, gx, gw, gb;
  std::string name() const {
    return std::string(layer ? "layer_norm" : "rms_norm") + " " + x.describe() + " w " + w.lay + " gy " + gy.lay +
           " eps " + std::to_string(eps);
  }
  const char* fwd_op() const { return layer ? "layer_norm" : "rms_norm"; }
  const char* bwd_op() const { return layer ? "layer_norm_backward" : "rms_norm_backward"; }
  std::vector<const Tensor*> fwd_in() const {
    return layer ? std::vector<const Tensor*>{&x, &w, &b} : std::vector<const Tensor*>{&x, &w};
  }
  std::vector<const Tensor*> fwd_out() const {
    return layer ? std::vector<const Tensor*>{&y, &mean, &rstd} : std::vector<const Tensor*>{&y, &rstd};
  }
  // The backward reads mean / rstd from `stats` (the forward's outputs).
  std::vector<const Tensor*> bwd_in(const Tensor& m, const Tensor& r) const {
    return layer ? std::vector<const Tensor*>{&x, &w, &m, &r, &gy} : std::vector<const Tensor*>{&x, &w, &r, &gy};
  }
  std::vector<const Tensor*> bwd_out() const {
    return layer ? std::vector<const Tensor*>{&gx, &gw, &gb} : std::vector<const Tensor*>{&gx, &gw};
  }
};

Layout rand_out(Rng& rng) { return static_cast<Layout>(rng.below(3)); }

Case make_case(bool layer, DType dt, int64_t R, int64_t D, Rng& rng, bool allow_broadcast = true, bool contig = false) {
  Case c{layer, dt, R, D, rng.below(2) ? 1e-5 : 0.1, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  auto in_layout = [&](bool bc) { return contig ? Layout::Contig : nnt::random_layout(rng, bc && allow_broadcast); };
  c.x = nnt::make(dt, {R, D}, in_layout(true), rng);
  c.w = nnt::make(dt, {D}, in_layout(false), rng);
  c.b = nnt::make(dt, {D}, in_layout(false), rng);
  c.gy = nnt::make(dt, {R, D}, in_layout(true), rng);
  const double off = rng.uniform(-2, 2);
  c.x.randomize(rng, off - 1.5, off + 1.5);
  c.w.randomize(rng, 0.5, 1.5);
  c.b.randomize(rng, -0.5, 0.5);
  c.gy.randomize(rng, -1, 1);
  auto out_layout = [&]() { return contig ? Layout::Contig : rand_out(rng); };
  c.y = nnt::make(dt, {R, D}, out_layout(), rng);
  c.mean = nnt::make(DType::Float32, {R}, out_layout(), rng);
  c.rstd = nnt::make(DType::Float32, {R}, out_layout(), rng);
  c.gx = nnt::make(dt, {R, D}, out_layout(), rng);
  c.gw = nnt::make(DType::Float32, {D}, out_layout(), rng);
  c.gb = nnt::make(DType::Float32, {D}, out_layout(), rng);
  return c;
}

struct Observed {
  double y[2][3] = {}, stat[2][3] = {}, gx[2][3] = {}, gw[2][3] = {};
  int64_t y_bits[2][3] = {}, y_elems[2][3] = {};
};
Observed g_obs;

// Forward and backward on the GPU (backward from the GPU's own mean / rstd)
// against the float64 reference; also the CPU on the same operands.
void check_case(Case& c) {
  const int li = c.layer ? 1 : 0, di = nnt::dt_index(c.dt);
  const double u = nnt::unit_roundoff(c.dt), u32 = 0x1.0p-24, sub = nnt::subnormal_floor(c.dt);
  const vd x = c.x.values(), w = c.w.values(), b = c.b.values(), gy = c.gy.values();
  Ref ref;
  ref_forward(c.layer, c.R, c.D, x, w, b, c.eps, &ref);
  ref_backward(c.layer, c.R, c.D, x, w, gy, c.eps, &ref);

  std::vector<Tensor> f;
  const Status st = run_gpu(c.fwd_op(), c.dt, c.fwd_in(), c.fwd_out(), {}, {c.eps}, &f);
  KCHECK(st.ok()) << c.name() << ": " << st.message();
  if (!st.ok()) return;
  const Tensor& y = f[0];
  const Tensor& rstd = f[c.layer ? 2 : 1];
  const double y_tol = c.dt == DType::Float32 ? 8.0 : 1.02;
  const nnt::ErrStat ey = errors(y, ref.y, ref.y_scale, u, sub);
  KCHECK(ey.max_err <= y_tol) << c.name() << ": y error " << ey.max_err << " units at " << ey.where;
  nnt::ErrStat es;
  for (int64_t i = 0; i < c.R; ++i) {
    const double rs = ref.rstd[static_cast<size_t>(i)];
    es.add(rstd.get(i), rs, u32 * std::fabs(rs), i);
    if (c.layer) {
      const double mu = ref.mean[static_cast<size_t>(i)];
      es.add(f[1].get(i), mu, u32 * (std::fabs(mu) + 1e-3 / rs), i);
    }
  }
  KCHECK(es.max_err <= 8.0) << c.name() << ": rstd/mean error " << es.max_err << " units at row " << es.where;
  for (const Tensor& t : f) KCHECK(t.guards_intact()) << c.name() << ": forward wrote outside " << t.describe();
  g_obs.y[li][di] = std::max(g_obs.y[li][di], ey.max_err);
  g_obs.stat[li][di] = std::max(g_obs.stat[li][di], es.max_err);

  // The CPU on the same operands: 16-bit y nearly always the same bits.
  Case cc = c;
  cc.y = clone(c.y);
  cc.mean = clone(c.mean);
  cc.rstd = clone(c.rstd);
  std::vector<Tensor*> cpu_out = c.layer ? std::vector<Tensor*>{&cc.y, &cc.mean, &cc.rstd} : std::vector<Tensor*>{&cc.y, &cc.rstd};
  KCHECK(run_cpu(c.fwd_op(), c.dt, c.fwd_in(), cpu_out, {}, {c.eps}).ok());
  g_obs.y_bits[li][di] += bit_diffs(y, cc.y);
  g_obs.y_elems[li][di] += y.numel();

  std::vector<Tensor> g;
  const Tensor& mean_t = c.layer ? f[1] : c.mean;
  const Status sb = run_gpu(c.bwd_op(), c.dt, c.bwd_in(mean_t, rstd), c.bwd_out(), {}, {}, &g);
  KCHECK(sb.ok()) << c.name() << ": " << sb.message();
  if (!sb.ok()) return;
  const double gx_tol = c.dt == DType::Float32 ? 16.0 : 1.1;
  const nnt::ErrStat egx = errors(g[0], ref.gx, ref.gx_scale, u, sub);
  KCHECK(egx.max_err <= gx_tol) << c.name() << ": gx error " << egx.max_err << " units at " << egx.where;
  nnt::ErrStat egw = errors(g[1], ref.gw, ref.gw_scale, u32, 0);
  if (c.layer) {
    const nnt::ErrStat egb = errors(g[2], ref.gb, ref.gb_scale, u32, 0);
    if (egb.max_err > egw.max_err) egw = egb;
  }
  KCHECK(egw.max_err <= 16.0) << c.name() << ": gw/gb error " << egw.max_err << " units at " << egw.where;
  for (const Tensor& t : g) KCHECK(t.guards_intact()) << c.name() << ": backward wrote outside " << t.describe();
  g_obs.gx[li][di] = std::max(g_obs.gx[li][di], egx.max_err);
  g_obs.gw[li][di] = std::max(g_obs.gw[li][di], egw.max_err);
}

// Row lengths for every row-group shape: a warp (D <= 512), 64 .. 512 threads
// (D <= 8192) with 1, 2 or 4 chunks per thread, and streamed rows (D > 8192).
const int64_t kShapes[][2] = {{1, 1},     {1, 8},    {3, 7},    {2, 1},     {5, 64},   {17, 33},   {40, 100},
                              {3, 1000},  {300, 24}, {7, 512},  {5, 513},   {9, 2048}, {4, 4096},  {3, 4100},
                              {2, 8192},  {2, 9000}, {33, 513}, {9000, 5},  {70, 256}, {130, 768}};

}  // namespace norm

KTEST(cuda_nn, norm_match_reference) {
  require_cuda();
  Rng rng(101);
  for (int layer = 0; layer < 2; ++layer) {
    for (DType dt : kDtypes) {
      for (const auto& s : norm::kShapes) {
        norm::Case c = norm::make_case(layer == 1, dt, s[0], s[1], rng, true, rng.below(3) == 0);
        norm::check_case(c);
        if (kt::failures_in_test() > 0) return;
      }
    }
  }
  const norm::Observed& o = norm::g_obs;
  std::printf("    observed max error, units of u(dtype) * magnitude [f32 f16 bf16]:\n");
  for (int l = 0; l < 2; ++l) {
    std::printf("      %-10s y %.2f %.2f %.2f | rstd/mean %.2f %.2f %.2f | gx %.2f %.2f %.2f | gw/gb (u32) %.2f %.2f %.2f\n",
                l ? "layer_norm" : "rms_norm", o.y[l][0], o.y[l][1], o.y[l][2], o.stat[l][0], o.stat[l][1],
                o.stat[l][2], o.gx[l][0], o.gx[l][1], o.gx[l][2], o.gw[l][0], o.gw[l][1], o.gw[l][2]);
    std::printf("      %-10s y elements differing from the CPU's bits: %lld/%lld %lld/%lld %lld/%lld\n",
                l ? "layer_norm" : "rms_norm", static_cast<long long>(o.y_bits[l][0]),
                static_cast<long long>(o.y_elems[l][0]), static_cast<long long>(o.y_bits[l][1]),
                static_cast<long long>(o.y_elems[l][1]), static_cast<long long>(o.y_bits[l][2]),
                static_cast<long long>(o.y_elems[l][2]));
  }
}

KTEST(cuda_nn, norm_deterministic) {
  require_cuda();
  const int64_t shapes[][2] = {{300, 70}, {9000, 5}, {33, 513}, {64, 4096}, {3, 20000}};
  for (int layer = 0; layer < 2; ++layer) {
    for (DType dt : {DType::Float32, DType::BFloat16}) {
      for (const auto& s : shapes) {
        Rng rng(102 + static_cast<uint64_t>(s[0]));
        norm::Case c = norm::make_case(layer == 1, dt, s[0], s[1], rng, false);
        std::vector<Tensor> f1, f2, g1, g2;
        KCHECK(run_gpu(c.fwd_op(), dt, c.fwd_in(), c.fwd_out(), {}, {c.eps}, &f1).ok());
        KCHECK(run_gpu(c.fwd_op(), dt, c.fwd_in(), c.fwd_out(), {}, {c.eps}, &f2).ok());
        KCHECK(run_gpu(c.bwd_op(), dt, c.bwd_in(c.layer ? f1[1] : c.mean, f1[c.layer ? 2 : 1]), c.bwd_out(), {}, {}, &g1).ok());
        KCHECK(run_gpu(c.bwd_op(), dt, c.bwd_in(c.layer ? f1[1] : c.mean, f1[c.layer ? 2 : 1]), c.bwd_out(), {}, {}, &g2).ok());
        if (f1.size() != f2.size() || g1.size() != g2.size()) return;
        for (size_t i = 0; i < f1.size(); ++i) KCHECK(f1[i].mem == f2[i].mem) << c.name() << ": forward output " << i << " differs between runs";
        for (size_t i = 0; i < g1.size(); ++i) KCHECK(g1[i].mem == g2[i].mem) << c.name() << ": backward output " << i << " differs between runs";
      }
    }
  }
}

KTEST(cuda_nn, norm_empty) {
  require_cuda();
  Rng rng(103);
  for (int layer = 0; layer < 2; ++layer) {
    // R == 0: nothing forward; gw / gb are sums over no rows: zeros.
    norm::Case c = norm::make_case(layer == 1, DType::Float32, 0, 6, rng);
    std::vector<Tensor> f, g;
    KCHECK(run_gpu(c.fwd_op(), c.dt, c.fwd_in(), c.fwd_out(), {}, {c.eps}, &f).ok());
    for (const Tensor& t : f) KCHECK(t.guards_intact());
    KCHECK(run_gpu(c.bwd_op(), c.dt, c.bwd_in(c.mean, c.rstd), c.bwd_out(), {}, {}, &g).ok());
    if (g.size() >= 2) {
      for (int64_t j = 0; j < 6; ++j) {
        KCHECK_EQ(g[1].get(j), 0.0);
        if (layer) KCHECK_EQ(g[2].get(j), 0.0);
      }
      KCHECK(g[0].guards_intact() && g[1].guards_intact());
    }
    // D == 0: mean 0, rstd 1/sqrt(eps).
    norm::Case e = norm::make_case(layer == 1, DType::BFloat16, 3, 0, rng);
    e.eps = 0.25;
    KCHECK(run_gpu(e.fwd_op(), e.dt, e.fwd_in(), e.fwd_out(), {}, {e.eps}, &f).ok());
    if (f.size() >= 2) {
      for (int64_t i = 0; i < 3; ++i) {
        KCHECK_EQ(f[layer ? 2 : 1].get(i), 2.0);
        if (layer) KCHECK_EQ(f[1].get(i), 0.0);
      }
    }
    KCHECK(run_gpu(e.bwd_op(), e.dt, e.bwd_in(e.mean, e.rstd), e.bwd_out(), {}, {}, &g).ok());
    if (!g.empty()) KCHECK(g[0].guards_intact());
  }
}

KTEST(cuda_nn, norm_error_statuses) {
  require_cuda();
  Rng rng(104);
  auto T = [&](DType dt, std::vector<int64_t> shape) { return nnt::make(dt, shape, Layout::Contig, rng); };
  const DType F = DType::Float32, H = DType::Float16;
  Tensor x = T(F, {4, 8}), w = T(F, {8}), b = T(F, {8}), y = T(F, {4, 8}), r = T(F, {4}), m = T(F, {4});
  Tensor gw = T(F, {8}), gb = T(F, {8}), w7 = T(F, {7}), y48 = T(F, {4, 9}), r5 = T(F, {5}), x3 = T(F, {2, 2, 8});
  Tensor wh = T(H, {8}), yh = T(H, {4, 8}), rh = T(H, {4}), xh = T(H, {4, 8}), gwh = T(H, {8});
  Tensor x8 = T(DType::Float8E4M3, {4, 8}), xi = T(DType::Int32, {4, 8});
  same_status("good rms", "rms_norm", F, {&x, &w}, {&y, &r}, {}, {1e-5});
  same_status("good layer", "layer_norm", F, {&x, &w, &b}, {&y, &m, &r}, {}, {1e-5});
  same_status("w shape", "rms_norm", F, {&x, &w7}, {&y, &r}, {}, {1e-5});
  same_status("y shape", "rms_norm", F, {&x, &w}, {&y48, &r}, {}, {1e-5});
  same_status("rstd shape", "rms_norm", F, {&x, &w}, {&y, &r5}, {}, {1e-5});
  same_status("x rank", "rms_norm", F, {&x3, &w}, {&y, &r}, {}, {1e-5});
  same_status("b shape", "layer_norm", F, {&x, &w, &w7}, {&y, &m, &r}, {}, {1e-5});
  same_status("bwd rstd shape", "layer_norm_backward", F, {&x, &w, &m, &r5, &y}, {&y, &gw, &gb}, {}, {});
  same_status("bwd gy shape", "rms_norm_backward", F, {&x, &w, &r, &y48}, {&y, &gw}, {}, {});
  same_status("w dtype", "rms_norm", F, {&x, &wh}, {&y, &r}, {}, {1e-5});
  same_status("y dtype", "rms_norm", F, {&x, &w}, {&yh, &r}, {}, {1e-5});
  same_status("rstd float16", "rms_norm", H, {&xh, &wh}, {&yh, &rh}, {}, {1e-5});
  same_status("good float16", "rms_norm", H, {&xh, &wh}, {&yh, &r}, {}, {1e-5});
  same_status("gw float16", "rms_norm_backward", H, {&xh, &wh, &r, &yh}, {&yh, &gwh}, {}, {});
  same_status("fp8", "rms_norm", DType::Float8E4M3, {&x8, &w}, {&y, &r}, {}, {1e-5});
  same_status("int32", "layer_norm", DType::Int32, {&xi, &w, &b}, {&y, &m, &r}, {}, {1e-5});
  same_status("eps < 0", "rms_norm", F, {&x, &w}, {&y, &r}, {}, {-1.0});
  same_status("eps NaN", "rms_norm", F, {&x, &w}, {&y, &r}, {}, {std::nan("")});
  same_status("eps inf", "layer_norm", F, {&x, &w, &b}, {&y, &m, &r}, {}, {HUGE_VAL});
  same_status("no eps", "rms_norm", F, {&x, &w}, {&y, &r}, {}, {});
  same_status("layer_norm without b", "layer_norm", F, {&x, &w}, {&y, &m, &r}, {}, {1e-5});
}

// =====================================================================================================
// Rotary embedding
// =====================================================================================================

namespace rope {

using roperef::Case;
using roperef::make_case;
using roperef::pair_scale;
using roperef::ref_rope;

std::vector<int64_t> attrs(const Case& c, bool inverse) { return {c.interleaved ? 1 : 0, inverse ? 1 : 0}; }

// Shapes incl. D / 2 > 256 (inverse frequencies in a device buffer).
const int64_t kShapes[][4] = {{1, 1, 1, 2},   {2, 3, 5, 8},  {1, 4, 17, 64}, {3, 1, 9, 6},
                              {2, 2, 33, 128}, {1, 2, 3, 10}, {2, 3, 7, 1026}, {1, 1, 300, 96}};

}  // namespace rope

KTEST(cuda_nn, rope_match_reference_and_cpu) {
  require_cuda();
  Rng rng(201);
  double worst[3] = {}, worst_inv[3] = {};
  int64_t diffs = 0, elems = 0;
  for (DType dt : kDtypes) {
    for (const auto& s : rope::kShapes) {
      for (int rep = 0; rep < 2; ++rep) {
        rope::Case c = rope::make_case(dt, s[0], s[1], s[2], s[3], rng);
        const double u = nnt::unit_roundoff(dt), sub = nnt::subnormal_floor(dt);
        const vd x = c.x.values();
        const vd want = rope::ref_rope(c, x, false), scale = rope::pair_scale(c, x);
        std::vector<Tensor> out;
        const Status st = run_gpu("rope", dt, {&c.x, &c.pos}, {&c.y}, rope::attrs(c, false), {c.theta}, &out);
        KCHECK(st.ok()) << c.name() << ": " << st.message();
        if (!st.ok()) return;
        const nnt::ErrStat e = errors(out[0], want, scale, u, sub);
        KCHECK(e.max_err <= (dt == DType::Float32 ? 4.0 : 1.01)) << c.name() << ": error " << e.max_err << " units at " << e.where;
        KCHECK(out[0].guards_intact()) << c.name() << ": wrote outside y";
        worst[nnt::dt_index(dt)] = std::max(worst[nnt::dt_index(dt)], e.max_err);
        // The CPU on the same operands: the same bits but for rare last-bit sincos differences.
        Tensor yc = clone(c.y);
        KCHECK(run_cpu("rope", dt, {&c.x, &c.pos}, {&yc}, rope::attrs(c, false), {c.theta}).ok());
        diffs += bit_diffs(out[0], yc);
        elems += yc.numel();
        // inverse(rope(x)) == x within the roundings of both.
        Tensor back = nnt::make(dt, c.x.shape, static_cast<Layout>(rng.below(3)), rng);
        std::vector<Tensor> inv;
        KCHECK(run_gpu("rope", dt, {&out[0], &c.pos}, {&back}, rope::attrs(c, true), {c.theta}, &inv).ok());
        if (inv.empty()) return;
        const nnt::ErrStat ei = errors(inv[0], x, scale, u, sub);
        KCHECK(ei.max_err <= (dt == DType::Float32 ? 8.0 : 2.02)) << c.name() << ": inverse(rope(x)) error " << ei.max_err;
        worst_inv[nnt::dt_index(dt)] = std::max(worst_inv[nnt::dt_index(dt)], ei.max_err);
        if (kt::failures_in_test() > 0) return;
      }
    }
  }
  KCHECK(diffs * 1000 <= elems) << diffs << " of " << elems << " elements differ from the CPU's bits";
  std::printf("    observed max error, units of u(dtype) * (|x0| + |x1|) [f32 f16 bf16]: rope %.2f %.2f %.2f, "
              "inverse(rope) %.2f %.2f %.2f; %lld of %lld elements differ from the CPU's bits\n",
              worst[0], worst[1], worst[2], worst_inv[0], worst_inv[1], worst_inv[2], static_cast<long long>(diffs),
              static_cast<long long>(elems));
}

KTEST(cuda_nn, rope_in_place_empty_deterministic) {
  require_cuda();
  Rng rng(202);
  for (DType dt : kDtypes) {  // y aliasing x (same storage, same layout) on the device
    rope::Case c = rope::make_case(dt, 2, 3, 7, 16, rng);
    Dev dx(c.x), dp(c.pos);
    KCHECK(dx.status.ok() && dp.status.ok());
    KCHECK(kt::run("rope", dt, {dx.v, dp.v}, {dx.v}, rope::attrs(c, false), {c.theta}).ok());
    const Tensor inplace = dx.back();
    std::vector<Tensor> out;
    KCHECK(run_gpu("rope", dt, {&c.x, &c.pos}, {&c.y}, rope::attrs(c, false), {c.theta}, &out).ok());
    if (out.empty()) return;
    KCHECK(inplace.values() == out[0].values()) << c.name() << ": in place differs";
    std::vector<Tensor> again;
    KCHECK(run_gpu("rope", dt, {&c.x, &c.pos}, {&c.y}, rope::attrs(c, false), {c.theta}, &again).ok());
    if (!again.empty()) KCHECK(again[0].mem == out[0].mem) << c.name() << ": two runs differ";
  }
  const int64_t shapes[][4] = {{0, 2, 3, 4}, {2, 0, 3, 4}, {2, 3, 0, 4}, {2, 3, 4, 0}};
  for (const auto& s : shapes) {
    rope::Case c = rope::make_case(DType::BFloat16, s[0], s[1], s[2], s[3], rng);
    std::vector<Tensor> out;
    const Status st = run_gpu("rope", c.dt, {&c.x, &c.pos}, {&c.y}, rope::attrs(c, false), {c.theta}, &out);
    KCHECK(st.ok()) << c.name() << ": " << st.message();
    if (!out.empty()) KCHECK(out[0].guards_intact());
  }
}

KTEST(cuda_nn, rope_error_statuses) {
  require_cuda();
  Rng rng(203);
  auto T = [&](DType dt, std::vector<int64_t> shape) { return nnt::make(dt, shape, Layout::Contig, rng); };
  const DType F = DType::Float32;
  Tensor x = T(F, {2, 3, 5, 8}), y = T(F, {2, 3, 5, 8}), p = T(DType::Int32, {5}), pb = T(DType::Int32, {2, 5});
  Tensor x7 = T(F, {2, 3, 5, 7}), y7 = T(F, {2, 3, 5, 7}), p6 = T(DType::Int32, {6}), pb3 = T(DType::Int32, {3, 5});
  Tensor x3 = T(F, {3, 5, 8}), yb = T(F, {2, 3, 5, 6}), yh = T(DType::Float16, {2, 3, 5, 8}), pf = T(F, {5});
  Tensor x8 = T(DType::Float8E5M2, {2, 3, 5, 8});
  same_status("good", "rope", F, {&x, &p}, {&y}, {0, 0}, {10000.0});
  same_status("good batched", "rope", F, {&x, &pb}, {&y}, {1, 1}, {10000.0});
  same_status("odd D", "rope", F, {&x7, &p}, {&y7}, {0, 0}, {10000.0});
  same_status("positions length", "rope", F, {&x, &p6}, {&y}, {0, 0}, {10000.0});
  same_status("positions batch", "rope", F, {&x, &pb3}, {&y}, {0, 0}, {10000.0});
  same_status("x rank", "rope", F, {&x3, &p}, {&x3}, {0, 0}, {10000.0});
  same_status("y shape", "rope", F, {&x, &p}, {&yb}, {0, 0}, {10000.0});
  same_status("y dtype", "rope", F, {&x, &p}, {&yh}, {0, 0}, {10000.0});
  same_status("positions dtype", "rope", F, {&x, &pf}, {&y}, {0, 0}, {10000.0});
  same_status("fp8", "rope", DType::Float8E5M2, {&x8, &p}, {&y}, {0, 0}, {10000.0});
  same_status("interleaved 2", "rope", F, {&x, &p}, {&y}, {2, 0}, {10000.0});
  same_status("inverse -1", "rope", F, {&x, &p}, {&y}, {0, -1}, {10000.0});
  same_status("theta 0", "rope", F, {&x, &p}, {&y}, {0, 0}, {0.0});
  same_status("theta NaN", "rope", F, {&x, &p}, {&y}, {0, 0}, {std::nan("")});
  same_status("theta inf", "rope", F, {&x, &p}, {&y}, {0, 0}, {HUGE_VAL});
  same_status("one int", "rope", F, {&x, &p}, {&y}, {0}, {10000.0});
  same_status("no theta", "rope", F, {&x, &p}, {&y}, {0, 0}, {});
}

// =====================================================================================================
// Attention
// =====================================================================================================

namespace attn {

using attnref::cfg_str;
using attnref::Cfg;
using attnref::ix4;
using attnref::last_key;
using attnref::Ref;
using attnref::reference;

// The tensor-core path (16-bit, both head dims <= 128), else the SIMT path.
bool tensor_cores(DType dt, const Cfg& c) { return dt != DType::Float32 && c.D <= 128 && c.Dv <= 128; }

struct Case {
  Cfg c;
  DType dt;
  Tensor q, k, v, go, o, lse, gq, gk, gv;
  std::string name() const {
    return cfg_str(c) + " " + dtype_name(dt) + " q " + q.lay + " k " + k.lay + " v " + v.lay + " go " + go.lay +
           " o " + o.lay + (tensor_cores(dt, c) ? " [tensor cores]" : " [simt]");
  }
  std::vector<int64_t> ints() const { return {c.causal ? 1 : 0}; }
  std::vector<double> floats() const { return {c.scale}; }
};

// layouts: 0 random, 1 all contiguous (the tensor cores' cp.async path), 2 inputs random without broadcast
Case make_case(Cfg c, DType dt, Rng& rng, int layouts = 0) {
  if (c.scale == 0) c.scale = c.D > 0 ? 1.0 / std::sqrt(static_cast<double>(c.D)) : 1.0;
  Case t{c, dt, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  auto lay_in = [&]() { return layouts == 1 ? Layout::Contig : nnt::random_layout(rng, layouts == 0); };
  auto lay_out = [&]() { return layouts == 1 ? Layout::Contig : static_cast<Layout>(rng.below(3)); };
  t.q = nnt::make(dt, {c.B, c.Hq, c.Sq, c.D}, lay_in(), rng);
  t.k = nnt::make(dt, {c.B, c.Hk, c.Sk, c.D}, lay_in(), rng);
  t.v = nnt::make(dt, {c.B, c.Hk, c.Sk, c.Dv}, lay_in(), rng);
  t.go = nnt::make(dt, {c.B, c.Hq, c.Sq, c.Dv}, lay_in(), rng);
  const double amp = rng.below(3) == 0 ? 3.0 : 1.0;
  t.q.randomize(rng, -amp, amp);
  t.k.randomize(rng, -1, 1);
  t.v.randomize(rng, -1, 1);
  t.go.randomize(rng, -1, 1);
  t.o = nnt::make(dt, {c.B, c.Hq, c.Sq, c.Dv}, lay_out(), rng);
  t.lse = nnt::make(DType::Float32, {c.B, c.Hq, c.Sq}, lay_out(), rng);
  t.gq = nnt::make(dt, {c.B, c.Hq, c.Sq, c.D}, lay_out(), rng);
  t.gk = nnt::make(dt, {c.B, c.Hk, c.Sk, c.D}, lay_out(), rng);
  t.gv = nnt::make(dt, {c.B, c.Hk, c.Sk, c.Dv}, lay_out(), rng);
  return t;
}

Status gpu_forward(const Case& t, std::vector<Tensor>* out) {
  return run_gpu("attention", t.dt, {&t.q, &t.k, &t.v}, {&t.o, &t.lse}, t.ints(), t.floats(), out);
}
Status gpu_backward(const Case& t, const Tensor& o, const Tensor& lse, std::vector<Tensor>* out) {
  return run_gpu("attention_backward", t.dt, {&t.q, &t.k, &t.v, &o, &lse, &t.go}, {&t.gq, &t.gk, &t.gv}, t.ints(),
                 t.floats(), out);
}
Status cpu_forward(Case& t) {
  return run_cpu("attention", t.dt, {&t.q, &t.k, &t.v}, {&t.o, &t.lse}, t.ints(), t.floats());
}
Status cpu_backward(Case& t) {
  return run_cpu("attention_backward", t.dt, {&t.q, &t.k, &t.v, &t.o, &t.lse, &t.go}, {&t.gq, &t.gk, &t.gv}, t.ints(),
                 t.floats());
}

struct Tol {
  double o, lse, g;
};
Tol tol_for(DType dt, const Cfg& c) {
  if (dt == DType::Float32) return Tol{8, 8, 16};
  return tensor_cores(dt, c) ? Tol{2.5, 32, 6} : Tol{1.1, 8, 3};
}

struct Observed {
  double o[2][3] = {}, lse[2][3] = {}, g[2][3] = {};  // [simt, tensor cores][dtype]
  int64_t fwd_bits = 0, fwd_elems = 0, bwd_bits = 0, bwd_elems = 0;
};
Observed g_obs;

// The GPU forward against the reference and the CPU; the GPU backward (from the
// CPU's o and lse, and from its own) against the reference and the CPU.
void check_case(Case& t) {
  const Cfg& c = t.c;
  const int di = nnt::dt_index(t.dt), pi = tensor_cores(t.dt, c) ? 1 : 0;
  const double u = nnt::unit_roundoff(t.dt), u32 = 0x1.0p-24, sub = nnt::subnormal_floor(t.dt);
  const Tol tol = tol_for(t.dt, c);
  const vd q = t.q.values(), k = t.k.values(), v = t.v.values(), go = t.go.values();
  Ref r;
  reference(c, q, k, v, &go, &r);

  std::vector<Tensor> f;
  const Status st = gpu_forward(t, &f);
  KCHECK(st.ok()) << t.name() << ": " << st.message();
  if (!st.ok()) return;
  const nnt::ErrStat eo = errors(f[0], r.o, r.o_s, u, sub), el = errors(f[1], r.lse, r.lse_s, u32, 0);
  KCHECK(eo.max_err <= tol.o) << t.name() << ": o error " << eo.max_err << " units at " << eo.where;
  KCHECK(el.max_err <= tol.lse) << t.name() << ": lse error " << el.max_err << " units at " << el.where;
  KCHECK(f[0].guards_intact() && f[1].guards_intact()) << t.name() << ": forward wrote outside its outputs";
  g_obs.o[pi][di] = std::max(g_obs.o[pi][di], eo.max_err);
  g_obs.lse[pi][di] = std::max(g_obs.lse[pi][di], el.max_err);

  // The CPU forward; float32 at AVX-512: the same bits.
  const Status sc = cpu_forward(t);
  KCHECK(sc.ok()) << t.name() << ": cpu: " << sc.message();
  if (!sc.ok()) return;
  if (t.dt == DType::Float32 && avx512_isa()) {
    int64_t first = -1;
    const int64_t d = bit_diffs(f[0], t.o, &first) + bit_diffs(f[1], t.lse);
    KCHECK(d == 0) << t.name() << ": o / lse differ from the CPU's (avx512) bits in " << d << " elements (first o at "
                   << first << ")";
    g_obs.fwd_bits += d;
    g_obs.fwd_elems += t.o.numel() + t.lse.numel();
  }

  // Backward from the CPU's o and lse: the reference's tolerance; the SIMT
  // kernels give the CPU's bits at the FMA ISA levels.
  std::vector<Tensor> g;
  const Status sb = gpu_backward(t, t.o, t.lse, &g);
  KCHECK(sb.ok()) << t.name() << ": " << sb.message();
  if (!sb.ok()) return;
  const char* names[3] = {"gq", "gk", "gv"};
  const vd* want[3] = {&r.gq, &r.gk, &r.gv};
  const vd* scale[3] = {&r.gq_s, &r.gk_s, &r.gv_s};
  double worst = 0;
  for (int i = 0; i < 3; ++i) {
    const nnt::ErrStat e = errors(g[static_cast<size_t>(i)], *want[i], *scale[i], u, sub);
    KCHECK(e.max_err <= tol.g) << t.name() << ": " << names[i] << " error " << e.max_err << " units at " << e.where;
    KCHECK(g[static_cast<size_t>(i)].guards_intact()) << t.name() << ": backward wrote outside " << names[i];
    worst = std::max(worst, e.max_err);
  }
  g_obs.g[pi][di] = std::max(g_obs.g[pi][di], worst);
  const Status sbc = cpu_backward(t);
  KCHECK(sbc.ok()) << t.name() << ": cpu: " << sbc.message();
  if (sbc.ok() && !tensor_cores(t.dt, c) && fma_isa()) {
    const Tensor* cpu_g[3] = {&t.gq, &t.gk, &t.gv};
    for (int i = 0; i < 3; ++i) {
      int64_t first = -1;
      const int64_t d = bit_diffs(g[static_cast<size_t>(i)], *cpu_g[i], &first);
      KCHECK(d == 0) << t.name() << ": " << names[i] << " differs from the CPU's bits in " << d << " elements (first at "
                     << first << ")";
      g_obs.bwd_bits += d;
      g_obs.bwd_elems += cpu_g[i]->numel();
    }
  }

  // The whole GPU pipeline: backward from the GPU's own o and lse (o carries
  // its own rounding into delta: twice the gradient tolerance).
  std::vector<Tensor> g2;
  const Status sb2 = gpu_backward(t, f[0], f[1], &g2);
  KCHECK(sb2.ok()) << t.name() << ": " << sb2.message();
  if (!sb2.ok()) return;
  for (int i = 0; i < 3; ++i) {
    const nnt::ErrStat e = errors(g2[static_cast<size_t>(i)], *want[i], *scale[i], u, sub);
    KCHECK(e.max_err <= 2 * tol.g) << t.name() << ": " << names[i] << " (from the GPU's o, lse) error " << e.max_err
                                   << " units at " << e.where;
  }
}

const Cfg kCfgs[] = {
    // B Hq Hk Sq Sk D Dv causal scale
    {1, 1, 1, 1, 1, 1, 1, false, 0},
    {1, 1, 1, 1, 1, 1, 1, true, 0},
    {2, 2, 1, 3, 5, 4, 3, false, 0},
    {1, 4, 1, 7, 7, 8, 8, true, 0},
    {2, 4, 2, 5, 9, 6, 11, true, 0.7},    // Sq < Sk, causal aligned bottom-right
    {1, 2, 2, 9, 4, 5, 5, true, 0},       // Sq > Sk: the first 5 rows see no key
    {1, 3, 3, 1, 70, 16, 16, true, 0},    // one query, two key tiles
    {1, 8, 2, 70, 70, 64, 64, true, 0},   // GQA 4, two tiles each way
    {2, 2, 1, 65, 130, 13, 80, false, -0.3},
    {1, 2, 1, 130, 65, 80, 24, true, 0},  // Sq > Sk, several tiles
    {1, 1, 1, 64, 64, 64, 1, false, 0},
    {1, 1, 1, 33, 200, 1, 7, true, 2.0},
    {1, 2, 2, 200, 257, 128, 96, true, 0},  // real head dims, a partial last tile
    {1, 4, 2, 129, 129, 80, 80, false, 0},  // D = 80, GQA 2
    {1, 2, 1, 100, 150, 128, 128, true, 0},
    {1, 2, 2, 70, 90, 8, 8, false, 0},      // D = 8
    {1, 2, 1, 40, 66, 160, 72, true, 0},    // 16-bit D > 128: SIMT path
    {1, 1, 1, 30, 70, 40, 200, false, 0},   // Dv > 128: two output slabs
    {1, 2, 2, 20, 35, 300, 20, true, 0},    // D > 256
};

}  // namespace attn

KTEST(cuda_nn, attention_match_reference_and_cpu) {
  require_cuda();
  Rng rng(301);
  for (DType dt : kDtypes) {
    int n = 0;
    for (const attn::Cfg& c : attn::kCfgs) {
      attn::Case t = attn::make_case(c, dt, rng, (n++ % 3 == 0) ? 1 : 0);
      attn::check_case(t);
      if (kt::failures_in_test() > 0) return;
    }
  }
  const attn::Observed& o = attn::g_obs;
  std::printf("    observed max error, units of u(dtype) * magnitude [f32 f16 bf16]:\n"
              "      simt          o %.2f %.2f %.2f | lse (u32) %.2f %.2f %.2f | gradients %.2f %.2f %.2f\n"
              "      tensor cores  o   -  %.2f %.2f | lse (u32)   -  %.2f %.2f | gradients   -  %.2f %.2f\n"
              "      float32 forward bits differing from the CPU's (avx512 only): %lld of %lld; SIMT backward "
              "(FMA ISA levels): %lld of %lld\n",
              o.o[0][0], o.o[0][1], o.o[0][2], o.lse[0][0], o.lse[0][1], o.lse[0][2], o.g[0][0], o.g[0][1], o.g[0][2],
              o.o[1][1], o.o[1][2], o.lse[1][1], o.lse[1][2], o.g[1][1], o.g[1][2], static_cast<long long>(o.fwd_bits),
              static_cast<long long>(o.fwd_elems), static_cast<long long>(o.bwd_bits),
              static_cast<long long>(o.bwd_elems));
}

KTEST(cuda_nn, attention_random_shapes) {
  require_cuda();
  Rng rng(302);
  const int64_t ratios[] = {1, 2, 4};
  const int64_t dims[] = {1, 7, 8, 16, 24, 64, 80, 96, 128, 136};
  for (int rep = 0; rep < 30; ++rep) {
    attn::Cfg c;
    c.B = 1 + rng.below(2);
    c.Hk = 1 + rng.below(2);
    c.Hq = c.Hk * ratios[rng.below(3)];
    c.Sq = 1 + rng.below(140);
    c.Sk = 1 + rng.below(140);
    c.D = dims[rng.below(10)];
    c.Dv = rng.below(2) ? c.D : dims[rng.below(10)];
    c.causal = rng.below(2) == 1;
    c.scale = rng.below(2) ? 0 : rng.uniform(-1, 1);
    attn::Case t = attn::make_case(c, kDtypes[rng.below(3)], rng, static_cast<int>(rng.below(3)));
    attn::check_case(t);
    if (kt::failures_in_test() > 0) return;
  }
}

KTEST(cuda_nn, attention_deterministic) {
  require_cuda();
  const attn::Cfg cfgs[] = {{1, 4, 1, 150, 200, 40, 24, true, 0}, {2, 4, 2, 130, 70, 64, 64, false, 0},
                            {1, 2, 2, 100, 100, 128, 128, true, 0}, {1, 2, 1, 70, 90, 160, 136, true, 0}};
  for (DType dt : kDtypes) {
    for (const attn::Cfg& c : cfgs) {
      Rng rng(303);
      attn::Case t = attn::make_case(c, dt, rng, 2);
      std::vector<Tensor> f1, f2, g1, g2;
      KCHECK(attn::gpu_forward(t, &f1).ok() && attn::gpu_forward(t, &f2).ok()) << t.name();
      if (f1.size() != 2 || f2.size() != 2) return;
      KCHECK(f1[0].mem == f2[0].mem && f1[1].mem == f2[1].mem) << t.name() << ": forward differs between runs";
      KCHECK(attn::gpu_backward(t, f1[0], f1[1], &g1).ok() && attn::gpu_backward(t, f1[0], f1[1], &g2).ok()) << t.name();
      if (g1.size() != 3 || g2.size() != 3) return;
      for (int i = 0; i < 3; ++i) KCHECK(g1[static_cast<size_t>(i)].mem == g2[static_cast<size_t>(i)].mem) << t.name() << ": gradient " << i << " differs between runs";
    }
  }
}

// Grouped-query attention equals attention with the kv heads repeated, and
// gk / gv are the sums over each group's query heads.
KTEST(cuda_nn, attention_gqa_equals_repeated_heads) {
  require_cuda();
  for (DType dt : kDtypes) {
    Rng rng(304);
    const attn::Cfg c{1, 4, 2, 70, 90, 64, 64, true, 0};
    attn::Case t = attn::make_case(c, dt, rng, 1);
    attn::Cfg c2 = c;
    c2.Hk = 4;
    attn::Case r = attn::make_case(c2, dt, rng, 1);
    r.q.assign(t.q.values());
    r.go.assign(t.go.values());
    const int64_t per_head_k = c.Sk * c.D, per_head_v = c.Sk * c.Dv;
    for (int64_t h = 0; h < 4; ++h) {
      for (int64_t j = 0; j < per_head_k; ++j) r.k.set(h * per_head_k + j, t.k.get((h / 2) * per_head_k + j));
      for (int64_t j = 0; j < per_head_v; ++j) r.v.set(h * per_head_v + j, t.v.get((h / 2) * per_head_v + j));
    }
    std::vector<Tensor> ft, fr, gt, gr;
    KCHECK(attn::gpu_forward(t, &ft).ok() && attn::gpu_forward(r, &fr).ok());
    if (ft.size() != 2 || fr.size() != 2) return;
    KCHECK(ft[0].values() == fr[0].values()) << dtype_name(dt) << ": o";
    KCHECK(ft[1].values() == fr[1].values()) << dtype_name(dt) << ": lse";
    KCHECK(attn::gpu_backward(t, ft[0], ft[1], &gt).ok() && attn::gpu_backward(r, fr[0], fr[1], &gr).ok());
    if (gt.size() != 3 || gr.size() != 3) return;
    KCHECK(gt[0].values() == gr[0].values()) << dtype_name(dt) << ": gq";
    const double u = nnt::unit_roundoff(dt);
    for (int which = 1; which <= 2; ++which) {
      const int64_t per = which == 1 ? per_head_k : per_head_v;
      for (int64_t hk = 0; hk < 2; ++hk) {
        for (int64_t j = 0; j < per; ++j) {
          const double a = gr[static_cast<size_t>(which)].get((2 * hk) * per + j);
          const double b = gr[static_cast<size_t>(which)].get((2 * hk + 1) * per + j);
          const double s = gt[static_cast<size_t>(which)].get(hk * per + j);
          // each head's sum accumulated and rounded separately: tolerance relative to the parts
          KCHECK(std::fabs(s - (a + b)) <= (2 * u + 1e-6) * (std::fabs(a) + std::fabs(b)) + 1e-7)
              << dtype_name(dt) << (which == 1 ? " gk " : " gv ") << j << ": " << s << " vs " << a << " + " << b;
          if (kt::failures_in_test() > 5) return;
        }
      }
    }
  }
}

KTEST(cuda_nn, attention_empty_and_degenerate) {
  require_cuda();
  Rng rng(305);
  for (DType dt : kDtypes) {
    // Sq == 0: nothing forward; gk, gv are sums over no query: zeros.
    {
      attn::Case t = attn::make_case({1, 2, 1, 0, 5, 4, 3, true, 0}, dt, rng);
      std::vector<Tensor> f, g;
      KCHECK(attn::gpu_forward(t, &f).ok());
      if (f.size() == 2) KCHECK(f[0].guards_intact() && f[1].guards_intact());
      KCHECK(attn::gpu_backward(t, t.o, t.lse, &g).ok());
      if (g.size() == 3) {
        for (int64_t i = 0; i < g[1].numel(); ++i) KCHECK_EQ(g[1].get(i), 0.0);
        for (int64_t i = 0; i < g[2].numel(); ++i) KCHECK_EQ(g[2].get(i), 0.0);
        KCHECK(g[0].guards_intact() && g[1].guards_intact() && g[2].guards_intact());
      }
    }
    // Sk == 0: every row sees no key: o = 0, lse = -inf, gq = 0.
    {
      attn::Case t = attn::make_case({2, 2, 2, 3, 0, 4, 3, false, 0}, dt, rng);
      std::vector<Tensor> f, g;
      KCHECK(attn::gpu_forward(t, &f).ok());
      if (f.size() == 2) {
        for (int64_t i = 0; i < f[0].numel(); ++i) KCHECK_EQ(f[0].get(i), 0.0);
        for (int64_t i = 0; i < f[1].numel(); ++i) KCHECK_EQ(f[1].get(i), kNegInf);
      }
      KCHECK(attn::gpu_backward(t, f.size() == 2 ? f[0] : t.o, f.size() == 2 ? f[1] : t.lse, &g).ok());
      if (g.size() == 3) {
        for (int64_t i = 0; i < g[0].numel(); ++i) KCHECK_EQ(g[0].get(i), 0.0);
        KCHECK(g[1].guards_intact() && g[2].guards_intact());
      }
    }
    // B == 0, heads == 0: nothing at all.
    for (const attn::Cfg& c : {attn::Cfg{0, 2, 1, 3, 4, 5, 6, true, 0}, attn::Cfg{2, 0, 0, 3, 4, 5, 6, false, 0}}) {
      attn::Case t = attn::make_case(c, dt, rng);
      std::vector<Tensor> f, g;
      KCHECK(attn::gpu_forward(t, &f).ok());
      KCHECK(attn::gpu_backward(t, t.o, t.lse, &g).ok());
      for (const Tensor& x : f) KCHECK(x.guards_intact());
      for (const Tensor& x : g) KCHECK(x.guards_intact());
    }
    // D == 0 (every score 0: o is the mean of the visible v) and Dv == 0 (o empty, lse = log(#visible)).
    for (const attn::Cfg& c : {attn::Cfg{1, 2, 1, 4, 6, 0, 3, true, 0}, attn::Cfg{1, 2, 2, 4, 6, 3, 0, true, 0}}) {
      attn::Case t = attn::make_case(c, dt, rng);
      attn::check_case(t);
    }
  }
}

// A NaN in q poisons its own row only; a NaN in k poisons exactly the rows that see that key.
KTEST(cuda_nn, attention_nan_propagates) {
  require_cuda();
  Rng rng(306);
  for (DType dt : kDtypes) {
    const attn::Cfg c{1, 2, 1, 6, 6, 8, 4, true, 0};
    attn::Case t = attn::make_case(c, dt, rng, 2);
    t.q.set(((0 * 2 + 1) * 6 + 2) * 8 + 3, std::nan(""));  // q[0, 1, 2, 3]
    t.k.set((0 * 6 + 4) * 8 + 0, std::nan(""));            // k[0, 0, 4, 0]: seen by rows i >= 4 of both heads
    std::vector<Tensor> f;
    KCHECK(attn::gpu_forward(t, &f).ok());
    if (f.size() != 2) return;
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t i = 0; i < 6; ++i) {
        const bool poisoned = (h == 1 && i == 2) || i >= 4;
        const double l = f[1].get(h * 6 + i);
        KCHECK(std::isnan(l) == poisoned) << dtype_name(dt) << " head " << h << " row " << i << " lse " << l;
        for (int64_t d = 0; d < 4; ++d) {
          const double o = f[0].get((h * 6 + i) * 4 + d);
          KCHECK(std::isnan(o) == poisoned) << dtype_name(dt) << " head " << h << " row " << i << " o " << o;
        }
      }
    }
  }
}

KTEST(cuda_nn, attention_error_statuses) {
  require_cuda();
  Rng rng(307);
  auto T = [&](DType dt, std::vector<int64_t> shape) { return nnt::make(dt, shape, Layout::Contig, rng); };
  const DType F = DType::Float32, H = DType::Float16;
  Tensor q = T(F, {2, 4, 5, 8}), k = T(F, {2, 2, 7, 8}), v = T(F, {2, 2, 7, 6}), o = T(F, {2, 4, 5, 6}), lse = T(F, {2, 4, 5});
  Tensor gq = T(F, {2, 4, 5, 8}), gk = T(F, {2, 2, 7, 8}), gv = T(F, {2, 2, 7, 6});
  Tensor k3 = T(F, {2, 3, 7, 8}), v3 = T(F, {2, 3, 7, 6}), k0 = T(F, {2, 0, 7, 8}), v0 = T(F, {2, 0, 7, 6});
  Tensor kd = T(F, {2, 2, 7, 9}), vs = T(F, {2, 2, 6, 6}), kb = T(F, {1, 2, 7, 8}), vb = T(F, {1, 2, 7, 6});
  Tensor q3 = T(F, {4, 5, 8}), o8 = T(F, {2, 4, 5, 8}), l4 = T(F, {2, 4, 4}), l2 = T(F, {2, 4, 5, 1});
  Tensor kh = T(H, {2, 2, 7, 8}), oh = T(H, {2, 4, 5, 6}), lh = T(H, {2, 4, 5}), qh = T(H, {2, 4, 5, 8});
  Tensor vh = T(H, {2, 2, 7, 6}), gv8 = T(F, {2, 2, 7, 8}), gk4 = T(F, {2, 4, 7, 8}), gvh = T(H, {2, 2, 7, 6});
  Tensor q8 = T(DType::Float8E4M3, {2, 4, 5, 8});
  auto fwd = [&](const std::string& what, const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& o_,
                 const Tensor& l_, std::vector<int64_t> ints = {0}, std::vector<double> floats = {0.5}) {
    same_status(what, "attention", q_.dtype(), {&q_, &k_, &v_}, {&o_, &l_}, ints, floats);
  };
  auto bwd = [&](const std::string& what, const Tensor& o_, const Tensor& l_, const Tensor& go_, const Tensor& gq_,
                 const Tensor& gk_, const Tensor& gv_) {
    same_status(what, "attention_backward", F, {&q, &k, &v, &o_, &l_, &go_}, {&gq_, &gk_, &gv_}, {1}, {0.5});
  };
  fwd("good", q, k, v, o, lse);
  bwd("good backward", o, lse, o, gq, gk, gv);
  fwd("Hq % Hk", q, k3, v3, o, lse);
  fwd("Hk == 0", q, k0, v0, o, lse);
  fwd("k D", q, kd, v, o, lse);
  fwd("v Sk", q, k, vs, o, lse);
  fwd("k batch", q, kb, vb, o, lse);
  fwd("q rank", q3, k, v, o, lse);
  fwd("o shape", q, k, v, o8, lse);
  fwd("lse shape", q, k, v, o, l4);
  fwd("lse rank", q, k, v, o, l2);
  bwd("gv shape", o, lse, o, gq, gk, gv8);
  bwd("gk heads", o, lse, o, gq, gk4, gv);
  bwd("go shape", o, lse, o8, gq, gk, gv);
  fwd("k dtype", q, kh, v, o, lse);
  fwd("o dtype", q, k, v, oh, lse);
  fwd("lse float16", q, k, v, o, lh);
  fwd("16-bit lse float16", qh, kh, vh, oh, lh);
  fwd("good float16", qh, kh, vh, oh, lse);
  bwd("backward lse float16", o, lh, o, gq, gk, gv);
  bwd("backward go dtype", o, lse, oh, gq, gk, gv);
  bwd("backward gv dtype", o, lse, o, gq, gk, gvh);
  fwd("fp8", q8, k, v, o, lse);
  fwd("causal 2", q, k, v, o, lse, {2});
  fwd("scale NaN", q, k, v, o, lse, {0}, {std::nan("")});
  fwd("scale inf", q, k, v, o, lse, {0}, {HUGE_VAL});
  fwd("no causal", q, k, v, o, lse, {}, {0.5});
  fwd("no scale", q, k, v, o, lse, {0}, {});
}

}  // namespace
