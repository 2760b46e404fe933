// Pieces the W4A8 CUDA files share (cuda/quant.cu: the canonical-layout
// kernels; cuda/quant_fireq.cu: the FireQ-layout kernels): float element
// access, the device exponent read-back, the per-token FP8 activation
// quantizer, the GEMM operands, the FP8 mma and the sm_89+ check. Include
// inside namespace kiln::cuda's anonymous namespace, after common.cuh,
// kiln/numerics.h and kiln/quant.h.
#pragma once

// ---- element access ----------------------------------------------------------------------

__device__ __forceinline__ float load_float(const char* base, DType t, int64_t at) {
  switch (t) {
    case DType::Float16: return num::f16_to_f32(reinterpret_cast<const uint16_t*>(base)[at]);
    case DType::BFloat16: return num::bf16_to_f32(reinterpret_cast<const uint16_t*>(base)[at]);
    default: return reinterpret_cast<const float*>(base)[at];
  }
}

__device__ __forceinline__ void store_float(char* base, DType t, int64_t at, float v) {
  switch (t) {
    case DType::Float16: reinterpret_cast<uint16_t*>(base)[at] = num::f32_to_f16(v); break;
    case DType::BFloat16: reinterpret_cast<uint16_t*>(base)[at] = num::f32_to_bf16(v); break;
    default: reinterpret_cast<float*>(base)[at] = v; break;
  }
}

// Reads the exponent (a device int8) and checks it like the CPU (read_exponent).
Status read_device_exponent(const View& exponent, const char* op, cudaStream_t s, int* e) {
  int8_t byte = 0;
  KILN_RETURN_IF_ERROR(read_back(&byte, exponent.data(), 1, s, op));
  View host = exponent;
  host.base = &byte;
  host.offset = 0;
  host.storage_bytes = 1;
  host.device = Device{DeviceKind::CPU, 0};
  return read_exponent(host, op, e);
}

// ---- activation quantization (one block per row) ---------------------------------------------

constexpr int kRowThreads = 256;

// x [M, K] (dtype xt, strides xs0, xs1) -> codes a (strides as0, as1) and s_a (stride ss).
// static_scale > 0: that scale, else dynamic.
__global__ void __launch_bounds__(kRowThreads)
    quantize_rows(const char* __restrict__ x, DType xt, int64_t xs0, int64_t xs1, int64_t M, int64_t K,
                  float static_scale, uint8_t* __restrict__ a, int64_t as0, int64_t as1, float* __restrict__ sa,
                  int64_t ss) {
  __shared__ uint32_t warp_top[kRowThreads / 32];
  __shared__ float row_scale;
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    float s = static_scale;
    if (!(static_scale > 0.0f)) {
      uint32_t top = 0;
      for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
        const uint32_t b = num::f32_bits(load_float(x, xt, m * xs0 + k * xs1)) & 0x7FFFFFFFu;
        top = b > top ? b : top;
      }
      for (int off = 16; off > 0; off >>= 1) {
        const uint32_t o = __shfl_xor_sync(0xFFFFFFFFu, top, off);
        top = o > top ? o : top;
      }
      if ((threadIdx.x & 31) == 0) warp_top[threadIdx.x >> 5] = top;
      __syncthreads();
      if (threadIdx.x == 0) {
        uint32_t t = 0;
        for (int w = 0; w < kRowThreads / 32; ++w) t = warp_top[w] > t ? warp_top[w] : t;
        const float amax = num::bits_f32(t);
        float v;
        if (t > 0x7F800000u) {
          v = num::bits_f32(0x7FC00000u);  // NaN
        } else if (amax == 0.0f) {
          v = 1.0f;
        } else {
          v = __fdiv_rn(amax, 448.0f);
          v = v < FLT_MIN ? FLT_MIN : v;
        }
        row_scale = v;
      }
      __syncthreads();
      s = row_scale;
    }
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      a[m * as0 + k * as1] = num::f32_to_e4m3(__fdiv_rn(load_float(x, xt, m * xs0 + k * xs1), s));
    }
    if (threadIdx.x == 0) sa[m * ss] = s;
    __syncthreads();  // row_scale / warp_top are reused by the next row
  }
}

Status launch_quantize(const View& x, int64_t M, int64_t K, float static_scale, uint8_t* a, int64_t as0, int64_t as1,
                       float* sa, int64_t ss, cudaStream_t s, const char* op) {
  const unsigned grid = static_cast<unsigned>(M < 65535 ? M : 65535);
  quantize_rows<<<grid, kRowThreads, 0, s>>>(x.data(), x.dtype, x.strides[0], x.ndim > 1 ? x.strides[1] : 0, M, K,
                                             static_scale, a, as0, as1, sa, ss);
  KILN_CUDA_LAUNCH_CHECK(op);
  return Status::Ok();
}

struct GemmArgs {
  const uint8_t* a;  // e4m3 codes
  int64_t as0, as1;
  const float* sa;
  int64_t ss;
  const uint8_t* packed;  // [N, Kp/2]
  const uint8_t* scales;  // [N, Kp/G]
  const char* bias;       // or nullptr
  DType bias_t;
  int64_t bs;
  char* y;  // [M, N] contiguous
  DType yt;
  int64_t M, N, K, Kp, G;
  float two_e;  // 2^-e
};

// The weight, bias and output operands of a validated W4A8 plan, and 2^-e.
inline void set_weight_and_output(const KernelArgs& args, const W4A8Plan& p, int e, GemmArgs* g) {
  g->packed = reinterpret_cast<const uint8_t*>(args.in[p.packed].data());
  g->scales = reinterpret_cast<const uint8_t*>(args.in[p.scales].data());
  if (p.has_bias) {
    const View& b = args.in[p.bias];
    g->bias = b.data();
    g->bias_t = b.dtype;
    g->bs = b.strides[0];
  } else {
    g->bias = nullptr;
    g->bias_t = DType::Float32;
    g->bs = 0;
  }
  const View& y = args.out[0];
  g->y = y.data();
  g->yt = y.dtype;
  g->M = p.m;
  g->N = p.n;
  g->K = p.k;
  g->Kp = p.kp;
  g->G = p.group;
  g->two_e = num::bits_f32(static_cast<uint32_t>(127 - e) << 23);  // 2^-e, e in [0, 14]
}

// d (16x8 float32) += a (16x32 e4m3, row) * b (32x8 e4m3, col), one warp
// (sm_89+; a0..a3 / b0, b1 in the PTX fragment order, 4 codes per register,
// the lowest k in the lowest byte).
__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

// Whether `device` has FP8 mma (compute capability 8.9 or later); cached per device.
bool has_fp8_mma(int device) {
  static int cached[64] = {0};  // 0 unknown, 1 no, 2 yes
  if (device < 0 || device >= 64) return false;
  if (cached[device] == 0) {
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    cached[device] = (major * 10 + minor >= 89) ? 2 : 1;
  }
  return cached[device] == 2;
}

