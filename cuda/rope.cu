// CUDA kernel 'rope' (native/KERNELS.md "Rotary embedding") for float32,
// float16 and bfloat16. Validation: prepare_rope (kiln/nn_ops.h), shared with
// the CPU kernel (native/cpu/rope.cpp), which is the reference.
//
// One thread per (batch, position, pair i): it computes the angle
// pos * theta^(-2i/D) and its cos / sin in float64 once and rotates pair i of
// every head. theta^(-2i/D) is computed on the host with std::pow exactly as
// the CPU kernel does (passed in the kernel parameters for D <= 512, else in a
// device buffer), so the float64 angle is the CPU's bit for bit; cos and sin
// are CUDA's float64 sincos (within 2 ulp of float64, not correctly rounded),
// rounded to float32: a cos / sin can differ from the CPU's in the last bit of
// float32 when the float64 value lies within 2 float64 ulps of a float32
// rounding boundary (about one value in 2^28). The rotation itself is the
// CPU's float32 expression without FMA contraction
//   y0 = x0 cos - x1 sin, y1 = x1 cos + x0 sin   (sin negated when inverse),
// rounded once, so results are otherwise the CPU's bits. Any strides for x,
// positions and y; y may be x (each thread reads both elements of a pair
// before writing them).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.cuh"
#include "kiln/cuda.h"
#include "kiln/element.h"
#include "kiln/nn_ops.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

#ifndef KILN_EMU
template <class... P, class... A>
cudaError_t launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A... args) {
  kernel<<<grid, block, smem, s>>>(static_cast<P>(args)...);
  return cudaGetLastError();
}
#endif

constexpr int kInlineFreqs = 256;  // pairs whose inverse frequencies travel in the parameters

struct RopeParams {
  const void* x;
  const int32_t* pos;
  void* y;
  const double* freq_buf;  // device buffer of D/2 inverse frequencies when D/2 > kInlineFreqs
  int64_t B, H, S, half;
  int64_t xs[4], ys[4], ps0, ps1;
  int batched, interleaved, inverse;
  double freq[kInlineFreqs];
};

template <class E>
__global__ void __launch_bounds__(256) rope_kernel(const __grid_constant__ RopeParams p) {
  using T = typename E::T;
  const T* xb = static_cast<const T*>(p.x);
  T* yb = static_cast<T*>(p.y);
  const int64_t n = p.B * p.S * p.half;
  const int64_t lo = p.interleaved ? 2 : 1, hi_off = p.interleaved ? 1 : p.half;
  KILN_GRID_STRIDE_LOOP(t, n) {
    const int64_t i = t % p.half, bs = t / p.half;
    const int64_t s = bs % p.S, b = bs / p.S;
    const int32_t ps = p.batched ? p.pos[b * p.ps0 + s * p.ps1] : p.pos[s * p.ps0];
    const double inv = p.half <= kInlineFreqs ? p.freq[i] : p.freq_buf[i];
    const double a = static_cast<double>(ps) * inv;
    double sd, cd;
    sincos(a, &sd, &cd);
    const float c = static_cast<float>(cd);
    const float sn = p.inverse ? -static_cast<float>(sd) : static_cast<float>(sd);
    const int64_t i0 = i * lo, i1 = i0 + hi_off;
    const T* xr = xb + b * p.xs[0] + s * p.xs[2];
    T* yr = yb + b * p.ys[0] + s * p.ys[2];
    const int64_t x0o = i0 * p.xs[3], x1o = i1 * p.xs[3], y0o = i0 * p.ys[3], y1o = i1 * p.ys[3];
    for (int64_t h = 0; h < p.H; ++h) {
      const float x0 = E::to_f32(xr[x0o]), x1 = E::to_f32(xr[x1o]);
      yr[y0o] = E::from_f32(__fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, sn)));
      yr[y1o] = E::from_f32(__fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, sn)));
      xr += p.xs[1];
      yr += p.ys[1];
    }
  }
}

Status rope_kernel_entry(const KernelArgs& args) {
  RopePlan plan;
  KILN_RETURN_IF_ERROR(prepare_rope(args, &plan));
  const View &x = args.in[0], &pos = args.in[1], &y = args.out[0];
  if (y.numel() == 0) return Status::Ok();
  RopeParams p;
  p.x = x.data();
  p.pos = reinterpret_cast<const int32_t*>(pos.data());
  p.y = y.data();
  p.freq_buf = nullptr;
  p.B = plan.batch;
  p.H = plan.heads;
  p.S = plan.seq;
  p.half = plan.dim / 2;
  for (int d = 0; d < 4; ++d) {
    p.xs[d] = x.strides[d];
    p.ys[d] = y.strides[d];
  }
  p.ps0 = pos.strides[0];
  p.ps1 = plan.batched_positions ? pos.strides[1] : 0;
  p.batched = plan.batched_positions ? 1 : 0;
  p.interleaved = plan.interleaved ? 1 : 0;
  p.inverse = plan.inverse ? 1 : 0;
  // The CPU kernel's inverse frequencies, bit for bit.
  std::vector<double> freq(static_cast<size_t>(p.half));
  for (int64_t i = 0; i < p.half; ++i) {
    freq[static_cast<size_t>(i)] =
        std::pow(plan.theta, -static_cast<double>(2 * i) / static_cast<double>(plan.dim));
  }
  for (int i = 0; i < kInlineFreqs; ++i) p.freq[i] = i < p.half ? freq[static_cast<size_t>(i)] : 0.0;

  const int device = y.device.index;
  KILN_CUDA_ENTER(guard, device, args.op, s);
  void* buf = nullptr;
  const size_t buf_bytes = static_cast<size_t>(p.half) * sizeof(double);
  if (p.half > kInlineFreqs) {
    KILN_RETURN_IF_ERROR(kiln::cuda::malloc(device, buf_bytes, &buf));
    // From pageable memory: staged before the call returns, so `freq` may go.
    const cudaError_t e = cudaMemcpyAsync(buf, freq.data(), buf_bytes, cudaMemcpyHostToDevice, s);
    if (e != cudaSuccess) {
      kiln::cuda::free(device, buf, buf_bytes);
      return cuda_status(e, args.op);
    }
    p.freq_buf = static_cast<const double*>(buf);
  }
  const int64_t n = p.B * p.S * p.half;
  cudaError_t err = cudaSuccess;
  switch (x.dtype) {
    case DType::Float32: err = launch_kernel(rope_kernel<el::F32>, dim3(grid_for(n)), dim3(kBlock), 0, s, p); break;
    case DType::Float16: err = launch_kernel(rope_kernel<el::F16>, dim3(grid_for(n)), dim3(kBlock), 0, s, p); break;
    case DType::BFloat16: err = launch_kernel(rope_kernel<el::BF16>, dim3(grid_for(n)), dim3(kBlock), 0, s, p); break;
    default:
      if (buf) kiln::cuda::free(device, buf, buf_bytes);
      return no_kernel(args.op, x.dtype, DeviceKind::CUDA);
  }
  if (buf) kiln::cuda::free(device, buf, buf_bytes);  // stream-ordered reuse
  KILN_CUDA_RETURN_IF_ERROR(err, args.op);
  return Status::Ok();
}

KILN_REGISTER_KERNELS("rope", DeviceKind::CUDA, kFloat16Plus, rope_kernel_entry);

}  // namespace
}  // namespace cuda
}  // namespace kiln
