// run(op, keyDtype, inputs, outputs, ints, floats): the one entry point from JS
// into the kernel registry.
#include <vector>

#include "errors.h"
#include "exports.h"
#include "kiln/registry.h"
#include "view_args.h"

namespace kiln {
namespace addon {
namespace {

bool read_views(Napi::Env env, const char* op, const Napi::Value& v, std::vector<View>* views, const char* role) {
  if (!v.IsArray()) {
    throw_error(env, StatusCode::Internal, std::string("kiln: ") + op + ": " + role + " must be an array");
    return false;
  }
  const Napi::Array arr = v.As<Napi::Array>();
  views->resize(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    std::string error;
    if (!read_view(arr.Get(i), &(*views)[i], &error)) {
      throw_error(env, StatusCode::Internal, std::string("kiln: ") + op + ": " + role + " " + std::to_string(i) + ": " + error);
      return false;
    }
  }
  return true;
}

Napi::Value Run(const Napi::CallbackInfo& info) {
  return guarded(info, "run", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() != 6 || !info[0].IsString()) {
      throw_error(env, StatusCode::Internal, "kiln: run(op, keyDtype, inputs, outputs, ints, floats): bad arguments");
      return env.Undefined();
    }
    const std::string op = info[0].As<Napi::String>().Utf8Value();
    int64_t key = 0;
    if (!read_int(info[1], &key) || !dtype_valid(static_cast<int32_t>(key))) {
      throw_error(env, StatusCode::Internal, "kiln: " + op + ": bad key dtype");
      return env.Undefined();
    }
    std::vector<View> in, out;
    if (!read_views(env, op.c_str(), info[2], &in, "input")) return env.Undefined();
    if (!read_views(env, op.c_str(), info[3], &out, "output")) return env.Undefined();
    std::vector<int64_t> ints;
    std::vector<double> floats;
    if (info[4].IsArray()) {
      const Napi::Array a = info[4].As<Napi::Array>();
      ints.resize(a.Length());
      for (uint32_t i = 0; i < a.Length(); ++i) {
        if (!read_int(a.Get(i), &ints[i])) {
          throw_error(env, StatusCode::Internal, "kiln: " + op + ": integer attributes must be integers");
          return env.Undefined();
        }
      }
    }
    if (info[5].IsArray()) {
      const Napi::Array a = info[5].As<Napi::Array>();
      floats.resize(a.Length());
      for (uint32_t i = 0; i < a.Length(); ++i) {
        if (!a.Get(i).IsNumber()) {
          throw_error(env, StatusCode::Internal, "kiln: " + op + ": float attributes must be numbers");
          return env.Undefined();
        }
        floats[i] = a.Get(i).As<Napi::Number>().DoubleValue();
      }
    }
    KernelArgs args;
    args.op = op.c_str();
    args.in = in.data();
    args.n_in = static_cast<int>(in.size());
    args.out = out.data();
    args.n_out = static_cast<int>(out.size());
    args.ints = ints.data();
    args.n_ints = static_cast<int>(ints.size());
    args.floats = floats.data();
    args.n_floats = static_cast<int>(floats.size());
    const Status st = run_kernel(static_cast<DType>(key), args);
    if (!st.ok()) throw_status(env, st);
    return env.Undefined();
  });
}

Napi::Value Kernels(const Napi::CallbackInfo& info) {
  const std::vector<std::string> names = registered_kernels();
  Napi::Array arr = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) arr.Set(static_cast<uint32_t>(i), names[i]);
  return arr;
}

}  // namespace

void export_kernels(Napi::Env env, Napi::Object exports) {
  exports.Set("run", Napi::Function::New(env, Run, "run"));
  exports.Set("kernels", Napi::Function::New(env, Kernels, "kernels"));
}

}  // namespace addon
}  // namespace kiln
