// CUDA kernels 'quant_fp8_activation', 'w4a8_gemm', 'w4a8_linear' and
// 'quant_int4_dequantize' (specs/quant.md; operands in kiln/quant.h), registered
// for the CPU's key dtypes. Validation: the CPU's prepare_* (native/core/quant.cpp).
// 'quant_int4_weight' (the offline quantizer) and 'w4a8_reference' (tests only)
// stay CPU-only.
//
// Two GEMM paths (native/KERNELS.md "CUDA: where it differs"): FP8 tensor cores
// on sm_89+ for M > 16 (below, "on FP8 tensor cores"; within specs/quant.md's
// CUDA tolerance), and a SIMT path for the rest whose bits equal the CPU's
// portable level (native/cpu/w4a8_impl.inc, KILN_W4A8_LEVEL 0). UNVERIFIED on
// a GPU so far: suite cuda_quant (scripts/gpu-check.sh) is the check.
// KILN_W4A8_SIMT (environment) turns the tensor-core path off.
//   - activation quantization: the CPU row quantizer (max |x| on the bits, an
//     integer max, so the order does not matter; s_a = amax / 448 with IEEE
//     division, at least FLT_MIN, 1 for a zero row, NaN for a row holding a
//     NaN; a = e4m3(x / s_a)); w4a8_linear quantizes into a scratch buffer with
//     the same kernel and then runs the w4a8_gemm kernel, so the fused op equals
//     quantize-then-gemm bit for bit, as on the CPU;
//   - SIMT GEMM: w8 = e4m3(q * s) (kiln/quant.h, the definition, per element); the
//     activation values are staged in shared memory as float32; each output is
//     accumulated by one thread, k = 0 .. Kp-1 in order, p = p + a * w8 from
//     +0 (each product is exact in float32, so __fmaf_rn rounds like the CPU's
//     separate multiply and add), zero activations past K;
//   - epilogue: y = fmaf(P, alpha[m], bias[n]) with alpha[m] = s_a[m] * 2^-e
//     rounded once, then rounded once to y's dtype (kiln/numerics.h).
// The exponent e lives in device memory: it is read back (one byte, one stream
// synchronisation) before anything runs, so a bad e gives the CPU's ValueError
// and nothing is written.
//
// SIMT tiles: BM = 16 * TM rows x 64 columns per block of 256 threads (16 x 16),
// each thread TM x 4 outputs; TM = 1 for M <= 16 (decode), else 4. K moves in
// steps of 32 (every group size is a multiple of 32, so one scale per column
// per step). M, N not multiples of the tile and K < Kp are handled by bounds
// checks (zeros in shared memory, no stores out of range).
#include <cfloat>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common.cuh"
#include "kiln/numerics.h"
#include "kiln/quant.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

#include "quant_common.cuh"

Status fp8_activation_kernel(const KernelArgs& args) {
  Fp8ActivationPlan p;
  KILN_RETURN_IF_ERROR(prepare_fp8_activation(args, &p));
  if (p.m == 0) return Status::Ok();
  const View& x = args.in[0];
  const View& a = args.out[0];
  const View& sa = args.out[1];
  KILN_CUDA_ENTER(guard, x.device.index, args.op, s);
  return launch_quantize(x, p.m, p.k, p.is_static ? p.scale : 0.0f, reinterpret_cast<uint8_t*>(a.data()), a.strides[0],
                         a.strides[1], reinterpret_cast<float*>(sa.data()), sa.strides[0], s, args.op);
}

// ---- the W4A8 GEMM (SIMT) -------------------------------------------------------------------

constexpr int kThreadsX = 16, kThreadsY = 16;  // 256 threads
constexpr int kBN = 64, kBK = 32, kTN = kBN / kThreadsX;


template <int TM>
__global__ void __launch_bounds__(kThreadsX* kThreadsY) w4a8_simt(GemmArgs g) {
  constexpr int BM = kThreadsY * TM;
  __shared__ float a_tile[kBK][BM + 1];  // +1: the k-fastest stores hit distinct banks
  __shared__ float w_tile[kBK][kBN + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThreadsX + tx;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int64_t mtiles = (g.M + BM - 1) / BM;
  const int64_t qld = g.Kp / 2, ng = g.Kp / g.G;
  for (int64_t mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int64_t m0 = mt * BM;
    float acc[TM][kTN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < kTN; ++j) acc[i][j] = 0.0f;
    for (int64_t k0 = 0; k0 < g.Kp; k0 += kBK) {
      // activations: BM x 32 values, zero outside [M) x [K)
      for (int idx = tid; idx < BM * kBK; idx += kThreadsX * kThreadsY) {
        const int r = idx / kBK, c = idx % kBK;
        const int64_t m = m0 + r, k = k0 + c;
        a_tile[c][r] = (m < g.M && k < g.K) ? num::e4m3_to_f32(g.a[m * g.as0 + k * g.as1]) : 0.0f;
      }
      // weights: 64 columns x 32 k, w8 = e4m3(q * s); zero past N (q = 0 past K already)
      for (int idx = tid; idx < kBN * kBK; idx += kThreadsX * kThreadsY) {
        const int j = idx / kBK, c = idx % kBK;
        const int64_t n = n0 + j, k = k0 + c;
        float w = 0.0f;
        if (n < g.N) {
          const uint8_t code = quant::w8_code(quant::packed_q(g.packed + n * qld, k), g.scales[n * ng + k / g.G]);
          w = num::e4m3_to_f32(code);
        }
        w_tile[c][j] = w;
      }
      __syncthreads();
#pragma unroll 4
      for (int c = 0; c < kBK; ++c) {
        float av[TM], wv[kTN];
#pragma unroll
        for (int i = 0; i < TM; ++i) av[i] = a_tile[c][ty + kThreadsY * i];
#pragma unroll
        for (int j = 0; j < kTN; ++j) wv[j] = w_tile[c][tx + kThreadsX * j];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < kTN; ++j) acc[i][j] = __fmaf_rn(av[i], wv[j], acc[i][j]);  // a * w8 is exact
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int64_t m = m0 + ty + kThreadsY * i;
      if (m >= g.M) continue;
      const float alpha = __fmul_rn(g.sa[m * g.ss], g.two_e);
#pragma unroll
      for (int j = 0; j < kTN; ++j) {
        const int64_t n = n0 + tx + kThreadsX * j;
        if (n >= g.N) continue;
        const float b = g.bias != nullptr ? load_float(g.bias, g.bias_t, n * g.bs) : 0.0f;
        store_float(g.y, g.yt, m * g.N + n, __fmaf_rn(acc[i][j], alpha, b));
      }
    }
  }
}

template <int TM>
Status launch_gemm(const GemmArgs& g, cudaStream_t s, const char* op) {
  constexpr int64_t BM = kThreadsY * TM;
  const int64_t ntiles = (g.N + kBN - 1) / kBN, mtiles = (g.M + BM - 1) / BM;
  if (ntiles > 0x7FFFFFFF) return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": N is too large");
  const dim3 grid(static_cast<unsigned>(ntiles), static_cast<unsigned>(mtiles < 65535 ? mtiles : 65535));
  w4a8_simt<TM><<<grid, dim3(kThreadsX, kThreadsY), 0, s>>>(g);
  KILN_CUDA_LAUNCH_CHECK(op);
  return Status::Ok();
}

// ---- the W4A8 GEMM on FP8 tensor cores (sm_89+) ------------------------------------------
//
// mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32: A = the activation codes
// as they are, B = w8 = e4m3(q * s) decoded from the canonical packed layout
// into shared memory for each step of 32 k (one scale per column per step:
// every group size is a multiple of 32), float32 accumulators across K. Block
// 64 x 64 (4 warps, each 32 x 32 = 2 x 4 mma tiles). Shared rows are 48 bytes
// apart so that the fragment loads (8 rows x 4 words per warp) hit 32 distinct
// banks. The product is not summed in the CPU's order (and FP8 tensor cores
// keep about 13-14 bits while adding): specs/quant.md's CUDA tolerance
// |P - P_ref| <= (K/32) 2^-13 A applies (suite cuda_quant checks it). Compiled
// as an empty kernel below sm_89 and never launched there.

constexpr int kTcBM = 64, kTcBN = 64, kTcThreads = 128;

__global__ void __launch_bounds__(kTcThreads) w4a8_mma(GemmArgs g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  constexpr int kTcBK = 32, kTcLd = 48;  // k per step; bytes between shared rows
  auto smem_word = [](const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); };
  __shared__ __align__(16) uint8_t a_s[kTcBM * kTcLd];
  __shared__ __align__(16) uint8_t w_s[kTcBN * kTcLd];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int gq = lane >> 2, tq = lane & 3;      // mma fragment coordinates
  const int wm = warp >> 1, wn = warp & 1;      // the warp's 32 x 32 quadrant
  const int lr = tid >> 1, lc = (tid & 1) * 16;  // this thread's 16 bytes of the A and W tiles
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTcBN;
  const int64_t mtiles = (g.M + kTcBM - 1) / kTcBM;
  const int64_t qld = g.Kp / 2, ng = g.Kp / g.G;
  for (int64_t mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int64_t m0 = mt * kTcBM;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    for (int64_t k0 = 0; k0 < g.Kp; k0 += kTcBK) {
      {  // activation codes, zero outside [M) x [K)
        const int64_t m = m0 + lr;
        uint8_t* dst = a_s + lr * kTcLd + lc;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          const int64_t k = k0 + lc + i;
          dst[i] = (m < g.M && k < g.K) ? g.a[m * g.as0 + k * g.as1] : uint8_t(0);
        }
      }
      {  // w8 codes of 16 k (8 packed bytes, one group), zero past N
        const int64_t n = n0 + lr;
        uint8_t* dst = w_s + lr * kTcLd + lc;
        if (n < g.N) {
          const uint8_t sc = g.scales[n * ng + (k0 + lc) / g.G];
          const uint8_t* q = g.packed + n * qld + (k0 + lc) / 2;
#pragma unroll
          for (int i = 0; i < 8; ++i) {
            const uint32_t byte = q[i];
            dst[2 * i] = quant::w8_code(quant::nibble_value(byte), sc);
            dst[2 * i + 1] = quant::w8_code(quant::nibble_value(byte >> 4), sc);
          }
        } else {
#pragma unroll
          for (int i = 0; i < 16; ++i) dst[i] = 0;
        }
      }
      __syncthreads();
      uint32_t af[2][4], bf[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint8_t* r0 = a_s + (wm * 32 + i * 16 + gq) * kTcLd + tq * 4;
        const uint8_t* r1 = r0 + 8 * kTcLd;
        af[i][0] = smem_word(r0);
        af[i][1] = smem_word(r1);
        af[i][2] = smem_word(r0 + 16);
        af[i][3] = smem_word(r1 + 16);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint8_t* c = w_s + (wn * 32 + j * 8 + gq) * kTcLd + tq * 4;
        bf[j][0] = smem_word(c);
        bf[j][1] = smem_word(c + 16);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          mma_e4m3(acc[i][j], af[i][0], af[i][1], af[i][2], af[i][3], bf[j][0], bf[j][1]);
        }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t m = m0 + wm * 32 + i * 16 + gq + 8 * h;
        if (m >= g.M) continue;
        const float alpha = __fmul_rn(g.sa[m * g.ss], g.two_e);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int64_t n = n0 + wn * 32 + j * 8 + tq * 2 + e;
            if (n >= g.N) continue;
            const float b = g.bias != nullptr ? load_float(g.bias, g.bias_t, n * g.bs) : 0.0f;
            store_float(g.y, g.yt, m * g.N + n, __fmaf_rn(acc[i][j][2 * h + e], alpha, b));
          }
        }
      }
    }
  }
#endif
}

Status launch_mma(const GemmArgs& g, cudaStream_t s, const char* op) {
  const int64_t ntiles = (g.N + kTcBN - 1) / kTcBN, mtiles = (g.M + kTcBM - 1) / kTcBM;
  if (ntiles > 0x7FFFFFFF) return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": N is too large");
  const dim3 grid(static_cast<unsigned>(ntiles), static_cast<unsigned>(mtiles < 65535 ? mtiles : 65535));
  w4a8_mma<<<grid, kTcThreads, 0, s>>>(g);
  KILN_CUDA_LAUNCH_CHECK(op);
  return Status::Ok();
}

// 0: automatic, 1: SIMT always, 2: tensor cores whenever the device has them (testing hook).
int& path_override() {
  static int v = 0;
  return v;
}

Status w4a8_kernel(const KernelArgs& args) {
  W4A8Plan p;
  KILN_RETURN_IF_ERROR(prepare_w4a8(args, &p));
  if (p.m == 0 || p.n == 0) return Status::Ok();
  const View& x = args.in[p.x];
  KILN_CUDA_ENTER(guard, x.device.index, args.op, s);
  int e = 0;
  KILN_RETURN_IF_ERROR(read_device_exponent(args.in[p.exponent], args.op, s, &e));

  GemmArgs g;
  DeviceScratch act, scale;
  if (p.fused) {
    KILN_RETURN_IF_ERROR(act.alloc(x.device.index, static_cast<size_t>(p.m) * static_cast<size_t>(p.k)));
    KILN_RETURN_IF_ERROR(scale.alloc(x.device.index, static_cast<size_t>(p.m) * sizeof(float)));
    KILN_RETURN_IF_ERROR(launch_quantize(x, p.m, p.k, p.is_static ? p.static_scale : 0.0f, act.as<uint8_t>(), p.k, 1,
                                         scale.as<float>(), 1, s, args.op));
    g.a = act.as<uint8_t>();
    g.as0 = p.k;
    g.as1 = 1;
    g.sa = scale.as<float>();
    g.ss = 1;
  } else {
    g.a = reinterpret_cast<const uint8_t*>(x.data());
    g.as0 = x.strides[0];
    g.as1 = x.strides[1];
    const View& sa = args.in[p.s_a];
    g.sa = reinterpret_cast<const float*>(sa.data());
    g.ss = sa.strides[0];
  }
  set_weight_and_output(args, p, e, &g);
  const int path = path_override();
  if (path != 1 && has_fp8_mma(x.device.index) && (path == 2 || (p.m > kThreadsY && std::getenv("KILN_W4A8_SIMT") == nullptr))) {
    return launch_mma(g, s, args.op);
  }
  if (p.m <= kThreadsY) return launch_gemm<1>(g, s, args.op);
  return launch_gemm<4>(g, s, args.op);
}

// ---- dequantization -----------------------------------------------------------------------

__global__ void __launch_bounds__(kBlock)
    int4_dequantize(const uint8_t* __restrict__ packed, const uint8_t* __restrict__ scales, int64_t N, int64_t K,
                    int64_t Kp, int64_t G, float inv_t, char* __restrict__ w, DType wt, int64_t ws0, int64_t ws1) {
  const int64_t ng = Kp / G;
  KILN_GRID_STRIDE_LOOP(i, N * K) {
    const int64_t n = i / K, k = i - n * K;
    const uint8_t code = quant::w8_code(quant::packed_q(packed + n * (Kp / 2), k), scales[n * ng + k / G]);
    store_float(w, wt, n * ws0 + k * ws1, __fmul_rn(num::e4m3_to_f32(code), inv_t));
  }
}

Status int4_dequantize_kernel(const KernelArgs& args) {
  Int4WeightPlan p;
  KILN_RETURN_IF_ERROR(prepare_int4_dequantize(args, &p));
  const View& w = args.out[0];
  KILN_CUDA_ENTER(guard, w.device.index, args.op, s);
  int e = 0;
  KILN_RETURN_IF_ERROR(read_device_exponent(args.in[2], args.op, s, &e));
  if (p.n == 0) return Status::Ok();
  const float inv_t = num::bits_f32(static_cast<uint32_t>(127 - e) << 23);
  int4_dequantize<<<grid_for(p.n * p.k), kBlock, 0, s>>>(reinterpret_cast<const uint8_t*>(args.in[0].data()),
                                                         reinterpret_cast<const uint8_t*>(args.in[1].data()), p.n, p.k,
                                                         p.kp, p.group, inv_t, w.data(), w.dtype, w.strides[0],
                                                         w.strides[1]);
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

KILN_REGISTER_KERNELS("quant_fp8_activation", DeviceKind::CUDA, kFloat16Plus, fp8_activation_kernel);
KILN_REGISTER_KERNELS("w4a8_gemm", DeviceKind::CUDA, kFloat16Plus, w4a8_kernel);
KILN_REGISTER_KERNELS("w4a8_linear", DeviceKind::CUDA, kFloat16Plus, w4a8_kernel);
KILN_REGISTER_KERNELS("quant_int4_dequantize", DeviceKind::CUDA, kFloat16Plus, int4_dequantize_kernel);

}  // namespace

// Testing hook (suite cuda_quant): 0 automatic, 1 SIMT always, 2 tensor cores
// whenever the device has FP8 mma (sm_89+). Not thread-safe.
void w4a8_set_path_for_testing(int path) { path_override() = path; }
bool w4a8_has_tensor_cores_for_testing(int device) { return has_fp8_mma(device); }

}  // namespace cuda
}  // namespace kiln
