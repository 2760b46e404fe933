// CUDA kernel 'matmul' (native/KERNELS.md "Matmul"): C[..., M, N] =
// A[..., M, K] @ B[..., K, N] for float32, float16 and bfloat16, float32
// accumulation, A and B with any element strides (transposes and slices are
// views, broadcast batch dims have stride 0), C contiguous.
//
// Path taken, after the batch dims are coalesced (and a broadcast B's batch
// folded into M, so x[B, S, D] @ W[D, O] is one [B*S, D] @ [D, O] product):
//   1. cuBLASLt (cuda/cublaslt.h), when it is loaded and enabled and each
//      matrix has a unit stride along one of its dims with a leading dimension
//      that fits (row- or column-major; transposes become CUBLAS_OP_T) and the
//      batch is one uniform stride (0 for broadcast). Computed as
//      C^T = B^T A^T in cuBLAS's column-major terms, CUBLAS_COMPUTE_32F (never
//      TF32), no split-K. On any cuBLASLt failure, kiln's own kernels run.
//   2. kiln's own kernels. Every C element is one dot product accumulated in
//      float32 in one fixed order (no split-K; nothing depends on the grid):
//      - M <= 8: gemv_kernel, one thread per column of C holding all M rows,
//        c = fma(a[k], b[k], c) for k = 0 .. K-1 (bit-identical to the SIMT
//        kernel's order), B streamed through a 4-stage cp.async ring;
//      - float32: sgemm_kernel, 128x128 tiles, 8x8 per thread, FFMA in k order;
//      - float16 / bfloat16: hgemm_kernel, 128x128 (or 64x128) tiles, 8 warps,
//        mma.sync m16n8k16 with float32 accumulators, operands staged in shared
//        memory by cp.async (16-byte chunks along a contiguous, aligned dim) or
//        by gathers for any other strides, fed to the tensor cores by ldmatrix
//        (.trans for operands whose contiguous dim is M or N).
//    Grids: x over N tiles, y over M tiles, z over the batch (y and z loop when
//    they exceed 65535). Edge tiles are zero-filled in shared memory and masked
//    on store; outputs of 16-bit dtypes are rounded once (RNE).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "common.cuh"
#include "cublaslt.h"
#include "kiln/cuda.h"
#include "kiln/element.h"
#include "kiln/matmul.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

// ---- operands as the kernels see them ----------------------------------------------------

// Coalesced batch dims of A and B (C is contiguous: batch i starts at i*M*N).
struct BatchIndex {
  int nd;
  int64_t shape[kMaxDims];
  int64_t sa[kMaxDims];
  int64_t sb[kMaxDims];

  __device__ __forceinline__ void offsets(int64_t i, int64_t* oa, int64_t* ob) const {
    int64_t a = 0, b = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t q = i / shape[d];
      const int64_t r = i - q * shape[d];
      a += r * sa[d];
      b += r * sb[d];
      i = q;
    }
    *oa = a;
    *ob = b;
  }
};

struct Params {
  const void* a;
  const void* b;
  void* c;
  int64_t M, N, K;
  int64_t am, ak;  // A: element (m, k) at a[m*am + k*ak]
  int64_t bk, bn;  // B: element (k, n) at b[k*bk + n*bn]
  int64_t batch;
  int64_t mtiles;
  int a_vec, b_vec;            // cp.async 16-byte chunks (hgemm, gemv)
  int a_rows_fast, b_rows_fast;  // sgemm gathers: consecutive threads walk m (n) rather than k
  BatchIndex bi;
};

// ---- device helpers ------------------------------------------------------------------------

// Exact widening to float32 (hardware conversions).
template <class E>
struct Widen;
template <>
struct Widen<el::F32> {
  __device__ __forceinline__ static float f(float x) { return x; }
};
template <>
struct Widen<el::F16> {
  __device__ __forceinline__ static float f(uint16_t x) { return __half2float(__ushort_as_half(x)); }
};
template <>
struct Widen<el::BF16> {
  __device__ __forceinline__ static float f(uint16_t x) { return __uint_as_float(static_cast<uint32_t>(x) << 16); }
};

#include "mma_sm80.cuh"


// Stages a ROWS x BK tile of an operand in shared memory, zero outside the matrix.
// Element (r, k) of the operand is g[r*s_r + k*s_k] for r < rows, k < K; the tile
// covers rows r0 .. r0+ROWS-1 and k0 .. k0+BK-1.
//   KMAJ:  smem[r*PITCH + k] (k contiguous), PITCH = BK + 16 bytes of padding;
//   !KMAJ: smem[k*PITCH + r] (r contiguous), PITCH = ROWS + 16 bytes.
// The padding makes rows an odd number of 16-byte units apart, so ldmatrix and
// 16-byte row reads hit distinct banks.
// vec: copy 16-byte chunks with cp.async along the contiguous dim (k for KMAJ,
// r otherwise); the caller guarantees 16-byte aligned chunk starts (aligned
// base, byte strides of the other dim and of the batch multiples of 16) and
// unit stride along that dim (or a single element across it). Otherwise the
// elements are gathered one by one (consecutive threads walk the smem-contiguous
// dim) and stored synchronously.
template <typename T, int ROWS, int BK, bool KMAJ, int THREADS>
struct TileLoader {
  static constexpr int V = 16 / static_cast<int>(sizeof(T));  // elements per chunk
  static constexpr int PITCH = KMAJ ? BK + V : ROWS + V;
  static constexpr int SIZE = KMAJ ? ROWS * PITCH : BK * PITCH;  // elements per stage
  static_assert(BK % V == 0, "BK must be a multiple of the chunk");

  __device__ __forceinline__ static int at(int r, int k) { return KMAJ ? r * PITCH + k : k * PITCH + r; }

  __device__ __forceinline__ static void load(T* s, const T* g, int64_t s_r, int64_t s_k, int64_t r0, int64_t rows,
                                              int64_t k0, int64_t K, bool vec, int tid) {
    if (vec) {
      if constexpr (KMAJ) {
        constexpr int CPR = BK / V;  // chunks per row
        constexpr int TOTAL = ROWS * CPR;
#pragma unroll
        for (int i = 0; i < (TOTAL + THREADS - 1) / THREADS; ++i) {
          const int c = tid + i * THREADS;
          if (TOTAL % THREADS != 0 && c >= TOTAL) break;
          const int r = c / CPR, kc = (c % CPR) * V;
          const int64_t gr = r0 + r, gk = k0 + kc;
          int bytes = 0;
          const T* src = g;
          if (gr < rows && gk < K) {
            const int64_t left = K - gk;
            bytes = static_cast<int>(left < V ? left : V) * static_cast<int>(sizeof(T));
            src = g + gr * s_r + gk;
          }
          cp_async16(s + r * PITCH + kc, src, bytes);
        }
      } else {
        static_assert(KMAJ || ROWS % V == 0, "ROWS must be a multiple of the chunk");
        constexpr int CPK = ROWS / V;  // chunks per k
        constexpr int TOTAL = BK * CPK;
#pragma unroll
        for (int i = 0; i < (TOTAL + THREADS - 1) / THREADS; ++i) {
          const int c = tid + i * THREADS;
          if (TOTAL % THREADS != 0 && c >= TOTAL) break;
          const int kk = c / CPK, rc = (c % CPK) * V;
          const int64_t gr = r0 + rc, gk = k0 + kk;
          int bytes = 0;
          const T* src = g;
          if (gr < rows && gk < K) {
            const int64_t left = rows - gr;
            bytes = static_cast<int>(left < V ? left : V) * static_cast<int>(sizeof(T));
            src = g + gk * s_k + gr;
          }
          cp_async16(s + kk * PITCH + rc, src, bytes);
        }
      }
    } else {
      constexpr int TOTAL = ROWS * BK;
#pragma unroll 4
      for (int i = 0; i < (TOTAL + THREADS - 1) / THREADS; ++i) {
        const int e = tid + i * THREADS;
        if (TOTAL % THREADS != 0 && e >= TOTAL) break;
        const int r = KMAJ ? e / BK : e % ROWS;
        const int kk = KMAJ ? e % BK : e / ROWS;
        const int64_t gr = r0 + r, gk = k0 + kk;
        T v = T(0);
        if (gr < rows && gk < K) v = g[gr * s_r + gk * s_k];
        s[at(r, kk)] = v;
      }
    }
  }
};

// ---- M <= 8: one thread per column of C ------------------------------------------------------

constexpr int kGemvCols = 64;  // threads (= columns of C) per block
constexpr int kGemvStages = 4;

template <class E>
constexpr int gemv_bk() {
  return sizeof(typename E::T) == 4 ? 32 : 64;  // 8 KiB of B per stage
}

template <class E, int MR, bool B_KMAJ>
__global__ void __launch_bounds__(kGemvCols) gemv_kernel(Params p) {
  using T = typename E::T;
  constexpr int BK = gemv_bk<E>();
  constexpr int S = kGemvStages;
  using LA = TileLoader<T, MR, BK, true, kGemvCols>;
  using LB = TileLoader<T, kGemvCols, BK, B_KMAJ, kGemvCols>;
  __shared__ __align__(16) T sA[S][LA::SIZE];
  __shared__ __align__(16) T sB[S][LB::SIZE];
  __shared__ float sAf[MR][BK];

  const int t = threadIdx.x;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kGemvCols;
  const int64_t n = n0 + t;
  const int64_t chunks = (p.K + BK - 1) / BK;

  for (int64_t bz = blockIdx.y; bz < p.batch; bz += gridDim.y) {
    int64_t oa = 0, ob = 0;
    p.bi.offsets(bz, &oa, &ob);
    const T* A = static_cast<const T*>(p.a) + oa;
    const T* B = static_cast<const T*>(p.b) + ob;
    T* C = static_cast<T*>(p.c) + bz * p.M * p.N;

    float acc[MR];
#pragma unroll
    for (int m = 0; m < MR; ++m) acc[m] = 0.0f;

    auto load = [&](int64_t chunk) {
      const int s = static_cast<int>(chunk % S);
      LA::load(sA[s], A, p.am, p.ak, 0, p.M, chunk * BK, p.K, p.a_vec != 0, t);
      LB::load(sB[s], B, p.bn, p.bk, n0, p.N, chunk * BK, p.K, p.b_vec != 0, t);
    };
    for (int s = 0; s < S - 1; ++s) {
      if (s < chunks) load(s);
      cp_async_commit();
    }
    for (int64_t c = 0; c < chunks; ++c) {
      if (c + S - 1 < chunks) load(c + S - 1);
      cp_async_commit();
      cp_async_wait<S - 1>();  // chunk c has landed (this thread's copies)
      __syncthreads();         // ... everyone's
      const int s = static_cast<int>(c % S);
      for (int e = t; e < MR * BK; e += kGemvCols) {
        const int m = e / BK, kk = e % BK;
        sAf[m][kk] = Widen<E>::f(sA[s][LA::at(m, kk)]);
      }
      __syncthreads();
      const int64_t left = p.K - c * BK;
      const int kmax = left < BK ? static_cast<int>(left) : BK;
      if (n < p.N) {
        if constexpr (B_KMAJ) {
          constexpr int V = LB::V;
          const T* row = sB[s] + t * LB::PITCH;
#pragma unroll
          for (int kv = 0; kv < BK; kv += V) {
            if (kv < kmax) {
              union {
                uint4 u;
                T v[V];
              } chunk;
              chunk.u = *reinterpret_cast<const uint4*>(row + kv);
#pragma unroll
              for (int q = 0; q < V; ++q) {
                if (kv + q < kmax) {
                  const float bv = Widen<E>::f(chunk.v[q]);
#pragma unroll
                  for (int m = 0; m < MR; ++m) acc[m] = __fmaf_rn(sAf[m][kv + q], bv, acc[m]);
                }
              }
            }
          }
        } else {
#pragma unroll 8
          for (int kk = 0; kk < kmax; ++kk) {
            const float bv = Widen<E>::f(sB[s][kk * LB::PITCH + t]);
#pragma unroll
            for (int m = 0; m < MR; ++m) acc[m] = __fmaf_rn(sAf[m][kk], bv, acc[m]);
          }
        }
      }
      __syncthreads();  // stage s and sAf are free again
    }
    if (n < p.N) {
#pragma unroll
      for (int m = 0; m < MR; ++m) {
        if (m < p.M) C[m * p.N + n] = E::from_f32(acc[m]);
      }
    }
  }
}

// ---- float32: 128x128 tiles, 8x8 per thread -----------------------------------------------------

constexpr int kSBM = 128, kSBN = 128, kSBK = 8, kSThreads = 256;

__global__ void __launch_bounds__(kSThreads) sgemm_kernel(Params p) {
  __shared__ __align__(16) float As[2][kSBK][kSBM + 4];
  __shared__ __align__(16) float Bs[2][kSBK][kSBN + 4];
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kSBN;
  const int64_t ktiles = (p.K + kSBK - 1) / kSBK;

  // Element i (0..3) of this thread's share of a tile: (row or column, k) in the tile.
  auto a_coord = [&](int i, int* r, int* kk) {
    const int e = tid + i * kSThreads;
    if (p.a_rows_fast) {
      *r = e % kSBM;
      *kk = e / kSBM;
    } else {
      *kk = e % kSBK;
      *r = e / kSBK;
    }
  };
  auto b_coord = [&](int i, int* cn, int* kk) {
    const int e = tid + i * kSThreads;
    if (p.b_rows_fast) {
      *cn = e % kSBN;
      *kk = e / kSBN;
    } else {
      *kk = e % kSBK;
      *cn = e / kSBK;
    }
  };

  for (int64_t bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    int64_t oa = 0, ob = 0;
    p.bi.offsets(bz, &oa, &ob);
    const float* A = static_cast<const float*>(p.a) + oa;
    const float* B = static_cast<const float*>(p.b) + ob;
    float* C = static_cast<float*>(p.c) + bz * p.M * p.N;

    for (int64_t tm = blockIdx.y; tm < p.mtiles; tm += gridDim.y) {
      const int64_t m0 = tm * kSBM;
      float ra[4], rb[4];
      auto fetch = [&](int64_t k0) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          int r, kk;
          a_coord(i, &r, &kk);
          const int64_t gm = m0 + r, gk = k0 + kk;
          ra[i] = (gm < p.M && gk < p.K) ? A[gm * p.am + gk * p.ak] : 0.0f;
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          int cn, kk;
          b_coord(i, &cn, &kk);
          const int64_t gn = n0 + cn, gk = k0 + kk;
          rb[i] = (gn < p.N && gk < p.K) ? B[gk * p.bk + gn * p.bn] : 0.0f;
        }
      };
      auto stash = [&](int buf) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          int r, kk;
          a_coord(i, &r, &kk);
          As[buf][kk][r] = ra[i];
          int cn;
          b_coord(i, &cn, &kk);
          Bs[buf][kk][cn] = rb[i];
        }
      };

      float acc[8][8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
      }

      fetch(0);
      stash(0);
      __syncthreads();
      for (int64_t kt = 0; kt < ktiles; ++kt) {
        const int buf = static_cast<int>(kt & 1);
        if (kt + 1 < ktiles) fetch((kt + 1) * kSBK);
        const int64_t left = p.K - kt * kSBK;
        const int kmax = left < kSBK ? static_cast<int>(left) : kSBK;
#pragma unroll
        for (int kk = 0; kk < kSBK; ++kk) {
          if (kk < kmax) {
            const float4 a0 = *reinterpret_cast<const float4*>(&As[buf][kk][ty * 4]);
            const float4 a1 = *reinterpret_cast<const float4*>(&As[buf][kk][64 + ty * 4]);
            const float4 b0 = *reinterpret_cast<const float4*>(&Bs[buf][kk][tx * 4]);
            const float4 b1 = *reinterpret_cast<const float4*>(&Bs[buf][kk][64 + tx * 4]);
            const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 8; ++i) {
#pragma unroll
              for (int j = 0; j < 8; ++j) acc[i][j] = __fmaf_rn(av[i], bv[j], acc[i][j]);
            }
          }
        }
        if (kt + 1 < ktiles) stash(buf ^ 1);
        __syncthreads();
      }

#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int64_t r = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
        if (r >= p.M) continue;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int64_t cn = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
          if (cn < p.N) C[r * p.N + cn] = acc[i][j];
        }
      }
    }
  }
}

// ---- float16 / bfloat16: tensor cores ---------------------------------------------------------

constexpr int kHBN = 128, kHBK = 32, kHThreads = 256;

// 8 warps as 2 (M) x 4 (N); a warp computes (BM/2) x 32 of C as m16n8 pieces.
template <class E, int BM, bool A_KMAJ, bool B_KMAJ>
__global__ void __launch_bounds__(kHThreads) hgemm_kernel(Params p) {
  using T = uint16_t;
  using LA = TileLoader<T, BM, kHBK, A_KMAJ, kHThreads>;
  using LB = TileLoader<T, kHBN, kHBK, B_KMAJ, kHThreads>;
  constexpr int WM = BM / 2, WN = kHBN / 4;
  constexpr int MI = WM / 16, NI = WN / 8;
  static_assert(MI >= 1 && NI % 2 == 0, "warp tile");
  __shared__ __align__(128) T sA[2][LA::SIZE];
  __shared__ __align__(128) T sB[2][LB::SIZE];

  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3;
  const int jm = lane >> 3, r8 = lane & 7;  // ldmatrix: which 8x8 matrix this lane addresses, and its row
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kHBN;
  const int64_t ktiles = (p.K + kHBK - 1) / kHBK;

  for (int64_t bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    int64_t oa = 0, ob = 0;
    p.bi.offsets(bz, &oa, &ob);
    const T* A = static_cast<const T*>(p.a) + oa;
    const T* B = static_cast<const T*>(p.b) + ob;
    T* C = static_cast<T*>(p.c) + bz * p.M * p.N;

    for (int64_t tm = blockIdx.y; tm < p.mtiles; tm += gridDim.y) {
      const int64_t m0 = tm * BM;
      float acc[MI][NI][4];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
#pragma unroll
        for (int j = 0; j < NI; ++j) {
#pragma unroll
          for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;
        }
      }

      LA::load(sA[0], A, p.am, p.ak, m0, p.M, 0, p.K, p.a_vec != 0, tid);
      LB::load(sB[0], B, p.bn, p.bk, n0, p.N, 0, p.K, p.b_vec != 0, tid);
      cp_async_commit();
      for (int64_t kt = 0; kt < ktiles; ++kt) {
        if (kt + 1 < ktiles) {
          const int nb = static_cast<int>((kt + 1) & 1);
          LA::load(sA[nb], A, p.am, p.ak, m0, p.M, (kt + 1) * kHBK, p.K, p.a_vec != 0, tid);
          LB::load(sB[nb], B, p.bn, p.bk, n0, p.N, (kt + 1) * kHBK, p.K, p.b_vec != 0, tid);
        }
        cp_async_commit();
        cp_async_wait<1>();  // tile kt has landed
        __syncthreads();
        const T* as = sA[kt & 1];
        const T* bs = sB[kt & 1];
#pragma unroll
        for (int ks = 0; ks < kHBK; ks += 16) {
          uint32_t af[MI][4];
          uint32_t bf[NI][2];
#pragma unroll
          for (int mi = 0; mi < MI; ++mi) {
            const int rb = wm * WM + mi * 16;
            if constexpr (A_KMAJ) {
              ldsm_x4(af[mi], as + (rb + r8 + (jm & 1) * 8) * LA::PITCH + ks + (jm >> 1) * 8);
            } else {
              ldsm_x4_trans(af[mi], as + (ks + (jm >> 1) * 8 + r8) * LA::PITCH + rb + (jm & 1) * 8);
            }
          }
#pragma unroll
          for (int nj = 0; nj < NI / 2; ++nj) {
            const int cb = wn * WN + nj * 16;
            uint32_t r[4];
            if constexpr (B_KMAJ) {
              ldsm_x4(r, bs + (cb + r8 + (jm >> 1) * 8) * LB::PITCH + ks + (jm & 1) * 8);
            } else {
              ldsm_x4_trans(r, bs + (ks + (jm & 1) * 8 + r8) * LB::PITCH + cb + (jm >> 1) * 8);
            }
            bf[2 * nj][0] = r[0];
            bf[2 * nj][1] = r[1];
            bf[2 * nj + 1][0] = r[2];
            bf[2 * nj + 1][1] = r[3];
          }
#pragma unroll
          for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) mma_16816<E>(acc[mi][ni], af[mi], bf[ni][0], bf[ni][1]);
          }
        }
        __syncthreads();  // both stages may be refilled
      }

#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
          const int64_t r0 = m0 + wm * WM + mi * 16 + (lane >> 2);
          const int64_t c0 = n0 + wn * WN + ni * 8 + (lane & 3) * 2;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int64_t r = r0 + h * 8;
            if (r >= p.M) continue;
#pragma unroll
            for (int q = 0; q < 2; ++q) {
              if (c0 + q < p.N) C[r * p.N + c0 + q] = E::from_f32(acc[mi][ni][h * 2 + q]);
            }
          }
        }
      }
    }
  }
}

// ---- host side -----------------------------------------------------------------------------------

const DType kMatmulDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16};

struct Plan {
  DType dtype = DType::Float32;
  int64_t M = 0, N = 0, K = 0;
  int64_t am = 0, ak = 0, bk = 0, bn = 0;
  int nb = 0;  // batch dims left after coalescing and folding
  int64_t bshape[kMaxDims] = {};
  int64_t bsa[kMaxDims] = {};
  int64_t bsb[kMaxDims] = {};
  int64_t batch = 1;
  const char* a = nullptr;
  const char* b = nullptr;
  char* c = nullptr;
};

// Drops size-1 batch dims, merges adjacent ones that step uniformly in A and B
// (C, contiguous, always does), then folds inner batch dims along which B is
// broadcast into M when A steps over them by M rows.
Plan make_plan(const View& a, const View& b, const View& c) {
  Plan p;
  p.dtype = a.dtype;
  const int r = a.ndim;
  p.M = a.shape[r - 2];
  p.K = a.shape[r - 1];
  p.N = b.shape[r - 1];
  p.am = a.strides[r - 2];
  p.ak = a.strides[r - 1];
  p.bk = b.strides[r - 2];
  p.bn = b.strides[r - 1];
  for (int d = 0; d < r - 2; ++d) {
    const int64_t n = a.shape[d];
    if (n == 1) continue;
    const int64_t sa = a.strides[d], sb = b.strides[d];
    if (p.nb > 0 && p.bsa[p.nb - 1] == sa * n && p.bsb[p.nb - 1] == sb * n) {
      p.bshape[p.nb - 1] *= n;
      p.bsa[p.nb - 1] = sa;
      p.bsb[p.nb - 1] = sb;
    } else {
      p.bshape[p.nb] = n;
      p.bsa[p.nb] = sa;
      p.bsb[p.nb] = sb;
      ++p.nb;
    }
  }
  while (p.nb > 0 && p.bsb[p.nb - 1] == 0 && (p.M == 1 || p.bsa[p.nb - 1] == p.M * p.am)) {
    if (p.M == 1) p.am = p.bsa[p.nb - 1];
    p.M *= p.bshape[p.nb - 1];
    --p.nb;
  }
  p.batch = 1;
  for (int d = 0; d < p.nb; ++d) p.batch *= p.bshape[d];
  p.a = a.data();
  p.b = b.data();
  p.c = c.data();
  return p;
}

// ---- cuBLASLt ----

// op(X) is rows x cols with element (i, j) at i*s_r + j*s_c. As a cuBLAS
// column-major operand: not transposed (X stored rows x cols, ld = s_c) or
// transposed (X stored cols x rows, ld = s_r); ld >= the stored row count.
bool lt_operand(int64_t rows, int64_t cols, int64_t s_r, int64_t s_c, bool* trans, int64_t* ld) {
  const int64_t r1 = std::max<int64_t>(rows, 1), c1 = std::max<int64_t>(cols, 1);
  if (s_r == 1 || rows == 1) {
    const int64_t l = cols == 1 ? r1 : s_c;
    if (l >= r1) {
      *trans = false;
      *ld = l;
      return true;
    }
  }
  if (s_c == 1 || cols == 1) {
    const int64_t l = rows == 1 ? c1 : s_r;
    if (l >= c1) {
      *trans = true;
      *ld = l;
      return true;
    }
  }
  return false;
}

// C^T (N x M, ld N) = B^T (N x K) * A^T (K x M) in cuBLAS's column-major terms.
bool try_cublaslt(const Plan& p, int device, cudaStream_t s) {
  if (p.nb > 1) return false;
  LtGemm g;
  g.dtype = p.dtype;
  g.m = p.N;
  g.n = p.M;
  g.k = p.K;
  if (!lt_operand(p.N, p.K, p.bn, p.bk, &g.trans_a, &g.lda)) return false;
  if (!lt_operand(p.K, p.M, p.ak, p.am, &g.trans_b, &g.ldb)) return false;
  g.ldc = p.N;
  g.batch = p.nb == 1 ? p.bshape[0] : 1;
  g.stride_a = p.nb == 1 ? p.bsb[0] : 0;
  g.stride_b = p.nb == 1 ? p.bsa[0] : 0;
  g.stride_c = p.M * p.N;
  g.a = p.b;
  g.b = p.a;
  g.d = p.c;
  return cublaslt_gemm(device, s, g);
}

// ---- own kernels ----

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

// Whether 16-byte chunks along k (kvec) or along the rows (rvec) start aligned.
struct VecInfo {
  bool kvec = false, rvec = false;
};
VecInfo vec_info(const void* base, int64_t rows, int64_t K, int64_t s_r, int64_t s_k, const int64_t* batch_strides,
                 const Plan& p) {
  const int64_t es = static_cast<int64_t>(dtype_size(p.dtype));
  bool ok = aligned16(base);
  for (int d = 0; d < p.nb; ++d) ok = ok && (batch_strides[d] * es) % 16 == 0;
  VecInfo v;
  v.kvec = ok && (s_k == 1 || K == 1) && (rows == 1 || (s_r * es) % 16 == 0);
  v.rvec = ok && (s_r == 1 || rows == 1) && (K == 1 || (s_k * es) % 16 == 0);
  return v;
}

// Shared-memory layout for an operand: k-contiguous (KMAJ) when its chunks can
// be copied along k, row-contiguous when along the rows, else by the smaller stride.
bool prefer_kmaj(const VecInfo& v, int64_t s_r, int64_t s_k) {
  if (v.kvec) return true;
  if (v.rvec) return false;
  return s_k <= s_r;
}

int sm_count(int device) {
  static const std::vector<DeviceInfo> devs = devices();
  if (device >= 0 && device < static_cast<int>(devs.size()) && devs[device].multiprocessors > 0) {
    return devs[device].multiprocessors;
  }
  return 100;
}

constexpr int64_t kMaxGridX = 2147483647;
constexpr int64_t kMaxGridYZ = 65535;

template <class E, int MR>
void gemv_go(bool b_kmaj, dim3 grid, cudaStream_t s, const Params& p) {
  if (b_kmaj) {
    gemv_kernel<E, MR, true><<<grid, kGemvCols, 0, s>>>(p);
  } else {
    gemv_kernel<E, MR, false><<<grid, kGemvCols, 0, s>>>(p);
  }
}

template <class E>
void gemv_launch(int mr, bool b_kmaj, dim3 grid, cudaStream_t s, const Params& p) {
  switch (mr) {
    case 1: gemv_go<E, 1>(b_kmaj, grid, s, p); break;
    case 2: gemv_go<E, 2>(b_kmaj, grid, s, p); break;
    case 4: gemv_go<E, 4>(b_kmaj, grid, s, p); break;
    default: gemv_go<E, 8>(b_kmaj, grid, s, p); break;
  }
}

template <class E, int BM>
void hgemm_go(bool a_kmaj, bool b_kmaj, dim3 grid, cudaStream_t s, const Params& p) {
  if (a_kmaj && b_kmaj) {
    hgemm_kernel<E, BM, true, true><<<grid, kHThreads, 0, s>>>(p);
  } else if (a_kmaj) {
    hgemm_kernel<E, BM, true, false><<<grid, kHThreads, 0, s>>>(p);
  } else if (b_kmaj) {
    hgemm_kernel<E, BM, false, true><<<grid, kHThreads, 0, s>>>(p);
  } else {
    hgemm_kernel<E, BM, false, false><<<grid, kHThreads, 0, s>>>(p);
  }
}

template <class E>
Status run_own(const Plan& pl, int device, cudaStream_t s, const char* op) {
  Params p;
  p.a = pl.a;
  p.b = pl.b;
  p.c = pl.c;
  p.M = pl.M;
  p.N = pl.N;
  p.K = pl.K;
  p.am = pl.am;
  p.ak = pl.ak;
  p.bk = pl.bk;
  p.bn = pl.bn;
  p.batch = pl.batch;
  p.bi.nd = pl.nb;
  for (int d = 0; d < kMaxDims; ++d) {
    p.bi.shape[d] = d < pl.nb ? pl.bshape[d] : 1;
    p.bi.sa[d] = d < pl.nb ? pl.bsa[d] : 0;
    p.bi.sb[d] = d < pl.nb ? pl.bsb[d] : 0;
  }
  const VecInfo va = vec_info(pl.a, pl.M, pl.K, pl.am, pl.ak, pl.bsa, pl);
  const VecInfo vb = vec_info(pl.b, pl.N, pl.K, pl.bn, pl.bk, pl.bsb, pl);
  const bool a_kmaj = prefer_kmaj(va, pl.am, pl.ak);
  const bool b_kmaj = prefer_kmaj(vb, pl.bn, pl.bk);
  const unsigned gz = static_cast<unsigned>(std::min<int64_t>(pl.batch, kMaxGridYZ));

  if (pl.M <= 8) {
    // A is staged k-contiguous; B in the layout its strides favour.
    p.mtiles = 1;
    p.a_vec = va.kvec ? 1 : 0;
    p.b_vec = (b_kmaj ? vb.kvec : vb.rvec) ? 1 : 0;
    p.a_rows_fast = p.b_rows_fast = 0;
    const int64_t gx = (pl.N + kGemvCols - 1) / kGemvCols;
    if (gx > kMaxGridX) return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": N is too large");
    const int mr = pl.M <= 1 ? 1 : pl.M <= 2 ? 2 : pl.M <= 4 ? 4 : 8;
    gemv_launch<E>(mr, b_kmaj, dim3(static_cast<unsigned>(gx), gz, 1), s, p);
    KILN_CUDA_LAUNCH_CHECK(op);
    return Status::Ok();
  }

  if constexpr (std::is_same<E, el::F32>::value) {
    p.mtiles = (pl.M + kSBM - 1) / kSBM;
    p.a_vec = p.b_vec = 0;
    p.a_rows_fast = a_kmaj ? 0 : 1;
    p.b_rows_fast = b_kmaj ? 0 : 1;
    const int64_t gx = (pl.N + kSBN - 1) / kSBN;
    if (gx > kMaxGridX) return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": N is too large");
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(std::min<int64_t>(p.mtiles, kMaxGridYZ)), gz);
    sgemm_kernel<<<grid, kSThreads, 0, s>>>(p);
    KILN_CUDA_LAUNCH_CHECK(op);
    return Status::Ok();
  } else {
    p.a_vec = (a_kmaj ? va.kvec : va.rvec) ? 1 : 0;
    p.b_vec = (b_kmaj ? vb.kvec : vb.rvec) ? 1 : 0;
    p.a_rows_fast = p.b_rows_fast = 0;
    const int64_t gx = (pl.N + kHBN - 1) / kHBN;
    if (gx > kMaxGridX) return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": N is too large");
    // 64-row tiles when M is small or 128-row tiles would leave SMs idle.
    const int64_t tiles128 = (pl.M + 127) / 128 * gx * pl.batch;
    const bool small = pl.M <= 64 || tiles128 < sm_count(device);
    const int bm = small ? 64 : 128;
    p.mtiles = (pl.M + bm - 1) / bm;
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(std::min<int64_t>(p.mtiles, kMaxGridYZ)), gz);
    if (small) {
      hgemm_go<E, 64>(a_kmaj, b_kmaj, grid, s, p);
    } else {
      hgemm_go<E, 128>(a_kmaj, b_kmaj, grid, s, p);
    }
    KILN_CUDA_LAUNCH_CHECK(op);
    return Status::Ok();
  }
}

Status matmul_kernel(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(check_matmul_args(args));
  const View& a = args.in[0];
  const View& b = args.in[1];
  const View& c = args.out[0];
  if (c.numel() == 0) return Status::Ok();
  const Plan plan = make_plan(a, b, c);
  const int device = c.device.index;
  KILN_CUDA_ENTER(guard, device, args.op, s);
  if (plan.K == 0) {  // empty sums: C = 0 (+0.0 is all-zero bits in every float dtype)
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemsetAsync(c.data(), 0, static_cast<size_t>(c.numel()) * dtype_size(c.dtype), s), args.op);
    return Status::Ok();
  }
  if (try_cublaslt(plan, device, s)) return Status::Ok();
  switch (plan.dtype) {
    case DType::Float32: return run_own<el::F32>(plan, device, s, args.op);
    case DType::Float16: return run_own<el::F16>(plan, device, s, args.op);
    case DType::BFloat16: return run_own<el::BF16>(plan, device, s, args.op);
    default: break;
  }
  return no_kernel(args.op, plan.dtype, DeviceKind::CUDA);
}

KILN_REGISTER_KERNELS("matmul", DeviceKind::CUDA, kMatmulDTypes, matmul_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
