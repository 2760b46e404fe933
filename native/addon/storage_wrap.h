// JS class `Storage`: owns one allocation (host or CUDA). Freed explicitly by
// free() (the TS Tensor lifetime code calls it when the last view is
// disposed) or, as a safety net, when the JS object is garbage collected.
#pragma once
#include <napi.h>

#include "kiln/device.h"

namespace kiln {
namespace addon {

class StorageWrap : public Napi::ObjectWrap<StorageWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static bool Is(const Napi::Value& v);
  static StorageWrap* Unwrap(const Napi::Value& v) { return Napi::ObjectWrap<StorageWrap>::Unwrap(v.As<Napi::Object>()); }

  // new Storage(deviceKind, deviceIndex, bytes)
  explicit StorageWrap(const Napi::CallbackInfo& info);
  ~StorageWrap() override;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  const Device& device() const { return device_; }
  bool freed() const { return freed_; }

 private:
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value GetBytes(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  void release();

  Napi::Env env_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  bool freed_ = false;
};

}  // namespace addon
}  // namespace kiln
