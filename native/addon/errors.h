// Turning kiln Status values and bad arguments into JS exceptions. The JS side
// (lib/errors.ts) maps the `kilnCode` property to a KilnError subclass.
#pragma once
#include <napi.h>

#include <string>

#include "kiln/status.h"

namespace kiln {
namespace addon {

// Throws a JS Error with .kilnCode = status_code_name(status.code()).
void throw_status(Napi::Env env, const Status& status);
void throw_error(Napi::Env env, StatusCode code, const std::string& message);

// Runs body, converting any C++ exception into a JS error so that nothing
// escapes into N-API (or aborts the process).
template <class F>
Napi::Value guarded(const Napi::CallbackInfo& info, const char* what, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    throw_error(info.Env(), StatusCode::OutOfMemory, std::string("kiln: ") + what + ": out of host memory");
  } catch (const std::exception& e) {
    throw_error(info.Env(), StatusCode::Internal, std::string("kiln: ") + what + ": internal error: " + e.what());
  }
  return info.Env().Undefined();
}

}  // namespace addon
}  // namespace kiln
