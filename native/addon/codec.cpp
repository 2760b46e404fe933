// Exact conversion between JS numbers (float64) and stored element bytes, on
// the host, for tensor creation and readback:
//   encode(Float64Array, dtype) -> ArrayBuffer   (one rounding; see element.h)
//   decode(ArrayBufferView, dtype) -> Float64Array (exact)
#include <cstring>

#include "errors.h"
#include "exports.h"
#include "kiln/element.h"
#include "view_args.h"

namespace kiln {
namespace addon {
namespace {

bool read_dtype(const Napi::Value& v, DType* out) {
  int64_t code = 0;
  if (!read_int(v, &code) || !dtype_valid(static_cast<int32_t>(code))) return false;
  *out = static_cast<DType>(code);
  return true;
}

Napi::Value Encode(const Napi::CallbackInfo& info) {
  return guarded(info, "encode", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    DType dtype;
    if (info.Length() != 2 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array || !read_dtype(info[1], &dtype)) {
      throw_error(env, StatusCode::Internal, "kiln: encode(Float64Array, dtype): bad arguments");
      return env.Undefined();
    }
    const Napi::Float64Array src = info[0].As<Napi::Float64Array>();
    const size_t n = src.ElementLength();
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, n * dtype_size(dtype));
    el::visit(dtype, [&](auto tag) {
      using E = decltype(tag);
      typename E::T* out = static_cast<typename E::T*>(buf.Data());
      for (size_t i = 0; i < n; ++i) out[i] = E::from_f64(src[i]);
    });
    return buf;
  });
}

Napi::Value Decode(const Napi::CallbackInfo& info) {
  return guarded(info, "decode", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    DType dtype;
    if (info.Length() != 2 || !info[0].IsTypedArray() || !read_dtype(info[1], &dtype)) {
      throw_error(env, StatusCode::Internal, "kiln: decode(typedArray, dtype): bad arguments");
      return env.Undefined();
    }
    const Napi::TypedArray src = info[0].As<Napi::TypedArray>();
    const size_t esize = dtype_size(dtype);
    if (src.ByteLength() % esize != 0) {
      throw_error(env, StatusCode::Internal, "kiln: decode: byte length is not a multiple of the element size");
      return env.Undefined();
    }
    const size_t n = src.ByteLength() / esize;
    const char* bytes = static_cast<const char*>(src.ArrayBuffer().Data()) + src.ByteOffset();
    Napi::Float64Array out = Napi::Float64Array::New(env, n);
    el::visit(dtype, [&](auto tag) {
      using E = decltype(tag);
      for (size_t i = 0; i < n; ++i) {
        typename E::T x;
        std::memcpy(&x, bytes + i * esize, esize);
        if constexpr (E::is_float) {
          out[i] = static_cast<double>(E::to_f32(x));
        } else {
          out[i] = static_cast<double>(x);
        }
      }
    });
    return out;
  });
}

}  // namespace

void export_codec(Napi::Env env, Napi::Object exports) {
  exports.Set("encode", Napi::Function::New(env, Encode, "encode"));
  exports.Set("decode", Napi::Function::New(env, Decode, "decode"));
}

}  // namespace addon
}  // namespace kiln
