// FireQ-style INT4-weight x FP8-activation (W4A8) formats and kernels: the
// validation every backend shares, and the per-element definitions (usable
// from host C++ and CUDA). The contract is ../shared/specs/quant.md; the
// kernels are listed in native/KERNELS.md "Quantization (W4A8)".
//
// Formats (quant.md "INT4 weights"):
//   packed   uint8 [N, Kp/2]  q in [-8, 7] two's complement, even k in the low
//                             nibble; Kp = K rounded up to a multiple of 128,
//                             q = 0 past K
//   scales   e4m3  [N, Kp/G]  one positive E4M3 scale per group of G along K
//   exponent int8  [] or [1]  e in [0, 14]; the per-tensor scale is t = 2^e
//   weight   w[n, k] = e4m3(q * s) / t
// Activations (quant.md "FP8 activations"): a e4m3 [M, K], s_a float32 [M].
//
// Operands of each op (key dtype in brackets):
//   quant_int4_weight      in [w [N, K] float]  out [packed, scales, exponent]
//                          ints [G]                                  (w)
//   quant_int4_dequantize  in [packed, scales, exponent]  out [w [N, K] float]
//                                                                    (w)
//   quant_fp8_activation   in [x [M, K] float]  out [a [M, K] e4m3, s_a [M] f32]
//                          floats [] (dynamic) or [static s_a]       (x)
//   w4a8_gemm              in [a, s_a, packed, scales, exponent, (bias [N])]
//                          out [y [M, N] float]                      (y)
//   w4a8_linear            in [x [M, K] float, packed, scales, exponent, (bias)]
//                          out [y [M, N]]; floats [] or [static s_a] (y)
//   w4a8_fireq_gemm, w4a8_fireq_linear (CUDA, sm_89+)
//                          as w4a8_gemm / w4a8_linear with packed in the
//                          FireQ layout [N padded to 16, Kp/2] (quant_fireq.h)
//   quant_int4_fireq_pack  in [packed [N, Kp/2]]  out [FireQ layout]  (uint8)
//   quant_int4_fireq_unpack in [FireQ layout]  out [packed [N, Kp/2]] (uint8)
//   w4a8_reference         in [a, packed, scales]
//                          out [P [M, N] f32, A [M, N] f32]          (float8_e4m3)
// "float" = float32, float16 or bfloat16. packed and scales are contiguous;
// x, a, s_a and bias may have any strides; y, P, A, packed, scales outputs are
// contiguous.
#pragma once
#include <cstdint>

#include "kiln/numerics.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

// ---- per-element definitions ------------------------------------------------------

namespace quant {

constexpr int64_t kKAlign = 128;      // K is padded to a multiple of this
constexpr int64_t kGroupAlign = 32;   // group sizes are multiples of this
constexpr int kMaxExponent = 14;      // e in [0, kMaxExponent]
constexpr float kE4M3Max = 448.0f;
constexpr int64_t kReferenceMaxK = 65536;  // the int64 reference is exact up to here (quant.md)

KILN_HD int64_t padded_k(int64_t k) { return (k + kKAlign - 1) / kKAlign * kKAlign; }

// The signed value of a nibble (two's complement).
KILN_HD int nibble_value(uint32_t nib) { return static_cast<int>(nib & 0xFu) - static_cast<int>((nib & 0x8u) << 1); }

// q of element k of a packed row.
KILN_HD int packed_q(const uint8_t* row, int64_t k) {
  const uint32_t byte = row[k >> 1];
  return nibble_value((k & 1) ? (byte >> 4) : byte);
}

// The E4M3 code of w8 = e4m3(q * s): the product is exact in float32 (4-bit
// integer times a 4-bit significand), rounded once (satfinite, RNE).
KILN_HD uint8_t w8_code(int q, uint8_t s_code) {
  return num::f32_to_e4m3(static_cast<float>(q) * num::e4m3_to_f32(s_code));
}

}  // namespace quant

// ---- validation shared by the backends ---------------------------------------------

// quant_int4_weight and quant_int4_dequantize.
struct Int4WeightPlan {
  int64_t n = 0, k = 0, kp = 0, group = 0;
};
Status prepare_int4_weight(const KernelArgs& args, Int4WeightPlan* plan);
Status prepare_int4_dequantize(const KernelArgs& args, Int4WeightPlan* plan);

// quant_fp8_activation.
struct Fp8ActivationPlan {
  int64_t m = 0, k = 0;
  bool is_static = false;
  float scale = 0;  // the static s_a (finite, > 0) when is_static
};
Status prepare_fp8_activation(const KernelArgs& args, Fp8ActivationPlan* plan);

// w4a8_gemm, w4a8_linear and w4a8_reference. Operand positions in args.in:
struct W4A8Plan {
  int64_t m = 0, n = 0, k = 0, kp = 0, group = 0;
  bool fused = false;      // w4a8_linear: x is quantized inside the op
  bool reference = false;  // w4a8_reference
  bool has_bias = false;
  bool is_static = false;  // w4a8_linear with a static activation scale
  bool fireq = false;      // w4a8_fireq_*: packed is in the FireQ layout (kiln/quant_fireq.h)
  float static_scale = 0;
  DType out = DType::BFloat16;
  int x = 0;               // index of x (fused) or a
  int s_a = -1;            // index of s_a (w4a8_gemm), else -1
  int packed = 0, scales = 0, exponent = -1, bias = -1;
};
Status prepare_w4a8(const KernelArgs& args, W4A8Plan* plan);

// quant_int4_fireq_pack (in [packed [N, Kp/2]] out [FireQ layout [N padded
// to 16, Kp/2]]) and quant_int4_fireq_unpack (the reverse); both uint8.
struct FireqPackPlan {
  int64_t n = 0, kp = 0;
};
Status prepare_fireq_pack(const KernelArgs& args, FireqPackPlan* plan);

// Reads the exponent operand (host memory) and checks 0 <= e <= 14 (ValueError).
Status read_exponent(const View& exponent, const char* op, int* e);

// The validity rule for a group size: a multiple of 32 that divides kp.
inline bool valid_group(int64_t group, int64_t kp) {
  return group > 0 && group % quant::kGroupAlign == 0 && kp % group == 0;
}

}  // namespace kiln
