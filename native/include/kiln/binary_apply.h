// The arithmetic of the binary ops, one definition for the CPU and CUDA
// kernels: float32, float16 and bfloat16 compute in float32 (IEEE, round to
// nearest even; on the device the _rn intrinsics keep nvcc from fusing into
// FMA) and round once to the storage type; int32 wraps modulo 2^32 and has no
// division; maximum/minimum propagate NaN, as in PyTorch; pow is powf
// (C99 Annex F special cases, within 1 ulp: kiln/fastmath.h), float only.
#pragma once
#include <cstdint>
#include <type_traits>

#include "kiln/element.h"
#include "kiln/elementwise.h"
#include "kiln/fastmath.h"

#if defined(__CUDA_ARCH__)
#define KILN_FADD(a, b) __fadd_rn((a), (b))
#define KILN_FSUB(a, b) __fsub_rn((a), (b))
#define KILN_FMUL(a, b) __fmul_rn((a), (b))
#define KILN_FDIV(a, b) __fdiv_rn((a), (b))
#else
#define KILN_FADD(a, b) ((a) + (b))
#define KILN_FSUB(a, b) ((a) - (b))
#define KILN_FMUL(a, b) ((a) * (b))
#define KILN_FDIV(a, b) ((a) / (b))
#endif

namespace kiln {
namespace {  // internal linkage: ISA-specific translation units must not share copies

template <BinaryOp OP>
KILN_HDM float binary_apply_f32(float a, float b) {
  if constexpr (OP == BinaryOp::Add) return KILN_FADD(a, b);
  if constexpr (OP == BinaryOp::Sub) return KILN_FSUB(a, b);
  if constexpr (OP == BinaryOp::Mul) return KILN_FMUL(a, b);
  if constexpr (OP == BinaryOp::Div) return KILN_FDIV(a, b);
  if constexpr (OP == BinaryOp::Maximum) return (a > b || a != a) ? a : b;
  if constexpr (OP == BinaryOp::Minimum) return (a < b || a != a) ? a : b;
  if constexpr (OP == BinaryOp::Pow) return fm::pow_f32(a, b);
}

template <BinaryOp OP>
KILN_HDM int32_t binary_apply_i32(int32_t a, int32_t b) {
  const uint32_t ua = static_cast<uint32_t>(a), ub = static_cast<uint32_t>(b);
  if constexpr (OP == BinaryOp::Add) return static_cast<int32_t>(ua + ub);
  if constexpr (OP == BinaryOp::Sub) return static_cast<int32_t>(ua - ub);
  if constexpr (OP == BinaryOp::Mul) return static_cast<int32_t>(ua * ub);
  if constexpr (OP == BinaryOp::Maximum) return a > b ? a : b;
  if constexpr (OP == BinaryOp::Minimum) return a < b ? a : b;
  return 0;
}

// One element of op OP on storage values of element type E.
template <BinaryOp OP, class E>
KILN_HDM typename E::T binary_apply(typename E::T a, typename E::T b) {
  if constexpr (std::is_same<E, el::I32>::value) {
    return binary_apply_i32<OP>(a, b);
  } else {
    return E::from_f32(binary_apply_f32<OP>(E::to_f32(a), E::to_f32(b)));
  }
}

}  // namespace
}  // namespace kiln
