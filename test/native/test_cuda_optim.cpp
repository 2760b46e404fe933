// Suite 'cuda_optim': the CUDA optimizer kernels adamw_step, lamb_step,
// lars_step and optim_grad_sumsq (cuda/optim.cu) against the CPU kernels (the
// reference; suite 'optim' checks those against the equations of
// ../shared/specs/optim.md), through kiln::run_kernel on copies of the same
// operands (dvt::run_both: whole storages, so writes outside a tensor show).
//
//   - AdamW, SGD and LARS without adaptation: the same bits (both backends
//     round every operation once, kiln/optim.h), float32 / float16 / bfloat16
//     parameters, master weights, every flag; NaN / inf gradients too.
//   - LAMB and adapted LARS: moments and momentum buffers bit for bit (they do
//     not depend on the norms); trust ratios within 1e-5 relative (the norms
//     sum in another order: per-chunk float32 partials), parameters within a
//     few ulps of their inputs.
//   - optim_grad_sumsq: sums within 1e-5 relative, the non-finite flags exact.
//   - multi-tensor batching: more tensors than one launch takes (kMaxT = 128)
//     and more chunks than one launch takes (kMaxB = 1280 chunks of 16384),
//     a tensor split across launches, empty tensors, unaligned starts.
//   - determinism: two CUDA runs give the same bytes.
//   - error statuses equal to the CPU's.
// Without a usable GPU every test skips; the file uses only kiln's
// backend-neutral headers, so it compiles with or without CUDA.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "device_testing.h"
#include "harness.h"
#include "kiln/cuda.h"
#include "kiln/numerics.h"
#include "kiln/registry.h"
#include "testing.h"

namespace {

using dvt::Layout;
using dvt::Operand;
using kiln::DType;

constexpr int64_t kChunk = 16384;

// ---- operands ------------------------------------------------------------------------------

std::vector<uint8_t> image(DType t, int64_t offset, const std::vector<float>& v) {
  const size_t es = kiln::dtype_size(t);
  std::vector<uint8_t> img(static_cast<size_t>(offset + static_cast<int64_t>(v.size())) * es, 0x5A);
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t bits = t == DType::Float16    ? kiln::num::f32_to_f16(v[i])
                    : t == DType::BFloat16 ? kiln::num::f32_to_bf16(v[i])
                                           : kiln::num::f32_bits(v[i]);
    std::memcpy(img.data() + (static_cast<size_t>(offset) + i) * es, &bits, es);
  }
  return img;
}

// n values in [lo, hi) as `t` (rounded), the tensor starting at element `offset` of its storage.
Operand values(DType t, int64_t n, int64_t offset, double lo, double hi, kt::Rng& r) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(r.uniform(lo, hi));
  return Operand{Layout{t, {n}, {}, offset}, image(t, offset, v)};
}

// The 16-bit value of a float32 master, so that master and parameter agree at the start.
Operand rounded_copy(const Operand& master, DType t) {
  std::vector<float> v(static_cast<size_t>(master.layout.shape[0]));
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t b = 0;
    std::memcpy(&b, master.init.data() + (master.layout.offset + static_cast<int64_t>(i)) * 4, 4);
    v[i] = kiln::num::bits_f32(b);
  }
  return Operand{Layout{t, master.layout.shape, {}, master.layout.offset}, image(t, master.layout.offset, v)};
}

struct Tensors {
  std::vector<Operand> p, g, m, v, x, w;  // x: max_exp_avg_sq / momentum buffer; w: master weights
  std::vector<int64_t> has_master;
};

// Tensors of the given sizes and dtype (offsets 0..3: unaligned starts for 16-byte accesses).
Tensors make(const std::vector<int64_t>& sizes, DType t, bool master, uint64_t seed) {
  kt::Rng r(seed);
  Tensors s;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i], off = static_cast<int64_t>(i % 4);
    const bool mw = master && t != DType::Float32 && i % 2 == 0;
    Operand w = values(DType::Float32, n, off, -1, 1, r);
    s.p.push_back(mw ? rounded_copy(w, t) : values(t, n, off, -1, 1, r));
    s.g.push_back(values(t, n, off, -0.5, 0.5, r));
    s.m.push_back(values(DType::Float32, n, off, -0.05, 0.05, r));
    s.v.push_back(values(DType::Float32, n, off, 0, 0.01, r));
    s.x.push_back(values(DType::Float32, n, off, 0, 0.02, r));
    if (mw) s.w.push_back(w);
    s.has_master.push_back(mw ? 1 : 0);
  }
  return s;
}

void append(std::vector<Operand>* a, const std::vector<Operand>& b) { a->insert(a->end(), b.begin(), b.end()); }

std::vector<int64_t> sizes_mixed() { return {0, 1, 3, 4, 5, 17, 255, kChunk - 1, kChunk, kChunk + 5, 3 * kChunk + 77}; }

// More tensors than one launch takes (128), each a chunk or two.
std::vector<int64_t> sizes_many() {
  std::vector<int64_t> s;
  for (int i = 0; i < 150; ++i) s.push_back(1 + (i * 7919) % (2 * kChunk));
  return s;
}

std::string dt(DType t) { return kiln::dtype_name(t); }

// ---- comparisons ---------------------------------------------------------------------------------

float f32_at(const std::vector<uint8_t>& img, int64_t i) {
  uint32_t b = 0;
  std::memcpy(&b, img.data() + i * 4, 4);
  return kiln::num::bits_f32(b);
}

double value_at(DType t, const std::vector<uint8_t>& img, int64_t i) {
  return kt::decode(t, img.data() + i * static_cast<int64_t>(kiln::dtype_size(t)));
}

// Outputs [first, last) within rel * (|cpu| + scale) elementwise (the bytes outside the tensors exactly).
void expect_close(const std::string& what, const dvt::Outcome& r, const std::vector<Operand>& outs, size_t first, size_t last,
                  double rel, double scale) {
  for (size_t k = first; k < last; ++k) {
    const Layout& l = outs[k].layout;
    const int64_t n = dvt::storage_elems(l);
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool inside = i >= l.offset;
      const double a = value_at(l.dtype, r.cpu_out[k], i), b = value_at(l.dtype, r.gpu_out[k], i);
      const bool ok = inside ? std::fabs(a - b) <= rel * (std::fabs(a) + scale) : a == b || (a != a && b != b);
      if (!ok && bad++ == 0) {
        KCHECK(false) << what << ": output " << k << " (" << dvt::layout_str(l) << ") element " << i - l.offset << ": cpu " << a
                      << ", cuda " << b;
      }
    }
  }
}

void expect_same(const std::string& what, const dvt::Outcome& r, const std::vector<Operand>& outs, size_t first, size_t last) {
  for (size_t k = first; k < last; ++k) {
    const std::string diff = dvt::first_difference(r.cpu_out[k], r.gpu_out[k], outs[k].layout.dtype, true);
    KCHECK(diff.empty()) << what << ": output " << k << " (" << dvt::layout_str(outs[k].layout) << "): " << diff;
  }
}

// ---- AdamW ---------------------------------------------------------------------------------------

void adamw_case(const std::string& what, const Tensors& s, DType key, int ams, int maxi, int l2, int bc, double gscale) {
  const int64_t n = static_cast<int64_t>(s.p.size());
  std::vector<Operand> outs = s.p;
  append(&outs, s.m);
  append(&outs, s.v);
  if (ams) append(&outs, s.x);
  append(&outs, s.w);
  std::vector<int64_t> ints = {n, ams, maxi, l2, bc};
  ints.insert(ints.end(), s.has_master.begin(), s.has_master.end());
  std::vector<double> floats = {1e-3, 0.9, 0.999, 1e-8, gscale};
  for (int64_t i = 0; i < n; ++i) {
    floats.push_back(static_cast<double>(1 + i % 13));
    floats.push_back(i % 3 == 1 ? 0.0 : 0.01 * static_cast<double>(i % 5));
  }
  dvt::compare(what, "adamw_step", key, s.g, outs, ints, floats, /*nan_equal=*/true, /*twice=*/true);
}

KTEST(cuda_optim, same_kernels_as_cpu) {
  if (!kiln::cuda::compiled()) kt::skip("kiln was built without CUDA");
  const std::vector<std::string> names = kiln::registered_kernels();
  auto has = [&](const std::string& s) { return std::find(names.begin(), names.end(), s) != names.end(); };
  for (const char* op : {"adamw_step", "lamb_step", "lars_step", "optim_grad_sumsq"}) {
    for (DType t : {DType::Float32, DType::Float16, DType::BFloat16}) {
      KCHECK(has(std::string(op) + "/cpu/" + dt(t))) << op << " " << dt(t) << " on the CPU";
      KCHECK(has(std::string(op) + "/cuda/" + dt(t))) << op << " " << dt(t) << " on CUDA";
    }
  }
}

KTEST(cuda_optim, adamw_matches_cpu_bit_for_bit) {
  dvt::require_cuda();
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
    for (bool master : {false, true}) {
      if (t == DType::Float32 && master) continue;
      for (int mask = 0; mask < 16; ++mask) {
        const Tensors s = make(sizes_mixed(), t, master, 100 + mask);
        adamw_case("adamw " + dt(t) + (master ? " master" : "") + " mask " + std::to_string(mask), s, t, mask & 1, (mask >> 1) & 1,
                   (mask >> 2) & 1, !((mask >> 3) & 1), mask == 5 ? 1024.0 : 1.0);
      }
    }
  }
}

KTEST(cuda_optim, adamw_non_finite_gradients) {
  dvt::require_cuda();
  Tensors s = make({5000, 33}, DType::Float32, false, 7);
  const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f};
  for (size_t i = 0; i < 6; ++i) {
    const uint32_t b = kiln::num::f32_bits(specials[i]);
    std::memcpy(s.g[0].init.data() + (s.g[0].layout.offset + 100 * static_cast<int64_t>(i)) * 4, &b, 4);
  }
  adamw_case("adamw non-finite", s, DType::Float32, 1, 0, 0, 1, 1.0);
}

KTEST(cuda_optim, adamw_many_tensors_and_long_calls) {
  dvt::require_cuda();
  adamw_case("adamw 150 tensors", make(sizes_many(), DType::Float32, false, 8), DType::Float32, 0, 0, 0, 1, 1.0);
  adamw_case("adamw 150 tensors bf16 master", make(sizes_many(), DType::BFloat16, true, 9), DType::BFloat16, 1, 0, 0, 1, 1.0);
  // 1300 chunks: one launch takes 1280, so the second tensor is split across two
  adamw_case("adamw 1300 chunks", make({100 * kChunk + 3, 1200 * kChunk - 7}, DType::Float32, false, 10), DType::Float32, 0, 0,
             0, 1, 1.0);
}

// ---- LARS / SGD ----------------------------------------------------------------------------------

struct LarsOpts {
  int style = 1, nesterov = 0, combined = 0, trust_clip = 0, maximize = 0;
  bool adapt = false, ratio = false;
};

void lars_case(const std::string& what, const Tensors& s, DType key, const LarsOpts& o) {
  const int64_t n = static_cast<int64_t>(s.p.size());
  std::vector<Operand> outs = s.p;
  if (o.style != 0) append(&outs, s.x);
  append(&outs, s.w);
  if (o.ratio) outs.push_back(dvt::output(Layout{DType::Float32, {n}, {}, 0}));
  std::vector<int64_t> ints = {n, o.style, o.nesterov, o.combined, o.trust_clip, o.maximize};
  for (int64_t i = 0; i < n; ++i) ints.push_back(o.adapt && i % 5 != 3 ? 1 : 0);
  for (int64_t i = 0; i < n; ++i) ints.push_back(i % 3 == 2 ? 1 : 0);  // first step of the buffer
  ints.insert(ints.end(), s.has_master.begin(), s.has_master.end());
  std::vector<double> floats = {0.1, 0.9, 0.1, 0.02, 1e-8, 2.0};
  for (int64_t i = 0; i < n; ++i) floats.push_back(i % 4 == 1 ? 0.0 : 1e-3 * static_cast<double>(1 + i % 3));
  const dvt::Outcome r = dvt::run_both(what, "lars_step", key, s.g, outs, ints, floats, /*twice=*/true);
  if (!dvt::both_ok(what, r)) return;
  if (!o.adapt) {
    expect_same(what, r, outs, 0, outs.size());
    return;
  }
  // The factor a differs in its last bits (the norms sum in another order): a within 1e-5,
  // p and the master weights within a few ulps of their inputs (|p| <= 1), the buffers within 1e-5.
  const size_t np = static_cast<size_t>(n), nb = o.style != 0 ? np : 0, nw = s.w.size();
  expect_close(what + " (parameters)", r, outs, 0, np, key == DType::Float32 ? 1e-6 : 1e-2, 1);
  expect_close(what + " (buffers)", r, outs, np, np + nb, 1e-5, 1e-2);
  expect_close(what + " (master weights)", r, outs, np + nb, np + nb + nw, 1e-6, 1);
  if (o.ratio) expect_close(what + " (factors)", r, outs, np + nb + nw, outs.size(), 1e-5, 0);
}

KTEST(cuda_optim, sgd_and_plain_lars_match_cpu_bit_for_bit) {
  dvt::require_cuda();
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
    for (int style = 0; style < 3; ++style) {
      for (int nest = 0; nest < 2; ++nest) {
        if (style == 0 && nest) continue;
        LarsOpts o;
        o.style = style;
        o.nesterov = nest;
        o.maximize = style == 1;
        const std::string what = "sgd " + dt(t) + " style " + std::to_string(style) + " nesterov " + std::to_string(nest);
        lars_case(what, make(sizes_mixed(), t, t != DType::Float32, 20 + style), t, o);
      }
    }
  }
}

KTEST(cuda_optim, adapted_lars_matches_cpu) {
  dvt::require_cuda();
  for (DType t : {DType::Float32, DType::BFloat16}) {
    for (int variant = 0; variant < 4; ++variant) {
      LarsOpts o;
      o.adapt = true;
      o.ratio = true;
      o.combined = variant & 1;
      o.trust_clip = (variant >> 1) & 1;
      o.style = variant == 3 ? 2 : 1;
      lars_case("lars " + dt(t) + " variant " + std::to_string(variant), make(sizes_mixed(), t, t != DType::Float32, 30 + variant),
                t, o);
    }
  }
  LarsOpts o;
  o.adapt = true;
  lars_case("lars 150 tensors", make(sizes_many(), DType::Float32, false, 40), DType::Float32, o);
}

// ---- LAMB ----------------------------------------------------------------------------------------

void lamb_case(const std::string& what, const Tensors& s, DType key, int decay, int trust_clip) {
  const int64_t n = static_cast<int64_t>(s.p.size());
  std::vector<Operand> outs = s.p;
  append(&outs, s.m);
  append(&outs, s.v);
  append(&outs, s.w);
  const size_t ratio_at = outs.size();
  outs.push_back(dvt::output(Layout{DType::Float32, {n}, {}, 0}));
  std::vector<int64_t> ints = {n, decay, 1, 1, trust_clip};
  for (int64_t i = 0; i < n; ++i) ints.push_back(i % 5 != 3 ? 1 : 0);
  ints.insert(ints.end(), s.has_master.begin(), s.has_master.end());
  std::vector<double> floats = {1e-2, 0.9, 0.999, 1e-6, 3.0, 0.0, HUGE_VAL};
  for (int64_t i = 0; i < n; ++i) {
    floats.push_back(static_cast<double>(1 + i % 7));
    floats.push_back(i % 4 == 1 ? 0.0 : 0.01);
  }
  const dvt::Outcome r = dvt::run_both(what, "lamb_step", key, s.g, outs, ints, floats, /*twice=*/true);
  if (!dvt::both_ok(what, r)) return;
  expect_same(what + " (moments)", r, outs, n, 3 * n);  // m, v do not depend on the norms
  // the norms sum in another order: ratios within 1e-5; p = p0 - lr r u within a few ulps of |p0| <= 1
  expect_close(what + " (ratios)", r, outs, ratio_at, ratio_at + 1, 1e-5, 0);
  expect_close(what + " (parameters)", r, outs, 0, static_cast<size_t>(n), key == DType::Float32 ? 1e-6 : 1e-2, 1);
  expect_close(what + " (master weights)", r, outs, 3 * n, ratio_at, 1e-6, 1);
}

KTEST(cuda_optim, lamb_matches_cpu) {
  dvt::require_cuda();
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
    for (int decay = 0; decay < 3; ++decay) {
      lamb_case("lamb " + dt(t) + " decay " + std::to_string(decay), make(sizes_mixed(), t, t != DType::Float32, 50 + decay), t, decay,
                decay == 1);
    }
  }
  lamb_case("lamb 150 tensors", make(sizes_many(), DType::Float32, false, 60), DType::Float32, 0, 0);
  lamb_case("lamb 1300 chunks", make({100 * kChunk + 3, 1200 * kChunk - 7}, DType::Float32, false, 61), DType::Float32, 0, 0);
}

// ---- gradient sums of squares ----------------------------------------------------------------------

KTEST(cuda_optim, grad_sumsq_matches_cpu) {
  dvt::require_cuda();
  kt::Rng r(70);
  std::vector<Operand> g;
  const std::vector<int64_t> sizes = sizes_mixed();
  for (size_t i = 0; i < sizes.size(); ++i) {
    const DType t = i % 3 == 0 ? DType::Float32 : i % 3 == 1 ? DType::BFloat16 : DType::Float16;
    g.push_back(values(t, sizes[i], static_cast<int64_t>(i % 4), -2, 2, r));
  }
  // an inf in tensor 7 (bfloat16), a NaN in tensor 9 (float32)
  const uint16_t inf16 = 0x7F80;
  std::memcpy(g[7].init.data() + (g[7].layout.offset + 5) * 2, &inf16, 2);
  const uint32_t nan32 = 0x7FC00000u;
  std::memcpy(g[9].init.data() + (g[9].layout.offset + 2) * 4, &nan32, 4);
  const int64_t n = static_cast<int64_t>(g.size());
  const std::vector<Operand> outs = {dvt::output(Layout{DType::Float32, {2, n}, {}, 0})};
  const dvt::Outcome res = dvt::run_both("grad_sumsq", "optim_grad_sumsq", DType::Float32, g, outs, {}, {0.5}, /*twice=*/true);
  if (!dvt::both_ok("grad_sumsq", res)) return;
  for (int64_t i = 0; i < n; ++i) {
    const float a = f32_at(res.cpu_out[0], i), b = f32_at(res.gpu_out[0], i);
    const bool finite = i != 7 && i != 9;
    if (finite) KCHECK(std::fabs(a - b) <= 1e-5 * std::fabs(a)) << "sum " << i << ": cpu " << a << ", cuda " << b;
    KCHECK(f32_at(res.cpu_out[0], n + i) == (finite ? 0.0f : 1.0f)) << "cpu flag " << i;
    KCHECK(f32_at(res.gpu_out[0], n + i) == f32_at(res.cpu_out[0], n + i)) << "flag " << i;
  }
}

// ---- errors --------------------------------------------------------------------------------------

KTEST(cuda_optim, errors_match_cpu) {
  dvt::require_cuda();
  Tensors s = make({10, 20}, DType::Float32, false, 80);
  s.m[1].layout.shape = {19};  // exp_avg 1 of the wrong shape
  std::vector<Operand> outs = s.p;
  append(&outs, s.m);
  append(&outs, s.v);
  const std::vector<int64_t> ints = {2, 0, 0, 0, 1, 0, 0};
  const std::vector<double> floats = {1e-3, 0.9, 0.999, 1e-8, 1.0, 1, 0.01, 1, 0.01};
  const dvt::Outcome r = dvt::run_both("adamw bad shape", "adamw_step", DType::Float32, s.g, outs, ints, floats);
  KCHECK(!r.cpu.ok() && !r.gpu.ok()) << "both refuse";
  KCHECK(r.cpu.code() == r.gpu.code()) << dvt::code_name(r.cpu) << " vs " << dvt::code_name(r.gpu);
  KCHECK(r.cpu.message() == r.gpu.message()) << r.cpu.message() << " vs " << r.gpu.message();
  for (size_t k = 0; k < outs.size(); ++k) KCHECK(r.cpu_out[k] == outs[k].init && r.gpu_out[k] == outs[k].init) << "output " << k << " untouched";
}

}  // namespace
