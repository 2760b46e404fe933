// Element types shared by every backend. The numeric codes are part of the
// addon ABI: lib/dtype.ts lists the same order.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

enum class DType : int32_t {
  Float32 = 0,
  Float16 = 1,
  BFloat16 = 2,
  Float8E4M3 = 3,
  Float8E5M2 = 4,
  Int8 = 5,
  UInt8 = 6,
  Int32 = 7,
  Bool = 8,
};

constexpr int kNumDTypes = 9;

// Dtype sets kernels register for.
constexpr DType kAllDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2,
                                DType::Int8,    DType::UInt8,   DType::Int32,    DType::Bool};
constexpr DType kFloatDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2};
// The float dtypes with arithmetic kernels (fp8 has none).
constexpr DType kFloat16Plus[] = {DType::Float32, DType::Float16, DType::BFloat16};
// kFloat16Plus and int32 (ops defined on int32 too, e.g. neg, sum, max, argmax).
constexpr DType kFloat16PlusInt32[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32};

inline bool dtype_valid(int32_t code) { return code >= 0 && code < kNumDTypes; }

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: case DType::Int32: return 4;
    case DType::Float16: case DType::BFloat16: return 2;
    default: return 1;
  }
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float8E4M3: return "float8_e4m3";
    case DType::Float8E5M2: return "float8_e5m2";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Int32: return "int32";
    case DType::Bool: return "bool";
  }
  return "unknown";
}

inline bool dtype_is_float(DType t) {
  return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16 ||
         t == DType::Float8E4M3 || t == DType::Float8E5M2;
}

}  // namespace kiln
