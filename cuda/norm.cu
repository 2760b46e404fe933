// CUDA kernels 'rms_norm', 'rms_norm_backward', 'layer_norm',
// 'layer_norm_backward' (native/KERNELS.md "Normalization"), for float32,
// float16 and bfloat16. Validation: prepare_norm (kiln/nn_ops.h), shared with
// the CPU kernels (native/cpu/norm.cpp), which are the reference.
//
// Layout of the work. A row of D elements is handled by a "row group" of TPR
// threads: the smallest of 32 (a warp), 64, .., 512 with TPR * 16 >= D, so
// that a thread holds at most 16 elements of a row. Thread t of a group owns
// the chunks c = 0, 1, ..: elements (c TPR + t) V .. (c TPR + t) V + V - 1
// (V = 16 bytes of elements: 4 for float32, 8 for 16-bit dtypes). With CH
// chunks per thread (1, 2 or 4, a template argument) x stays in registers
// between the passes over a row; rows longer than 512 * 16 (CH = 0) are read
// again from memory (L1 / L2) for each pass. w, b and (backward) gy are read
// per pass (they stay in L1).
// Chunks are read and written with one 16-byte access when every row operand
// (x, w, b, y / x, w, gy, gx) is contiguous along D with 16-byte aligned rows
// (the VEC template argument), else element by element with any strides: the
// arithmetic and its order are the same either way, so results depend on D
// (which fixes TPR and CH) only, never on the layout or the GPU.
//
// Numerics. Row sums (sum x, sum (x - mean)^2, sum x^2, sum g x, ...) are
// float32: each thread sums its elements in order, then the group adds the
// per-thread sums with a warp butterfly (every lane gets the same bits) and,
// for groups of several warps, the per-warp sums in warp order. The statistics
// are finished in float64 (mean = sum / D, rstd = 1 / sqrt(var + eps)) and
// rounded once to float32, and y, gx use the CPU kernel's float32 expressions
// with the rounded mean / rstd, without FMA contraction (the CPU is built with
// -ffp-contract=off), so they differ from the CPU only through the float32 row
// sums (the CPU sums in float64): a few float32 ulps in rstd / mean / gx, and
// y / gx of 16-bit dtypes are nearly always the same bits.
//
// gw / gb (float32): deterministic, no atomics. Rows are split into fixed runs
// of `rows_per_group` rows (a function of R and D only); each row group sums
// gy x-hat (and gy) over its run in float32, in row order, in registers, and
// writes one partial row to a workspace (kiln::cuda::malloc); a second kernel
// adds the partials of each column in run order in float64 and rounds once.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

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
#define KILN_NORM_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#else
#define KILN_NORM_SMEM(name) unsigned char* name = ::emu::dyn_smem()
#endif

constexpr int kNormBlock = 256;   // threads per block when groups are smaller than that
constexpr int kMaxTpr = 512;      // largest row group
constexpr int kMaxPerThread = 16; // row elements a thread keeps in registers
constexpr int64_t kMaxPartials = 4096;        // row runs (partial rows of gw / gb) at most
constexpr int64_t kMaxPartialFloats = 1 << 24;  // workspace floats at most (64 MiB), when D allows
constexpr int64_t kMinRowsPerGroup = 8;

template <class E>
struct Vec {
  static constexpr int V = 16 / static_cast<int>(sizeof(typename E::T));
};

// ---- element access -------------------------------------------------------------------------------

// Widening and rounding with the bits of E::to_f32 / E::from_f32 (kiln/element.h):
// the hardware conversions where they agree (every non-NaN value), the
// contract's NaN handling (payload kept when widening, canonical quiet NaN
// with the sign when rounding) done explicitly.
template <class E>
struct Cvt {
  __device__ __forceinline__ static float in(typename E::T x) { return E::to_f32(x); }
  __device__ __forceinline__ static typename E::T out(float f) { return E::from_f32(f); }
};
#if defined(__CUDA_ARCH__)
template <>
struct Cvt<el::F16> {
  __device__ __forceinline__ static float in(uint16_t x) {
    if ((x & 0x7C00u) == 0x7C00u) return el::F16::to_f32(x);  // inf, NaN
    float r;
    asm("cvt.f32.f16 %0, %1;" : "=f"(r) : "h"(x));
    return r;
  }
  __device__ __forceinline__ static uint16_t out(float f) {
    uint16_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return f != f ? static_cast<uint16_t>(((__float_as_uint(f) >> 16) & 0x8000u) | 0x7E00u) : h;
  }
};
#endif

// out[k] = row[(col0 + k) * stride] widened (0 past D). VEC: one 16-byte load
// (the caller guarantees stride 1 and 16-byte alignment of every chunk start).
template <class E, int V, bool VEC>
__device__ __forceinline__ void load_chunk(const typename E::T* row, int64_t col0, int64_t stride, int64_t D,
                                           float (&out)[V]) {
  using T = typename E::T;
  if (VEC && col0 + V <= D) {
    union {
      uint4 u;
      T t[V];
    } c;
    c.u = *reinterpret_cast<const uint4*>(row + col0);
#pragma unroll
    for (int k = 0; k < V; ++k) out[k] = Cvt<E>::in(c.t[k]);
  } else {
    const T* src = row + col0 * stride;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      out[k] = col0 + k < D ? Cvt<E>::in(*src) : 0.0f;
      src += stride;
    }
  }
}

template <class E, int V, bool VEC>
__device__ __forceinline__ void store_chunk(typename E::T* row, int64_t col0, int64_t stride, int64_t D,
                                            const float (&v)[V]) {
  using T = typename E::T;
  if (VEC && col0 + V <= D) {
    union {
      uint4 u;
      T t[V];
    } c;
#pragma unroll
    for (int k = 0; k < V; ++k) c.t[k] = Cvt<E>::out(v[k]);
    *reinterpret_cast<uint4*>(row + col0) = c.u;
  } else {
    T* dst = row + col0 * stride;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      if (col0 + k < D) *dst = Cvt<E>::out(v[k]);
      dst += stride;
    }
  }
}

// ---- group reduction ------------------------------------------------------------------------------

// Sum of v over the TPR threads of this thread's row group; every thread of
// the group gets the same bits. Every thread of the block must call it (the
// groups of several warps meet at __syncthreads). red: blockDim.x / 32 floats
// of shared memory.
__device__ __forceinline__ float group_sum(float v, int tpr, float* red) {
#pragma unroll
  for (int o = 16; o >= 1; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  if (tpr == 32) return v;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int nw = tpr >> 5;
  const int first = (static_cast<int>(threadIdx.x) / tpr) * nw;
  __syncthreads();  // the previous call's readers are done with red
  if ((threadIdx.x & 31) == 0) red[warp] = v;
  __syncthreads();
  float s = 0.0f;
  for (int i = 0; i < nw; ++i) s += red[first + i];
  return s;
}

// ---- forward ----------------------------------------------------------------------------------------

struct FwdParams {
  const void* x;
  const void* w;
  const void* b;
  void* y;
  float* mean;
  float* rstd;
  int64_t R, D;
  int64_t xs0, xs1, ws, bs, ys0, ys1, ms, rs;
  double eps;
  int tpr;
};

// f(c) for c = 0 .. nch-1: unrolled when CH > 0 (so register arrays indexed by c stay registers).
template <int CH, class F>
__device__ __forceinline__ void for_chunks(int64_t nch, F&& f) {
  if constexpr (CH > 0) {
#pragma unroll
    for (int c = 0; c < CH; ++c) f(static_cast<int64_t>(c));
  } else {
    for (int64_t c = 0; c < nch; ++c) f(c);
  }
}

// Loads chunk c of this thread's share of a row: from the registers (CH > 0) or memory.
template <class E, int V, int CH, bool VEC>
__device__ __forceinline__ void row_chunk(const float (&cache)[CH > 0 ? CH : 1][V], int64_t c, const typename E::T* row,
                                          int64_t col0, int64_t stride, int64_t D, bool active, float (&out)[V]) {
  if constexpr (CH > 0) {
#pragma unroll
    for (int k = 0; k < V; ++k) out[k] = cache[c][k];
  } else if (active) {
    load_chunk<E, V, VEC>(row, col0, stride, D, out);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) out[k] = 0.0f;
  }
}

// One row per group per iteration; groups stride over the rows.
template <class E, bool LAYER, int CH, bool VEC>
__global__ void __launch_bounds__(kMaxTpr, 1) norm_fwd_kernel(FwdParams p) {
  using T = typename E::T;
  constexpr int V = Vec<E>::V;
  constexpr int C1 = CH > 0 ? CH : 1;
  KILN_NORM_SMEM(smem_raw);
  float* red = reinterpret_cast<float*>(smem_raw);
  const int tpr = p.tpr;
  const int gpb = static_cast<int>(blockDim.x) / tpr;
  const int g = static_cast<int>(threadIdx.x) / tpr, t = static_cast<int>(threadIdx.x) % tpr;
  const int64_t D = p.D;
  const int64_t nch = CH > 0 ? CH : (D + static_cast<int64_t>(tpr) * V - 1) / (static_cast<int64_t>(tpr) * V);
  const T* xb = static_cast<const T*>(p.x);
  const T* wb = static_cast<const T*>(p.w);
  const T* bb = static_cast<const T*>(p.b);
  T* yb = static_cast<T*>(p.y);
  const double dD = static_cast<double>(D);

  for (int64_t base = static_cast<int64_t>(blockIdx.x) * gpb; base < p.R; base += static_cast<int64_t>(gridDim.x) * gpb) {
    const int64_t row = base + g;
    const bool active = row < p.R;
    const T* xr = xb + (active ? row : 0) * p.xs0;
    T* yr = yb + (active ? row : 0) * p.ys0;
    float xv[C1][V];
    if constexpr (CH > 0) {
#pragma unroll
      for (int c = 0; c < CH; ++c) {
        const int64_t col0 = (static_cast<int64_t>(c) * tpr + t) * V;
        if (active) {
          load_chunk<E, V, VEC>(xr, col0, p.xs1, D, xv[c]);
        } else {
#pragma unroll
          for (int k = 0; k < V; ++k) xv[c][k] = 0.0f;
        }
      }
    }
    // Pass 1: sum x (layer) or sum x^2 (rms), in this thread's element order.
    float s = 0.0f;
    for_chunks<CH>(nch, [&](int64_t c) {
      const int64_t col0 = (c * tpr + t) * V;
      float xc[V];
      row_chunk<E, V, CH, VEC>(xv, c, xr, col0, p.xs1, D, active, xc);
#pragma unroll
      for (int k = 0; k < V; ++k) s = LAYER ? __fadd_rn(s, xc[k]) : __fmaf_rn(xc[k], xc[k], s);
    });
    s = group_sum(s, tpr, red);
    float muf = 0.0f, rsf;
    if constexpr (LAYER) {
      muf = static_cast<float>(D > 0 ? static_cast<double>(s) / dD : 0.0);
      // Pass 2: sum (x - mean)^2 with the rounded mean.
      float ss = 0.0f;
      for_chunks<CH>(nch, [&](int64_t c) {
        const int64_t col0 = (c * tpr + t) * V;
        float xc[V];
        row_chunk<E, V, CH, VEC>(xv, c, xr, col0, p.xs1, D, active, xc);
#pragma unroll
        for (int k = 0; k < V; ++k) {
          if (col0 + k < D) {
            const float d = __fsub_rn(xc[k], muf);
            ss = __fmaf_rn(d, d, ss);
          }
        }
      });
      ss = group_sum(ss, tpr, red);
      rsf = static_cast<float>(1.0 / sqrt((D > 0 ? static_cast<double>(ss) / dD : 0.0) + p.eps));
    } else {
      rsf = static_cast<float>(1.0 / sqrt((D > 0 ? static_cast<double>(s) / dD : 0.0) + p.eps));
    }
    if (!active) continue;  // uniform per group; no group_sum below in this iteration
    if (t == 0) {
      p.rstd[row * p.rs] = rsf;
      if constexpr (LAYER) p.mean[row * p.ms] = muf;
    }
    // Pass 3: y = ((x - mean) rstd) w + b, or (x rstd) w.
    for_chunks<CH>(nch, [&](int64_t c) {
      const int64_t col0 = (c * tpr + t) * V;
      if (col0 >= D) return;
      float xc[V], wc[V], bc[V], out[V];
      row_chunk<E, V, CH, VEC>(xv, c, xr, col0, p.xs1, D, true, xc);
      load_chunk<E, V, VEC>(wb, col0, p.ws, D, wc);
      if constexpr (LAYER) load_chunk<E, V, VEC>(bb, col0, p.bs, D, bc);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        if constexpr (LAYER) {
          out[k] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(xc[k], muf), rsf), wc[k]), bc[k]);
        } else {
          out[k] = __fmul_rn(__fmul_rn(xc[k], rsf), wc[k]);
        }
      }
      store_chunk<E, V, VEC>(yr, col0, p.ys1, D, out);
    });
  }
}

// ---- backward ----------------------------------------------------------------------------------------

struct BwdParams {
  const void* x;
  const void* w;
  const float* mean;
  const float* rstd;
  const void* gy;
  void* gx;
  float* part;  // [groups][nsum][D]
  int64_t R, D;
  int64_t xs0, xs1, ws, ms, rs, gys0, gys1, gxs0, gxs1;
  int64_t rows_per_group, groups;
  int tpr;
};

// rms:   g = gy w; gx = rstd g - x (rstd^3 sum(g x) / D);                 gw += gy (x rstd)
// layer: xhat = (x - mean) rstd; g = gy w;
//        gx = rstd ((g - sum(g)/D) - xhat sum(g xhat)/D);                gw += gy xhat, gb += gy
// Group `grp` takes rows grp * rows_per_group .. and leaves its gw (gb) sums
// over them in part[grp]. The sums stay in registers (CH > 0) or accumulate
// in part[grp] itself (CH = 0: only this group's threads touch it, each its own columns).
template <class E, bool LAYER, int CH, bool VEC>
__global__ void __launch_bounds__(kMaxTpr, 1) norm_bwd_kernel(BwdParams p) {
  using T = typename E::T;
  constexpr int V = Vec<E>::V;
  constexpr int C1 = CH > 0 ? CH : 1;
  constexpr int NS = LAYER ? 2 : 1;
  KILN_NORM_SMEM(smem_raw);
  float* red = reinterpret_cast<float*>(smem_raw);
  const int tpr = p.tpr;
  const int gpb = static_cast<int>(blockDim.x) / tpr;
  const int g = static_cast<int>(threadIdx.x) / tpr, t = static_cast<int>(threadIdx.x) % tpr;
  const int64_t D = p.D;
  const int64_t nch = CH > 0 ? CH : (D + static_cast<int64_t>(tpr) * V - 1) / (static_cast<int64_t>(tpr) * V);
  const int64_t grp = static_cast<int64_t>(blockIdx.x) * gpb + g;
  const bool grp_active = grp < p.groups;
  const T* xb = static_cast<const T*>(p.x);
  const T* wb = static_cast<const T*>(p.w);
  const T* gyb = static_cast<const T*>(p.gy);
  T* gxb = static_cast<T*>(p.gx);
  const double invD = 1.0 / static_cast<double>(D);  // D > 0 here
  float* pw = p.part + (grp_active ? grp : 0) * NS * D;
  float* pb = pw + D;

  float aw[C1][V], ab[C1][V];
#pragma unroll
  for (int c = 0; c < C1; ++c) {
#pragma unroll
    for (int k = 0; k < V; ++k) aw[c][k] = ab[c][k] = 0.0f;
  }
  if (CH == 0 && grp_active) {
    for_chunks<CH>(nch, [&](int64_t c) {
      const int64_t col0 = (c * tpr + t) * V;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        if (col0 + k < D) {
          pw[col0 + k] = 0.0f;
          if (LAYER) pb[col0 + k] = 0.0f;
        }
      }
    });
  }

  const int64_t row0 = grp * p.rows_per_group;
  for (int64_t it = 0; it < p.rows_per_group; ++it) {  // the same count in every group of the block
    const int64_t row = row0 + it;
    const bool active = grp_active && row < p.R;
    const T* xr = xb + (active ? row : 0) * p.xs0;
    const T* gyr = gyb + (active ? row : 0) * p.gys0;
    T* gxr = gxb + (active ? row : 0) * p.gxs0;
    const float rsf = active ? p.rstd[row * p.rs] : 0.0f;
    const float muf = (LAYER && active) ? p.mean[row * p.ms] : 0.0f;
    float xv[C1][V];  // (gy is read again in the second pass: registers)
    if constexpr (CH > 0) {
#pragma unroll
      for (int c = 0; c < CH; ++c) {
        const int64_t col0 = (static_cast<int64_t>(c) * tpr + t) * V;
        if (active) {
          load_chunk<E, V, VEC>(xr, col0, p.xs1, D, xv[c]);
        } else {
#pragma unroll
          for (int k = 0; k < V; ++k) xv[c][k] = 0.0f;
        }
      }
    }
    // Row sums: layer: sum g, sum g xhat; rms: sum g x.
    float s1 = 0.0f, s2 = 0.0f;
    for_chunks<CH>(nch, [&](int64_t c) {
      const int64_t col0 = (c * tpr + t) * V;
      float xc[V], gc[V], wc[V];
      row_chunk<E, V, CH, VEC>(xv, c, xr, col0, p.xs1, D, active, xc);
      if (active) {
        load_chunk<E, V, VEC>(gyr, col0, p.gys1, D, gc);
      } else {
#pragma unroll
        for (int k = 0; k < V; ++k) gc[k] = 0.0f;
      }
      load_chunk<E, V, VEC>(wb, col0, p.ws, D, wc);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        if (col0 + k < D) {
          const float gg = __fmul_rn(gc[k], wc[k]);
          if constexpr (LAYER) {
            const float xh = __fmul_rn(__fsub_rn(xc[k], muf), rsf);
            s1 = __fadd_rn(s1, gg);
            s2 = __fmaf_rn(gg, xh, s2);
          } else {
            s2 = __fmaf_rn(gg, xc[k], s2);
          }
        }
      }
    });
    if constexpr (LAYER) s1 = group_sum(s1, tpr, red);
    s2 = group_sum(s2, tpr, red);
    if (!active) continue;  // uniform per group; no group_sum below in this iteration
    float a = 0.0f, bc;
    if constexpr (LAYER) {
      a = static_cast<float>(static_cast<double>(s1) * invD);
      bc = static_cast<float>(static_cast<double>(s2) * invD);
    } else {
      const double rd = rsf;
      bc = static_cast<float>(rd * rd * rd * static_cast<double>(s2) * invD);
    }
    for_chunks<CH>(nch, [&](int64_t c) {
      const int64_t col0 = (c * tpr + t) * V;
      if (col0 >= D) return;
      float xc[V], gc[V], wc[V], out[V];
      row_chunk<E, V, CH, VEC>(xv, c, xr, col0, p.xs1, D, true, xc);
      load_chunk<E, V, VEC>(gyr, col0, p.gys1, D, gc);
      load_chunk<E, V, VEC>(wb, col0, p.ws, D, wc);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float gg = __fmul_rn(gc[k], wc[k]);
        float dw, db = 0.0f;
        if constexpr (LAYER) {
          const float xh = __fmul_rn(__fsub_rn(xc[k], muf), rsf);
          out[k] = __fmul_rn(rsf, __fsub_rn(__fsub_rn(gg, a), __fmul_rn(xh, bc)));
          dw = __fmul_rn(gc[k], xh);
          db = gc[k];
        } else {
          out[k] = __fsub_rn(__fmul_rn(rsf, gg), __fmul_rn(bc, xc[k]));
          dw = __fmul_rn(gc[k], __fmul_rn(xc[k], rsf));
        }
        if constexpr (CH > 0) {
          aw[c][k] = __fadd_rn(aw[c][k], dw);
          if constexpr (LAYER) ab[c][k] = __fadd_rn(ab[c][k], db);
        } else if (col0 + k < D) {
          pw[col0 + k] = __fadd_rn(pw[col0 + k], dw);
          if constexpr (LAYER) pb[col0 + k] = __fadd_rn(pb[col0 + k], db);
        }
      }
      store_chunk<E, V, VEC>(gxr, col0, p.gxs1, D, out);
    });
  }
  if constexpr (CH > 0) {
    if (!grp_active) return;
#pragma unroll
    for (int c = 0; c < CH; ++c) {
      const int64_t col0 = (static_cast<int64_t>(c) * tpr + t) * V;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        if (col0 + k < D) {
          pw[col0 + k] = aw[c][k];
          if (LAYER) pb[col0 + k] = ab[c][k];
        }
      }
    }
  }
}

// gw[d] (and gb[d]) = sum over groups, in group order, of the partials (float64, rounded once).
__global__ void norm_bwd_finish_kernel(const float* part, int64_t groups, int64_t D, int nsum, float* gw, int64_t gws,
                                       float* gb, int64_t gbs) {
  KILN_GRID_STRIDE_LOOP(i, D) {
    double sw = 0.0, sb = 0.0;
    for (int64_t g = 0; g < groups; ++g) {
      const float* pr = part + g * nsum * D;
      sw += static_cast<double>(pr[i]);
      if (nsum == 2) sb += static_cast<double>(pr[D + i]);
    }
    gw[i * gws] = static_cast<float>(sw);
    if (nsum == 2) gb[i * gbs] = static_cast<float>(sb);
  }
}

// ---- host side -------------------------------------------------------------------------------------------

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

// Chunks of a [R, D] operand (or a [D] one: row_stride 0) may be read as 16 bytes.
bool vec_ok(const View& v, int64_t row_stride, int64_t col_stride, int64_t D) {
  const int64_t es = static_cast<int64_t>(dtype_size(v.dtype));
  return aligned16(v.data()) && (col_stride == 1 || D <= 1) && (row_stride * es) % 16 == 0;
}

// Threads per row group and chunks per thread (CH; 0: stream) for rows of D elements, V per chunk.
void pick_shape(int64_t D, int V, int* tpr, int* ch) {
  int t = 32;
  while (t < kMaxTpr && static_cast<int64_t>(t) * kMaxPerThread < D) t *= 2;
  const int64_t nvec = (D + V - 1) / V;
  const int64_t need = (nvec + t - 1) / t;  // chunks per thread
  *tpr = t;
  *ch = need <= 1 ? 1 : need <= 2 ? 2 : (need <= 4 && 4 * V <= kMaxPerThread) ? 4 : 0;
}

dim3 block_for(int tpr) { return dim3(static_cast<unsigned>(tpr >= kNormBlock ? tpr : kNormBlock)); }
size_t red_bytes(int tpr) { return static_cast<size_t>(std::max(tpr, kNormBlock) / 32) * sizeof(float); }

// f(std::integral_constant<int, CH>{}) for the chunk count ch (1, 2, 4; else 0: streamed rows).
template <class E, class F>
cudaError_t launch_ch(int ch, F&& f) {
  switch (ch) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 4:
      if constexpr (4 * Vec<E>::V <= kMaxPerThread) return f(std::integral_constant<int, 4>{});
      break;
    default: break;
  }
  return f(std::integral_constant<int, 0>{});
}

template <class E, bool LAYER>
Status forward(const KernelArgs& args, const NormPlan& plan, cudaStream_t s) {
  const View &x = args.in[0], &w = args.in[1], &y = args.out[0];
  const View& rstd = args.out[LAYER ? 2 : 1];
  FwdParams p;
  p.x = x.data();
  p.w = w.data();
  p.b = LAYER ? args.in[2].data() : nullptr;
  p.y = y.data();
  p.mean = LAYER ? reinterpret_cast<float*>(args.out[1].data()) : nullptr;
  p.rstd = reinterpret_cast<float*>(rstd.data());
  p.R = plan.rows;
  p.D = plan.dim;
  p.xs0 = x.strides[0];
  p.xs1 = x.strides[1];
  p.ws = w.strides[0];
  p.bs = LAYER ? args.in[2].strides[0] : 0;
  p.ys0 = y.strides[0];
  p.ys1 = y.strides[1];
  p.ms = LAYER ? args.out[1].strides[0] : 0;
  p.rs = rstd.strides[0];
  p.eps = plan.eps;
  int ch = 1;
  pick_shape(p.D, Vec<E>::V, &p.tpr, &ch);
  const bool vec = vec_ok(x, x.strides[0], x.strides[1], p.D) && vec_ok(w, 0, w.strides[0], p.D) &&
                   (!LAYER || vec_ok(args.in[2], 0, args.in[2].strides[0], p.D)) &&
                   vec_ok(y, y.strides[0], y.strides[1], p.D);
  const dim3 block = block_for(p.tpr);
  const int64_t gpb = block.x / p.tpr;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>((p.R + gpb - 1) / gpb, 65536));
  const size_t smem = red_bytes(p.tpr);
  const cudaError_t err = vec ? launch_ch<E>(ch, [&](auto c) {
    return launch_kernel(norm_fwd_kernel<E, LAYER, decltype(c)::value, true>, grid, block, smem, s, p);
  })
                              : launch_ch<E>(ch, [&](auto c) {
    return launch_kernel(norm_fwd_kernel<E, LAYER, decltype(c)::value, false>, grid, block, smem, s, p);
  });
  KILN_CUDA_RETURN_IF_ERROR(err, args.op);
  return Status::Ok();
}

// Rows per group for the gw / gb partials: a function of R and D only.
int64_t rows_per_group(int64_t R, int64_t D, int nsum) {
  int64_t rpg = std::max<int64_t>(kMinRowsPerGroup, (R + kMaxPartials - 1) / kMaxPartials);
  const int64_t max_groups = std::max<int64_t>(1, kMaxPartialFloats / (nsum * std::max<int64_t>(D, 1)));
  rpg = std::max(rpg, (R + max_groups - 1) / max_groups);
  return rpg;
}

template <class E, bool LAYER>
Status backward(const KernelArgs& args, const NormPlan& plan, int device, cudaStream_t s) {
  const View &x = args.in[0], &w = args.in[1];
  const View& rstd = args.in[LAYER ? 3 : 2];
  const View& gy = args.in[LAYER ? 4 : 3];
  const View &gx = args.out[0], &gw = args.out[1];
  constexpr int NS = LAYER ? 2 : 1;
  BwdParams p;
  p.x = x.data();
  p.w = w.data();
  p.mean = LAYER ? reinterpret_cast<const float*>(args.in[2].data()) : nullptr;
  p.rstd = reinterpret_cast<const float*>(rstd.data());
  p.gy = gy.data();
  p.gx = gx.data();
  p.R = plan.rows;
  p.D = plan.dim;
  p.xs0 = x.strides[0];
  p.xs1 = x.strides[1];
  p.ws = w.strides[0];
  p.ms = LAYER ? args.in[2].strides[0] : 0;
  p.rs = rstd.strides[0];
  p.gys0 = gy.strides[0];
  p.gys1 = gy.strides[1];
  p.gxs0 = gx.strides[0];
  p.gxs1 = gx.strides[1];
  p.rows_per_group = rows_per_group(p.R, p.D, NS);
  p.groups = (p.R + p.rows_per_group - 1) / p.rows_per_group;
  int ch = 1;
  pick_shape(p.D, Vec<E>::V, &p.tpr, &ch);
  const bool vec = vec_ok(x, x.strides[0], x.strides[1], p.D) && vec_ok(w, 0, w.strides[0], p.D) &&
                   vec_ok(gy, gy.strides[0], gy.strides[1], p.D) && vec_ok(gx, gx.strides[0], gx.strides[1], p.D);

  void* ws = nullptr;
  const size_t ws_bytes = static_cast<size_t>(std::max<int64_t>(p.groups, 1) * NS * p.D) * sizeof(float);
  KILN_RETURN_IF_ERROR(kiln::cuda::malloc(device, ws_bytes, &ws));
  p.part = static_cast<float*>(ws);
  cudaError_t err = cudaSuccess;
  if (p.groups > 0) {
    const dim3 block = block_for(p.tpr);
    const int64_t gpb = block.x / p.tpr;
    const unsigned grid = static_cast<unsigned>((p.groups + gpb - 1) / gpb);
    const size_t smem = red_bytes(p.tpr);
    err = vec ? launch_ch<E>(ch, [&](auto c) {
      return launch_kernel(norm_bwd_kernel<E, LAYER, decltype(c)::value, true>, grid, block, smem, s, p);
    })
              : launch_ch<E>(ch, [&](auto c) {
      return launch_kernel(norm_bwd_kernel<E, LAYER, decltype(c)::value, false>, grid, block, smem, s, p);
    });
  }
  if (err == cudaSuccess) {
    float* gbp = LAYER ? reinterpret_cast<float*>(args.out[2].data()) : nullptr;
    const int64_t gbs = LAYER ? args.out[2].strides[0] : 0;
    err = launch_kernel(norm_bwd_finish_kernel, dim3(grid_for(p.D)), dim3(kBlock), 0, s,
                        static_cast<const float*>(p.part), p.groups, p.D, NS, reinterpret_cast<float*>(gw.data()),
                        gw.strides[0], gbp, gbs);
  }
  // Stream-ordered reuse: the next user of the block runs on this stream, after these kernels.
  kiln::cuda::free(device, ws, ws_bytes);
  KILN_CUDA_RETURN_IF_ERROR(err, args.op);
  return Status::Ok();
}

template <class E>
Status run_typed(const KernelArgs& args, const NormPlan& plan, int device, cudaStream_t s) {
  if (plan.backward) {
    return plan.layer ? backward<E, true>(args, plan, device, s) : backward<E, false>(args, plan, device, s);
  }
  return plan.layer ? forward<E, true>(args, plan, s) : forward<E, false>(args, plan, s);
}

Status norm_kernel(const KernelArgs& args) {
  NormPlan plan;
  KILN_RETURN_IF_ERROR(prepare_norm(args, &plan));
  if (!plan.backward && plan.rows == 0) return Status::Ok();
  if (plan.backward && plan.dim == 0) return Status::Ok();
  const int device = args.in[0].device.index;
  KILN_CUDA_ENTER(guard, device, args.op, s);
  switch (args.in[0].dtype) {
    case DType::Float32: return run_typed<el::F32>(args, plan, device, s);
    case DType::Float16: return run_typed<el::F16>(args, plan, device, s);
    case DType::BFloat16: return run_typed<el::BF16>(args, plan, device, s);
    default: break;
  }
  return no_kernel(args.op, args.in[0].dtype, DeviceKind::CUDA);
}

KILN_REGISTER_KERNELS("rms_norm", DeviceKind::CUDA, kFloat16Plus, norm_kernel);
KILN_REGISTER_KERNELS("rms_norm_backward", DeviceKind::CUDA, kFloat16Plus, norm_kernel);
KILN_REGISTER_KERNELS("layer_norm", DeviceKind::CUDA, kFloat16Plus, norm_kernel);
KILN_REGISTER_KERNELS("layer_norm_backward", DeviceKind::CUDA, kFloat16Plus, norm_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
