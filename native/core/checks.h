// Argument checks the backend-neutral validators (native/core/*.cpp) share:
// typed errors that start "kiln: <op>: ", and the common expectations on a
// view's dtype and shape, whose messages name the role and describe the view.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {
namespace checks {

inline Status shape_error(const char* op, const std::string& what) {
  return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": " + what);
}
inline Status dtype_error(const char* op, const std::string& what) {
  return Status(StatusCode::DTypeError, std::string("kiln: ") + op + ": " + what);
}
inline Status value_error(const char* op, const std::string& what) {
  return Status(StatusCode::ValueError, std::string("kiln: ") + op + ": " + what);
}

// "[2, 3]"
inline std::string format_dims(std::initializer_list<int64_t> d) {
  std::string s = "[";
  int i = 0;
  for (int64_t v : d) s += (i++ ? ", " : "") + std::to_string(v);
  return s + "]";
}

inline bool is_float(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16; }

// v is float32, float16 or bfloat16.
inline Status expect_float(const char* op, const char* role, const View& v) {
  if (is_float(v.dtype)) return Status::Ok();
  return dtype_error(op, std::string(role) + " must be float32, float16 or bfloat16, got " + v.describe());
}

inline Status expect_dtype(const char* op, const char* role, const View& v, DType want) {
  if (v.dtype == want) return Status::Ok();
  return dtype_error(op, std::string(role) + " must be " + dtype_name(want) + ", got " + v.describe());
}

// v has exactly the shape `want`.
inline Status expect_shape(const char* op, const char* role, const View& v, std::initializer_list<int64_t> want) {
  bool ok = v.ndim == static_cast<int>(want.size());
  int i = 0;
  for (int64_t d : want) {
    if (!ok) break;
    ok = v.shape[i++] == d;
  }
  if (ok) return Status::Ok();
  return shape_error(op, std::string(role) + " must have shape " + format_dims(want) + ", got " + v.describe());
}

}  // namespace checks
}  // namespace kiln
