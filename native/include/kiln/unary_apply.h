// The arithmetic of the unary ops and their backward ops, one definition for
// the CPU and CUDA kernels (kiln/elementwise.h lists the ops). Float dtypes
// compute in float32 (kiln/fastmath.h; results within 1 ulp of the correctly
// rounded float32 value) and are rounded once to the storage dtype; int32 neg
// and abs wrap.
#pragma once
#include <cstdint>
#include <type_traits>

#include "kiln/element.h"
#include "kiln/elementwise.h"
#include "kiln/fastmath.h"

namespace kiln {
namespace {  // internal linkage: ISA-specific translation units must not share copies

template <UnaryOp OP>
KILN_HDM float unary_apply_f32(float x) {
  if constexpr (OP == UnaryOp::Neg) return num::bits_f32(num::f32_bits(x) ^ 0x80000000u);
  if constexpr (OP == UnaryOp::Abs) return fm::abs_f(x);
  if constexpr (OP == UnaryOp::Relu) return (x > 0.0f || x != x) ? x : 0.0f;  // NaN stays NaN, -0 -> +0
  if constexpr (OP == UnaryOp::Exp) return fm::exp_f32(x);
  if constexpr (OP == UnaryOp::Log) return fm::log_f32(x);
  if constexpr (OP == UnaryOp::Sqrt) return fm::sqrt_f32(x);
  if constexpr (OP == UnaryOp::Rsqrt) return fm::rsqrt_f32(x);
  if constexpr (OP == UnaryOp::Sigmoid) return fm::sigmoid_f32(x);
  if constexpr (OP == UnaryOp::Tanh) return fm::tanh_f32(x);
  if constexpr (OP == UnaryOp::Silu) return fm::silu_f32(x);
  if constexpr (OP == UnaryOp::Gelu) return fm::gelu_f32(x);
  if constexpr (OP == UnaryOp::GeluTanh) return fm::gelu_tanh_f32(x);
}

template <UnaryOp OP>
KILN_HDM int32_t unary_apply_i32(int32_t x) {
  const uint32_t u = static_cast<uint32_t>(x);
  if constexpr (OP == UnaryOp::Neg) return static_cast<int32_t>(0u - u);
  if constexpr (OP == UnaryOp::Abs) return x < 0 ? static_cast<int32_t>(0u - u) : x;
  if constexpr (OP == UnaryOp::Relu) return x > 0 ? x : 0;
  return 0;  // no other op has an int32 kernel
}

// gx = f'(x) gy, one rounding: x is the forward input, except for sigmoid and
// tanh where it is the forward output y (gx = y (1 - y) gy, (1 - y^2) gy).
// relu'(x) = x > 0 ? 1 : 0 (gx = 0 where x <= 0 or NaN, whatever gy is).
template <UnaryGradOp OP>
KILN_HDM float unary_grad_apply_f32_raw(float x, float gy) {
  const double g = static_cast<double>(gy);
  if constexpr (OP == UnaryGradOp::Relu) return x > 0.0f ? gy : 0.0f;
  if constexpr (OP == UnaryGradOp::Gelu) return static_cast<float>(fm::gelu_grad_d(x) * g);
  if constexpr (OP == UnaryGradOp::GeluTanh) return static_cast<float>(fm::gelu_tanh_grad_d(x) * g);
  if constexpr (OP == UnaryGradOp::Silu) return static_cast<float>(fm::silu_grad_d(x) * g);
  if constexpr (OP == UnaryGradOp::Sigmoid) {
    const double y = static_cast<double>(x);
    return static_cast<float>(y * (1.0 - y) * g);
  }
  if constexpr (OP == UnaryGradOp::Tanh) {
    const double y = static_cast<double>(x);
    return static_cast<float>((1.0 - y * y) * g);
  }
}

// A NaN x (else a NaN gy) comes out as the same NaN, quieted (relu_backward: 0 or gy).
template <UnaryGradOp OP>
KILN_HDM float unary_grad_apply_f32(float x, float gy) {
  const float r = unary_grad_apply_f32_raw<OP>(x, gy);
  if constexpr (OP == UnaryGradOp::Relu) return r;
  return fm::nan_in(x, fm::nan_in(gy, r));
}

// clamp with bounds already rounded to the dtype (ClampPlan): NaN x stays NaN, lo > hi gives hi.
KILN_HDM float clamp_apply_f32(float x, float lo, float hi) {
  const float t = x < lo ? lo : x;
  return t > hi ? hi : t;
}
KILN_HDM int32_t clamp_apply_i32(int32_t x, int32_t lo, int32_t hi) {
  const int32_t t = x < lo ? lo : x;
  return t > hi ? hi : t;
}

}  // namespace
}  // namespace kiln
