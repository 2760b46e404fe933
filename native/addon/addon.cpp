// The kiln native addon: the only place that includes napi.h. Everything it
// exports is internal; lib/native.ts wraps it into the typed public API.
#include <napi.h>

#include "exports.h"
#include "storage_wrap.h"

namespace kiln {
namespace addon {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Storage", StorageWrap::Define(env));
  export_kernels(env, exports);
  export_transfer(env, exports);
  export_codec(env, exports);
  export_runtime(env, exports);
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace addon
}  // namespace kiln

static Napi::Object InitKiln(Napi::Env env, Napi::Object exports) { return kiln::addon::Init(env, exports); }

NODE_API_MODULE(kiln, InitKiln)
