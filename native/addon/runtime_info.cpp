// Runtime facts and settings: info(), threads, ISA level, CUDA allocator.
#include "errors.h"
#include "exports.h"
#include "kiln/cpu_features.h"
#include "kiln/cuda.h"
#include "kiln/host_allocator.h"
#include "kiln/threadpool.h"
#include "view_args.h"

namespace kiln {
namespace addon {
namespace {

Napi::Array strings(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  return guarded(info, "info", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("threads", cpu::num_threads());
    cpu.Set("isa", strings(env, cpu::feature_names()));
    cpu.Set("isaLevel", cpu::isa_name(cpu::active_isa()));
    cpu.Set("detectedIsaLevel", cpu::isa_name(cpu::detected_isa()));

    const cuda::Availability& av = cuda::availability();
    Napi::Object cu = Napi::Object::New(env);
    cu.Set("compiled", cuda::compiled());
    cu.Set("available", av.available);
    if (!av.available) cu.Set("reason", av.reason);
    cu.Set("runtimeVersion", cuda::runtime_version());
    cu.Set("driverVersion", cuda::driver_version());
    cu.Set("cublasLt", cuda::cublaslt_status());
    const std::vector<cuda::DeviceInfo> devs = av.available ? cuda::devices() : std::vector<cuda::DeviceInfo>();
    Napi::Array arr = Napi::Array::New(env, devs.size());
    for (size_t i = 0; i < devs.size(); ++i) {
      Napi::Object d = Napi::Object::New(env);
      d.Set("index", devs[i].index);
      d.Set("name", devs[i].name);
      d.Set("computeCapability", std::to_string(devs[i].major) + "." + std::to_string(devs[i].minor));
      d.Set("memoryBytes", static_cast<double>(devs[i].memory_bytes));
      d.Set("multiprocessors", devs[i].multiprocessors);
      arr.Set(static_cast<uint32_t>(i), d);
    }
    cu.Set("devices", arr);

    Napi::Object out = Napi::Object::New(env);
    out.Set("cpu", cpu);
    out.Set("cuda", cu);
    return out;
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = 0;
  if (info.Length() != 1 || !read_int(info[0], &n) || n < 0 || n > 1024) {
    throw_error(info.Env(), StatusCode::ValueError, "kiln: setNumThreads: n must be an integer in [1, 1024] (0 = default)");
    return info.Env().Undefined();
  }
  cpu::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cpu::num_threads()); }

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  const std::string name = info.Length() == 1 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  cpu::IsaLevel level;
  if (name == "portable") level = cpu::IsaLevel::Portable;
  else if (name == "avx2") level = cpu::IsaLevel::Avx2;
  else if (name == "avx512") level = cpu::IsaLevel::Avx512;
  else {
    throw_error(info.Env(), StatusCode::ValueError, "kiln: setIsa: level must be 'portable', 'avx2' or 'avx512', got '" + name + "'");
    return info.Env().Undefined();
  }
  const Status st = cpu::set_isa(level);
  if (!st.ok()) throw_status(info.Env(), st);
  return info.Env().Undefined();
}

int64_t device_arg(const Napi::CallbackInfo& info) {
  int64_t dev = -1;
  if (info.Length() != 1 || !read_int(info[0], &dev) || dev < 0) return -1;
  return dev;
}

Napi::Value CudaStats(const Napi::CallbackInfo& info) {
  const int64_t dev = device_arg(info);
  if (dev < 0) {
    throw_error(info.Env(), StatusCode::ValueError, "kiln: cudaStats(device): bad device index");
    return info.Env().Undefined();
  }
  const cuda::AllocatorStats s = cuda::allocator_stats(static_cast<int>(dev));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("allocatedBytes", static_cast<double>(s.allocated_bytes));
  o.Set("reservedBytes", static_cast<double>(s.reserved_bytes));
  o.Set("allocations", static_cast<double>(s.allocations));
  o.Set("cacheHits", static_cast<double>(s.cache_hits));
  return o;
}

Napi::Value CudaEmptyCache(const Napi::CallbackInfo& info) {
  const int64_t dev = device_arg(info);
  const Status st = dev < 0 ? Status(StatusCode::ValueError, "kiln: emptyCache(device): bad device index")
                            : cuda::empty_cache(static_cast<int>(dev));
  if (!st.ok()) throw_status(info.Env(), st);
  return info.Env().Undefined();
}

Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  const int64_t dev = device_arg(info);
  const Status st = dev < 0 ? Status(StatusCode::ValueError, "kiln: synchronize(device): bad device index")
                            : cuda::synchronize(static_cast<int>(dev));
  if (!st.ok()) throw_status(info.Env(), st);
  return info.Env().Undefined();
}

Napi::Value HostStats(const Napi::CallbackInfo& info) {
  const cpu::HostAllocatorStats s = cpu::host_allocator_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("cachedBytes", static_cast<double>(s.cached_bytes));
  o.Set("largeAllocations", static_cast<double>(s.large_allocations));
  o.Set("cacheHits", static_cast<double>(s.cache_hits));
  return o;
}

Napi::Value HostEmptyCache(const Napi::CallbackInfo& info) {
  cpu::host_empty_cache();
  return info.Env().Undefined();
}

}  // namespace

void export_runtime(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("hostStats", Napi::Function::New(env, HostStats, "hostStats"));
  exports.Set("hostEmptyCache", Napi::Function::New(env, HostEmptyCache, "hostEmptyCache"));
  exports.Set("cudaStats", Napi::Function::New(env, CudaStats, "cudaStats"));
  exports.Set("cudaEmptyCache", Napi::Function::New(env, CudaEmptyCache, "cudaEmptyCache"));
  exports.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize, "cudaSynchronize"));
}

}  // namespace addon
}  // namespace kiln
