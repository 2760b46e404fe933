#include "view_args.h"

#include <cmath>

#include "storage_wrap.h"

namespace kiln {
namespace addon {

bool read_int(const Napi::Value& value, int64_t* out) {
  if (!value.IsNumber()) return false;
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9007199254740992.0) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

namespace {
bool read_dims(const Napi::Value& value, int64_t* dims, int* n, std::string* error, const char* what) {
  if (!value.IsArray()) {
    *error = std::string(what) + " must be an array";
    return false;
  }
  const Napi::Array arr = value.As<Napi::Array>();
  if (arr.Length() > static_cast<uint32_t>(kMaxDims)) {
    *error = std::string("rank ") + std::to_string(arr.Length()) + " exceeds the maximum of " + std::to_string(kMaxDims);
    return false;
  }
  *n = static_cast<int>(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    if (!read_int(arr.Get(i), &dims[i])) {
      *error = std::string(what) + " entries must be integers";
      return false;
    }
  }
  return true;
}
}  // namespace

bool read_view(const Napi::Value& value, View* out, std::string* error) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() != 5) {
    *error = "operand must be [storage, dtype, shape, strides, offset]";
    return false;
  }
  const Napi::Array a = value.As<Napi::Array>();
  const Napi::Value storage = a.Get(0u);
  if (!StorageWrap::Is(storage)) {
    *error = "operand storage is not a kiln Storage";
    return false;
  }
  const StorageWrap* s = StorageWrap::Unwrap(storage);
  if (s->freed()) {
    *error = "operand storage has been freed";
    return false;
  }
  int64_t dtype = 0;
  if (!read_int(a.Get(1u), &dtype) || !dtype_valid(static_cast<int32_t>(dtype))) {
    *error = "operand dtype code is invalid";
    return false;
  }
  int nshape = 0, nstrides = 0;
  if (!read_dims(a.Get(2u), out->shape, &nshape, error, "shape")) return false;
  if (!read_dims(a.Get(3u), out->strides, &nstrides, error, "strides")) return false;
  if (nshape != nstrides) {
    *error = "shape and strides differ in length";
    return false;
  }
  if (!read_int(a.Get(4u), &out->offset)) {
    *error = "offset must be an integer";
    return false;
  }
  out->base = s->data();
  out->storage_bytes = s->bytes();
  out->device = s->device();
  out->dtype = static_cast<DType>(dtype);
  out->ndim = nshape;
  return true;
}

}  // namespace addon
}  // namespace kiln
