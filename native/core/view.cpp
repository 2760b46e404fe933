#include "kiln/view.h"

#include <limits>

namespace kiln {

bool View::is_contiguous() const {
  int64_t expected = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

std::string View::shape_str() const {
  std::string s = "[";
  for (int i = 0; i < ndim && i < kMaxDims; ++i) {  // an invalid rank is described, not read past shape[]
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string View::describe() const {
  return std::string(dtype_name(dtype)) + shape_str() + " on " + device.name();
}

Status check_view_bounds(const View& v, const char* op, const char* role) {
  auto fail = [&](const std::string& why) {
    return Status(StatusCode::ShapeError,
                  std::string("kiln: ") + op + ": " + role + " " + v.describe() + ": " + why);
  };
  if (v.ndim < 0 || v.ndim > kMaxDims) return fail("rank must be in [0, " + std::to_string(kMaxDims) + "]");
  if (v.offset < 0) return fail("negative storage offset");
  const int64_t kMax = std::numeric_limits<int64_t>::max() / 16;
  if (v.offset > kMax) return fail("extent overflows");  // else (last + 1) * dtype size can wrap around size_t
  int64_t last = v.offset;  // index of the last addressable element
  bool empty = false;
  for (int i = 0; i < v.ndim; ++i) {
    if (v.shape[i] < 0) return fail("negative dimension");
    if (v.strides[i] < 0) return fail("negative stride");
    if (v.shape[i] == 0) empty = true;
  }
  if (empty) return Status::Ok();
  for (int i = 0; i < v.ndim; ++i) {
    if (v.shape[i] > 1) {
      if (v.strides[i] > 0 && (v.shape[i] - 1) > (kMax - last) / v.strides[i]) return fail("extent overflows");
      last += (v.shape[i] - 1) * v.strides[i];
    }
  }
  const size_t need = static_cast<size_t>(last + 1) * dtype_size(v.dtype);
  if (need > v.storage_bytes || v.base == nullptr) {
    return fail("addresses " + std::to_string(need) + " bytes but its storage holds " +
                std::to_string(v.storage_bytes));
  }
  return Status::Ok();
}

}  // namespace kiln
