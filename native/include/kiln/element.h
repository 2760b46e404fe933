// Element-type tags: how each dtype is stored and converted, for host kernels
// and CUDA kernels alike. Conversions follow lib/dtype.ts "Casting":
//   float -> float: exact decode to float32, one RNE rounding (numerics.h);
//   int32 -> float: one rounding from the exact float64 value;
//   float -> int: truncate toward zero, NaN -> 0, saturate;
//   int -> int: wrap modulo 2^bits (two's complement), as NumPy and PyTorch;
//   anything -> bool: x != 0 (NaN -> true).
#pragma once
#include <cstdint>
#include <type_traits>

#include "kiln/dtype.h"
#include "kiln/numerics.h"

namespace kiln {
namespace el {
namespace {  // internal linkage: ISA-specific translation units must not share copies

struct F32 {
  using T = float;
  static constexpr DType dtype = DType::Float32;
  static constexpr bool is_float = true;
  KILN_HDM static float to_f32(T x) { return x; }
  KILN_HDM static T from_f32(float f) { return f; }
  KILN_HDM static T from_f64(double d) { return static_cast<float>(d); }
};
struct F16 {
  using T = uint16_t;
  static constexpr DType dtype = DType::Float16;
  static constexpr bool is_float = true;
  KILN_HDM static float to_f32(T x) { return num::f16_to_f32(x); }
  KILN_HDM static T from_f32(float f) { return num::f32_to_f16(f); }
  KILN_HDM static T from_f64(double d) { return num::f64_to_f16(d); }
};
struct BF16 {
  using T = uint16_t;
  static constexpr DType dtype = DType::BFloat16;
  static constexpr bool is_float = true;
  KILN_HDM static float to_f32(T x) { return num::bf16_to_f32(x); }
  KILN_HDM static T from_f32(float f) { return num::f32_to_bf16(f); }
  KILN_HDM static T from_f64(double d) { return num::f64_to_bf16(d); }
};
struct E4M3 {
  using T = uint8_t;
  static constexpr DType dtype = DType::Float8E4M3;
  static constexpr bool is_float = true;
  KILN_HDM static float to_f32(T x) { return num::e4m3_to_f32(x); }
  KILN_HDM static T from_f32(float f) { return num::f32_to_e4m3(f); }
  KILN_HDM static T from_f64(double d) { return num::f64_to_e4m3(d); }
};
struct E5M2 {
  using T = uint8_t;
  static constexpr DType dtype = DType::Float8E5M2;
  static constexpr bool is_float = true;
  KILN_HDM static float to_f32(T x) { return num::e5m2_to_f32(x); }
  KILN_HDM static T from_f32(float f) { return num::f32_to_e5m2(f); }
  KILN_HDM static T from_f64(double d) { return num::f64_to_e5m2(d); }
};
struct I8 {
  using T = int8_t;
  static constexpr DType dtype = DType::Int8;
  static constexpr bool is_float = false;
  KILN_HDM static float to_f32(T x) { return static_cast<float>(x); }
  KILN_HDM static T from_f64(double d) { return num::f64_to_i8(d); }
};
struct U8 {
  using T = uint8_t;
  static constexpr DType dtype = DType::UInt8;
  static constexpr bool is_float = false;
  KILN_HDM static float to_f32(T x) { return static_cast<float>(x); }
  KILN_HDM static T from_f64(double d) { return num::f64_to_u8(d); }
};
struct I32 {
  using T = int32_t;
  static constexpr DType dtype = DType::Int32;
  static constexpr bool is_float = false;
  KILN_HDM static float to_f32(T x) { return static_cast<float>(x); }
  KILN_HDM static T from_f64(double d) { return num::f64_to_i32(d); }
};
struct Bool {
  using T = uint8_t;
  static constexpr DType dtype = DType::Bool;
  static constexpr bool is_float = false;
  KILN_HDM static float to_f32(T x) { return x ? 1.0f : 0.0f; }
  KILN_HDM static T from_f64(double d) { return d != 0.0 ? 1 : 0; }
};

// One conversion, per the rules at the top of this file.
template <class S, class D>
KILN_HD typename D::T convert(typename S::T x) {
  if constexpr (std::is_same<S, D>::value) {
    return x;
  } else if constexpr (std::is_same<D, Bool>::value) {
    if constexpr (S::is_float) {
      return S::to_f32(x) != 0.0f ? 1 : 0;
    } else {
      return x != 0 ? 1 : 0;
    }
  } else if constexpr (!D::is_float) {
    if constexpr (S::is_float) {
      return D::from_f64(static_cast<double>(S::to_f32(x)));
    } else {
      // wrap: reduce modulo 2^bits through the unsigned type
      using U = typename std::make_unsigned<typename D::T>::type;
      return static_cast<typename D::T>(static_cast<U>(static_cast<int64_t>(x)));
    }
  } else if constexpr (std::is_same<S, I32>::value) {
    return D::from_f64(static_cast<double>(x));
  } else {
    return D::from_f32(S::to_f32(x));
  }
}

// Calls fn(Tag{}) with the tag of `t`.
template <class F>
inline auto visit(DType t, F&& fn) {
  switch (t) {
    case DType::Float32: return fn(F32{});
    case DType::Float16: return fn(F16{});
    case DType::BFloat16: return fn(BF16{});
    case DType::Float8E4M3: return fn(E4M3{});
    case DType::Float8E5M2: return fn(E5M2{});
    case DType::Int8: return fn(I8{});
    case DType::UInt8: return fn(U8{});
    case DType::Int32: return fn(I32{});
    case DType::Bool: break;
  }
  return fn(Bool{});
}

}  // namespace
}  // namespace el
}  // namespace kiln
