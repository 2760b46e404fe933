// CUDA kernels 'w4a8_fireq_gemm' and 'w4a8_fireq_linear': the W4A8 product
// (specs/quant.md "W4A8 GEMM") on FP8 tensor cores (sm_89+) with the weights
// in the FireQ fragment layout (kiln/quant_fireq.h, made offline on the host
// by quant_int4_fireq_pack). Validation: the CPU's prepare_w4a8
// (native/core/quant.cpp). Below sm_89 the ops return a DeviceError. UNVERIFIED
// on a GPU so far: suite cuda_quant (scripts/gpu-check.sh) is the check; suite
// 'fireq' replays both kernels' fragment arithmetic on the host.
//
// Design (FireQ / Marlin style): no shared memory for weights. Each lane
// loads its 16 bytes of a row-tile (8 rows x 128 k) straight from global
// memory, one chunk ahead of the math, and turns every 32-bit word (8
// weights) into two mma registers with the per-group lookup table (256 scale
// codes x 8 magnitudes, built in shared memory per block) and two byte
// permutes (kiln/quant_fireq.h decode). Accumulation in float32 inside the
// tensor cores: specs/quant.md's CUDA tolerance |P - P_ref| <= (K/32) 2^-13 A.
//   - decode (M <= 16): the weights are the mma's A operand (16 rows of N),
//     the tokens its B operand (8 or 16 columns). Split-K: blocks of 4 warps
//     per 16 rows x `splits` K ranges (about 4 blocks per SM, so that small N
//     still streams from every SM); the warps of a block interleave chunks
//     (kiln/quant_fireq.h decode_first_chunk / decode_chunk_stride), add their
//     sums in warp order in shared memory, and the splits are added in order
//     by fireq_splits (deterministic). Memory-bound: every weight byte is read
//     once, 16-byte loads, 512 bytes per warp load.
//   - prefill (M > 16): 64 x 64 output tiles, 4 warps of 32 x 32; the
//     activation tile (64 rows x 128 k) is double-buffered in shared memory
//     with cp.async; the weights are the B operand from registers.
// The activation codes are first staged in a padded [M, Kp] buffer (zero past
// K): the quantizer writes it (w4a8_fireq_linear) or a copy kernel fills it
// from a strided a (w4a8_fireq_gemm). Epilogue: y = fmaf(P, s_a 2^-e, bias),
// rounded once to y's dtype, as in cuda/quant.cu.
#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <string>
#include <type_traits>

#include "common.cuh"
#include "kiln/element.h"
#include "kiln/numerics.h"
#include "kiln/quant.h"
#include "kiln/quant_fireq.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

#include "mma_sm80.cuh"
#include "quant_common.cuh"

namespace fq = quant::fireq;

constexpr int kFqWarps = fq::kDecodeWarps, kFqThreads = 32 * kFqWarps;

// The kernel bodies exist only for sm_89+ (FP8 mma); below, so do their helpers.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 890

// The lookup tables of all 256 scale codes (kiln/quant_fireq.h lut_of).
__device__ __forceinline__ void build_luts(uint2* lut) {
  for (int c = threadIdx.x; c < 256; c += blockDim.x) {
    const fq::Lut t = fq::lut_of(static_cast<uint8_t>(c));
    lut[c] = make_uint2(t.lo, t.hi);
  }
}

// The scale code of (n, k); 0 (a table of zeros) for the padding rows past N.
__device__ __forceinline__ uint8_t scale_code(const GemmArgs& g, int64_t n, int64_t k, int64_t ng) {
  return n < g.N ? g.scales[n * ng + k / g.G] : uint8_t(0);
}

__device__ __forceinline__ uint32_t word_of(const uint4& w, int j) {
  return j == 0 ? w.x : j == 1 ? w.y : j == 2 ? w.z : w.w;
}

__device__ __forceinline__ uint32_t codes4(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

__device__ __forceinline__ void epilogue(const GemmArgs& g, int64_t m, int64_t n, float p) {
  const float alpha = __fmul_rn(g.sa[m * g.ss], g.two_e);
  const float b = g.bias != nullptr ? load_float(g.bias, g.bias_t, n * g.bs) : 0.0f;
  store_float(g.y, g.yt, m * g.N + n, __fmaf_rn(p, alpha, b));
}

#endif  // sm_89+

// ---- decode: M <= 8 NT, weights as the A operand -------------------------------------------------

// Block (x, y) = 16 rows x split y of `splits`; with splits > 1 the block's sums
// go to partial [splits, M, N] and fireq_splits finishes them.
template <int NT>
__global__ void __launch_bounds__(kFqThreads) fireq_decode(GemmArgs g, int splits, float* __restrict__ partial) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  __shared__ uint2 lut[256];
  __shared__ float part[kFqWarps][NT * 128];
  build_luts(lut);
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gq = lane >> 2;
  const int64_t nch = g.Kp / fq::kChunk, ng = g.Kp / g.G;
  const int64_t tile = 2 * static_cast<int64_t>(blockIdx.x);  // rows 8 tile .. 8 tile + 15
  const int64_t na = 8 * tile + gq, nb = na + 8;
  const uint4* words = reinterpret_cast<const uint4*>(g.packed);
  const bool chunk_groups = g.G % fq::kChunk == 0;  // one scale per row per chunk
  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[t][e] = 0.0f;
  const int64_t stride = fq::decode_chunk_stride(splits);
  int64_t c = fq::decode_first_chunk(static_cast<int>(blockIdx.y), warp);
  uint4 wa = make_uint4(0, 0, 0, 0), wb = wa;
  if (c < nch) {
    wa = __ldg(words + fq::lane_load(tile, c, lane, g.Kp));
    wb = __ldg(words + fq::lane_load(tile + 1, c, lane, g.Kp));
  }
  for (; c < nch; c += stride) {
    const uint4 ca = wa, cb = wb;
    if (c + stride < nch) {  // the next chunk's weights are in flight during this one's math
      wa = __ldg(words + fq::lane_load(tile, c + stride, lane, g.Kp));
      wb = __ldg(words + fq::lane_load(tile + 1, c + stride, lane, g.Kp));
    }
    uint2 la = lut[scale_code(g, na, c * fq::kChunk, ng)], lb = lut[scale_code(g, nb, c * fq::kChunk, ng)];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t k = c * fq::kChunk + 32 * j;
      if (!chunk_groups && j > 0) {
        la = lut[scale_code(g, na, k, ng)];
        lb = lut[scale_code(g, nb, k, ng)];
      }
      const fq::Codes ra = fq::decode(word_of(ca, j), fq::Lut{la.x, la.y});
      const fq::Codes rb = fq::decode(word_of(cb, j), fq::Lut{lb.x, lb.y});
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        const int64_t m = 8 * t + gq;
        uint32_t b0 = 0, b1 = 0;
        if (m < g.M) {
          const uint8_t* row = g.a + m * g.as0 + k;
          b0 = codes4(row + fq::frag_k(lane, 0));
          b1 = codes4(row + fq::frag_k(lane, 1));
        }
        mma_e4m3(acc[t], ra.first, rb.first, ra.second, rb.second, b0, b1);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) part[warp][t * 128 + lane * 4 + e] = acc[t][e];
  __syncthreads();
  for (int i = threadIdx.x; i < NT * 128; i += kFqThreads) {
    float p = part[0][i];
#pragma unroll
    for (int w = 1; w < kFqWarps; ++w) p = __fadd_rn(p, part[w][i]);
    const int t = i / 128, l = (i % 128) / 4, e = i % 4;
    const int64_t n = 8 * tile + fq::acc_row(l, e);  // D rows: weight rows
    const int64_t m = 8 * t + fq::acc_col(l, e);     // D columns: tokens
    if (n >= g.N || m >= g.M) continue;
    if (splits == 1) {
      epilogue(g, m, n, p);
    } else {
      partial[(static_cast<int64_t>(blockIdx.y) * g.M + m) * g.N + n] = p;
    }
  }
#endif
}

// y from the decode kernel's partial sums, added in split order (deterministic).
__global__ void __launch_bounds__(kBlock) fireq_splits(GemmArgs g, int splits, const float* __restrict__ partial) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  const int64_t mn = g.M * g.N;
  KILN_GRID_STRIDE_LOOP(i, mn) {
    float p = partial[i];
    for (int sp = 1; sp < splits; ++sp) p = __fadd_rn(p, partial[sp * mn + i]);
    epilogue(g, i / g.N, i % g.N, p);
  }
#endif
}

// ---- prefill: M > 16, activations as the A operand ------------------------------------------

constexpr int kPfBM = 64, kPfBN = 64;

__global__ void __launch_bounds__(kFqThreads) fireq_prefill(GemmArgs g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  constexpr int kPfLd = fq::kChunk + 16;  // bytes between shared rows: fragment loads hit 32 banks
  __shared__ uint2 lut[256];
  __shared__ __align__(16) uint8_t a_s[2][kPfBM * kPfLd];
  build_luts(lut);
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gq = lane >> 2;
  const int wm = warp >> 1, wn = warp & 1;  // the warp's 32 x 32 quadrant
  const int64_t nch = g.Kp / fq::kChunk, ng = g.Kp / g.G;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kPfBN;
  const int64_t tiles = fq::padded_n(g.N) / 8, tile0 = n0 / 8 + wn * 4;
  const uint4* words = reinterpret_cast<const uint4*>(g.packed);
  const int64_t mtiles = (g.M + kPfBM - 1) / kPfBM;

  // chunk c of the activation rows m0 .. m0 + 63 into a_s[buf] (rows past M: zeros)
  auto stage = [&](int64_t m0, int64_t c, int buf) {
#pragma unroll
    for (int i = 0; i < (kPfBM * fq::kChunk / 16) / kFqThreads; ++i) {
      const int piece = threadIdx.x + i * kFqThreads, r = piece / (fq::kChunk / 16), col = (piece % (fq::kChunk / 16)) * 16;
      const int64_t m = m0 + r;
      const uint8_t* src = g.a + (m < g.M ? m : 0) * g.as0 + c * fq::kChunk + col;
      cp_async16(&a_s[buf][r * kPfLd + col], src, m < g.M ? 16 : 0);
    }
    cp_async_commit();
  };
  // the warp's four row-tiles of chunk c (zeros past the padded N)
  auto load_w = [&](int64_t c, uint4 (&w)[4]) {
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const int64_t tile = tile0 + t;
      w[t] = tile < tiles ? __ldg(words + fq::lane_load(tile, c, lane, g.Kp)) : make_uint4(0, 0, 0, 0);
    }
  };

  for (int64_t mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int64_t m0 = mt * kPfBM;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int t = 0; t < 4; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][t][e] = 0.0f;
    uint4 wcur[4], wnext[4];
    stage(m0, 0, 0);
    load_w(0, wcur);
    for (int64_t c = 0; c < nch; ++c) {
      const int buf = static_cast<int>(c & 1);
      if (c + 1 < nch) {
        stage(m0, c + 1, buf ^ 1);
        load_w(c + 1, wnext);
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t k = c * fq::kChunk + 32 * j;
        uint32_t af[2][4];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const uint8_t* r0 = &a_s[buf][(wm * 32 + i * 16 + gq) * kPfLd + 32 * j];
          const uint8_t* r1 = r0 + 8 * kPfLd;
          af[i][0] = codes4(r0 + fq::frag_k(lane, 0));
          af[i][1] = codes4(r1 + fq::frag_k(lane, 0));
          af[i][2] = codes4(r0 + fq::frag_k(lane, 1));
          af[i][3] = codes4(r1 + fq::frag_k(lane, 1));
        }
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          const uint2 l = lut[scale_code(g, 8 * (tile0 + t) + gq, k, ng)];
          const fq::Codes b = fq::decode(word_of(wcur[t], j), fq::Lut{l.x, l.y});
#pragma unroll
          for (int i = 0; i < 2; ++i) mma_e4m3(acc[i][t], af[i][0], af[i][1], af[i][2], af[i][3], b.first, b.second);
        }
      }
      __syncthreads();  // a_s[buf] is refilled by the next iteration's stage
#pragma unroll
      for (int t = 0; t < 4; ++t) wcur[t] = wnext[t];
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t m = m0 + wm * 32 + i * 16 + fq::acc_row(lane, 2 * h);
        if (m >= g.M) continue;
#pragma unroll
        for (int t = 0; t < 4; ++t)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int64_t n = n0 + wn * 32 + t * 8 + fq::acc_col(lane, e);
            if (n < g.N) epilogue(g, m, n, acc[i][t][2 * h + e]);
          }
      }
  }
#endif
}

// Splits of K for the decode kernel: enough blocks for about 4 per SM (a
// memory-bound kernel needs loads in flight on every SM), at least 4 chunks
// per block, at most 16 splits.
int decode_splits(int device, int64_t row_blocks, int64_t chunks) {
  int sms = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    (void)cudaGetLastError();
    sms = 1;
  }
  const int64_t want = (4 * static_cast<int64_t>(sms) + row_blocks - 1) / row_blocks;
  const int64_t most = std::max<int64_t>(1, std::min<int64_t>(16, chunks / fq::kDecodeWarps));
  return static_cast<int>(std::max<int64_t>(1, std::min(want, most)));
}

// ---- the ops --------------------------------------------------------------------------------

// a (any strides) -> out [M, Kp] contiguous, zero past K.
__global__ void __launch_bounds__(kBlock) pad_codes(const uint8_t* __restrict__ a, int64_t as0, int64_t as1, int64_t M,
                                                    int64_t K, int64_t Kp, uint8_t* __restrict__ out) {
  KILN_GRID_STRIDE_LOOP(i, M * Kp) {
    const int64_t m = i / Kp, k = i - m * Kp;
    out[i] = k < K ? a[m * as0 + k * as1] : uint8_t(0);
  }
}

Status fireq_kernel(const KernelArgs& args) {
  W4A8Plan p;
  KILN_RETURN_IF_ERROR(prepare_w4a8(args, &p));
  if (p.m == 0 || p.n == 0) return Status::Ok();
  const View& x = args.in[p.x];
  KILN_CUDA_ENTER(guard, x.device.index, args.op, s);
  if (!has_fp8_mma(x.device.index)) {
    return Status(StatusCode::DeviceError, std::string("kiln: ") + args.op + ": the FireQ kernels need FP8 tensor cores "
                                               "(compute capability 8.9 or later); cuda:" + std::to_string(x.device.index) +
                                               " has none: use the canonical layout (w4a8_gemm / w4a8_linear)");
  }
  int e = 0;
  KILN_RETURN_IF_ERROR(read_device_exponent(args.in[p.exponent], args.op, s, &e));

  GemmArgs g;
  DeviceScratch act, scale;
  KILN_RETURN_IF_ERROR(act.alloc(x.device.index, static_cast<size_t>(p.m) * static_cast<size_t>(p.kp)));
  if (p.fused) {
    KILN_RETURN_IF_ERROR(scale.alloc(x.device.index, static_cast<size_t>(p.m) * sizeof(float)));
    KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(act.as<uint8_t>(), 0, static_cast<size_t>(p.m * p.kp), s), args.op);
    KILN_RETURN_IF_ERROR(launch_quantize(x, p.m, p.k, p.is_static ? p.static_scale : 0.0f, act.as<uint8_t>(), p.kp, 1,
                                         scale.as<float>(), 1, s, args.op));
    g.sa = scale.as<float>();
    g.ss = 1;
  } else {
    pad_codes<<<grid_for(p.m * p.kp), kBlock, 0, s>>>(reinterpret_cast<const uint8_t*>(x.data()), x.strides[0],
                                                      x.strides[1], p.m, p.k, p.kp, act.as<uint8_t>());
    KILN_CUDA_LAUNCH_CHECK(args.op);
    const View& sa = args.in[p.s_a];
    g.sa = reinterpret_cast<const float*>(sa.data());
    g.ss = sa.strides[0];
  }
  g.a = act.as<uint8_t>();
  g.as0 = p.kp;
  g.as1 = 1;
  set_weight_and_output(args, p, e, &g);

  const int64_t row_blocks = fq::padded_n(p.n) / fq::kRowAlign;
  if (row_blocks > 0x7FFFFFFF) return Status(StatusCode::ShapeError, std::string("kiln: ") + args.op + ": N is too large");
  if (p.m <= 16) {
    const int splits = decode_splits(x.device.index, row_blocks, p.kp / fq::kChunk);
    DeviceScratch partial;
    if (splits > 1) {
      KILN_RETURN_IF_ERROR(partial.alloc(x.device.index, static_cast<size_t>(splits) * static_cast<size_t>(p.m * p.n) * sizeof(float)));
    }
    const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(splits));
    if (p.m <= 8) {
      fireq_decode<1><<<grid, kFqThreads, 0, s>>>(g, splits, partial.as<float>());
    } else {
      fireq_decode<2><<<grid, kFqThreads, 0, s>>>(g, splits, partial.as<float>());
    }
    KILN_CUDA_LAUNCH_CHECK(args.op);
    if (splits > 1) fireq_splits<<<grid_for(p.m * p.n), kBlock, 0, s>>>(g, splits, partial.as<float>());
  } else {
    const int64_t ntiles = (p.n + kPfBN - 1) / kPfBN, mtiles = (p.m + kPfBM - 1) / kPfBM;
    const dim3 grid(static_cast<unsigned>(ntiles), static_cast<unsigned>(mtiles < 65535 ? mtiles : 65535));
    fireq_prefill<<<grid, kFqThreads, 0, s>>>(g);
  }
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

KILN_REGISTER_KERNELS("w4a8_fireq_gemm", DeviceKind::CUDA, kFloat16Plus, fireq_kernel);
KILN_REGISTER_KERNELS("w4a8_fireq_linear", DeviceKind::CUDA, kFloat16Plus, fireq_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
