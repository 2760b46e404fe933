// Suite 'optim_batching': the multi-tensor machinery of the CUDA optimizer
// kernels (cuda/optim_kernels.cuh: chunks, batches, per-thread element
// order, chunk partials and their per-tensor finish), compiled for the host
// and run block by block and thread by thread, against the CPU kernels. It
// checks on a machine without a GPU what suite 'cuda_optim' checks on one,
// except the launch itself and the block-wide sums (cuda/optim.cu): every
// element is updated exactly once (AdamW and SGD: the CPU's bits), every chunk
// partial is written exactly once and lands in its tensor's sum (LAMB, LARS,
// the gradient sum of squares: within 1e-6 of the CPU), with more tensors and
// more chunks than one launch takes, tensors split across launches, empty
// tensors, unaligned starts and 16-bit parameters with master weights.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../../cuda/optim_kernels.cuh"
#include "harness.h"
#include "kernel_calls.h"
#include "kiln/numerics.h"
#include "kiln/optim.h"
#include "testing.h"

namespace {

using kiln::DType;
using kiln::View;
using kiln::optim::OptimTensor;
namespace optk = kiln::cuda::optk;

constexpr int64_t kChunk = optk::kChunk;

// ---- host operands ---------------------------------------------------------------------------

// One 1-D operand: its storage (starting `off` elements before the tensor) and a view of it.
struct Op {
  DType dt = DType::Float32;
  int64_t n = 0, off = 0;
  std::vector<uint64_t> mem;  // 8-byte units: the base is 8-byte aligned

  Op() = default;
  Op(DType t, int64_t count, int64_t offset) : dt(t), n(count), off(offset), mem(static_cast<size_t>((count + offset) * 4 / 8 + 2), 0) {}
  Op(const Op& o) = default;
  size_t es() const { return kiln::dtype_size(dt); }
  char* at(int64_t i) { return reinterpret_cast<char*>(mem.data()) + (off + i) * static_cast<int64_t>(es()); }
  const char* at(int64_t i) const { return reinterpret_cast<const char*>(mem.data()) + (off + i) * static_cast<int64_t>(es()); }
  void set(int64_t i, double x) { kt::encode(dt, x, reinterpret_cast<unsigned char*>(at(i))); }
  double get(int64_t i) const { return kt::decode(dt, reinterpret_cast<const unsigned char*>(at(i))); }
  View view() {
    View v;
    v.base = mem.data();
    v.storage_bytes = mem.size() * 8;
    v.dtype = dt;
    v.ndim = 1;
    v.shape[0] = n;
    v.strides[0] = 1;
    v.offset = off;
    return v;
  }
  // As rows x (n / rows), row-major.
  View view2(int64_t rows) {
    View v = view();
    v.ndim = 2;
    v.shape[0] = rows;
    v.shape[1] = n / rows;
    v.strides[0] = n / rows;
    v.strides[1] = 1;
    return v;
  }
  bool same_bytes(const Op& o) const { return mem == o.mem; }
};

struct Set {
  std::vector<Op> p, g, m, v, x, w;
  std::vector<int64_t> has_master;
  std::vector<int64_t> sizes;
};

Set make(const std::vector<int64_t>& sizes, DType t, bool master, uint64_t seed) {
  kt::Rng r(seed);
  Set s;
  s.sizes = sizes;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i], off = static_cast<int64_t>(i % 4);
    const bool mw = master && t != DType::Float32 && i % 2 == 0;
    s.p.emplace_back(t, n, off);
    s.g.emplace_back(t, n, off);
    s.m.emplace_back(DType::Float32, n, off);
    s.v.emplace_back(DType::Float32, n, off);
    s.x.emplace_back(DType::Float32, n, off);
    for (int64_t k = 0; k < n; ++k) {
      s.p.back().set(k, r.uniform(-1, 1));
      s.g.back().set(k, r.uniform(-0.5, 0.5));
      s.m.back().set(k, r.uniform(-0.05, 0.05));
      s.v.back().set(k, r.uniform(0, 0.01));
      s.x.back().set(k, r.uniform(0, 0.02));
    }
    if (mw) {
      s.w.emplace_back(DType::Float32, n, off);
      for (int64_t k = 0; k < n; ++k) s.w.back().set(k, s.p.back().get(k));
    }
    s.has_master.push_back(mw ? 1 : 0);
  }
  return s;
}

std::vector<View> views(std::vector<Op>& ops) {
  std::vector<View> out;
  for (Op& o : ops) out.push_back(o.view());
  return out;
}

void append(std::vector<View>* a, const std::vector<View>& b) { a->insert(a->end(), b.begin(), b.end()); }

kiln::KernelArgs args_of(const char* op, const std::vector<View>& in, const std::vector<View>& out, const std::vector<int64_t>& ints,
                         const std::vector<double>& floats) {
  kiln::KernelArgs a;
  a.op = op;
  a.in = in.data();
  a.n_in = static_cast<int>(in.size());
  a.out = out.data();
  a.n_out = static_cast<int>(out.size());
  a.ints = ints.data();
  a.n_ints = static_cast<int>(ints.size());
  a.floats = floats.data();
  a.n_floats = static_cast<int>(floats.size());
  return a;
}

std::vector<int64_t> sizes_mixed() { return {0, 1, 3, 4, 5, 17, 255, kChunk - 1, kChunk, kChunk + 5, 3 * kChunk + 77}; }

std::vector<int64_t> sizes_many() {
  std::vector<int64_t> s;
  for (int i = 0; i < 150; ++i) s.push_back(i % 37 == 0 ? 0 : 1 + (i * 7919) % (2 * kChunk));
  return s;
}

// 1300 chunks: one launch takes kMaxB = 1280, so the second tensor is split.
std::vector<int64_t> sizes_long() { return {100 * kChunk + 3, 1200 * kChunk - 7}; }

// ---- the launch plan of cuda/optim.cu, on the host ------------------------------------------------

// The tensors of each launch family (parameter dtype, master weights), in the order optim.cu takes them.
std::vector<std::vector<int>> families(const std::vector<OptimTensor>& t) {
  const std::pair<DType, bool> fams[] = {{DType::Float32, false}, {DType::Float16, false}, {DType::Float16, true},
                                         {DType::BFloat16, false}, {DType::BFloat16, true}};
  std::vector<std::vector<int>> out;
  for (const auto& f : fams) {
    std::vector<int> idx;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i].n > 0 && t[i].p->dtype == f.first && (t[i].master != nullptr) == f.second) idx.push_back(static_cast<int>(i));
    }
    out.push_back(idx);
  }
  return out;
}

// Runs fn(batch, block, tid) for every block and thread of every launch.
template <class Fn>
void each_thread(const std::vector<optk::Batch>& batches, Fn fn) {
  for (const optk::Batch& b : batches) {
    for (int block = 0; block < b.blocks; ++block) {
      for (int tid = 0; tid < optk::kThreads; ++tid) fn(b, block, tid);
    }
  }
}

// A block's thread sums, added in thread order, into its chunk's partial (which must not be written yet).
template <class Fn>
void each_block_sum(const std::vector<optk::Batch>& batches, std::vector<float>* pa, std::vector<float>* pb, Fn fn) {
  for (const optk::Batch& b : batches) {
    for (int block = 0; block < b.blocks; ++block) {
      float a = 0, c = 0;
      for (int tid = 0; tid < optk::kThreads; ++tid) {
        const optk::Pair s = fn(b, block, tid);
        a += s.a;
        c += s.b;
      }
      const int slot = b.slot[block];
      const int64_t q = static_cast<int64_t>(b.chunk_base[slot]) + b.chunk0[slot] + b.rel[block];
      KCHECK(q >= 0 && q < static_cast<int64_t>(pa->size())) << "chunk index " << q << " outside " << pa->size();
      if (q < 0 || q >= static_cast<int64_t>(pa->size())) continue;
      KCHECK(std::isnan((*pa)[q])) << "chunk " << q << " written twice";
      (*pa)[q] = a;
      (*pb)[q] = c;
    }
  }
}

void expect_no_nan(const std::string& what, const std::vector<float>& pa) {
  for (size_t q = 0; q < pa.size(); ++q) KCHECK(!std::isnan(pa[q])) << what << ": chunk " << q << " never written";
}

std::vector<float> unset(int64_t chunks) { return std::vector<float>(static_cast<size_t>(chunks), std::numeric_limits<float>::quiet_NaN()); }

template <class F>
void with_type(DType t, bool master, F f) {
  if (t == DType::Float32) f(kiln::el::F32{}, std::false_type{});
  else if (t == DType::Float16) master ? f(kiln::el::F16{}, std::true_type{}) : f(kiln::el::F16{}, std::false_type{});
  else master ? f(kiln::el::BF16{}, std::true_type{}) : f(kiln::el::BF16{}, std::false_type{});
}

DType fam_dtype(size_t f) { return f == 0 ? DType::Float32 : f <= 2 ? DType::Float16 : DType::BFloat16; }
bool fam_master(size_t f) { return f == 2 || f == 4; }

void expect_same(const std::string& what, const std::vector<Op>& got, const std::vector<Op>& want, const char* role) {
  for (size_t i = 0; i < got.size(); ++i) {
    int64_t bad = -1;
    for (int64_t k = 0; k < got[i].n && bad < 0; ++k) {
      if (std::memcmp(got[i].at(k), want[i].at(k), got[i].es()) != 0) bad = k;
    }
    KCHECK(bad < 0 && got[i].same_bytes(want[i])) << what << ": " << role << " " << i << " [" << got[i].n << "] element " << bad << ": "
                                                    << (bad >= 0 ? got[i].get(bad) : 0) << " vs cpu " << (bad >= 0 ? want[i].get(bad) : 0);
  }
}

void expect_close(const std::string& what, const std::vector<Op>& got, const std::vector<Op>& want, const char* role, double rel,
                  double scale) {
  for (size_t i = 0; i < got.size(); ++i) {
    for (int64_t k = 0; k < got[i].n; ++k) {
      const double a = got[i].get(k), b = want[i].get(k);
      if (!(std::fabs(a - b) <= rel * (std::fabs(b) + scale))) {
        KCHECK(false) << what << ": " << role << " " << i << " [" << got[i].n << "] element " << k << ": " << a << " vs cpu " << b;
        break;
      }
    }
  }
}

// ---- AdamW ------------------------------------------------------------------------------------------

void adamw_case(const std::string& what, const Set& init, DType key, bool ams, bool l2) {
  Set cpu = init, sim = init;
  const int64_t n = static_cast<int64_t>(init.sizes.size());
  auto outs = [&](Set& s) {
    std::vector<View> o = views(s.p);
    append(&o, views(s.m));
    append(&o, views(s.v));
    if (ams) append(&o, views(s.x));
    append(&o, views(s.w));
    return o;
  };
  std::vector<int64_t> ints = {n, ams, 1, l2, 1};
  ints.insert(ints.end(), init.has_master.begin(), init.has_master.end());
  std::vector<double> floats = {1e-3, 0.9, 0.999, 1e-8, 2.0};
  for (int64_t i = 0; i < n; ++i) {
    floats.push_back(static_cast<double>(1 + i % 13));
    floats.push_back(i % 3 == 1 ? 0.0 : 0.01);
  }
  const std::vector<View> cin = views(cpu.g), cout = outs(cpu);
  const kiln::Status st = kt::run("adamw_step", key, cin, cout, ints, floats);
  KCHECK(st.ok()) << what << ": " << st.message();

  const std::vector<View> sin = views(sim.g), sout = outs(sim);
  kiln::optim::AdamwPlan plan;
  const kiln::Status ps = kiln::optim::prepare_adamw(args_of("adamw_step", sin, sout, ints, floats), &plan);
  KCHECK(ps.ok()) << ps.message();
  if (!ps.ok()) return;
  std::vector<int32_t> base;
  optk::chunk_bases(plan.t, &base);
  const auto fams = families(plan.t);
  for (size_t f = 0; f < fams.size(); ++f) {
    if (fams[f].empty()) continue;
    const auto batches = optk::make_batches(plan.t, fams[f], base, [&](optk::Batch& b, int slot, int i) {
      b.s[0][slot] = plan.s[i].decay;
      b.s[1][slot] = plan.s[i].wd;
      b.s[2][slot] = plan.s[i].step_size;
      b.s[3][slot] = plan.s[i].bc2_sqrt;
    });
    with_type(fam_dtype(f), fam_master(f), [&](auto e, auto m) {
      using E = decltype(e);
      constexpr bool M = decltype(m)::value;
      each_thread(batches, [&](const optk::Batch& b, int block, int tid) {
        if (ams) {
          l2 ? optk::adamw_thread<E, M, true, true>(b, plan.c, block, tid) : optk::adamw_thread<E, M, true, false>(b, plan.c, block, tid);
        } else {
          l2 ? optk::adamw_thread<E, M, false, true>(b, plan.c, block, tid) : optk::adamw_thread<E, M, false, false>(b, plan.c, block, tid);
        }
      });
    });
  }
  expect_same(what, sim.p, cpu.p, "p");
  expect_same(what, sim.m, cpu.m, "exp_avg");
  expect_same(what, sim.v, cpu.v, "exp_avg_sq");
  if (ams) expect_same(what, sim.x, cpu.x, "max_exp_avg_sq");
  expect_same(what, sim.w, cpu.w, "master");
  expect_same(what, sim.g, init.g, "gradient (never written)");
}

KTEST(optim_batching, adamw_threads_match_cpu_bit_for_bit) {
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
    for (int mask = 0; mask < 4; ++mask) {
      adamw_case(std::string("adamw ") + kiln::dtype_name(t) + " mask " + std::to_string(mask), make(sizes_mixed(), t, t != DType::Float32, 1 + mask), t,
                 mask & 1, mask & 2);
    }
  }
  adamw_case("adamw 150 tensors", make(sizes_many(), DType::Float32, false, 5), DType::Float32, false, false);
  adamw_case("adamw 150 tensors bf16 master", make(sizes_many(), DType::BFloat16, true, 6), DType::BFloat16, true, false);
  adamw_case("adamw 1300 chunks", make(sizes_long(), DType::Float32, false, 7), DType::Float32, false, false);
}

KTEST(optim_batching, batches_respect_their_limits) {
  std::vector<OptimTensor> t(sizes_many().size());
  std::vector<View> dummy(t.size());
  std::vector<int> idx;
  int64_t chunks = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    t[i].p = &dummy[i];
    t[i].n = sizes_many()[i];
    chunks += optk::chunks_of(t[i].n);
    if (t[i].n > 0) idx.push_back(static_cast<int>(i));
  }
  t.push_back(OptimTensor{});
  t.back().n = 1300 * kChunk;
  dummy.emplace_back();
  t.back().p = &dummy.back();
  idx.push_back(static_cast<int>(t.size() - 1));
  chunks += 1300;
  std::vector<int32_t> base;
  KCHECK(optk::chunk_bases(t, &base) == chunks);
  const auto batches = optk::make_batches(t, idx, base, [](optk::Batch&, int, int) {});
  int64_t covered = 0;
  for (const optk::Batch& b : batches) {
    KCHECK(b.count >= 1 && b.count <= optk::kMaxT && b.blocks >= 1 && b.blocks <= optk::kMaxB) << b.count << " tensors, " << b.blocks << " blocks";
    covered += b.blocks;
  }
  KCHECK(covered == chunks) << covered << " blocks for " << chunks << " chunks";
  KCHECK(batches.size() >= 3) << "150 tensors and 1300 chunks take several launches";
}

// ---- LAMB -----------------------------------------------------------------------------------------

void lamb_case(const std::string& what, const Set& init, DType key, int decay) {
  Set cpu = init, sim = init;
  const int64_t n = static_cast<int64_t>(init.sizes.size());
  Op rc(DType::Float32, n, 0), rs(DType::Float32, n, 0);
  auto outs = [&](Set& s, Op& r) {
    std::vector<View> o = views(s.p);
    append(&o, views(s.m));
    append(&o, views(s.v));
    append(&o, views(s.w));
    o.push_back(r.view());
    return o;
  };
  std::vector<int64_t> ints = {n, decay, 1, 1, 0};
  for (int64_t i = 0; i < n; ++i) ints.push_back(i % 5 != 3 ? 1 : 0);
  ints.insert(ints.end(), init.has_master.begin(), init.has_master.end());
  std::vector<double> floats = {1e-2, 0.9, 0.999, 1e-6, 3.0, 0.0, HUGE_VAL};
  for (int64_t i = 0; i < n; ++i) {
    floats.push_back(static_cast<double>(1 + i % 7));
    floats.push_back(i % 4 == 1 ? 0.0 : 0.01);
  }
  const std::vector<View> cin = views(cpu.g), cout = outs(cpu, rc);
  const kiln::Status st = kt::run("lamb_step", key, cin, cout, ints, floats);
  KCHECK(st.ok()) << what << ": " << st.message();

  const std::vector<View> sin = views(sim.g), sout = outs(sim, rs);
  kiln::optim::LambPlan plan;
  const kiln::Status ps = kiln::optim::prepare_lamb(args_of("lamb_step", sin, sout, ints, floats), &plan);
  KCHECK(ps.ok()) << ps.message();
  if (!ps.ok()) return;
  for (int64_t i = 0; i < n; ++i) rs.set(i, 1.0);  // as optim.cu's fill
  std::vector<int32_t> base;
  const int64_t chunks = optk::chunk_bases(plan.t, &base);
  std::vector<float> pa = unset(chunks), pb = unset(chunks), scal(static_cast<size_t>(n), 0.0f);
  const optk::Finish fin{plan.lr, 0.0, 0.0, plan.min_coeff, plan.max_coeff, plan.trust_clip ? 1 : 0, 0};
  const auto fams = families(plan.t);
  std::vector<std::vector<optk::Batch>> all;
  for (const auto& idx : fams) {
    all.push_back(idx.empty() ? std::vector<optk::Batch>{} : optk::make_batches(plan.t, idx, base, [&](optk::Batch& b, int slot, int i) {
      b.s[0][slot] = plan.s[i].bc1;
      b.s[1][slot] = plan.s[i].bc2;
      b.s[2][slot] = plan.s[i].wd;
      b.s[3][slot] = plan.s[i].decay;
    }));
  }
  float* ratio = reinterpret_cast<float*>(rs.at(0));
  for (int phase = 0; phase < 3; ++phase) {
    for (size_t f = 0; f < all.size(); ++f) {
      with_type(fam_dtype(f), fam_master(f), [&](auto e, auto m) {
        using E = decltype(e);
        constexpr bool M = decltype(m)::value;
        auto pass_a = [&](const optk::Batch& b, int block, int tid) {
          return decay == 0   ? optk::lamb_a_thread<E, M, 0>(b, plan.c, block, tid)
                 : decay == 1 ? optk::lamb_a_thread<E, M, 1>(b, plan.c, block, tid)
                              : optk::lamb_a_thread<E, M, 2>(b, plan.c, block, tid);
        };
        if (phase == 0) each_block_sum(all[f], &pa, &pb, pass_a);
        if (phase == 1) {
          for (const optk::Batch& b : all[f]) {
            for (int slot = 0; slot < b.count; ++slot) optk::lamb_finish_slot(b, fin, pa.data(), pb.data(), scal.data(), ratio, slot);
          }
        }
        if (phase == 2) {
          each_thread(all[f], [&](const optk::Batch& b, int block, int tid) {
            if (decay == 0) optk::lamb_b_thread<E, M, 0>(b, plan.c, scal.data(), block, tid);
            else if (decay == 1) optk::lamb_b_thread<E, M, 1>(b, plan.c, scal.data(), block, tid);
            else optk::lamb_b_thread<E, M, 2>(b, plan.c, scal.data(), block, tid);
          });
        }
      });
    }
    if (phase == 0) expect_no_nan(what, pa);
  }
  expect_same(what, sim.m, cpu.m, "exp_avg");
  expect_same(what, sim.v, cpu.v, "exp_avg_sq");
  // The norms sum in another order (ratios within 1e-5); p = p0 - lr r u then rounds
  // differently now and then: a few ulps of |p0| <= 1 (16-bit: an ulp of p).
  expect_close(what, {rs}, {rc}, "ratio", 1e-5, 0);
  expect_close(what, sim.p, cpu.p, "p", key == DType::Float32 ? 1e-6 : 1e-2, 1);
  expect_close(what, sim.w, cpu.w, "master", 1e-6, 1);
}

KTEST(optim_batching, lamb_threads_match_cpu) {
  for (DType t : {DType::Float32, DType::BFloat16}) {
    for (int decay = 0; decay < 3; ++decay) {
      lamb_case(std::string("lamb ") + kiln::dtype_name(t) + " decay " + std::to_string(decay), make(sizes_mixed(), t, t != DType::Float32, 10 + decay),
                t, decay);
    }
  }
  lamb_case("lamb 150 tensors", make(sizes_many(), DType::Float32, false, 14), DType::Float32, 0);
  lamb_case("lamb 1300 chunks", make(sizes_long(), DType::Float32, false, 15), DType::Float32, 0);
}

// ---- LARS / SGD -------------------------------------------------------------------------------------

void lars_case(const std::string& what, const Set& init, DType key, int style, bool adapt, bool combined) {
  Set cpu = init, sim = init;
  const int64_t n = static_cast<int64_t>(init.sizes.size());
  Op rc(DType::Float32, n, 0);
  auto outs = [&](Set& s) {
    std::vector<View> o = views(s.p);
    if (style != 0) append(&o, views(s.x));
    append(&o, views(s.w));
    return o;
  };
  std::vector<int64_t> ints = {n, style, 1, combined, 1, 0};
  for (int64_t i = 0; i < n; ++i) ints.push_back(adapt && i % 5 != 3 ? 1 : 0);
  for (int64_t i = 0; i < n; ++i) ints.push_back(i % 3 == 2 ? 1 : 0);
  ints.insert(ints.end(), init.has_master.begin(), init.has_master.end());
  std::vector<double> floats = {0.1, 0.9, 0.0, 0.02, 1e-8, 1.0};
  for (int64_t i = 0; i < n; ++i) floats.push_back(i % 4 == 1 ? 0.0 : 1e-3);
  const std::vector<View> cin = views(cpu.g);
  std::vector<View> cout = outs(cpu);
  cout.push_back(rc.view());  // the CPU's factors a
  const kiln::Status st = kt::run("lars_step", key, cin, cout, ints, floats);
  KCHECK(st.ok()) << what << ": " << st.message();

  const std::vector<View> sin = views(sim.g), sout = outs(sim);
  kiln::optim::LarsPlan plan;
  const kiln::Status ps = kiln::optim::prepare_lars(args_of("lars_step", sin, sout, ints, floats), &plan);
  KCHECK(ps.ok()) << ps.message();
  if (!ps.ok()) return;
  std::vector<int32_t> base;
  const int64_t chunks = optk::chunk_bases(plan.t, &base);
  std::vector<float> pa = unset(chunks), pb = unset(chunks), scal(static_cast<size_t>(n), 0.0f);
  const optk::Finish fin{plan.lr, plan.eta, plan.eps, 0.0, 0.0, plan.trust_clip ? 1 : 0, combined ? 1 : 0};
  auto fill = [&](optk::Batch& b, int slot, int i) { b.s[0][slot] = plan.s[i].wd; };
  const auto fams = families(plan.t);
  for (size_t f = 0; f < fams.size(); ++f) {
    if (fams[f].empty()) continue;
    std::vector<int> ad;
    for (int i : fams[f]) {
      if (plan.t[i].adapt) ad.push_back(i);
    }
    const auto all = optk::make_batches(plan.t, fams[f], base, fill);
    const auto adapted = ad.empty() ? std::vector<optk::Batch>{} : optk::make_batches(plan.t, ad, base, fill);
    with_type(fam_dtype(f), fam_master(f), [&](auto e, auto m) {
      using E = decltype(e);
      constexpr bool M = decltype(m)::value;
      each_block_sum(adapted, &pa, &pb, [&](const optk::Batch& b, int block, int tid) {
        return combined ? optk::lars_a_thread<E, M, true>(b, plan.c, block, tid) : optk::lars_a_thread<E, M, false>(b, plan.c, block, tid);
      });
      for (const optk::Batch& b : adapted) {
        for (int slot = 0; slot < b.count; ++slot) optk::lars_finish_slot(b, fin, pa.data(), pb.data(), scal.data(), nullptr, slot);
      }
      each_thread(all, [&](const optk::Batch& b, int block, int tid) {
        if (style == 0) optk::lars_b_thread<E, M, 0, false>(b, plan.c, scal.data(), block, tid);
        else if (style == 1) optk::lars_b_thread<E, M, 1, true>(b, plan.c, scal.data(), block, tid);
        else optk::lars_b_thread<E, M, 2, true>(b, plan.c, scal.data(), block, tid);
      });
    });
  }
  if (adapt) {
    // chunks of un-adapted tensors have no partials
    for (size_t i = 0; i < plan.t.size(); ++i) {
      const int64_t nch = optk::chunks_of(plan.t[i].n);
      for (int64_t q = 0; q < nch; ++q) {
        KCHECK(std::isnan(pa[base[i] + q]) != plan.t[i].adapt) << what << ": tensor " << i << " chunk " << q;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const double want = rc.get(i), got = plan.t[i].adapt && plan.t[i].n > 0 ? scal[i] : 1.0;
      KCHECK(std::fabs(got - want) <= 1e-5 * want) << what << ": factor a of tensor " << i << ": " << got << " vs cpu " << want;
    }
    // a differs in its last bits (the norms sum in another order): p and the buffers within a few ulps of their inputs
    expect_close(what, sim.p, cpu.p, "p", key == DType::Float32 ? 1e-6 : 1e-2, 1);
    if (style != 0) expect_close(what, sim.x, cpu.x, "momentum_buffer", 1e-5, 1e-2);
    expect_close(what, sim.w, cpu.w, "master", 1e-6, 1);
  } else {
    expect_same(what, sim.p, cpu.p, "p");
    if (style != 0) expect_same(what, sim.x, cpu.x, "momentum_buffer");
    expect_same(what, sim.w, cpu.w, "master");
  }
}

KTEST(optim_batching, lars_threads_match_cpu) {
  for (DType t : {DType::Float32, DType::Float16}) {
    for (int style = 0; style < 3; ++style) {
      for (int adapt = 0; adapt < 2; ++adapt) {
        lars_case(std::string("lars ") + kiln::dtype_name(t) + " style " + std::to_string(style) + (adapt ? " adapted" : ""),
                  make(sizes_mixed(), t, t != DType::Float32, 20 + style), t, style, adapt, style == 2);
      }
    }
  }
  lars_case("lars 150 tensors", make(sizes_many(), DType::Float32, false, 25), DType::Float32, 1, true, false);
}

// ---- gradient sums of squares --------------------------------------------------------------------------

KTEST(optim_batching, grad_sumsq_threads_match_cpu) {
  Set s = make(sizes_many(), DType::Float32, false, 30);
  s.g[40].set(7, HUGE_VAL);
  const int64_t n = static_cast<int64_t>(s.g.size());
  Op oc(DType::Float32, 2 * n, 0);
  const std::vector<View> in = views(s.g);
  const kiln::Status st = kt::run("optim_grad_sumsq", DType::Float32, in, {oc.view2(2)}, {}, {0.5});
  KCHECK(st.ok()) << st.message();
  std::vector<OptimTensor> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    t[i].p = &in[i];
    t[i].g = &in[i];
    t[i].n = s.sizes[i];
  }
  std::vector<int32_t> base;
  const int64_t chunks = optk::chunk_bases(t, &base);
  std::vector<float> pa = unset(chunks), pb = unset(chunks), out(static_cast<size_t>(2 * n), 0.0f);
  const auto batches = optk::make_batches(t, families(t)[0], base, [](optk::Batch&, int, int) {});
  each_block_sum(batches, &pa, &pb, [](const optk::Batch& b, int block, int tid) { return optk::sumsq_thread<kiln::el::F32>(b, 0.5f, block, tid); });
  expect_no_nan("sumsq", pa);
  for (const optk::Batch& b : batches) {
    for (int slot = 0; slot < b.count; ++slot) optk::sumsq_finish_slot(b, pa.data(), pb.data(), out.data(), static_cast<int>(n), slot);
  }
  for (int64_t i = 0; i < n; ++i) {
    const double want = oc.get(i);
    if (i != 40) KCHECK(std::fabs(out[i] - want) <= 1e-6 * want) << "sum " << i << ": " << out[i] << " vs cpu " << want;
    KCHECK(out[n + i] == oc.get(n + i) && out[n + i] == (i == 40 ? 1.0f : 0.0f)) << "flag " << i;
  }
}

}  // namespace
