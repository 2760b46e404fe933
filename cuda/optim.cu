// CUDA kernels adamw_step, lamb_step, lars_step (SGD too) and optim_grad_sumsq
// (native/KERNELS.md "Optimizers"), multi-tensor: a launch covers many tensors
// of one parameter dtype, cut into chunks (cuda/optim_kernels.cuh). Validation
// and host scalars: native/core/optim.cpp, shared with the CPU kernels
// (native/cpu/optim.cpp), which are the reference.
//
// The per-element arithmetic is kiln/optim.h with every operation rounded on
// its own (__fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn), as the CPU computes it
// (-ffp-contract=off): AdamW and SGD / LARS without adaptation give the CPU's
// bits. LAMB and adapted LARS differ from the CPU only through the norms
// (float32 partials per 16384-element chunk in another order, then float64).
//
// Per call: pass A over every batch (norms into per-chunk partials), one
// "finish" launch per batch (a thread per tensor adds its chunk partials in
// float64 in order and computes the trust ratio into a per-tensor array),
// pass B over every batch. All on kiln's stream; no host synchronisation.
#include <string>
#include <vector>

#include "common.cuh"
#include "kiln/element.h"
#include "kiln/optim.h"
#include "kiln/registry.h"
#include "optim_kernels.cuh"

namespace kiln {
namespace cuda {
namespace {

using optim::OptimTensor;
using optk::Batch;
using optk::kThreads;
using optk::Pair;

// ---- block sums (fixed tree; the result is valid in thread 0) -------------------------------

__device__ __forceinline__ float block_sum(float v, float* sm) {
  for (int o = 16; o > 0; o >>= 1) v = __fadd_rn(v, __shfl_down_sync(0xFFFFFFFFu, v, o));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) sm[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? sm[lane] : 0.0f;
    for (int o = kThreads / 64; o > 0; o >>= 1) v = __fadd_rn(v, __shfl_down_sync(0xFFFFFFFFu, v, o));
  }
  __syncthreads();
  return v;
}

__device__ __forceinline__ void write_partials(Pair acc, const Batch& b, float* pa, float* pb) {
  __shared__ float sm[kThreads / 32];
  const float a = block_sum(acc.a, sm);
  const float c = block_sum(acc.b, sm);
  if (threadIdx.x == 0) {
    const int slot = b.slot[blockIdx.x];
    const int64_t q = static_cast<int64_t>(b.chunk_base[slot]) + b.chunk0[slot] + b.rel[blockIdx.x];
    pa[q] = a;
    pb[q] = c;
  }
}

// ---- kernels ----------------------------------------------------------------------------------

template <class E, bool MASTER, bool AMS, bool L2>
__global__ void __launch_bounds__(kThreads) adamw_kernel(const __grid_constant__ Batch b, optim::AdamwGroup c) {
  optk::adamw_thread<E, MASTER, AMS, L2>(b, c, blockIdx.x, threadIdx.x);
}

template <class E, bool MASTER, int MODE>
__global__ void __launch_bounds__(kThreads) lamb_a_kernel(const __grid_constant__ Batch b, optim::LambGroup c, float* pa,
                                                          float* pb) {
  write_partials(optk::lamb_a_thread<E, MASTER, MODE>(b, c, blockIdx.x, threadIdx.x), b, pa, pb);
}

template <class E, bool MASTER, int MODE>
__global__ void __launch_bounds__(kThreads) lamb_b_kernel(const __grid_constant__ Batch b, optim::LambGroup c,
                                                          const float* scal) {
  optk::lamb_b_thread<E, MASTER, MODE>(b, c, scal, blockIdx.x, threadIdx.x);
}

template <class E, bool MASTER, bool COMBINED>
__global__ void __launch_bounds__(kThreads) lars_a_kernel(const __grid_constant__ Batch b, optim::LarsGroup c, float* pa,
                                                          float* pb) {
  write_partials(optk::lars_a_thread<E, MASTER, COMBINED>(b, c, blockIdx.x, threadIdx.x), b, pa, pb);
}

template <class E, bool MASTER, int STYLE, bool NEST>
__global__ void __launch_bounds__(kThreads) lars_b_kernel(const __grid_constant__ Batch b, optim::LarsGroup c,
                                                          const float* scal) {
  optk::lars_b_thread<E, MASTER, STYLE, NEST>(b, c, scal, blockIdx.x, threadIdx.x);
}

template <class E>
__global__ void __launch_bounds__(kThreads) sumsq_kernel(const __grid_constant__ Batch b, float gscale, float* pa, float* pb) {
  write_partials(optk::sumsq_thread<E>(b, gscale, blockIdx.x, threadIdx.x), b, pa, pb);
}

__global__ void lamb_finish_kernel(const __grid_constant__ Batch b, optk::Finish f, const float* pa, const float* pb,
                                   float* scal, float* ratio) {
  const int slot = blockIdx.x * blockDim.x + threadIdx.x;
  if (slot < b.count) optk::lamb_finish_slot(b, f, pa, pb, scal, ratio, slot);
}

__global__ void lars_finish_kernel(const __grid_constant__ Batch b, optk::Finish f, const float* pa, const float* pb,
                                   float* scal, float* ratio) {
  const int slot = blockIdx.x * blockDim.x + threadIdx.x;
  if (slot < b.count) optk::lars_finish_slot(b, f, pa, pb, scal, ratio, slot);
}

__global__ void sumsq_finish_kernel(const __grid_constant__ Batch b, const float* pa, const float* pb, float* out, int n) {
  const int slot = blockIdx.x * blockDim.x + threadIdx.x;
  if (slot < b.count) optk::sumsq_finish_slot(b, pa, pb, out, n, slot);
}

__global__ void fill_kernel(float* x, int n, float value) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = value;
}

// ---- host side ----------------------------------------------------------------------------------

// Tensors of one launch family: the parameter dtype and whether master weights are used.
struct Family {
  DType dtype;
  bool master;
};
constexpr Family kFamilies[] = {{DType::Float32, false},
                                {DType::Float16, false},
                                {DType::Float16, true},
                                {DType::BFloat16, false},
                                {DType::BFloat16, true}};

std::vector<int> members(const std::vector<OptimTensor>& t, const Family& f) {
  std::vector<int> idx;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].n > 0 && t[i].p->dtype == f.dtype && (t[i].master != nullptr) == f.master) idx.push_back(static_cast<int>(i));
  }
  return idx;
}

// Calls fn(E{}, std::integral_constant<bool, MASTER>{}) for a family.
template <class Fn>
Status with_family(const Family& f, Fn fn) {
  switch (f.dtype) {
    case DType::Float32: return fn(el::F32{}, std::false_type{});
    case DType::Float16: return f.master ? fn(el::F16{}, std::true_type{}) : fn(el::F16{}, std::false_type{});
    case DType::BFloat16: return f.master ? fn(el::BF16{}, std::true_type{}) : fn(el::BF16{}, std::false_type{});
    default: break;
  }
  return Status(StatusCode::Internal, "kiln: optimizer: unexpected parameter dtype");
}

unsigned grid_of(const Batch& b) { return static_cast<unsigned>(b.blocks); }
unsigned finish_grid(const Batch& b) { return static_cast<unsigned>((b.count + 127) / 128); }

Status adamw_cuda(const KernelArgs& args) {
  optim::AdamwPlan plan;
  KILN_RETURN_IF_ERROR(optim::prepare_adamw(args, &plan));
  const int device = plan.t[0].p->device.index;
  KILN_CUDA_ENTER(guard, device, args.op, st);
  std::vector<int32_t> base;
  optk::chunk_bases(plan.t, &base);
  for (const Family& fam : kFamilies) {
    const std::vector<int> idx = members(plan.t, fam);
    if (idx.empty()) continue;
    const std::vector<Batch> batches = optk::make_batches(plan.t, idx, base, [&](Batch& b, int slot, int i) {
      const optim::AdamwScalars& s = plan.s[i];
      b.s[0][slot] = s.decay;
      b.s[1][slot] = s.wd;
      b.s[2][slot] = s.step_size;
      b.s[3][slot] = s.bc2_sqrt;
    });
    KILN_RETURN_IF_ERROR(with_family(fam, [&](auto e, auto master) -> Status {
      using E = decltype(e);
      constexpr bool M = decltype(master)::value;
      auto k = plan.amsgrad ? (plan.l2 ? &adamw_kernel<E, M, true, true> : &adamw_kernel<E, M, true, false>)
                            : (plan.l2 ? &adamw_kernel<E, M, false, true> : &adamw_kernel<E, M, false, false>);
      for (const Batch& b : batches) {
        k<<<grid_of(b), kThreads, 0, st>>>(b, plan.c);
        KILN_CUDA_LAUNCH_CHECK(args.op);
      }
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

// Scratch of a two-pass call: partials [2][chunks] and one float per tensor.
struct TwoPassScratch {
  DeviceScratch mem;
  float* pa = nullptr;
  float* pb = nullptr;
  float* scal = nullptr;
  Status alloc(int device, int64_t chunks, int64_t n) {
    KILN_RETURN_IF_ERROR(mem.alloc(device, static_cast<size_t>(2 * chunks + n) * sizeof(float)));
    pa = mem.as<float>();
    pb = pa + chunks;
    scal = pb + chunks;
    return Status::Ok();
  }
};

Status lamb_cuda(const KernelArgs& args) {
  optim::LambPlan plan;
  KILN_RETURN_IF_ERROR(optim::prepare_lamb(args, &plan));
  const int device = plan.t[0].p->device.index;
  const int n = static_cast<int>(plan.t.size());
  KILN_CUDA_ENTER(guard, device, args.op, st);
  float* ratio = plan.ratio == nullptr ? nullptr : reinterpret_cast<float*>(plan.ratio->data());
  if (ratio != nullptr) {
    fill_kernel<<<(n + 255) / 256, 256, 0, st>>>(ratio, n, 1.0f);
    KILN_CUDA_LAUNCH_CHECK(args.op);
  }
  std::vector<int32_t> base;
  const int64_t chunks = optk::chunk_bases(plan.t, &base);
  if (chunks == 0) return Status::Ok();
  TwoPassScratch scratch;
  KILN_RETURN_IF_ERROR(scratch.alloc(device, chunks, n));
  const optk::Finish fin{plan.lr, 0.0, 0.0, plan.min_coeff, plan.max_coeff, plan.trust_clip ? 1 : 0, 0};
  std::vector<std::vector<Batch>> all;
  for (const Family& fam : kFamilies) {
    const std::vector<int> idx = members(plan.t, fam);
    all.push_back(idx.empty() ? std::vector<Batch>{} : optk::make_batches(plan.t, idx, base, [&](Batch& b, int slot, int i) {
      const optim::LambScalars& s = plan.s[i];
      b.s[0][slot] = s.bc1;
      b.s[1][slot] = s.bc2;
      b.s[2][slot] = s.wd;
      b.s[3][slot] = s.decay;
    }));
  }
  // pass A, finish, pass B: each over every family, in that order
  for (int phase = 0; phase < 3; ++phase) {
    for (size_t f = 0; f < all.size(); ++f) {
      if (all[f].empty()) continue;
      KILN_RETURN_IF_ERROR(with_family(kFamilies[f], [&](auto e, auto master) -> Status {
        using E = decltype(e);
        constexpr bool M = decltype(master)::value;
        for (const Batch& b : all[f]) {
          if (phase == 0) {
            auto k = plan.decay == optim::kLambUpdate ? &lamb_a_kernel<E, M, optim::kLambUpdate>
                     : plan.decay == optim::kLambL2   ? &lamb_a_kernel<E, M, optim::kLambL2>
                                                      : &lamb_a_kernel<E, M, optim::kLambDecoupled>;
            k<<<grid_of(b), kThreads, 0, st>>>(b, plan.c, scratch.pa, scratch.pb);
          } else if (phase == 1) {
            lamb_finish_kernel<<<finish_grid(b), 128, 0, st>>>(b, fin, scratch.pa, scratch.pb, scratch.scal, ratio);
          } else {
            auto k = plan.decay == optim::kLambUpdate ? &lamb_b_kernel<E, M, optim::kLambUpdate>
                     : plan.decay == optim::kLambL2   ? &lamb_b_kernel<E, M, optim::kLambL2>
                                                      : &lamb_b_kernel<E, M, optim::kLambDecoupled>;
            k<<<grid_of(b), kThreads, 0, st>>>(b, plan.c, scratch.scal);
          }
          KILN_CUDA_LAUNCH_CHECK(args.op);
        }
        return Status::Ok();
      }));
    }
  }
  return Status::Ok();
}

template <class E, bool M>
auto lars_b_for(int style, bool nesterov) {
  if (style == optim::kLarsNone) return &lars_b_kernel<E, M, optim::kLarsNone, false>;
  if (style == optim::kLarsSgd) {
    return nesterov ? &lars_b_kernel<E, M, optim::kLarsSgd, true> : &lars_b_kernel<E, M, optim::kLarsSgd, false>;
  }
  return nesterov ? &lars_b_kernel<E, M, optim::kLarsPaper, true> : &lars_b_kernel<E, M, optim::kLarsPaper, false>;
}

Status lars_cuda(const KernelArgs& args) {
  optim::LarsPlan plan;
  KILN_RETURN_IF_ERROR(optim::prepare_lars(args, &plan));
  const int device = plan.t[0].p->device.index;
  const int n = static_cast<int>(plan.t.size());
  KILN_CUDA_ENTER(guard, device, args.op, st);
  float* ratio = plan.ratio == nullptr ? nullptr : reinterpret_cast<float*>(plan.ratio->data());
  std::vector<int32_t> base;
  const int64_t chunks = optk::chunk_bases(plan.t, &base);
  const bool norms = plan.needs_norms();
  TwoPassScratch scratch;
  if (norms) KILN_RETURN_IF_ERROR(scratch.alloc(device, chunks, n));
  if (ratio != nullptr) {
    fill_kernel<<<(n + 255) / 256, 256, 0, st>>>(ratio, n, 1.0f);
    KILN_CUDA_LAUNCH_CHECK(args.op);
  }
  if (chunks == 0) return Status::Ok();
  const optk::Finish fin{plan.lr, plan.eta, plan.eps, 0.0, 0.0, plan.trust_clip ? 1 : 0,
                         plan.norm == optim::kLarsCombined ? 1 : 0};
  auto fill = [&](Batch& b, int slot, int i) { b.s[0][slot] = plan.s[i].wd; };
  std::vector<std::vector<Batch>> all, adapted;
  for (const Family& fam : kFamilies) {
    const std::vector<int> idx = members(plan.t, fam);
    all.push_back(idx.empty() ? std::vector<Batch>{} : optk::make_batches(plan.t, idx, base, fill));
    std::vector<int> ad;
    for (int i : idx) {
      if (plan.t[i].adapt) ad.push_back(i);
    }
    adapted.push_back(!norms || ad.empty() ? std::vector<Batch>{} : optk::make_batches(plan.t, ad, base, fill));
  }
  for (int phase = 0; phase < 3; ++phase) {
    for (size_t f = 0; f < all.size(); ++f) {
      const std::vector<Batch>& list = phase < 2 ? adapted[f] : all[f];
      if (list.empty()) continue;
      KILN_RETURN_IF_ERROR(with_family(kFamilies[f], [&](auto e, auto master) -> Status {
        using E = decltype(e);
        constexpr bool M = decltype(master)::value;
        for (const Batch& b : list) {
          if (phase == 0) {
            auto k = plan.norm == optim::kLarsCombined ? &lars_a_kernel<E, M, true> : &lars_a_kernel<E, M, false>;
            k<<<grid_of(b), kThreads, 0, st>>>(b, plan.c, scratch.pa, scratch.pb);
          } else if (phase == 1) {
            lars_finish_kernel<<<finish_grid(b), 128, 0, st>>>(b, fin, scratch.pa, scratch.pb, scratch.scal, ratio);
          } else {
            lars_b_for<E, M>(plan.style, plan.nesterov)<<<grid_of(b), kThreads, 0, st>>>(b, plan.c, scratch.scal);
          }
          KILN_CUDA_LAUNCH_CHECK(args.op);
        }
        return Status::Ok();
      }));
    }
  }
  return Status::Ok();
}

Status sumsq_cuda(const KernelArgs& args) {
  optim::SumsqPlan plan;
  KILN_RETURN_IF_ERROR(optim::prepare_sumsq(args, &plan));
  const int device = plan.out->device.index;
  const int n = static_cast<int>(plan.g.size());
  KILN_CUDA_ENTER(guard, device, args.op, st);
  float* out = reinterpret_cast<float*>(plan.out->data());
  KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(out, 0, static_cast<size_t>(2 * n) * sizeof(float), st), args.op);
  // The gradients as tensors of the batch machinery (role g only).
  std::vector<OptimTensor> t(n);
  for (int i = 0; i < n; ++i) {
    t[i].p = plan.g[i];
    t[i].g = plan.g[i];
    t[i].n = plan.g[i]->numel();
  }
  std::vector<int32_t> base;
  const int64_t chunks = optk::chunk_bases(t, &base);
  if (chunks == 0) return Status::Ok();
  TwoPassScratch scratch;
  KILN_RETURN_IF_ERROR(scratch.alloc(device, chunks, 0));
  for (const DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
    std::vector<int> idx;
    for (int i = 0; i < n; ++i) {
      if (t[i].n > 0 && t[i].g->dtype == dt) idx.push_back(i);
    }
    if (idx.empty()) continue;
    const std::vector<Batch> batches = optk::make_batches(t, idx, base, [](Batch&, int, int) {});
    auto k = dt == DType::Float32 ? &sumsq_kernel<el::F32> : dt == DType::Float16 ? &sumsq_kernel<el::F16> : &sumsq_kernel<el::BF16>;
    for (const Batch& b : batches) {
      k<<<grid_of(b), kThreads, 0, st>>>(b, plan.gscale, scratch.pa, scratch.pb);
      KILN_CUDA_LAUNCH_CHECK(args.op);
    }
    for (const Batch& b : batches) {
      sumsq_finish_kernel<<<finish_grid(b), 128, 0, st>>>(b, scratch.pa, scratch.pb, out, n);
      KILN_CUDA_LAUNCH_CHECK(args.op);
    }
  }
  return Status::Ok();
}

const bool kRegistered = optim::register_optim_kernel("adamw_step", DeviceKind::CUDA, adamw_cuda) &&
                         optim::register_optim_kernel("lamb_step", DeviceKind::CUDA, lamb_cuda) &&
                         optim::register_optim_kernel("lars_step", DeviceKind::CUDA, lars_cuda) &&
                         optim::register_optim_kernel("optim_grad_sumsq", DeviceKind::CUDA, sumsq_cuda);

}  // namespace
}  // namespace cuda
}  // namespace kiln
