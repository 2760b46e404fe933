// Moving bytes between JS memory and storages, and between storages:
//   write(storage, byteOffset, arrayBufferView)
//   read(storage, byteOffset, byteLength) -> ArrayBuffer
//   copy(dst, dstByteOffset, src, srcByteOffset, byteLength)
#include <cstring>

#include "errors.h"
#include "exports.h"
#include "kiln/storage.h"
#include "storage_wrap.h"
#include "view_args.h"

namespace kiln {
namespace addon {
namespace {

// Resolves storage argument `i` and checks [offset, offset + bytes) lies inside it.
StorageWrap* storage_range(const Napi::CallbackInfo& info, size_t i, int64_t offset, int64_t bytes, const char* op) {
  if (!StorageWrap::Is(info[i])) {
    throw_error(info.Env(), StatusCode::Internal, std::string("kiln: ") + op + ": argument is not a kiln Storage");
    return nullptr;
  }
  StorageWrap* s = StorageWrap::Unwrap(info[i]);
  if (s->freed()) {
    throw_error(info.Env(), StatusCode::Internal, std::string("kiln: ") + op + ": storage has been freed");
    return nullptr;
  }
  if (offset < 0 || bytes < 0 || static_cast<uint64_t>(offset + bytes) > s->bytes()) {
    throw_error(info.Env(), StatusCode::ShapeError,
                std::string("kiln: ") + op + ": byte range [" + std::to_string(offset) + ", " +
                    std::to_string(offset + bytes) + ") is outside a storage of " + std::to_string(s->bytes()) + " bytes");
    return nullptr;
  }
  return s;
}

Napi::Value Write(const Napi::CallbackInfo& info) {
  return guarded(info, "write", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int64_t offset = 0;
    if (info.Length() != 3 || !read_int(info[1], &offset) || !info[2].IsTypedArray()) {
      throw_error(env, StatusCode::Internal, "kiln: write(storage, byteOffset, typedArray): bad arguments");
      return env.Undefined();
    }
    const Napi::TypedArray src = info[2].As<Napi::TypedArray>();
    const int64_t bytes = static_cast<int64_t>(src.ByteLength());
    StorageWrap* s = storage_range(info, 0, offset, bytes, "write");
    if (s == nullptr) return env.Undefined();
    const char* from = static_cast<const char*>(src.ArrayBuffer().Data()) + src.ByteOffset();
    const Status st = storage_copy(s->device(), static_cast<char*>(s->data()) + offset, Device(), from, static_cast<size_t>(bytes));
    if (!st.ok()) throw_status(env, st);
    return env.Undefined();
  });
}

Napi::Value Read(const Napi::CallbackInfo& info) {
  return guarded(info, "read", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int64_t offset = 0, bytes = 0;
    if (info.Length() != 3 || !read_int(info[1], &offset) || !read_int(info[2], &bytes)) {
      throw_error(env, StatusCode::Internal, "kiln: read(storage, byteOffset, byteLength): bad arguments");
      return env.Undefined();
    }
    StorageWrap* s = storage_range(info, 0, offset, bytes, "read");
    if (s == nullptr) return env.Undefined();
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, static_cast<size_t>(bytes));
    const Status st = storage_copy(Device(), buf.Data(), s->device(), static_cast<const char*>(s->data()) + offset,
                                   static_cast<size_t>(bytes));
    if (!st.ok()) {
      throw_status(env, st);
      return env.Undefined();
    }
    return buf;
  });
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  return guarded(info, "copy", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int64_t dst_off = 0, src_off = 0, bytes = 0;
    if (info.Length() != 5 || !read_int(info[1], &dst_off) || !read_int(info[3], &src_off) || !read_int(info[4], &bytes)) {
      throw_error(env, StatusCode::Internal, "kiln: copy(dst, dstOffset, src, srcOffset, bytes): bad arguments");
      return env.Undefined();
    }
    StorageWrap* d = storage_range(info, 0, dst_off, bytes, "copy");
    if (d == nullptr) return env.Undefined();
    StorageWrap* s = storage_range(info, 2, src_off, bytes, "copy");
    if (s == nullptr) return env.Undefined();
    const Status st = storage_copy(d->device(), static_cast<char*>(d->data()) + dst_off, s->device(),
                                   static_cast<const char*>(s->data()) + src_off, static_cast<size_t>(bytes));
    if (!st.ok()) throw_status(env, st);
    return env.Undefined();
  });
}

}  // namespace

void export_transfer(Napi::Env env, Napi::Object exports) {
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
}

}  // namespace addon
}  // namespace kiln
