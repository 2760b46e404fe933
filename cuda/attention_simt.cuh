// SIMT (FFMA) attention kernels: the float32 path, and the path of 16-bit
// dtypes whose head dims the tensor-core kernels do not take (> 128). Any D,
// Dv, any strides. Included by cuda/attention.cu only.
//
// They follow the CPU kernels' arithmetic (native/cpu/nn_kernels_impl.inc)
// step by step: the same 64 x 64 tiles, every score a float32 dot product
// fma(q_d, k_d, s) for d = 0 .. D-1 in order, the same masking, the same exp2
// polynomial, acc = acc alpha then fma(p_j, v_j, acc) for the tile's keys in
// order, o = acc / l; backward: the same products, P and dS expressions and
// accumulation orders, including the order in which a row's exponentials
// are added into l (AVX-512's: 16 lanes, then the lanes in order). So with
// the same inputs the results are the CPU's bits at the AVX-512 level (the
// AVX2 level adds l in 8 lanes: o and lse may differ in the last bit), and
// the gradients are the CPU's bits at both FMA levels given the same o, lse.
//
// 256 threads as 16 x 16 (tx, ty). A thread owns rows ty*4 .. ty*4+3 of a
// tile and columns tx, tx+16, ..: 4 x 4 scores (the 16 threads of a row are 16
// consecutive lanes, so row reductions are 16-lane shuffles) and 4 x 8 output
// accumulators. Outputs are computed in slabs of 128 columns (Dv for o, D for
// gq, D + Dv for [gk | gv]); a launch has one block per (tile, slab), every
// slab recomputing the scores (same bits). Scores come from 32-column chunks
// of the operands staged in shared memory as float32.
#pragma once
#include "attention_common.cuh"

namespace kiln {
namespace cuda {
namespace attn {

constexpr int kSimtThreads = 256;
constexpr int kSBQ = 64, kSBK = 64;  // the CPU's kAttnBlockQ / kAttnBlockK
constexpr int kSDC = 32;             // operand chunk (columns) for the scores
constexpr int kSCP = kSDC + 1;       // its pitch (odd: conflict-free column reads)
constexpr int kSPP = kSBK + 1;       // pitch of the P / dS tiles
constexpr int kSlab = 128;           // output columns per block

// Shared memory (bytes) of each kernel.
constexpr size_t kSimtFwdSmem = sizeof(float) * (2 * 64 * kSCP + 64 * kSPP + 64 * kSlab);
constexpr size_t kSimtBwdQSmem = sizeof(float) * (2 * 64 * kSCP + 64 * kSPP + 64 * kSlab);
constexpr size_t kSimtBwdKVSmem = sizeof(float) * (2 * 64 * kSCP + 2 * 64 * kSPP + 64 * kSlab);

// dst[r * kSCP + c] = src(r, c0 + c) for r < rows, c < cols, 0 elsewhere in the 64 x 32 chunk.
template <class E>
__device__ __forceinline__ void stage_chunk(float* dst, const typename E::T* src, int64_t rs, int64_t cs, int rows,
                                            int64_t c0, int cols) {
  for (int e = static_cast<int>(threadIdx.x); e < 64 * kSDC; e += kSimtThreads) {
    const int r = e / kSDC, c = e % kSDC;
    dst[r * kSCP + c] = (r < rows && c < cols) ? ld<E>(src + r * rs + (c0 + c) * cs) : 0.0f;
  }
}

// acc[a][b] = fma(A[ty*4+a][c], B[tx+16b][c], acc[a][b]) for c = 0 .. cols-1 in order.
__device__ __forceinline__ void chunk_dots(const float* A, const float* Bm, int cols, int tx, int ty,
                                           float (&acc)[4][4]) {
  for (int c = 0; c < cols; ++c) {
    float av[4], bv[4];
#pragma unroll
    for (int a = 0; a < 4; ++a) av[a] = A[(ty * 4 + a) * kSCP + c];
#pragma unroll
    for (int b = 0; b < 4; ++b) bv[b] = Bm[(tx + 16 * b) * kSCP + c];
#pragma unroll
    for (int a = 0; a < 4; ++a) {
#pragma unroll
      for (int b = 0; b < 4; ++b) acc[a][b] = __fmaf_rn(av[a], bv[b], acc[a][b]);
    }
  }
}

// acc[a][b] = sum over c < n of A(rowA + a, c) B(rowB + b, c) (rows ty*4+a of
// A, rows tx+16b of B; both operands [rows, n] with strides), through chunks.
template <class E>
__device__ __forceinline__ void tile_dots(float* sa, float* sb, const typename E::T* A, int64_t ars, int64_t acs,
                                          int arows, const typename E::T* Bm, int64_t brs, int64_t bcs, int brows,
                                          int64_t n, int tx, int ty, float (&acc)[4][4]) {
#pragma unroll
  for (int a = 0; a < 4; ++a) {
#pragma unroll
    for (int b = 0; b < 4; ++b) acc[a][b] = 0.0f;
  }
  for (int64_t c0 = 0; c0 < n; c0 += kSDC) {
    const int cols = static_cast<int>(n - c0 < kSDC ? n - c0 : kSDC);
    __syncthreads();  // the previous chunk's readers are done
    stage_chunk<E>(sa, A, ars, acs, arows, c0, cols);
    stage_chunk<E>(sb, Bm, brs, bcs, brows, c0, cols);
    __syncthreads();
    chunk_dots(sa, sb, cols, tx, ty, acc);
  }
}

// Max and sum over the 16 lanes of a row group (lanes tx = 0..15 of one half-warp).
__device__ __forceinline__ float row16_max(float v) {
#pragma unroll
  for (int o = 8; o >= 1; o >>= 1) v = max_nan(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  return v;
}
// The 16 values added in lane order 0 + v_0 + v_1 + .. + v_15: with the
// per-thread partial sums over keys tx, tx+16, tx+32, tx+48 this is the CPU's
// AVX-512 order (16 vector lanes, then a horizontal sum in lane order).
__device__ __forceinline__ float row16_sum(float v) {
  const int base = static_cast<int>(threadIdx.x) & 16;
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 16; ++i) s = __fadd_rn(s, __shfl_sync(0xFFFFFFFFu, v, base + i));
  return s;
}

// ---- forward ------------------------------------------------------------------------------------------

// Block: query tile qb of (b, h), output columns slab * 128 .. of o (slab 0 also writes lse).
template <class E>
__global__ void __launch_bounds__(kSimtThreads) attn_fwd_simt_kernel(FwdParams p) {
  using T = typename E::T;
  KILN_ATTN_SMEM(smem_raw);
  float* sa = reinterpret_cast<float*>(smem_raw);
  float* sb = sa + 64 * kSCP;
  float* sp = sb + 64 * kSCP;  // P [64][kSPP]
  float* sv = sp + 64 * kSPP;  // V slab [64][kSlab]
  const int tid = static_cast<int>(threadIdx.x), tx = tid % 16, ty = tid / 16;
  int64_t t = blockIdx.x;
  const int slab = static_cast<int>(t % p.nslab);
  t /= p.nslab;
  const int64_t qb = p.nqb - 1 - t % p.nqb;  // the costliest (causal) tiles first
  const int64_t bh = t / p.nqb;
  const int64_t b = bh / p.Hq, h = bh % p.Hq, hk = h / p.G;
  const int64_t i0 = qb * kSBQ;
  const int mq = static_cast<int>(p.Sq - i0 < kSBQ ? p.Sq - i0 : kSBQ);
  const int64_t c0 = static_cast<int64_t>(slab) * kSlab;
  const int ncols = static_cast<int>(p.Dv - c0 < kSlab ? p.Dv - c0 : kSlab);
  const T* qp = static_cast<const T*>(p.q.p) + b * p.q.s0 + h * p.q.s1 + i0 * p.q.s2;
  const T* kp = static_cast<const T*>(p.k.p) + b * p.k.s0 + hk * p.k.s1;
  const T* vp = static_cast<const T*>(p.v.p) + b * p.v.s0 + hk * p.v.s1;
  const int64_t lk_last = last_key(i0 + mq - 1, p.Sq, p.Sk, p.causal);
  const int64_t kend = lk_last + 1 > 0 ? lk_last + 1 : 0;

  float m[4], l[4], acc[4][8];
  int64_t lastk[4];
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    m[a] = kNegInf;
    l[a] = 0.0f;
    const int r = ty * 4 + a;
    lastk[a] = r < mq ? last_key(i0 + r, p.Sq, p.Sk, p.causal) : -1;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[a][j] = 0.0f;
  }

  for (int64_t j0 = 0; j0 < kend; j0 += kSBK) {
    const int nk = static_cast<int>(kend - j0 < kSBK ? kend - j0 : kSBK);
    float s[4][4];
    tile_dots<E>(sa, sb, qp, p.q.s2, p.q.s3, mq, kp + j0 * p.k.s2, p.k.s2, p.k.s3, nk, p.D, tx, ty, s);
    __syncthreads();  // the previous tile's P / V readers are done (also when D == 0)
    float alpha[4];
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      int64_t vis64 = lastk[a] - j0 + 1;
      vis64 = vis64 < 0 ? 0 : (vis64 > nk ? nk : vis64);
      const int vis = static_cast<int>(vis64);
      float x[4];
      float mx = kNegInf;
#pragma unroll
      for (int bb = 0; bb < 4; ++bb) {
        x[bb] = (tx + 16 * bb < vis) ? __fmul_rn(s[a][bb], p.c) : kNegInf;
        mx = max_nan(mx, x[bb]);
      }
      mx = row16_max(mx);
      const float mnew = mx != mx ? mx : (m[a] < mx ? mx : m[a]);
      // skip: no key visible yet, p = 0 and nothing changes. (The shuffles
      // stay outside the branch: the warp's two rows may differ.)
      const bool skip = mnew == kNegInf;
      float pr[4];
      float ps = 0.0f;
#pragma unroll
      for (int bb = 0; bb < 4; ++bb) {
        pr[bb] = skip ? 0.0f : exp2_poly(__fsub_rn(x[bb], mnew));
        ps = __fadd_rn(ps, pr[bb]);
      }
      ps = row16_sum(ps);
      alpha[a] = 1.0f;
      if (!skip) {
        alpha[a] = m[a] == kNegInf ? 0.0f : exp2_poly(__fsub_rn(m[a], mnew));
        l[a] = __fadd_rn(__fmul_rn(l[a], alpha[a]), ps);
        m[a] = mnew;
      }
#pragma unroll
      for (int bb = 0; bb < 4; ++bb) sp[(ty * 4 + a) * kSPP + tx + 16 * bb] = pr[bb];
    }
    for (int e = tid; e < 64 * kSlab; e += kSimtThreads) {
      const int r = e / kSlab, c = e % kSlab;
      sv[e] = (r < nk && c < ncols) ? ld<E>(vp + (j0 + r) * p.v.s2 + (c0 + c) * p.v.s3) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int a = 0; a < 4; ++a) {
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[a][j] = __fmul_rn(acc[a][j], alpha[a]);
    }
    for (int key = 0; key < nk; ++key) {
      float pv[4], vv[8];
#pragma unroll
      for (int a = 0; a < 4; ++a) pv[a] = sp[(ty * 4 + a) * kSPP + key];
#pragma unroll
      for (int j = 0; j < 8; ++j) vv[j] = sv[key * kSlab + tx + 16 * j];
#pragma unroll
      for (int a = 0; a < 4; ++a) {
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[a][j] = __fmaf_rn(pv[a], vv[j], acc[a][j]);
      }
    }
  }

  T* op = static_cast<T*>(const_cast<void*>(p.o.p)) + b * p.o.s0 + h * p.o.s1 + i0 * p.o.s2;
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int r = ty * 4 + a;
    if (r >= mq) continue;
    const float lt = l[a];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int c = tx + 16 * j;
      if (c < ncols) st<E>(op + r * p.o.s2 + (c0 + c) * p.o.s3, lt == 0.0f ? 0.0f : __fdiv_rn(acc[a][j], lt));
    }
    if (slab == 0 && tx == 0) {
      p.lse[b * p.ls0 + h * p.ls1 + (i0 + r) * p.ls2] =
          lt == 0.0f ? kNegInf : static_cast<float>((static_cast<double>(m[a]) + log2(static_cast<double>(lt))) * kLn2);
    }
  }
}

// ---- backward: gq -------------------------------------------------------------------------------------

// Block: query tile qb of (b, h), gq columns slab * 128 ..:
//   S = q k^T, dP = go v^T, P = exp2(S c - lse2) (0 where masked), dS = P (dP - delta),
//   acc = fma(dS_j, k_j, acc) over the keys in order; gq = acc scale.
template <class E>
__global__ void __launch_bounds__(kSimtThreads) attn_bwd_q_simt_kernel(BwdParams p) {
  using T = typename E::T;
  KILN_ATTN_SMEM(smem_raw);
  float* sa = reinterpret_cast<float*>(smem_raw);
  float* sb = sa + 64 * kSCP;
  float* sds = sb + 64 * kSCP;  // dS [64][kSPP]
  float* sk = sds + 64 * kSPP;  // k slab [64][kSlab]
  const int tid = static_cast<int>(threadIdx.x), tx = tid % 16, ty = tid / 16;
  int64_t t = blockIdx.x;
  const int slab = static_cast<int>(t % p.nslab);
  t /= p.nslab;
  const int64_t qb = p.nqb - 1 - t % p.nqb;
  const int64_t bh = t / p.nqb;
  const int64_t b = bh / p.Hq, h = bh % p.Hq, hk = h / p.G;
  const int64_t i0 = qb * kSBQ;
  const int mq = static_cast<int>(p.Sq - i0 < kSBQ ? p.Sq - i0 : kSBQ);
  const int64_t c0 = static_cast<int64_t>(slab) * kSlab;
  const int ncols = static_cast<int>(p.D - c0 < kSlab ? p.D - c0 : kSlab);
  const T* qp = static_cast<const T*>(p.q.p) + b * p.q.s0 + h * p.q.s1 + i0 * p.q.s2;
  const T* gp = static_cast<const T*>(p.go.p) + b * p.go.s0 + h * p.go.s1 + i0 * p.go.s2;
  const T* kp = static_cast<const T*>(p.k.p) + b * p.k.s0 + hk * p.k.s1;
  const T* vp = static_cast<const T*>(p.v.p) + b * p.v.s0 + hk * p.v.s1;
  const int64_t row0 = bh * p.Sq + i0;  // rows of delta / lse2
  const int64_t lk_last = last_key(i0 + mq - 1, p.Sq, p.Sk, p.causal);
  const int64_t kend = lk_last + 1 > 0 ? lk_last + 1 : 0;

  float acc[4][8], lrow[4], drow[4];
  int64_t lastk[4];
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int r = ty * 4 + a;
    lastk[a] = r < mq ? last_key(i0 + r, p.Sq, p.Sk, p.causal) : -1;
    lrow[a] = r < mq ? p.lse2[row0 + r] : kPosInf;
    drow[a] = r < mq ? p.delta[row0 + r] : 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[a][j] = 0.0f;
  }

  for (int64_t j0 = 0; j0 < kend; j0 += kSBK) {
    const int nk = static_cast<int>(kend - j0 < kSBK ? kend - j0 : kSBK);
    float s[4][4], dp[4][4];
    tile_dots<E>(sa, sb, qp, p.q.s2, p.q.s3, mq, kp + j0 * p.k.s2, p.k.s2, p.k.s3, nk, p.D, tx, ty, s);
    tile_dots<E>(sa, sb, gp, p.go.s2, p.go.s3, mq, vp + j0 * p.v.s2, p.v.s2, p.v.s3, nk, p.Dv, tx, ty, dp);
    __syncthreads();  // the previous tile's dS / k readers are done
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      int64_t vis64 = lastk[a] - j0 + 1;
      vis64 = vis64 < 0 ? 0 : (vis64 > nk ? nk : vis64);
      const int vis = static_cast<int>(vis64);
#pragma unroll
      for (int bb = 0; bb < 4; ++bb) {
        const float pr = exp2_poly(__fsub_rn(__fmul_rn(s[a][bb], p.c), lrow[a]));
        const float pm = (tx + 16 * bb < vis) ? pr : 0.0f;
        sds[(ty * 4 + a) * kSPP + tx + 16 * bb] = __fmul_rn(pm, __fsub_rn(dp[a][bb], drow[a]));
      }
    }
    for (int e = tid; e < 64 * kSlab; e += kSimtThreads) {
      const int r = e / kSlab, c = e % kSlab;
      sk[e] = (r < nk && c < ncols) ? ld<E>(kp + (j0 + r) * p.k.s2 + (c0 + c) * p.k.s3) : 0.0f;
    }
    __syncthreads();
    for (int key = 0; key < nk; ++key) {
      float dv[4], kv[8];
#pragma unroll
      for (int a = 0; a < 4; ++a) dv[a] = sds[(ty * 4 + a) * kSPP + key];
#pragma unroll
      for (int j = 0; j < 8; ++j) kv[j] = sk[key * kSlab + tx + 16 * j];
#pragma unroll
      for (int a = 0; a < 4; ++a) {
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[a][j] = __fmaf_rn(dv[a], kv[j], acc[a][j]);
      }
    }
  }

  T* gqp = static_cast<T*>(const_cast<void*>(p.gq.p)) + b * p.gq.s0 + h * p.gq.s1 + i0 * p.gq.s2;
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int r = ty * 4 + a;
    if (r >= mq) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int c = tx + 16 * j;
      if (c < ncols) st<E>(gqp + r * p.gq.s2 + (c0 + c) * p.gq.s3, __fmul_rn(acc[a][j], p.scale));
    }
  }
}

// ---- backward: gk, gv ---------------------------------------------------------------------------------

// Block: key tile kb of (b, kv head hk), columns slab * 128 .. of [gk | gv]
// (D + Dv columns). For each query head of the group in order and each query
// tile from the first query that may see the tile's first key:
//   P^T = exp2(k q^T c - lse2) (0 where masked), dS^T = P^T (v go^T - delta),
//   gk acc = fma(dS^T_i, q_i, acc), gv acc = fma(P^T_i, go_i, acc) over the queries in order.
template <class E>
__global__ void __launch_bounds__(kSimtThreads) attn_bwd_kv_simt_kernel(BwdParams p) {
  using T = typename E::T;
  KILN_ATTN_SMEM(smem_raw);
  float* sa = reinterpret_cast<float*>(smem_raw);
  float* sb = sa + 64 * kSCP;
  float* spt = sb + 64 * kSCP;    // P^T [64 keys][kSPP]
  float* sdst = spt + 64 * kSPP;  // dS^T
  float* sx = sdst + 64 * kSPP;   // [q | go] slab [64 queries][kSlab]
  const int tid = static_cast<int>(threadIdx.x), tx = tid % 16, ty = tid / 16;
  int64_t t = blockIdx.x;
  const int slab = static_cast<int>(t % p.nslab);
  t /= p.nslab;
  const int64_t kb = t % p.nkb;
  const int64_t bh = t / p.nkb;
  const int64_t b = bh / p.Hk, hk = bh % p.Hk;
  const int64_t j0 = kb * kSBK;
  const int nk = static_cast<int>(p.Sk - j0 < kSBK ? p.Sk - j0 : kSBK);
  const int64_t c0 = static_cast<int64_t>(slab) * kSlab;
  const int64_t DD = p.D + p.Dv;
  const int ncols = static_cast<int>(DD - c0 < kSlab ? DD - c0 : kSlab);
  const T* kp = static_cast<const T*>(p.k.p) + b * p.k.s0 + hk * p.k.s1 + j0 * p.k.s2;
  const T* vp = static_cast<const T*>(p.v.p) + b * p.v.s0 + hk * p.v.s1 + j0 * p.v.s2;
  const int64_t off = p.Sk - p.Sq;
  const int64_t qstart = p.causal ? (j0 - off > 0 ? j0 - off : 0) : 0;

  float acc[4][8];
  bool is_k[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) is_k[j] = c0 + tx + 16 * j < p.D;
#pragma unroll
  for (int a = 0; a < 4; ++a) {
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[a][j] = 0.0f;
  }

  for (int64_t g = 0; g < p.G; ++g) {
    const int64_t h = hk * p.G + g;
    const T* qh = static_cast<const T*>(p.q.p) + b * p.q.s0 + h * p.q.s1;
    const T* gh = static_cast<const T*>(p.go.p) + b * p.go.s0 + h * p.go.s1;
    const int64_t row_h = (b * p.Hq + h) * p.Sq;
    for (int64_t i0 = qstart; i0 < p.Sq; i0 += kSBQ) {
      const int mq = static_cast<int>(p.Sq - i0 < kSBQ ? p.Sq - i0 : kSBQ);
      float s[4][4], dp[4][4];
      tile_dots<E>(sa, sb, kp, p.k.s2, p.k.s3, nk, qh + i0 * p.q.s2, p.q.s2, p.q.s3, mq, p.D, tx, ty, s);
      tile_dots<E>(sa, sb, vp, p.v.s2, p.v.s3, nk, gh + i0 * p.go.s2, p.go.s2, p.go.s3, mq, p.Dv, tx, ty, dp);
      __syncthreads();  // the previous tile's P^T / dS^T / slab readers are done
      float lq[4], dq[4];
#pragma unroll
      for (int bb = 0; bb < 4; ++bb) {
        const int col = tx + 16 * bb;
        lq[bb] = col < mq ? p.lse2[row_h + i0 + col] : kPosInf;
        dq[bb] = col < mq ? p.delta[row_h + i0 + col] : 0.0f;
      }
#pragma unroll
      for (int a = 0; a < 4; ++a) {
        const int jj = ty * 4 + a;
        // first query column (relative to i0) that sees key j0 + jj
        int64_t lo = p.causal ? j0 + jj - off - i0 : 0;
        lo = lo < 0 ? 0 : (lo > mq ? mq : lo);
#pragma unroll
        for (int bb = 0; bb < 4; ++bb) {
          const int col = tx + 16 * bb;
          const float pr = exp2_poly(__fsub_rn(__fmul_rn(s[a][bb], p.c), lq[bb]));
          const float pm = (jj < nk && col >= lo && col < mq) ? pr : 0.0f;
          spt[jj * kSPP + col] = pm;
          sdst[jj * kSPP + col] = __fmul_rn(pm, __fsub_rn(dp[a][bb], dq[bb]));
        }
      }
      for (int e = tid; e < 64 * kSlab; e += kSimtThreads) {
        const int r = e / kSlab, c = e % kSlab;
        const int64_t col = c0 + c;
        float v = 0.0f;
        if (r < mq && c < ncols) {
          v = col < p.D ? ld<E>(qh + (i0 + r) * p.q.s2 + col * p.q.s3)
                        : ld<E>(gh + (i0 + r) * p.go.s2 + (col - p.D) * p.go.s3);
        }
        sx[e] = v;
      }
      __syncthreads();
      for (int qi = 0; qi < mq; ++qi) {
        float pv[4], dsv[4], xv[8];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
          pv[a] = spt[(ty * 4 + a) * kSPP + qi];
          dsv[a] = sdst[(ty * 4 + a) * kSPP + qi];
        }
#pragma unroll
        for (int j = 0; j < 8; ++j) xv[j] = sx[qi * kSlab + tx + 16 * j];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[a][j] = __fmaf_rn(is_k[j] ? dsv[a] : pv[a], xv[j], acc[a][j]);
        }
      }
    }
  }

  T* gkp = static_cast<T*>(const_cast<void*>(p.gk.p)) + b * p.gk.s0 + hk * p.gk.s1 + j0 * p.gk.s2;
  T* gvp = static_cast<T*>(const_cast<void*>(p.gv.p)) + b * p.gv.s0 + hk * p.gv.s1 + j0 * p.gv.s2;
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int r = ty * 4 + a;
    if (r >= nk) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int c = tx + 16 * j;
      if (c >= ncols) continue;
      const int64_t col = c0 + c;
      if (col < p.D) {
        st<E>(gkp + r * p.gk.s2 + col * p.gk.s3, __fmul_rn(acc[a][j], p.scale));
      } else {
        st<E>(gvp + r * p.gv.s2 + (col - p.D) * p.gv.s3, acc[a][j]);
      }
    }
  }
}

}  // namespace attn
}  // namespace cuda
}  // namespace kiln
