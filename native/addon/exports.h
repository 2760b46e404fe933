// Each file of the addon exports its functions through one of these.
#pragma once
#include <napi.h>

namespace kiln {
namespace addon {

void export_kernels(Napi::Env env, Napi::Object exports);    // kernels.cpp
void export_transfer(Napi::Env env, Napi::Object exports);   // transfer.cpp
void export_codec(Napi::Env env, Napi::Object exports);      // codec.cpp
void export_runtime(Napi::Env env, Napi::Object exports);    // runtime_info.cpp

}  // namespace addon
}  // namespace kiln
