#include "storage_wrap.h"

#include <cmath>

#include "errors.h"
#include "kiln/storage.h"

namespace kiln {
namespace addon {
namespace {
Napi::FunctionReference* g_constructor = nullptr;
}

Napi::Function StorageWrap::Define(Napi::Env env) {
  Napi::Function cls = DefineClass(env, "Storage",
                                   {InstanceMethod("free", &StorageWrap::Free),
                                    InstanceAccessor("bytes", &StorageWrap::GetBytes, nullptr),
                                    InstanceAccessor("freed", &StorageWrap::GetFreed, nullptr)});
  g_constructor = new Napi::FunctionReference(Napi::Persistent(cls));  // lives as long as the process
  return cls;
}

bool StorageWrap::Is(const Napi::Value& v) {
  return g_constructor != nullptr && v.IsObject() && v.As<Napi::Object>().InstanceOf(g_constructor->Value());
}

StorageWrap::StorageWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StorageWrap>(info), env_(info.Env()) {
  freed_ = true;  // until the allocation succeeds
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw_error(env_, StatusCode::Internal, "kiln: Storage(deviceKind, deviceIndex, bytes): bad arguments");
    return;
  }
  const int kind = info[0].As<Napi::Number>().Int32Value();
  const int index = info[1].As<Napi::Number>().Int32Value();
  const double bytes = info[2].As<Napi::Number>().DoubleValue();
  if ((kind != 0 && kind != 1) || index < 0 || !(bytes >= 0) || bytes > 9.0e15 || std::floor(bytes) != bytes) {
    throw_error(env_, StatusCode::ValueError, "kiln: Storage: bad device or byte count");
    return;
  }
  device_.kind = static_cast<DeviceKind>(kind);
  device_.index = index;
  const Status st = storage_alloc(device_, static_cast<size_t>(bytes), &data_);
  if (!st.ok()) {
    throw_status(env_, st);
    return;
  }
  bytes_ = static_cast<size_t>(bytes);
  freed_ = false;
  if (device_.kind == DeviceKind::CPU && bytes_ > 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env_, static_cast<int64_t>(bytes_));
  }
}

StorageWrap::~StorageWrap() { release(); }

void StorageWrap::release() {
  if (freed_) return;
  freed_ = true;
  storage_free(device_, data_, bytes_);
  if (device_.kind == DeviceKind::CPU && bytes_ > 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env_, -static_cast<int64_t>(bytes_));
  }
  data_ = nullptr;
}

Napi::Value StorageWrap::Free(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

Napi::Value StorageWrap::GetBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bytes_));
}

Napi::Value StorageWrap::GetFreed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), freed_); }

}  // namespace addon
}  // namespace kiln
