// Suite 'registry': kiln::run_kernel's lookup and the validation every kernel
// relies on (views inside their storage, one device), and check_view_bounds.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cuda.h"
#include "kiln/registry.h"
#include "kiln/storage.h"
#include "kiln/view.h"

namespace {

using namespace kiln;
using kt::run_binary;
using kt::run_cast;
using kt::run_fill;
using kt::run_random;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

View view_of(void* base, size_t bytes, DType dt, std::vector<int64_t> shape, std::vector<int64_t> strides = {},
             int64_t offset = 0) {
  View v;
  v.base = base;
  v.storage_bytes = bytes;
  v.dtype = dt;
  v.ndim = static_cast<int>(shape.size());
  uint64_t stride = 1;  // unsigned: absurd shapes may wrap, their strides are never used when given
  for (int i = v.ndim - 1; i >= 0; --i) {
    v.shape[i] = shape[static_cast<size_t>(i)];
    v.strides[i] = strides.empty() ? static_cast<int64_t>(stride) : strides[static_cast<size_t>(i)];
    stride *= static_cast<uint64_t>(shape[static_cast<size_t>(i)]);
  }
  v.offset = offset;
  return v;
}

// A storage of one page between two inaccessible pages: a kernel that touches
// anything outside it crashes the test instead of passing silently.
struct GuardedPage {
  char* map = nullptr;
  size_t page = 0;
  char* data = nullptr;
  GuardedPage() {
    page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, 3 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    KCHECK(m != MAP_FAILED);
    map = static_cast<char*>(m);
    data = map + page;
    KCHECK(mprotect(data, page, PROT_READ | PROT_WRITE) == 0);
    std::memset(data, 0x5A, page);
  }
  ~GuardedPage() { munmap(map, 3 * page); }
  bool untouched() const {
    for (size_t i = 0; i < page; ++i) {
      if (static_cast<unsigned char>(data[i]) != 0x5A) return false;
    }
    return true;
  }
};

KTEST(registry, missing_kernel_message) {
  float buf[4] = {0, 0, 0, 0};
  const View v = view_of(buf, sizeof(buf), DType::Float32, {4});
  KernelArgs a;
  a.op = "no_such_op";
  a.out = &v;
  a.n_out = 1;
  Status s = run_kernel(DType::Float32, a);
  KCHECK(s.code() == StatusCode::NoKernel) << status_code_name(s.code());
  KCHECK_EQ(s.message(), std::string("kiln: op 'no_such_op' has no kernel for dtype float32 on device cpu"));
  KCHECK_EQ(std::string(status_code_name(s.code())), std::string("NoKernel"));
  // A known op without that dtype.
  int32_t ib[4] = {1, 2, 3, 4};
  const View iv = view_of(ib, sizeof(ib), DType::Int32, {4});
  s = run_binary("div", iv, iv, iv);
  KCHECK(s.code() == StatusCode::NoKernel);
  KCHECK_EQ(s.message(), std::string("kiln: op 'div' has no kernel for dtype int32 on device cpu"));
  uint8_t bb[4] = {0, 1, 0, 1};
  const View bv = view_of(bb, sizeof(bb), DType::Bool, {4});
  s = run_binary("add", bv, bv, bv);
  KCHECK_EQ(s.message(), std::string("kiln: op 'add' has no kernel for dtype bool on device cpu"));
  const View ev = view_of(bb, sizeof(bb), DType::Float8E4M3, {4});
  s = run_binary("mul", ev, ev, ev);
  KCHECK_EQ(s.message(), std::string("kiln: op 'mul' has no kernel for dtype float8_e4m3 on device cpu"));
  KCHECK(std::all_of(ib, ib + 4, [](int32_t x) { return x >= 1 && x <= 4; })) << "a failed lookup wrote data";
}

KTEST(registry, registered_kernels_listing) {
  const std::vector<std::string> names = registered_kernels();
  KCHECK(std::is_sorted(names.begin(), names.end()));
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  for (const char* n : {"add/cpu/float32", "add/cpu/int32", "div/cpu/bfloat16", "cast/cpu/bool", "fill/cpu/uint8",
                        "rand/cpu/float16", "randn/cpu/float8_e5m2", "minimum/cpu/float16"}) {
    KCHECK(has(n)) << n;
  }
  KCHECK(!has("div/cpu/int32"));
  KCHECK(!has("rand/cpu/int32"));
}

KTEST(registry, argument_count_and_no_operands) {
  float buf[4] = {};
  const View v = view_of(buf, sizeof(buf), DType::Float32, {4});
  KernelArgs a;
  a.op = "fill";
  a.out = &v;
  a.n_out = 1;  // but no ints
  Status s = run_kernel(DType::Float32, a);
  KCHECK(s.code() == StatusCode::Internal) << s.message();
  KCHECK(contains(s.message(), "fill") && contains(s.message(), "expected")) << s.message();
  KernelArgs none;
  none.op = "add";
  s = run_kernel(DType::Float32, none);
  KCHECK(s.code() == StatusCode::Internal) << s.message();
}

KTEST(registry, out_of_bounds_views_are_rejected_before_any_access) {
  GuardedPage g;
  const size_t bytes = g.page;
  const int64_t n = static_cast<int64_t>(bytes / 4);  // float32 elements that fit
  struct Case {
    const char* what;
    std::vector<int64_t> shape, strides;
    int64_t offset;
  } bad[] = {
      {"one element too many", {n + 1}, {}, 0},
      {"offset pushes the end out", {n}, {}, 1},
      {"offset alone", {}, {}, n},
      {"strides too large", {2, n / 2}, {n / 2 + 1, 1}, 0},
      {"stride on a later dim", {n / 4, 5}, {4, 1}, 0},
      {"negative stride", {4}, {-1}, 8},
      {"negative stride on an empty dim", {0, 4}, {-1, 1}, 0},
      {"negative offset", {4}, {}, -1},
      {"negative dimension", {-4}, {1}, 0},
      {"extent overflows int64", {3}, {int64_t(1) << 62}, 0},
      {"huge shape", {int64_t(1) << 62, 2}, {2, 1}, 0},
      {"offset near 2^62 (size wraps in size_t)", {}, {}, int64_t(1) << 62},
      {"offset INT64_MAX", {}, {}, std::numeric_limits<int64_t>::max()},
      {"offset 2^62 with a dim", {1}, {1}, (int64_t(1) << 62) - 1},
  };
  for (const Case& c : bad) {
    const View v = view_of(g.data, bytes, DType::Float32, c.shape, c.strides, c.offset);
    const Status direct = check_view_bounds(v, "test", "output");
    KCHECK(direct.code() == StatusCode::ShapeError) << c.what << ": check_view_bounds gave "
                                                    << status_code_name(direct.code()) << " " << direct.message();
    KCHECK(contains(direct.message(), "kiln: test: output ")) << direct.message();
    // Through run_kernel: fill (output) and cast / add (input and output).
    Status s = run_fill(v, 0x3F800000);
    KCHECK(s.code() == StatusCode::ShapeError) << c.what << ": fill gave " << status_code_name(s.code());
    KCHECK(contains(s.message(), "fill") && contains(s.message(), "output")) << s.message();
    KernelArgs a;
    a.op = "cast";
    a.in = &v;
    a.n_in = 1;
    a.out = &v;
    a.n_out = 1;
    s = run_kernel(DType::Float32, a);
    KCHECK(s.code() == StatusCode::ShapeError) << c.what << ": cast gave " << status_code_name(s.code());
    KCHECK(contains(s.message(), "input")) << s.message();
    s = run_binary("add", v, v, v);
    KCHECK(s.code() == StatusCode::ShapeError) << c.what << ": add gave " << status_code_name(s.code());
  }
  KCHECK(g.untouched()) << "a rejected kernel wrote into the storage";
  // The same storage, in bounds: the kernels run (and stay inside the page).
  const View whole = view_of(g.data, bytes, DType::Float32, {n});
  KCHECK(run_fill(whole, 0x3F800000).ok());
  const View tail = view_of(g.data, bytes, DType::Float32, {2, 3}, {n / 2 - 2, 1}, n / 2 - 1);  // last element at n-1
  KCHECK(check_view_bounds(tail, "test", "input").ok()) << check_view_bounds(tail, "test", "input").message();
  KCHECK(run_fill(tail, 0x40000000).ok());
  float last;
  std::memcpy(&last, g.data + bytes - 4, 4);
  KCHECK_EQ(last, 2.0f);
}

KTEST(registry, check_view_bounds_edge_cases) {
  float buf[8] = {};
  auto ok = [](const View& v) { return check_view_bounds(v, "t", "input").ok(); };
  // Empty tensors need no storage at all.
  KCHECK(ok(view_of(nullptr, 0, DType::Float32, {0})));
  KCHECK(ok(view_of(nullptr, 0, DType::Float32, {3, 0, 2})));
  KCHECK(ok(view_of(nullptr, 0, DType::Float32, {0, 1 << 20}, {1 << 20, 1}, 100)));
  // 0-d tensors hold one element.
  KCHECK(ok(view_of(buf, 4, DType::Float32, {})));
  KCHECK(ok(view_of(buf, 32, DType::Float32, {}, {}, 7)));
  KCHECK(!ok(view_of(buf, 32, DType::Float32, {}, {}, 8)));
  KCHECK(!ok(view_of(buf, 3, DType::Float32, {})));
  KCHECK(!ok(view_of(nullptr, 0, DType::Float32, {})));  // one element, no storage
  KCHECK(!ok(view_of(nullptr, 64, DType::Float32, {4})));  // non-empty view with a null base
  // Exact fit and one byte short, per dtype size.
  for (DType dt : {DType::Float32, DType::BFloat16, DType::Float8E5M2, DType::Int32, DType::Bool}) {
    const size_t es = dtype_size(dt);
    KCHECK(ok(view_of(buf, 4 * es, dt, {4}))) << dtype_name(dt);
    KCHECK(!ok(view_of(buf, 4 * es - 1, dt, {4}))) << dtype_name(dt);
    KCHECK(ok(view_of(buf, 6 * es, dt, {2, 2}, {4, 1}))) << dtype_name(dt);
    KCHECK(!ok(view_of(buf, 6 * es - 1, dt, {2, 2}, {4, 1}))) << dtype_name(dt);
  }
  // Broadcast (stride 0) and size-1 dims with any stride address one element.
  KCHECK(ok(view_of(buf, 4, DType::Float32, {1000000}, {0})));
  KCHECK(ok(view_of(buf, 4, DType::Float32, {1, 1}, {1 << 30, 12345})));
  KCHECK(ok(view_of(buf, 8, DType::Float32, {1, 2, 1}, {99, 1, 99})));
  // Rank limits.
  View deep = view_of(buf, 4, DType::Float32, {});
  deep.ndim = kMaxDims + 1;
  KCHECK(!ok(deep));
  deep.ndim = -1;
  KCHECK(!ok(deep));
  View full = view_of(buf, 4, DType::Float32, std::vector<int64_t>(kMaxDims, 1));
  KCHECK(ok(full));
  // The message names op, role, the view and the byte counts.
  const Status s = check_view_bounds(view_of(buf, 16, DType::Float32, {5}), "myop", "input");
  KCHECK_EQ(s.message(), std::string("kiln: myop: input float32[5] on cpu: addresses 20 bytes but its storage holds 16"));
}

KTEST(registry, devices_must_match_and_cuda_must_be_available) {
  float buf[4] = {};
  View cpu = view_of(buf, sizeof(buf), DType::Float32, {4});
  View gpu = cpu;
  gpu.device = Device{DeviceKind::CUDA, 0};
  gpu.base = reinterpret_cast<void*>(uintptr_t(0x1000));  // never dereferenced
  // Mixed devices: DeviceError, whichever operand is where.
  Status s = run_binary("add", cpu, gpu, cpu);
  KCHECK(s.code() == StatusCode::DeviceError) << s.message();
  KCHECK(contains(s.message(), "different devices") && contains(s.message(), "cuda:0") && contains(s.message(), "cpu"))
      << s.message();
  s = run_binary("add", gpu, gpu, cpu);
  KCHECK(s.code() == StatusCode::DeviceError) << s.message();
  View gpu1 = gpu;
  gpu1.device.index = 1;
  s = run_binary("add", gpu, gpu1, gpu);
  KCHECK(s.code() == StatusCode::DeviceError) << s.message();
  KCHECK(contains(s.message(), "cuda:1")) << s.message();
  // All on CUDA while CUDA is unavailable: DeviceError carrying the reason.
  const cuda::Availability& av = cuda::availability();
  if (!av.available) {
    KCHECK(!av.reason.empty());
    s = run_binary("add", gpu, gpu, gpu);
    KCHECK(s.code() == StatusCode::DeviceError) << s.message();
    KCHECK(contains(s.message(), av.reason)) << s.message() << " / reason: " << av.reason;
    s = run_fill(gpu, 0);
    KCHECK(s.code() == StatusCode::DeviceError) << s.message();
    KCHECK(contains(s.message(), av.reason)) << s.message();
    void* p = reinterpret_cast<void*>(uintptr_t(1));
    s = storage_alloc(Device{DeviceKind::CUDA, 0}, 16, &p);
    KCHECK(s.code() == StatusCode::DeviceError) << s.message();
    KCHECK(p == nullptr);
  } else {
    // A GPU is here: an ordinal that does not exist is still a DeviceError.
    View far = gpu;
    far.device.index = 4096;
    s = run_fill(far, 0);
    KCHECK(s.code() == StatusCode::DeviceError) << s.message();
  }
}

KTEST(registry, host_storage_alloc) {
  for (size_t bytes : {size_t(1), size_t(63), size_t(64), size_t(65), size_t(1) << 20}) {
    void* p = nullptr;
    const Status s = storage_alloc(Device{}, bytes, &p);
    KCHECK(s.ok()) << s.message();
    KCHECK(p != nullptr && reinterpret_cast<uintptr_t>(p) % kHostAlignment == 0) << bytes;
    if (p) std::memset(p, 1, bytes);
    storage_free(Device{}, p, bytes);
  }
  void* p = reinterpret_cast<void*>(uintptr_t(1));
  KCHECK(storage_alloc(Device{}, 0, &p).ok());
  KCHECK(p == nullptr);
  storage_free(Device{}, nullptr, 0);
  const Status s = storage_alloc(Device{}, ~size_t(0) - 10, &p);
  KCHECK(s.code() == StatusCode::OutOfMemory) << s.message();
}

}  // namespace
