#include "errors.h"

namespace kiln {
namespace addon {

void throw_error(Napi::Env env, StatusCode code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("kilnCode", Napi::String::New(env, status_code_name(code)));
  err.ThrowAsJavaScriptException();
}

void throw_status(Napi::Env env, const Status& status) { throw_error(env, status.code(), status.message()); }

}  // namespace addon
}  // namespace kiln
