// CUDA kernels softmax, log_softmax, softmax_backward, log_softmax_backward,
// cross_entropy, cross_entropy_backward over the last dimension of [R, N]
// views (native/KERNELS.md "Softmax and cross entropy"). Validation: the CPU's
// prepare_softmax / prepare_cross_entropy (native/core/softmax.cpp).
//
// The CPU's arithmetic, in the CPU's order (native/cpu/softmax.cpp and the row
// loops of reduce_impl.inc): a row's max through max keys (order-free), and
// every row sum over 16 float64 lanes -- element c in lane c % 16, each lane in
// increasing c, lanes merged 8, 4, 2, 1 apart -- which is exactly 16 threads of
// a half-warp walking the row with stride 16 and a width-16 shuffle tree. So the
// row statistics (max, sum of e^(x - max), dot products) are the CPU's bits, and
// so is every output, each computed from them elementwise with fastmath
// (x - max exact by TwoSum, e^ in double, one rounding; NaN outputs are the
// canonical quiet NaN on both). This file is compiled with -fmad=false
// (CMakeLists.txt) so nvcc contracts nothing into FMA.
//
// Kernels: a row kernel (two rows per warp, 16 lanes each) writes per-row
// statistics; an elementwise kernel over all R x N outputs then applies them.
// cross_entropy: the row kernel also writes lse and the row's loss (float64);
// one block then sums the R row losses in a fixed order (thread t takes rows
// t, t + 1024, ... in order, then a fixed tree) -- deterministic, but not the
// CPU's sequential row order, so the loss may differ from the CPU's in the
// last float64 bits before its rounding to float32 (in practice the same
// float32). Target validation runs first on the device (cuda/index_check.cuh):
// one synchronization, then the CPU's ValueError text for the first bad row.
#include <string>

#include "common.cuh"
#include "float_keys.cuh"
#include "index_check.cuh"
#include "kiln/element.h"
#include "kiln/fastmath.h"
#include "kiln/registry.h"
#include "kiln/softmax.h"

namespace kiln {
namespace cuda {
namespace {

constexpr int kLanes = 16;  // the CPU's double lanes (native/cpu/reduce_table.h kLanes)
constexpr unsigned kFull = 0xFFFFFFFFu;

// A [R, N] operand: element (r, c) at p[r * s0 + c * s1].
template <class T>
struct Mat {
  T* p;
  int64_t s0, s1;
  __device__ __forceinline__ T& at(int64_t r, int64_t c) const { return p[r * s0 + c * s1]; }
};

template <class T>
Mat<T> mat(const View& v) {
  return Mat<T>{reinterpret_cast<T*>(v.data()), v.strides[0], v.strides[1]};
}

// e^(x - m), x - m taken exactly (the CPU's exp_diff).
__device__ __forceinline__ double exp_diff(float x, float m) {
  float err;
  const float d = fm::two_diff(x, m, &err);
  return fm::exp_sum_d(d, err);
}

// log(s) for s = sum e^(x - m) of a row (the CPU's log_of_sum).
__device__ __forceinline__ double log_of_sum(double s) {
  const double inf = num::bits_f64(0x7FF0000000000000ull);
  if (s > 0.0 && s < inf) return fm::log_d(s);
  return s == 0.0 ? -inf : num::bits_f64(0x7FF8000000000000ull);
}

// v rounded to float; NaN as the canonical quiet NaN (the CPU's out_f32).
__device__ __forceinline__ float out_f32(double v) { return v != v ? fm::kNanF : static_cast<float>(v); }

// The 16 lanes of a half-warp merged 8, 4, 2, 1 apart: l[j] = l[j] + l[j + w],
// as the CPU's lanes_total; the total is valid in the half-warp's first lane and
// returned to all 16.
__device__ __forceinline__ double lanes_total(double v) {
  for (int w = kLanes / 2; w >= 1; w >>= 1) v = v + __shfl_down_sync(kFull, v, w, kLanes);
  return __shfl_sync(kFull, v, 0, kLanes);
}

// The max of a row (lane j takes elements j, j + 16, ...; n = 0 gives -inf):
// max keys, so any order gives the CPU's row_max.
template <class E>
__device__ __forceinline__ float row_max(const Mat<const typename E::T>& x, int64_t r, int64_t n, int lane) {
  int32_t k = max_key(-fm::kInfF);
  for (int64_t c = lane; c < n; c += kLanes) {
    const int32_t v = max_key(E::to_f32(x.at(r, c)));
    k = v > k ? v : k;
  }
  for (int w = kLanes / 2; w >= 1; w >>= 1) {
    const int32_t o = __shfl_xor_sync(kFull, k, w, kLanes);
    k = o > k ? o : k;
  }
  return key_float(k);
}

// Two rows per warp, 16 lanes each: warp w takes rows 2w and 2w + 1 (grid-stride
// over warps). The loop bound is uniform over the warp, as the shuffles need all
// 32 lanes; the lanes of a row past R work on n = 0 elements and write nothing.
__device__ __forceinline__ int64_t first_warp() { return static_cast<int64_t>(blockIdx.x) * (kBlock / 32) + threadIdx.x / 32; }
__device__ __forceinline__ int64_t warp_step() { return static_cast<int64_t>(gridDim.x) * (kBlock / 32); }
__device__ __forceinline__ int64_t half_of_warp() { return (threadIdx.x >> 4) & 1; }

unsigned row_blocks(int64_t R) {
  int64_t b = (R + (kBlock / 16) - 1) / (kBlock / 16);  // 16 rows per block
  if (b > kMaxBlocks) b = kMaxBlocks;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

// ---- softmax family -------------------------------------------------------------------------

struct RowStat {
  double a;  // softmax: 1 / sum; log_softmax: log(sum); backward: the dot / the sum of gy
  float m;   // the row max (forward ops)
};

template <class E, SoftmaxOp OP>
__global__ void __launch_bounds__(kBlock) softmax_rows(Mat<const typename E::T> x, Mat<const typename E::T> gy, int64_t R,
                                                       int64_t N, RowStat* __restrict__ stats) {
  const int lane = static_cast<int>(threadIdx.x) & (kLanes - 1);
  for (int64_t w = first_warp(); w * 2 < R; w += warp_step()) {
    const int64_t r = w * 2 + half_of_warp();
    const bool active = r < R;
    const int64_t n = active ? N : 0;
    RowStat st;
    st.m = 0.0f;
    double l = -0.0;
    if constexpr (OP == SoftmaxOp::Softmax || OP == SoftmaxOp::LogSoftmax) {
      st.m = row_max<E>(x, r, n, lane);
      for (int64_t c = lane; c < n; c += kLanes) l = l + exp_diff(E::to_f32(x.at(r, c)), st.m);
      const double s = lanes_total(l);
      st.a = OP == SoftmaxOp::Softmax ? 1.0 / s : log_of_sum(s);
    } else if constexpr (OP == SoftmaxOp::SoftmaxBackward) {
      // dot = sum gy y (the CPU's row_dot(gy, y); a product of two floats is exact in double)
      for (int64_t c = lane; c < n; c += kLanes) {
        l = l + static_cast<double>(E::to_f32(gy.at(r, c))) * static_cast<double>(E::to_f32(x.at(r, c)));
      }
      st.a = lanes_total(l);
    } else {
      for (int64_t c = lane; c < n; c += kLanes) l = l + static_cast<double>(E::to_f32(gy.at(r, c)));
      st.a = lanes_total(l);
    }
    if (active && lane == 0) stats[r] = st;
  }
}

template <class E, SoftmaxOp OP>
__global__ void __launch_bounds__(kBlock) softmax_apply(Mat<const typename E::T> x, Mat<const typename E::T> gy,
                                                        Mat<typename E::T> out, int64_t R, int64_t N,
                                                        const RowStat* __restrict__ stats) {
  KILN_GRID_STRIDE_LOOP(i, R * N) {
    const int64_t r = i / N, c = i - r * N;
    const RowStat st = stats[r];
    const float xv = E::to_f32(x.at(r, c));
    float v;
    if constexpr (OP == SoftmaxOp::Softmax) {
      v = out_f32(exp_diff(xv, st.m) * st.a);
    } else if constexpr (OP == SoftmaxOp::LogSoftmax) {
      v = out_f32((static_cast<double>(xv) - static_cast<double>(st.m)) - st.a);
    } else if constexpr (OP == SoftmaxOp::SoftmaxBackward) {
      v = out_f32(static_cast<double>(xv) * (static_cast<double>(E::to_f32(gy.at(r, c))) - st.a));
    } else {
      v = out_f32(static_cast<double>(E::to_f32(gy.at(r, c))) - fm::exp_sum_d(xv, 0.0f) * st.a);
    }
    out.at(r, c) = E::from_f32(v);
  }
}

template <class E, SoftmaxOp OP>
Status launch_softmax(const KernelArgs& args, int64_t R, int64_t N, RowStat* stats, cudaStream_t s) {
  using T = typename E::T;
  const Mat<const T> x = mat<const T>(args.in[0]);
  const Mat<const T> gy = args.n_in > 1 ? mat<const T>(args.in[1]) : x;
  softmax_rows<E, OP><<<row_blocks(R), kBlock, 0, s>>>(x, gy, R, N, stats);
  KILN_CUDA_LAUNCH_CHECK(args.op);
  softmax_apply<E, OP><<<grid_for(R * N), kBlock, 0, s>>>(x, gy, mat<T>(args.out[0]), R, N, stats);
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

template <class E>
Status softmax_dtype(const KernelArgs& args, SoftmaxOp op, int64_t R, int64_t N, RowStat* stats, cudaStream_t s) {
  switch (op) {
    case SoftmaxOp::Softmax: return launch_softmax<E, SoftmaxOp::Softmax>(args, R, N, stats, s);
    case SoftmaxOp::LogSoftmax: return launch_softmax<E, SoftmaxOp::LogSoftmax>(args, R, N, stats, s);
    case SoftmaxOp::SoftmaxBackward: return launch_softmax<E, SoftmaxOp::SoftmaxBackward>(args, R, N, stats, s);
    case SoftmaxOp::LogSoftmaxBackward: return launch_softmax<E, SoftmaxOp::LogSoftmaxBackward>(args, R, N, stats, s);
  }
  return Status(StatusCode::Internal, std::string("kiln: unknown softmax op ") + args.op);
}

Status softmax_kernel(const KernelArgs& args) {
  SoftmaxPlan plan;
  KILN_RETURN_IF_ERROR(prepare_softmax(args, &plan));
  const int64_t R = plan.rows, N = plan.cols;
  if (R == 0 || N == 0) return Status::Ok();
  const int device = args.out[0].device.index;
  KILN_CUDA_ENTER(guard, device, args.op, s);
  DeviceScratch stats;
  KILN_RETURN_IF_ERROR(stats.alloc(device, static_cast<size_t>(R) * sizeof(RowStat)));
  switch (args.in[0].dtype) {
    case DType::Float32: return softmax_dtype<el::F32>(args, plan.op, R, N, stats.as<RowStat>(), s);
    case DType::Float16: return softmax_dtype<el::F16>(args, plan.op, R, N, stats.as<RowStat>(), s);
    case DType::BFloat16: return softmax_dtype<el::BF16>(args, plan.op, R, N, stats.as<RowStat>(), s);
    default: break;
  }
  return no_kernel(args.op, args.in[0].dtype, DeviceKind::CUDA);
}

// ---- cross entropy ----------------------------------------------------------------------------

struct Targets {
  const int32_t* p;
  int64_t s;
  __device__ __forceinline__ int64_t at(int64_t r) const { return p[r * s]; }
};

// Per row: lse = max + log(sum e^(x - max)) (every row), and the row's loss
// -(1 - ls) log p[t] - ls/C sum_c log p[c] (0 for an ignored row), in float64.
template <class E>
__global__ void __launch_bounds__(kBlock) ce_rows(Mat<const typename E::T> x, Targets tg, int64_t R, int64_t C,
                                                  int64_t ignore, double ls, float* __restrict__ lse, int64_t lse_s,
                                                  double* __restrict__ row_loss) {
  const int lane = static_cast<int>(threadIdx.x) & (kLanes - 1);
  for (int64_t w = first_warp(); w * 2 < R; w += warp_step()) {
    const int64_t r = w * 2 + half_of_warp();
    const bool active = r < R;
    const int64_t n = active ? C : 0;
    const float m = row_max<E>(x, r, n, lane);
    double l = -0.0;
    for (int64_t c = lane; c < n; c += kLanes) l = l + exp_diff(E::to_f32(x.at(r, c)), m);
    const double md = static_cast<double>(m), log_s = log_of_sum(lanes_total(l));
    const int64_t target = active ? tg.at(r) : ignore;
    const bool counted = target != ignore;
    double row_sum = 0.0;
    if (ls > 0.0) {  // uniform over the kernel: the shuffles see every lane
      double l2 = -0.0;
      for (int64_t c = lane; c < (counted ? n : 0); c += kLanes) l2 = l2 + static_cast<double>(E::to_f32(x.at(r, c)));
      row_sum = lanes_total(l2);
    }
    if (active && lane == 0) {
      const double lse_v = md + log_s;
      lse[r * lse_s] = lse_v != lse_v ? fm::kNanF : static_cast<float>(lse_v);
      double v = 0.0;
      if (counted) {
        // log p[c] = (x[c] - m) - log s, with x[c] - m exact in double.
        v = -(1.0 - ls) * ((static_cast<double>(E::to_f32(x.at(r, target))) - md) - log_s);
        if (ls > 0.0) {
          const double cd = static_cast<double>(C);
          v -= ls / cd * ((row_sum - cd * md) - cd * log_s);
        }
      }
      row_loss[r] = v;
    }
  }
}

constexpr int kLossThreads = 1024;

// loss = (sum of the row losses) / count, one block: thread t adds rows t,
// t + 1024, ... in order, then a fixed tree. count == 0 gives NaN.
__global__ void __launch_bounds__(kLossThreads) ce_loss(const double* __restrict__ row_loss, int64_t R, int64_t count,
                                                       float* __restrict__ loss) {
  __shared__ double part[kLossThreads / 32];
  double v = 0.0;
  for (int64_t r = threadIdx.x; r < R; r += kLossThreads) v = v + row_loss[r];
  for (int o = 16; o > 0; o >>= 1) v = v + __shfl_down_sync(kFull, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = part[lane];  // kLossThreads / 32 == 32 partials
    for (int o = 16; o > 0; o >>= 1) v = v + __shfl_down_sync(kFull, v, o);
    if (lane == 0) {
      const double mean = v / static_cast<double>(count);  // NaN when every row is ignored
      *loss = mean != mean ? fm::kNanF : static_cast<float>(mean);
    }
  }
}

// glogits[r, c] = gloss / n (e^(x - lse) - (1 - ls)[c == t] - ls / C); 0 on ignored rows.
template <class E>
__global__ void __launch_bounds__(kBlock) ce_backward(Mat<const typename E::T> x, Targets tg, const float* __restrict__ lse,
                                                      int64_t lse_s, const float* __restrict__ gloss, int64_t count,
                                                      int64_t ignore, double ls, int64_t R, int64_t C,
                                                      Mat<typename E::T> g) {
  const double scale = count == 0 ? 0.0 : static_cast<double>(*gloss) / static_cast<double>(count);
  const double sub = ls / static_cast<double>(C);
  KILN_GRID_STRIDE_LOOP(i, R * C) {
    const int64_t r = i / C, c = i - r * C;
    const int64_t t = tg.at(r);
    float v = 0.0f;
    if (t != ignore) {
      const float xv = E::to_f32(x.at(r, c));
      const float l = lse[r * lse_s];
      if (c == t) {
        float err;
        const float d = fm::two_diff(xv, l, &err);
        const double gt = scale * ((fm::exp_sum_d(d, err) - sub) - (1.0 - ls));
        v = gt != gt ? fm::kNanF : static_cast<float>(gt);
      } else {
        v = out_f32(scale * (exp_diff(xv, l) - sub));
      }
    }
    g.at(r, c) = E::from_f32(v);
  }
}

template <class E>
Status cross_entropy_dtype(const KernelArgs& args, const CrossEntropyPlan& plan, int64_t count, int device,
                           cudaStream_t s) {
  using T = typename E::T;
  const View &logits = args.in[0], &targets = args.in[1];
  const int64_t R = plan.rows, C = plan.classes;
  const Mat<const T> x = mat<const T>(logits);
  const Targets tg{reinterpret_cast<const int32_t*>(targets.data()), targets.strides[0]};
  if (!plan.backward) {
    const View &loss = args.out[0], &lse = args.out[1];
    DeviceScratch row_loss;
    if (R > 0) {
      KILN_RETURN_IF_ERROR(row_loss.alloc(device, static_cast<size_t>(R) * sizeof(double)));
      ce_rows<E><<<row_blocks(R), kBlock, 0, s>>>(x, tg, R, C, plan.ignore_index, plan.label_smoothing,
                                                  reinterpret_cast<float*>(lse.data()), lse.strides[0],
                                                  row_loss.as<double>());
      KILN_CUDA_LAUNCH_CHECK(args.op);
    }
    ce_loss<<<1, kLossThreads, 0, s>>>(row_loss.as<double>(), R, count, reinterpret_cast<float*>(loss.data()));
    KILN_CUDA_LAUNCH_CHECK(args.op);
    return Status::Ok();
  }
  const View &lse = args.in[2], &gloss = args.in[3], &g = args.out[0];
  if (R == 0 || C == 0) return Status::Ok();
  ce_backward<E><<<grid_for(R * C), kBlock, 0, s>>>(x, tg, reinterpret_cast<const float*>(lse.data()), lse.strides[0],
                                                    reinterpret_cast<const float*>(gloss.data()), count,
                                                    plan.ignore_index, plan.label_smoothing, R, C, mat<T>(g));
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

Status cross_entropy_kernel(const KernelArgs& args) {
  CrossEntropyPlan plan;
  KILN_RETURN_IF_ERROR(prepare_cross_entropy(args, &plan));
  const int device = args.in[0].device.index;
  KILN_CUDA_ENTER(guard, device, args.op, s);
  // Every target is checked before anything is written (one synchronization).
  IndexCheckResult chk;
  KILN_RETURN_IF_ERROR(check_indices(args.in[1], plan.classes, true, plan.ignore_index, device, s, args.op, &chk));
  if (chk.first_bad >= 0) return cross_entropy_target_error(args.op, chk.first_bad, chk.bad_value, plan);
  switch (args.in[0].dtype) {
    case DType::Float32: return cross_entropy_dtype<el::F32>(args, plan, chk.count, device, s);
    case DType::Float16: return cross_entropy_dtype<el::F16>(args, plan, chk.count, device, s);
    case DType::BFloat16: return cross_entropy_dtype<el::BF16>(args, plan, chk.count, device, s);
    default: break;
  }
  return no_kernel(args.op, args.in[0].dtype, DeviceKind::CUDA);
}

const bool kRegistered = register_softmax_kernels(DeviceKind::CUDA, softmax_kernel, cross_entropy_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
