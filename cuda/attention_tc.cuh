// Tensor-core attention kernels for float16 / bfloat16 with D, Dv <= 128
// (sm_80+: mma.sync.m16n8k16 with float32 accumulation, ldmatrix, cp.async).
// Included by cuda/attention.cu only.
//
// Forward (flash-attention 2): a block of 4 warps takes 64 query rows of one
// (batch, head), 16 rows per warp; key / value tiles of 64 rows stream through
// shared memory in two stages (cp.async when a row is 16-byte aligned and
// contiguous, element gathers otherwise). Per tile a warp computes
// S = Q K^T (16 x 64, float32 accumulators; Q's fragments stay in registers),
// masks, runs the online softmax in float32 in base 2 (scores times
// scale log2(e), exp2f), rounds P to the dtype and accumulates O += P V on the
// tensor cores. Rows live in a quad of lanes: the row max is a quad
// butterfly; the row sums stay per lane until the end. o = acc / l,
// lse = (m + log2 l) ln 2 (float64), o = 0 and lse = -inf where no key is seen.
// The keys streamed per query tile are the CPU's: 0 .. last key the tile's
// last row may see (masked products are 0 * v, as there).
//
// Backward (flash-attention 2, deterministic): delta and lse2 first
// (attn_bwd_prep_kernel); then dK / dV per 64-key tile (4 warps x 16 keys)
// looping over the group's query heads in order and their query tiles:
// S^T = K Q^T, dP^T = V dO^T, P^T = exp2(S^T c - lse2), dS^T = P^T (dP^T - delta),
// dV += P^T dO, dK += dS^T Q (P^T and dS^T rounded to the dtype for the
// tensor cores); and dQ per 64-query tile: S, dP, dS as above, dQ += dS K.
#pragma once
#include "attention_common.cuh"

namespace kiln {
namespace cuda {
namespace attn {

// ---- warp-level primitives ---------------------------------------------------------------------------

#if !defined(KILN_EMU)
#include "mma_sm80.cuh"
// Two floats rounded (RNE) to the dtype, `lo` in the low half.
template <class E>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  if constexpr (std::is_same<E, el::BF16>::value) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
#else
  return static_cast<uint32_t>(E::from_f32(lo)) | (static_cast<uint32_t>(E::from_f32(hi)) << 16);
#endif
}
#else
using ::emu::cp_async16;
using ::emu::cp_async_commit;
using ::emu::cp_async_wait;
using ::emu::ldsm_x4;
using ::emu::ldsm_x4_trans;
template <class E>
void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  ::emu::mma_16816(std::is_same<E, el::BF16>::value, d, a, b0, b1);
}
template <class E>
uint32_t pack2(float lo, float hi) {
  return static_cast<uint32_t>(E::from_f32(lo)) | (static_cast<uint32_t>(E::from_f32(hi)) << 16);
}
#endif

// ---- tiles -----------------------------------------------------------------------------------------------

constexpr int kTcThreads = 128;  // 4 warps

// Shared-memory pitch (elements) of a tile row with HD columns: 16 bytes of
// padding put consecutive rows in different bank groups for ldmatrix.
template <int HD>
struct Pitch {
  static constexpr int P = HD + 8;
};

// Stages rows x `fill` of a 16-bit operand: dst[r * PITCH + c] = src[r * rs + c * cs]
// for r < rows, c < cols; zeros elsewhere (r < ROWS, c < fill; fill a multiple
// of 16). vec: 16-byte cp.async chunks (cs == 1, 16-byte aligned rows), else
// element gathers.
template <int ROWS, int PITCH>
__device__ __forceinline__ void stage_tile(uint16_t* dst, const uint16_t* src, int64_t rs, int64_t cs, int rows,
                                           int cols, int fill, bool vec) {
  const int tid = static_cast<int>(threadIdx.x);
  if (vec) {
    const int cpr = fill / 8;  // chunks per row
    for (int e = tid; e < ROWS * cpr; e += kTcThreads) {
      const int r = e / cpr, c = (e % cpr) * 8;
      int bytes = 0;
      const uint16_t* g = src;
      if (r < rows && c < cols) {
        bytes = (cols - c < 8 ? cols - c : 8) * 2;
        g = src + r * rs + c;
      }
      cp_async16(dst + r * PITCH + c, g, bytes);
    }
  } else {
    for (int e = tid; e < ROWS * fill; e += kTcThreads) {
      const int r = e / fill, c = e % fill;
      dst[r * PITCH + c] = (r < rows && c < cols) ? src[r * rs + c * cs] : static_cast<uint16_t>(0);
    }
  }
}

// ---- forward ---------------------------------------------------------------------------------------------

constexpr int kTBQ = 64, kTBK = 64;

template <int HD>
constexpr size_t tc_fwd_smem() {
  return sizeof(uint16_t) * static_cast<size_t>(kTBQ + 4 * kTBK) * Pitch<HD>::P;
}

template <class E, int HD>
__global__ void __launch_bounds__(kTcThreads) attn_fwd_tc_kernel(FwdParams p) {
  constexpr int PITCH = Pitch<HD>::P;
  constexpr int KT = HD / 16;   // k-steps of Q K^T (and 16-column groups of V)
  constexpr int NT = kTBK / 8;  // n-tiles of S
  constexpr int OT = HD / 8;    // n-tiles of O
  KILN_ATTN_SMEM(smem_raw);
  uint16_t* sq = reinterpret_cast<uint16_t*>(smem_raw);
  uint16_t* sk = sq + kTBQ * PITCH;        // [2][kTBK][PITCH]
  uint16_t* sv = sk + 2 * kTBK * PITCH;    // [2][kTBK][PITCH]
  const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31;
  const int64_t t = blockIdx.x;
  const int64_t qb = p.nqb - 1 - t % p.nqb;  // the costliest (causal) tiles first
  const int64_t bh = t / p.nqb;
  const int64_t b = bh / p.Hq, h = bh % p.Hq, hk = h / p.G;
  const int64_t i0 = qb * kTBQ;
  const int mq = static_cast<int>(p.Sq - i0 < kTBQ ? p.Sq - i0 : kTBQ);
  const int D = static_cast<int>(p.D), Dv = static_cast<int>(p.Dv);
  const int dkt = (D + 15) / 16, dvt = (Dv + 15) / 16;
  const uint16_t* qp = static_cast<const uint16_t*>(p.q.p) + b * p.q.s0 + h * p.q.s1 + i0 * p.q.s2;
  const uint16_t* kp = static_cast<const uint16_t*>(p.k.p) + b * p.k.s0 + hk * p.k.s1;
  const uint16_t* vp = static_cast<const uint16_t*>(p.v.p) + b * p.v.s0 + hk * p.v.s1;
  const int64_t lk_last = last_key(i0 + mq - 1, p.Sq, p.Sk, p.causal);
  const int64_t kend = lk_last + 1 > 0 ? lk_last + 1 : 0;
  const int64_t ntiles = (kend + kTBK - 1) / kTBK;

  auto load_kv = [&](int64_t tile) {
    const int stage = static_cast<int>(tile & 1);
    const int64_t j0 = tile * kTBK;
    const int nk = static_cast<int>(kend - j0 < kTBK ? kend - j0 : kTBK);
    stage_tile<kTBK, PITCH>(sk + stage * kTBK * PITCH, kp + j0 * p.k.s2, p.k.s2, p.k.s3, nk, D, dkt * 16,
                            p.k.vec != 0);
    stage_tile<kTBK, PITCH>(sv + stage * kTBK * PITCH, vp + j0 * p.v.s2, p.v.s2, p.v.s3, nk, Dv, dvt * 16,
                            p.v.vec != 0);
  };

  stage_tile<kTBQ, PITCH>(sq, qp, p.q.s2, p.q.s3, mq, D, dkt * 16, p.q.vec != 0);
  if (ntiles > 0) load_kv(0);
  cp_async_commit();

  // This lane's rows (tile-local): lo = warp*16 + lane/4, hi = lo + 8.
  const int r_lo = warp * 16 + (lane >> 2), r_hi = r_lo + 8;
  const int64_t lk_lo = r_lo < mq ? last_key(i0 + r_lo, p.Sq, p.Sk, p.causal) : -1;
  const int64_t lk_hi = r_hi < mq ? last_key(i0 + r_hi, p.Sq, p.Sk, p.causal) : -1;
  float m_lo = kNegInf, m_hi = kNegInf, l_lo = 0.0f, l_hi = 0.0f;
  float acc[OT][4];
#pragma unroll
  for (int i = 0; i < OT; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[i][e] = 0.0f;
  }
  uint32_t qf[KT][4];

  for (int64_t tile = 0; tile < ntiles; ++tile) {
    if (tile + 1 < ntiles) load_kv(tile + 1);
    cp_async_commit();
    cp_async_wait<1>();  // everything but the newest group has landed (this thread's copies)
    __syncthreads();     // ... and everyone's
    if (tile == 0) {
#pragma unroll
      for (int kk = 0; kk < KT; ++kk) {
        if (kk < dkt) {
          ldsm_x4(qf[kk], sq + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + kk * 16 + (lane >> 4) * 8);
        }
      }
    }
    const int stage = static_cast<int>(tile & 1);
    const uint16_t* ks = sk + stage * kTBK * PITCH;
    const uint16_t* vs = sv + stage * kTBK * PITCH;
    const int64_t j0 = tile * kTBK;
    const int nk = static_cast<int>(kend - j0 < kTBK ? kend - j0 : kTBK);

    float s[NT][4];
#pragma unroll
    for (int i = 0; i < NT; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[i][e] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
      if (kk < dkt) {
#pragma unroll
        for (int nj = 0; nj < NT / 2; ++nj) {
          uint32_t r[4];
          ldsm_x4(r, ks + (nj * 16 + (lane & 7) + (lane >> 4) * 8) * PITCH + kk * 16 + ((lane >> 3) & 1) * 8);
          mma_16816<E>(s[2 * nj], qf[kk], r[0], r[1]);
          mma_16816<E>(s[2 * nj + 1], qf[kk], r[2], r[3]);
        }
      }
    }

    // Mask, scale to base 2, online softmax.
    int64_t v64 = lk_lo - j0 + 1;
    const int vis_lo = static_cast<int>(v64 < 0 ? 0 : (v64 > nk ? nk : v64));
    v64 = lk_hi - j0 + 1;
    const int vis_hi = static_cast<int>(v64 < 0 ? 0 : (v64 > nk ? nk : v64));
    float mx_lo = kNegInf, mx_hi = kNegInf;
#pragma unroll
    for (int i = 0; i < NT; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = i * 8 + (lane & 3) * 2 + (e & 1);
        const bool hi = e >= 2;
        const float x = key < (hi ? vis_hi : vis_lo) ? __fmul_rn(s[i][e], p.c) : kNegInf;
        s[i][e] = x;
        if (hi) {
          mx_hi = max_nan(mx_hi, x);
        } else {
          mx_lo = max_nan(mx_lo, x);
        }
      }
    }
#pragma unroll
    for (int o = 1; o <= 2; o <<= 1) {
      mx_lo = max_nan(mx_lo, __shfl_xor_sync(0xFFFFFFFFu, mx_lo, o));
      mx_hi = max_nan(mx_hi, __shfl_xor_sync(0xFFFFFFFFu, mx_hi, o));
    }
    const float mn_lo = mx_lo != mx_lo ? mx_lo : (m_lo < mx_lo ? mx_lo : m_lo);
    const float mn_hi = mx_hi != mx_hi ? mx_hi : (m_hi < mx_hi ? mx_hi : m_hi);
    const bool skip_lo = mn_lo == kNegInf, skip_hi = mn_hi == kNegInf;
    float ps_lo = 0.0f, ps_hi = 0.0f;
#pragma unroll
    for (int i = 0; i < NT; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool hi = e >= 2;
        float pr;
        if (hi) {
          pr = skip_hi ? 0.0f : exp2f(__fsub_rn(s[i][e], mn_hi));
          ps_hi = __fadd_rn(ps_hi, pr);
        } else {
          pr = skip_lo ? 0.0f : exp2f(__fsub_rn(s[i][e], mn_lo));
          ps_lo = __fadd_rn(ps_lo, pr);
        }
        s[i][e] = pr;
      }
    }
    float a_lo = 1.0f, a_hi = 1.0f;
    if (!skip_lo) {
      a_lo = m_lo == kNegInf ? 0.0f : exp2f(__fsub_rn(m_lo, mn_lo));
      l_lo = __fadd_rn(__fmul_rn(l_lo, a_lo), ps_lo);
      m_lo = mn_lo;
    }
    if (!skip_hi) {
      a_hi = m_hi == kNegInf ? 0.0f : exp2f(__fsub_rn(m_hi, mn_hi));
      l_hi = __fadd_rn(__fmul_rn(l_hi, a_hi), ps_hi);
      m_hi = mn_hi;
    }
#pragma unroll
    for (int i = 0; i < OT; ++i) {
      acc[i][0] = __fmul_rn(acc[i][0], a_lo);
      acc[i][1] = __fmul_rn(acc[i][1], a_lo);
      acc[i][2] = __fmul_rn(acc[i][2], a_hi);
      acc[i][3] = __fmul_rn(acc[i][3], a_hi);
    }

    // O += P V: P's accumulator layout is the A-fragment layout of m16n8k16.
#pragma unroll
    for (int kk = 0; kk < kTBK / 16; ++kk) {
      uint32_t pa[4];
      pa[0] = pack2<E>(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = pack2<E>(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = pack2<E>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = pack2<E>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int nd = 0; nd < KT; ++nd) {
        if (nd < dvt) {
          uint32_t r[4];
          ldsm_x4_trans(r, vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + nd * 16 + (lane >> 4) * 8);
          mma_16816<E>(acc[2 * nd], pa, r[0], r[1]);
          mma_16816<E>(acc[2 * nd + 1], pa, r[2], r[3]);
        }
      }
    }
    __syncthreads();  // this stage may be refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();

  // Epilogue: row sums over the quad, o = acc / l, lse.
#pragma unroll
  for (int o = 1; o <= 2; o <<= 1) {
    l_lo = __fadd_rn(l_lo, __shfl_xor_sync(0xFFFFFFFFu, l_lo, o));
    l_hi = __fadd_rn(l_hi, __shfl_xor_sync(0xFFFFFFFFu, l_hi, o));
  }
  uint16_t* op = static_cast<uint16_t*>(const_cast<void*>(p.o.p)) + b * p.o.s0 + h * p.o.s1 + i0 * p.o.s2;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = half ? r_hi : r_lo;
    if (r >= mq) continue;
    const float lt = half ? l_hi : l_lo, mt = half ? m_hi : m_lo;
    uint16_t* orow = op + r * p.o.s2;
#pragma unroll
    for (int i = 0; i < OT; ++i) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = i * 8 + (lane & 3) * 2 + e;
        if (col < Dv) {
          const float v = lt == 0.0f ? 0.0f : __fdiv_rn(acc[i][half * 2 + e], lt);
          orow[col * p.o.s3] = E::from_f32(v);
        }
      }
    }
    if ((lane & 3) == 0) {
      p.lse[b * p.ls0 + h * p.ls1 + (i0 + r) * p.ls2] =
          lt == 0.0f ? kNegInf : static_cast<float>((static_cast<double>(mt) + log2(static_cast<double>(lt))) * kLn2);
    }
  }
}

// ---- backward ---------------------------------------------------------------------------------------------

// Query rows per inner tile of the dK / dV kernel and key rows per tile of the
// dQ kernel: 64 for head dims <= 64, 32 for <= 128 (registers).
template <int HD>
struct TcBwd {
  static constexpr int BQI = HD <= 64 ? 64 : 32;
  static constexpr int BKQ = HD <= 64 ? 64 : 32;
};
constexpr int kTBKK = 64;  // keys per dK / dV block
constexpr int kTBQQ = 64;  // queries per dQ block

template <int HD>
constexpr size_t tc_bwd_kv_smem() {
  return sizeof(uint16_t) * static_cast<size_t>(2 * kTBKK + 4 * TcBwd<HD>::BQI) * Pitch<HD>::P +
         sizeof(float) * 4 * TcBwd<HD>::BQI;
}
template <int HD>
constexpr size_t tc_bwd_q_smem() {
  return sizeof(uint16_t) * static_cast<size_t>(2 * kTBQQ + 4 * TcBwd<HD>::BKQ) * Pitch<HD>::P;
}

// Loads one query tile (q, go rows, their lse2 and delta) of the dK / dV loop into a stage.
template <int HD, int BQI>
__device__ __forceinline__ void load_q_tile(const BwdParams& p, int64_t b, int64_t h, int64_t i0, int mq, int dkt,
                                            int dvt, uint16_t* sq, uint16_t* sgo, float* sl, float* sd) {
  constexpr int PITCH = Pitch<HD>::P;
  const uint16_t* qp = static_cast<const uint16_t*>(p.q.p) + b * p.q.s0 + h * p.q.s1 + i0 * p.q.s2;
  const uint16_t* gp = static_cast<const uint16_t*>(p.go.p) + b * p.go.s0 + h * p.go.s1 + i0 * p.go.s2;
  stage_tile<BQI, PITCH>(sq, qp, p.q.s2, p.q.s3, mq, static_cast<int>(p.D), dkt * 16, p.q.vec != 0);
  stage_tile<BQI, PITCH>(sgo, gp, p.go.s2, p.go.s3, mq, static_cast<int>(p.Dv), dvt * 16, p.go.vec != 0);
  const int64_t row0 = (b * p.Hq + h) * p.Sq + i0;
  for (int i = static_cast<int>(threadIdx.x); i < BQI; i += kTcThreads) {
    sl[i] = i < mq ? p.lse2[row0 + i] : kPosInf;
    sd[i] = i < mq ? p.delta[row0 + i] : 0.0f;
  }
}

// Block: 64 keys of (b, kv head hk); warp w takes keys w*16 .. w*16+15. For
// each query head of the group in order and each query tile from the first
// query that may see the block's first key:
//   S^T = K Q^T, dP^T = V dO^T, P^T = exp2(S^T c - lse2) (0 where masked),
//   dS^T = P^T (dP^T - delta), dV += P^T dO, dK += dS^T Q; gk = dK scale, gv = dV.
template <class E, int HD>
__global__ void __launch_bounds__(kTcThreads) attn_bwd_kv_tc_kernel(BwdParams p) {
  constexpr int PITCH = Pitch<HD>::P;
  constexpr int BQI = TcBwd<HD>::BQI;
  constexpr int KT = HD / 16, OT = HD / 8, NT = BQI / 8;
  KILN_ATTN_SMEM(smem_raw);
  uint16_t* sk = reinterpret_cast<uint16_t*>(smem_raw);
  uint16_t* sv = sk + kTBKK * PITCH;
  uint16_t* sq = sv + kTBKK * PITCH;  // [2][BQI][PITCH]
  uint16_t* sgo = sq + 2 * BQI * PITCH;
  float* sl = reinterpret_cast<float*>(sgo + 2 * BQI * PITCH);  // [2][BQI]
  float* sd = sl + 2 * BQI;
  const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31;
  const int64_t t = blockIdx.x;
  const int64_t kb = t % p.nkb, bh = t / p.nkb;
  const int64_t b = bh / p.Hk, hk = bh % p.Hk;
  const int64_t j0 = kb * kTBKK;
  const int nk = static_cast<int>(p.Sk - j0 < kTBKK ? p.Sk - j0 : kTBKK);
  const int D = static_cast<int>(p.D), Dv = static_cast<int>(p.Dv);
  const int dkt = (D + 15) / 16, dvt = (Dv + 15) / 16;
  const int64_t off = p.Sk - p.Sq;
  const int64_t qstart = p.causal ? (j0 - off > 0 ? j0 - off : 0) : 0;
  const int64_t nqt = qstart < p.Sq ? (p.Sq - qstart + BQI - 1) / BQI : 0;
  const int64_t total = p.G * nqt;

  const uint16_t* kp = static_cast<const uint16_t*>(p.k.p) + b * p.k.s0 + hk * p.k.s1 + j0 * p.k.s2;
  const uint16_t* vp = static_cast<const uint16_t*>(p.v.p) + b * p.v.s0 + hk * p.v.s1 + j0 * p.v.s2;
  stage_tile<kTBKK, PITCH>(sk, kp, p.k.s2, p.k.s3, nk, D, dkt * 16, p.k.vec != 0);
  stage_tile<kTBKK, PITCH>(sv, vp, p.v.s2, p.v.s3, nk, Dv, dvt * 16, p.v.vec != 0);
  auto load = [&](int64_t it) {
    const int stage = static_cast<int>(it & 1);
    const int64_t h = hk * p.G + it / nqt;
    const int64_t i0 = qstart + (it % nqt) * BQI;
    const int mq = static_cast<int>(p.Sq - i0 < BQI ? p.Sq - i0 : BQI);
    load_q_tile<HD, BQI>(p, b, h, i0, mq, dkt, dvt, sq + stage * BQI * PITCH, sgo + stage * BQI * PITCH,
                         sl + stage * BQI, sd + stage * BQI);
  };
  if (total > 0) load(0);
  cp_async_commit();

  float adk[OT][4], adv[OT][4];
#pragma unroll
  for (int i = 0; i < OT; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) adk[i][e] = adv[i][e] = 0.0f;
  }
  const int key_lo = warp * 16 + (lane >> 2), key_hi = key_lo + 8;  // tile-local key rows of this lane

  for (int64_t it = 0; it < total; ++it) {
    if (it + 1 < total) load(it + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const int stage = static_cast<int>(it & 1);
    const uint16_t* qs = sq + stage * BQI * PITCH;
    const uint16_t* gs = sgo + stage * BQI * PITCH;
    const float* ls = sl + stage * BQI;
    const float* ds_ = sd + stage * BQI;
    const int64_t i0 = qstart + (it % nqt) * BQI;
    const int mq = static_cast<int>(p.Sq - i0 < BQI ? p.Sq - i0 : BQI);

    float st[NT][4], dpt[NT][4];
#pragma unroll
    for (int i = 0; i < NT; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) st[i][e] = dpt[i][e] = 0.0f;
    }
    // S^T = K Q^T (A: this warp's key rows; B: query rows, k = d).
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
      if (kk < dkt) {
        uint32_t af[4];
        ldsm_x4(af, sk + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + kk * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int nj = 0; nj < NT / 2; ++nj) {
          uint32_t r[4];
          ldsm_x4(r, qs + (nj * 16 + (lane & 7) + (lane >> 4) * 8) * PITCH + kk * 16 + ((lane >> 3) & 1) * 8);
          mma_16816<E>(st[2 * nj], af, r[0], r[1]);
          mma_16816<E>(st[2 * nj + 1], af, r[2], r[3]);
        }
      }
    }
    // dP^T = V dO^T.
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
      if (kk < dvt) {
        uint32_t af[4];
        ldsm_x4(af, sv + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + kk * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int nj = 0; nj < NT / 2; ++nj) {
          uint32_t r[4];
          ldsm_x4(r, gs + (nj * 16 + (lane & 7) + (lane >> 4) * 8) * PITCH + kk * 16 + ((lane >> 3) & 1) * 8);
          mma_16816<E>(dpt[2 * nj], af, r[0], r[1]);
          mma_16816<E>(dpt[2 * nj + 1], af, r[2], r[3]);
        }
      }
    }
    // P^T and dS^T (in st and dpt).
    int lo_lo = 0, lo_hi = 0;  // first query column (tile-relative) that sees each key row
    if (p.causal) {
      int64_t x = j0 + key_lo - off - i0;
      lo_lo = static_cast<int>(x < 0 ? 0 : (x > mq ? mq : x));
      x = j0 + key_hi - off - i0;
      lo_hi = static_cast<int>(x < 0 ? 0 : (x > mq ? mq : x));
    }
#pragma unroll
    for (int i = 0; i < NT; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = i * 8 + (lane & 3) * 2 + (e & 1);
        const bool hi = e >= 2;
        const bool vis = (hi ? key_hi : key_lo) < nk && col >= (hi ? lo_hi : lo_lo) && col < mq;
        const float pr = vis ? exp2f(__fsub_rn(__fmul_rn(st[i][e], p.c), ls[col])) : 0.0f;
        st[i][e] = pr;
        dpt[i][e] = __fmul_rn(pr, __fsub_rn(dpt[i][e], ds_[col]));
      }
    }
    // dV += P^T dO and dK += dS^T Q (B operands: rows of dO / Q, k = queries; transposed loads).
#pragma unroll
    for (int kq = 0; kq < BQI / 16; ++kq) {
      uint32_t pa[4], da[4];
      pa[0] = pack2<E>(st[2 * kq][0], st[2 * kq][1]);
      pa[1] = pack2<E>(st[2 * kq][2], st[2 * kq][3]);
      pa[2] = pack2<E>(st[2 * kq + 1][0], st[2 * kq + 1][1]);
      pa[3] = pack2<E>(st[2 * kq + 1][2], st[2 * kq + 1][3]);
      da[0] = pack2<E>(dpt[2 * kq][0], dpt[2 * kq][1]);
      da[1] = pack2<E>(dpt[2 * kq][2], dpt[2 * kq][3]);
      da[2] = pack2<E>(dpt[2 * kq + 1][0], dpt[2 * kq + 1][1]);
      da[3] = pack2<E>(dpt[2 * kq + 1][2], dpt[2 * kq + 1][3]);
#pragma unroll
      for (int nd = 0; nd < KT; ++nd) {
        if (nd < dvt) {
          uint32_t r[4];
          ldsm_x4_trans(r, gs + (kq * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + nd * 16 + (lane >> 4) * 8);
          mma_16816<E>(adv[2 * nd], pa, r[0], r[1]);
          mma_16816<E>(adv[2 * nd + 1], pa, r[2], r[3]);
        }
        if (nd < dkt) {
          uint32_t r[4];
          ldsm_x4_trans(r, qs + (kq * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + nd * 16 + (lane >> 4) * 8);
          mma_16816<E>(adk[2 * nd], da, r[0], r[1]);
          mma_16816<E>(adk[2 * nd + 1], da, r[2], r[3]);
        }
      }
    }
    __syncthreads();  // this stage may be refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();

  uint16_t* gkp = static_cast<uint16_t*>(const_cast<void*>(p.gk.p)) + b * p.gk.s0 + hk * p.gk.s1 + j0 * p.gk.s2;
  uint16_t* gvp = static_cast<uint16_t*>(const_cast<void*>(p.gv.p)) + b * p.gv.s0 + hk * p.gv.s1 + j0 * p.gv.s2;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = half ? key_hi : key_lo;
    if (r >= nk) continue;
#pragma unroll
    for (int i = 0; i < OT; ++i) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = i * 8 + (lane & 3) * 2 + e;
        if (col < D) gkp[r * p.gk.s2 + col * p.gk.s3] = E::from_f32(__fmul_rn(adk[i][half * 2 + e], p.scale));
        if (col < Dv) gvp[r * p.gv.s2 + col * p.gv.s3] = E::from_f32(adv[i][half * 2 + e]);
      }
    }
  }
}

// Block: 64 queries of (b, h); warp w takes queries w*16 .. w*16+15. Per key tile
// up to the last key the block's last query sees: S = Q K^T, dP = dO V^T,
// P = exp2(S c - lse2) (0 where masked), dS = P (dP - delta), dQ += dS K; gq = dQ scale.
template <class E, int HD>
__global__ void __launch_bounds__(kTcThreads) attn_bwd_q_tc_kernel(BwdParams p) {
  constexpr int PITCH = Pitch<HD>::P;
  constexpr int BK = TcBwd<HD>::BKQ;
  constexpr int KT = HD / 16, OT = HD / 8, NT = BK / 8;
  KILN_ATTN_SMEM(smem_raw);
  uint16_t* sq = reinterpret_cast<uint16_t*>(smem_raw);
  uint16_t* sgo = sq + kTBQQ * PITCH;
  uint16_t* sk = sgo + kTBQQ * PITCH;  // [2][BK][PITCH]
  uint16_t* sv = sk + 2 * BK * PITCH;  // [2][BK][PITCH]
  const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31;
  const int64_t t = blockIdx.x;
  const int64_t qb = p.nqb - 1 - t % p.nqb;
  const int64_t bh = t / p.nqb;
  const int64_t b = bh / p.Hq, h = bh % p.Hq, hk = h / p.G;
  const int64_t i0 = qb * kTBQQ;
  const int mq = static_cast<int>(p.Sq - i0 < kTBQQ ? p.Sq - i0 : kTBQQ);
  const int D = static_cast<int>(p.D), Dv = static_cast<int>(p.Dv);
  const int dkt = (D + 15) / 16, dvt = (Dv + 15) / 16;
  const uint16_t* qp = static_cast<const uint16_t*>(p.q.p) + b * p.q.s0 + h * p.q.s1 + i0 * p.q.s2;
  const uint16_t* gp = static_cast<const uint16_t*>(p.go.p) + b * p.go.s0 + h * p.go.s1 + i0 * p.go.s2;
  const uint16_t* kp = static_cast<const uint16_t*>(p.k.p) + b * p.k.s0 + hk * p.k.s1;
  const uint16_t* vp = static_cast<const uint16_t*>(p.v.p) + b * p.v.s0 + hk * p.v.s1;
  const int64_t lk_last = last_key(i0 + mq - 1, p.Sq, p.Sk, p.causal);
  const int64_t kend = lk_last + 1 > 0 ? lk_last + 1 : 0;
  const int64_t ntiles = (kend + BK - 1) / BK;

  auto load_kv = [&](int64_t tile) {
    const int stage = static_cast<int>(tile & 1);
    const int64_t j0 = tile * BK;
    const int nk = static_cast<int>(kend - j0 < BK ? kend - j0 : BK);
    stage_tile<BK, PITCH>(sk + stage * BK * PITCH, kp + j0 * p.k.s2, p.k.s2, p.k.s3, nk, D, dkt * 16, p.k.vec != 0);
    stage_tile<BK, PITCH>(sv + stage * BK * PITCH, vp + j0 * p.v.s2, p.v.s2, p.v.s3, nk, Dv, dvt * 16, p.v.vec != 0);
  };
  stage_tile<kTBQQ, PITCH>(sq, qp, p.q.s2, p.q.s3, mq, D, dkt * 16, p.q.vec != 0);
  stage_tile<kTBQQ, PITCH>(sgo, gp, p.go.s2, p.go.s3, mq, Dv, dvt * 16, p.go.vec != 0);
  if (ntiles > 0) load_kv(0);
  cp_async_commit();

  const int r_lo = warp * 16 + (lane >> 2), r_hi = r_lo + 8;
  const int64_t lk_lo = r_lo < mq ? last_key(i0 + r_lo, p.Sq, p.Sk, p.causal) : -1;
  const int64_t lk_hi = r_hi < mq ? last_key(i0 + r_hi, p.Sq, p.Sk, p.causal) : -1;
  const int64_t row0 = bh * p.Sq + i0;
  const float l2_lo = r_lo < mq ? p.lse2[row0 + r_lo] : kPosInf, l2_hi = r_hi < mq ? p.lse2[row0 + r_hi] : kPosInf;
  const float d_lo = r_lo < mq ? p.delta[row0 + r_lo] : 0.0f, d_hi = r_hi < mq ? p.delta[row0 + r_hi] : 0.0f;
  float acc[OT][4];
#pragma unroll
  for (int i = 0; i < OT; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[i][e] = 0.0f;
  }
  uint32_t qf[KT][4], gf[KT][4];

  for (int64_t tile = 0; tile < ntiles; ++tile) {
    if (tile + 1 < ntiles) load_kv(tile + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (tile == 0) {
#pragma unroll
      for (int kk = 0; kk < KT; ++kk) {
        const int off = (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + kk * 16 + (lane >> 4) * 8;
        if (kk < dkt) ldsm_x4(qf[kk], sq + off);
        if (kk < dvt) ldsm_x4(gf[kk], sgo + off);
      }
    }
    const int stage = static_cast<int>(tile & 1);
    const uint16_t* ks = sk + stage * BK * PITCH;
    const uint16_t* vs = sv + stage * BK * PITCH;
    const int64_t j0 = tile * BK;
    const int nk = static_cast<int>(kend - j0 < BK ? kend - j0 : BK);

    float s[NT][4], dp[NT][4];
#pragma unroll
    for (int i = 0; i < NT; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[i][e] = dp[i][e] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
#pragma unroll
      for (int nj = 0; nj < NT / 2; ++nj) {
        const int off = (nj * 16 + (lane & 7) + (lane >> 4) * 8) * PITCH + kk * 16 + ((lane >> 3) & 1) * 8;
        if (kk < dkt) {
          uint32_t r[4];
          ldsm_x4(r, ks + off);
          mma_16816<E>(s[2 * nj], qf[kk], r[0], r[1]);
          mma_16816<E>(s[2 * nj + 1], qf[kk], r[2], r[3]);
        }
        if (kk < dvt) {
          uint32_t r[4];
          ldsm_x4(r, vs + off);
          mma_16816<E>(dp[2 * nj], gf[kk], r[0], r[1]);
          mma_16816<E>(dp[2 * nj + 1], gf[kk], r[2], r[3]);
        }
      }
    }
    int64_t v64 = lk_lo - j0 + 1;
    const int vis_lo = static_cast<int>(v64 < 0 ? 0 : (v64 > nk ? nk : v64));
    v64 = lk_hi - j0 + 1;
    const int vis_hi = static_cast<int>(v64 < 0 ? 0 : (v64 > nk ? nk : v64));
#pragma unroll
    for (int i = 0; i < NT; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = i * 8 + (lane & 3) * 2 + (e & 1);
        const bool hi = e >= 2;
        const float pr = key < (hi ? vis_hi : vis_lo)
                             ? exp2f(__fsub_rn(__fmul_rn(s[i][e], p.c), hi ? l2_hi : l2_lo))
                             : 0.0f;
        s[i][e] = __fmul_rn(pr, __fsub_rn(dp[i][e], hi ? d_hi : d_lo));  // dS
      }
    }
    // dQ += dS K (B operand: key rows, k = keys; transposed loads).
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t da[4];
      da[0] = pack2<E>(s[2 * kk][0], s[2 * kk][1]);
      da[1] = pack2<E>(s[2 * kk][2], s[2 * kk][3]);
      da[2] = pack2<E>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      da[3] = pack2<E>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int nd = 0; nd < KT; ++nd) {
        if (nd < dkt) {
          uint32_t r[4];
          ldsm_x4_trans(r, ks + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + nd * 16 + (lane >> 4) * 8);
          mma_16816<E>(acc[2 * nd], da, r[0], r[1]);
          mma_16816<E>(acc[2 * nd + 1], da, r[2], r[3]);
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  uint16_t* gqp = static_cast<uint16_t*>(const_cast<void*>(p.gq.p)) + b * p.gq.s0 + h * p.gq.s1 + i0 * p.gq.s2;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = half ? r_hi : r_lo;
    if (r >= mq) continue;
#pragma unroll
    for (int i = 0; i < OT; ++i) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = i * 8 + (lane & 3) * 2 + e;
        if (col < D) gqp[r * p.gq.s2 + col * p.gq.s3] = E::from_f32(__fmul_rn(acc[i][half * 2 + e], p.scale));
      }
    }
  }
}

}  // namespace attn
}  // namespace cuda
}  // namespace kiln
