// CPU kernels 'quant_int4_weight' and 'quant_int4_dequantize' (specs/quant.md
// "INT4 weights"; operands in kiln/quant.h).
//
// Quantizer (the FireQ recipe made exact, float32 arithmetic, RNE):
//   amax = max |w| over the tensor; e = the largest integer in [0, 14] with
//   amax * 2^e <= 448 (e = 0 when amax = 0), t = 2^e;
//   per group: s = max(e4m3(fl32(amax_g * t) / 7), 2^-9);
//   q = clamp(rne(fl32(w * t) / s), -8, 7), packed two per byte (even k low).
// amax > 448 cannot be brought into E4M3 range by t = 2^e with e >= 0, and a
// non-finite weight has no scale: both are ValueErrors (nothing is written).
// Dequantized weight: w = e4m3(q * s) / t, rounded once to the output dtype.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <atomic>
#include <string>

#include "kiln/numerics.h"
#include "kiln/quant.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "scratch.h"

namespace kiln {
namespace cpu {
namespace {

inline float float_at(const View& v, int64_t i, int64_t j) {
  const int64_t at = i * v.strides[0] + j * v.strides[1];
  const char* base = v.data();
  switch (v.dtype) {
    case DType::Float16: return num::f16_to_f32(reinterpret_cast<const uint16_t*>(base)[at]);
    case DType::BFloat16: return num::bf16_to_f32(reinterpret_cast<const uint16_t*>(base)[at]);
    default: return reinterpret_cast<const float*>(base)[at];
  }
}

inline void store_float(const View& v, int64_t i, int64_t j, float f) {
  const int64_t at = i * v.strides[0] + j * v.strides[1];
  char* base = v.data();
  switch (v.dtype) {
    case DType::Float16: reinterpret_cast<uint16_t*>(base)[at] = num::f32_to_f16(f); break;
    case DType::BFloat16: reinterpret_cast<uint16_t*>(base)[at] = num::f32_to_bf16(f); break;
    default: reinterpret_cast<float*>(base)[at] = f; break;
  }
}

constexpr uint8_t kMinScaleCode = 0x01;  // 2^-9, the smallest positive E4M3 value

Status int4_weight_kernel(const KernelArgs& args) {
  Int4WeightPlan p;
  KILN_RETURN_IF_ERROR(prepare_int4_weight(args, &p));
  const View& w = args.in[0];
  const int64_t N = p.n, K = p.k, Kp = p.kp, G = p.group;

  // amax over the tensor; the first non-finite element of each row (-1: none)
  Scratch amax_buf, bad_buf;
  if (!amax_buf.alloc(static_cast<size_t>(N) * 4) || !bad_buf.alloc(static_cast<size_t>(N) * 8)) {
    return Status(StatusCode::OutOfMemory, std::string("kiln: ") + args.op + ": could not allocate work buffers (w " + w.describe() + ")");
  }
  float* row_amax = amax_buf.as<float>();
  int64_t* bad = bad_buf.as<int64_t>();
  parallel_for(N, std::max<int64_t>(1, 65536 / K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float amax = 0.0f;
      bad[n] = -1;
      for (int64_t k = 0; k < K; ++k) {
        const float v = std::fabs(float_at(w, n, k));
        if (!std::isfinite(v)) {
          bad[n] = k;
          break;
        }
        amax = std::max(amax, v);
      }
      row_amax[n] = amax;
    }
  });
  float amax = 0.0f;
  for (int64_t n = 0; n < N; ++n) {
    if (bad[n] >= 0) {
      const int64_t k = bad[n];
      return Status(StatusCode::ValueError, std::string("kiln: ") + args.op + ": w[" + std::to_string(n) + ", " +
                                                std::to_string(k) + "] = " + std::to_string(float_at(w, n, k)) +
                                                " is not finite (w " + w.describe() + ")");
    }
    amax = std::max(amax, row_amax[n]);
  }
  if (amax > quant::kE4M3Max) {
    return Status(StatusCode::ValueError, std::string("kiln: ") + args.op + ": max |w| = " + std::to_string(amax) +
                                              " exceeds 448: the per-tensor scale 2^e (e >= 0) cannot bring it into "
                                              "E4M3 range (w " + w.describe() + ")");
  }
  int e = 0;
  if (amax > 0.0f) {
    while (e < quant::kMaxExponent && amax * std::ldexp(1.0f, e + 1) <= quant::kE4M3Max) ++e;  // exact products
  }
  *reinterpret_cast<int8_t*>(args.out[2].data()) = static_cast<int8_t>(e);
  const float t = std::ldexp(1.0f, e);

  uint8_t* packed = reinterpret_cast<uint8_t*>(args.out[0].data());
  uint8_t* scales = reinterpret_cast<uint8_t*>(args.out[1].data());
  const int64_t ng = Kp / G;
  std::atomic<bool> ok{true};
  parallel_for(N, std::max<int64_t>(1, 16384 / Kp), [&](int64_t n0, int64_t n1) {
    Scratch row_buf;
    if (!row_buf.alloc(static_cast<size_t>(Kp) * 4)) {
      ok.store(false);
      return;
    }
    float* row = row_buf.as<float>();
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t k = 0; k < Kp; ++k) row[k] = k < K ? float_at(w, n, k) * t : 0.0f;  // exact
      uint8_t* qrow = packed + n * (Kp / 2);
      for (int64_t g = 0; g < ng; ++g) {
        const float* v = row + g * G;
        float amax_g = 0.0f;
        for (int64_t i = 0; i < G; ++i) amax_g = std::max(amax_g, std::fabs(v[i]));
        uint8_t code = num::f32_to_e4m3(amax_g / 7.0f);
        if (code < kMinScaleCode) code = kMinScaleCode;
        scales[n * ng + g] = code;
        const float s = num::e4m3_to_f32(code);
        for (int64_t i = 0; i < G; i += 2) {
          int q[2];
          for (int h = 0; h < 2; ++h) {
            const float r = std::nearbyint(v[i + h] / s);  // round half to even (default mode)
            q[h] = static_cast<int>(std::min(7.0f, std::max(-8.0f, r)));
          }
          qrow[(g * G + i) / 2] = static_cast<uint8_t>((q[0] & 0xF) | ((q[1] & 0xF) << 4));
        }
      }
    }
  });
  if (!ok.load()) {
    return Status(StatusCode::OutOfMemory, std::string("kiln: ") + args.op + ": could not allocate row buffers (w " + w.describe() + ")");
  }
  return Status::Ok();
}

Status int4_dequantize_kernel(const KernelArgs& args) {
  Int4WeightPlan p;
  KILN_RETURN_IF_ERROR(prepare_int4_dequantize(args, &p));
  int e = 0;
  KILN_RETURN_IF_ERROR(read_exponent(args.in[2], args.op, &e));
  const View& w = args.out[0];
  const uint8_t* packed = reinterpret_cast<const uint8_t*>(args.in[0].data());
  const uint8_t* scales = reinterpret_cast<const uint8_t*>(args.in[1].data());
  const float inv_t = std::ldexp(1.0f, -e);
  const int64_t ng = p.kp / p.group;
  parallel_for(p.n, std::max<int64_t>(1, 16384 / p.kp), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t* qrow = packed + n * (p.kp / 2);
      for (int64_t k = 0; k < p.k; ++k) {
        const uint8_t code = quant::w8_code(quant::packed_q(qrow, k), scales[n * ng + k / p.group]);
        store_float(w, n, k, num::e4m3_to_f32(code) * inv_t);  // exact unless the dtype rounds
      }
    }
  });
  return Status::Ok();
}

KILN_REGISTER_KERNELS("quant_int4_weight", DeviceKind::CPU, kFloat16Plus, int4_weight_kernel);
KILN_REGISTER_KERNELS("quant_int4_dequantize", DeviceKind::CPU, kFloat16Plus, int4_dequantize_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
