// Device helpers and parameter blocks of the CUDA attention kernels
// (cuda/attention.cu; kernels in attention_simt.cuh and attention_tc.cuh).
// Included by cuda/attention.cu only.
//
// The kernel files use nothing but what is declared here, common.cuh and
// kiln's headers (dynamic shared memory only, launches through launch_kernel),
// so that they can also be compiled as host C++ against a CPU emulation of
// the few CUDA features they use (KILN_EMU; not part of the build).
#pragma once
#include <cstdint>
#include <type_traits>

#include "common.cuh"
#include "kiln/element.h"

#ifndef KILN_EMU
#define KILN_ATTN_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#else
#define KILN_ATTN_SMEM(name) unsigned char* name = ::emu::dyn_smem()
#endif

namespace kiln {
namespace cuda {
namespace attn {

#ifndef KILN_EMU
// kernel<<<grid, block, smem, s>>>(args...), raising the kernel's dynamic
// shared-memory limit first when it needs more than the default 48 KiB.
template <class... P, class... A>
cudaError_t launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A... args) {
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  kernel<<<grid, block, smem, s>>>(static_cast<P>(args)...);
  return cudaGetLastError();
}
#else
using ::emu::launch_kernel;
#endif

constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kPosInf = __builtin_huge_valf();
constexpr double kLog2e = 1.4426950408889634074;
constexpr double kLn2 = 0.69314718055994530942;

// ---- numerics shared with the CPU kernels (native/cpu/nn_kernels_impl.inc) --------------------

// Maximum that propagates NaN (from either operand), as the CPU's vmax.
__device__ __forceinline__ float max_nan(float a, float b) { return (b > a || b != b) ? b : a; }

// The CPU kernels' exp2 (exp2v at the FMA ISA levels), bit for bit: 2^x for
// x <= 127, 0 for x < -126 and -inf, NaN for NaN. x = n + f with n an integer
// and |f| <= 1/2; Taylor polynomial of degree 6 for 2^f (FMA, Horner); 2^n
// through the exponent bits.
__device__ __forceinline__ float exp2_poly(float x) {
  float xc = x < -127.0f ? -127.0f : x;
  xc = xc > 127.0f ? 127.0f : xc;
  const float magic = 12582912.0f;  // 1.5 * 2^23
  const float n = __fsub_rn(__fadd_rn(xc, magic), magic);
  const float f = __fsub_rn(xc, n);
  float p = 1.5403530393381609e-4f;
  p = __fmaf_rn(p, f, 1.3333558146428443e-3f);
  p = __fmaf_rn(p, f, 9.6181291076284772e-3f);
  p = __fmaf_rn(p, f, 5.5504108664821580e-2f);
  p = __fmaf_rn(p, f, 2.4022650695910071e-1f);
  p = __fmaf_rn(p, f, 6.9314718055994531e-1f);
  p = __fmaf_rn(p, f, 1.0f);
  const int ni = n == n ? static_cast<int>(n) : 0;  // NaN: p is NaN anyway
  return __fmul_rn(p, __int_as_float((ni + 127) << 23));
}

// Element loads / stores with the bits of E::to_f32 / E::from_f32.
template <class E>
__device__ __forceinline__ float ld(const typename E::T* p) {
  return E::to_f32(*p);
}
template <class E>
__device__ __forceinline__ void st(typename E::T* p, float v) {
  *p = E::from_f32(v);
}

// Highest key index query i may see (inclusive); negative: none (AttentionPlan::last_key).
__device__ __forceinline__ int64_t last_key(int64_t i, int64_t Sq, int64_t Sk, int causal) {
  const int64_t lim = causal ? i + (Sk - Sq) : Sk - 1;
  return lim < Sk - 1 ? lim : Sk - 1;
}

// ---- parameter blocks ---------------------------------------------------------------------------

// Element strides of a [B, H, S, X] operand and its element-0 pointer.
struct Operand4 {
  const void* p;
  int64_t s0, s1, s2, s3;
  int vec;  // 16-byte chunks along X may be copied (tensor-core loaders)
};

struct FwdParams {
  Operand4 q, k, v, o;
  float* lse;
  int64_t ls0, ls1, ls2;
  int64_t B, Hq, Hk, Sq, Sk, D, Dv, G;
  int64_t nqb;  // query tiles per (b, h)
  int nslab;    // output column slabs (SIMT)
  int causal;
  float c;      // scale * log2(e), rounded to float32
};

struct BwdParams {
  Operand4 q, k, v, go, gq, gk, gv;
  const float* delta;  // [B, Hq, Sq]: sum_d go o (float64 sum, rounded)
  const float* lse2;   // [B, Hq, Sq]: lse log2(e) (+inf where lse = -inf)
  int64_t B, Hq, Hk, Sq, Sk, D, Dv, G;
  int64_t nqb, nkb;
  int nslab;
  int causal;
  float c;      // scale * log2(e)
  float scale;  // scale, rounded to float32
};

struct PrepParams {
  Operand4 o, go;
  const float* lse;
  int64_t ls0, ls1, ls2;
  float* delta;
  float* lse2;
  int64_t Hq, Sq, Dv, rows;
};

// delta and lse2 for attention_backward, one thread per (b, h, i) row: the
// CPU kernel's float64 sums in the same order, so the same bits.
template <class E>
__global__ void __launch_bounds__(256) attn_bwd_prep_kernel(PrepParams p) {
  using T = typename E::T;
  KILN_GRID_STRIDE_LOOP(r, p.rows) {
    const int64_t i = r % p.Sq, h = (r / p.Sq) % p.Hq, b = r / (p.Hq * p.Sq);
    const T* orow = static_cast<const T*>(p.o.p) + b * p.o.s0 + h * p.o.s1 + i * p.o.s2;
    const T* grow = static_cast<const T*>(p.go.p) + b * p.go.s0 + h * p.go.s1 + i * p.go.s2;
    double s = 0;
    for (int64_t d = 0; d < p.Dv; ++d) {
      s += static_cast<double>(ld<E>(orow + d * p.o.s3)) * static_cast<double>(ld<E>(grow + d * p.go.s3));
    }
    p.delta[r] = static_cast<float>(s);
    const float L = p.lse[b * p.ls0 + h * p.ls1 + i * p.ls2];
    p.lse2[r] = L == kNegInf ? kPosInf : static_cast<float>(static_cast<double>(L) * kLog2e);
  }
}

}  // namespace attn
}  // namespace cuda
}  // namespace kiln
