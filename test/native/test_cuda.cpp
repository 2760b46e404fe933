// Native tests for the CUDA backend (suite 'cuda'): the CUDA runtime (devices,
// allocator, copies, error paths) and every CUDA kernel against its CPU
// counterpart, which is the reference. Kernels run through run_kernel on both
// backends over identical copies of the same operands; the output storages
// (including the gaps a strided view skips) must then be equal byte for byte.
//
// Without a usable GPU (or when built without CUDA) every test skips with the
// reason kiln reports, and the suite exits 77 (skipped). This file uses only
// kiln's backend-neutral headers, so it compiles with or without CUDA.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "device_testing.h"
#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cuda.h"
#include "kiln/dtype.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/storage.h"
#include "kiln/view.h"

namespace {

using namespace dvt;
using kiln::DeviceKind;
using kiln::StatusCode;

const DType kAllDTypes[] = {DType::Float32,    DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2,
                            DType::Int8,       DType::UInt8,   DType::Int32,    DType::Bool};
const DType kFloatDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2};

// ---- float32 bit patterns for the cast sweep ------------------------------------------------------

std::vector<uint32_t> f32_sweep_patterns() {
  std::vector<uint32_t> p;
  std::mt19937_64 rng(0x5EED0F32u);
  // Mantissa bits rounded away by float16, bfloat16, E4M3, E5M2 (normal targets).
  const int kDrops[] = {13, 16, 20, 21};
  auto boundaries = [&](uint32_t sign_exp, int count) {
    for (int s : kDrops) {
      for (int k = 0; k < count; ++k) {
        const uint32_t hi = static_cast<uint32_t>(rng()) & 0x7FFFFFu & ~((1u << s) - 1u);
        const uint32_t half = 1u << (s - 1);
        for (int d = -1; d <= 1; ++d) p.push_back(sign_exp | ((hi + half + static_cast<uint32_t>(d)) & 0x7FFFFFu));
        p.push_back(sign_exp | hi);                                      // exactly representable
        p.push_back(sign_exp | ((hi + (1u << s) - 1u) & 0x7FFFFFu));     // just below the next one
      }
    }
  };
  for (uint32_t sign = 0; sign < 2; ++sign) {
    // Every exponent field in [107, 147] (|v| in [2^-20, 2^21)) with a mantissa stride.
    for (uint32_t e = 107; e <= 147; ++e) {
      const uint32_t se = (sign << 31) | (e << 23);
      for (uint32_t m = 0; m < (1u << 23); m += 977) p.push_back(se | m);
      p.push_back(se | 0x7FFFFFu);
      boundaries(se, 48);
    }
    // Every exponent field (zeros, subnormals, huge values, infinities, NaNs) more sparsely.
    for (uint32_t e = 0; e <= 255; ++e) {
      const uint32_t se = (sign << 31) | (e << 23);
      const uint32_t ms[] = {0u, 1u, 2u, 0x400000u, 0x400001u, 0x7FFFFFu, 0x7FFFFEu, 0x3FFFFFu};
      for (uint32_t m : ms) p.push_back(se | m);
      boundaries(se, 4);
    }
  }
  // Around the integer ranges (float -> int8 / uint8 / int32 saturation and truncation).
  const float kInts[] = {0.5f,   0.99999994f, 1.0f,   1.5f,   126.5f, 127.0f,     127.99999f,  128.0f,        128.5f,
                         129.0f, 254.5f,      255.0f, 255.5f, 256.0f, 256.5f,     16777216.0f, 16777218.0f,   2147483520.0f,
                         2147483648.0f, 4294967296.0f, 1e10f, 65504.0f, 65519.99f, 65520.0f, 448.0f, 464.0f, 57344.0f, 61440.0f};
  for (float f : kInts) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    p.push_back(u);
    p.push_back(u | 0x80000000u);
    p.push_back(u + 1);
    p.push_back(u - 1);
    p.push_back((u + 1) | 0x80000000u);
    p.push_back((u - 1) | 0x80000000u);
  }
  return p;
}

std::vector<uint8_t> image_of_u32(const std::vector<uint32_t>& v) {
  std::vector<uint8_t> img(v.size() * 4);
  if (!v.empty()) std::memcpy(img.data(), v.data(), img.size());
  return img;
}

// Every code of a 1- or 2-byte type.
std::vector<uint8_t> all_codes(DType t) {
  const size_t es = kiln::dtype_size(t);
  const size_t n = size_t(1) << (8 * es);
  std::vector<uint8_t> img(n * es);
  for (size_t i = 0; i < n; ++i) put(&img, i, es, i);
  return img;
}

// =====================================================================================================
// runtime
// =====================================================================================================

KTEST(cuda, devices_and_versions) {
  require_cuda();
  KCHECK(kiln::cuda::compiled());
  const std::vector<kiln::cuda::DeviceInfo> devs = kiln::cuda::devices();
  KCHECK(!devs.empty()) << "available, but devices() is empty";
  for (size_t i = 0; i < devs.size(); ++i) {
    const auto& d = devs[i];
    KCHECK_EQ(d.index, static_cast<int>(i));
    KCHECK(!d.name.empty()) << "device " << i;
    KCHECK(d.major >= 1 && d.minor >= 0) << d.name << " " << d.major << "." << d.minor;
    KCHECK(d.memory_bytes > 0) << d.name;
    KCHECK(d.multiprocessors > 0) << d.name;
    std::printf("    cuda:%zu %s, compute capability %d.%d, %.1f GiB, %d SMs\n", i, d.name.c_str(), d.major, d.minor,
                static_cast<double>(d.memory_bytes) / (1 << 30), d.multiprocessors);
  }
  const int rt = kiln::cuda::runtime_version(), drv = kiln::cuda::driver_version();
  std::printf("    runtime %d, driver %d\n", rt, drv);
  KCHECK(rt >= 12000) << rt;
  KCHECK(drv / 1000 >= rt / 1000) << "driver " << drv << " runtime " << rt;
  KCHECK(kiln::cuda::check_device(0).ok()) << kiln::cuda::check_device(0).message();
  KCHECK(kiln::cuda::synchronize(0).ok());
}

KTEST(cuda, error_paths) {
  require_cuda();
  const int n = static_cast<int>(kiln::cuda::devices().size());
  for (int bad : {-1, n, n + 7, 1 << 20}) {
    const Status st = kiln::cuda::check_device(bad);
    KCHECK(st.code() == StatusCode::DeviceError) << bad << ": " << code_name(st) << " " << st.message();
    KCHECK(st.message().find(std::to_string(bad)) != std::string::npos) << st.message();
    KCHECK(st.message().find(std::to_string(n) + " CUDA device") != std::string::npos) << st.message();

    void* p = reinterpret_cast<void*>(0x1);
    const Status sa = kiln::storage_alloc(Device{DeviceKind::CUDA, bad}, 64, &p);
    KCHECK(sa.code() == StatusCode::DeviceError) << bad << ": " << sa.message();
    KCHECK(p == nullptr);
    KCHECK(kiln::cuda::synchronize(bad).code() == StatusCode::DeviceError);
    KCHECK(kiln::cuda::empty_cache(bad).code() == StatusCode::DeviceError);
    char host[4] = {};
    KCHECK(kiln::storage_copy(Device{DeviceKind::CUDA, bad}, reinterpret_cast<void*>(0x1000), kCpu, host, 4).code() ==
           StatusCode::DeviceError);
    KCHECK(kiln::cuda::allocator_stats(bad).allocations == 0);
    kiln::cuda::free(bad, reinterpret_cast<void*>(0x1000), 64);  // ignored, no crash

    // A kernel on a device that does not exist (the pointer is never touched).
    View v;
    v.base = reinterpret_cast<void*>(0x1000);
    v.storage_bytes = 1 << 20;
    v.device = Device{DeviceKind::CUDA, bad};
    v.ndim = 1;
    v.shape[0] = 4;
    v.strides[0] = 1;
    const Status sk = kt::run_fill(v, 0);
    KCHECK(sk.code() == StatusCode::DeviceError) << code_name(sk) << " " << sk.message();
  }

  // Operands on different devices.
  {
    Buffer hb(kCpu, 64), db(kGpu, 64);
    KCHECK(hb.status().ok() && db.status().ok()) << db.status().message();
    const Layout l{DType::Float32, {16}, {}, 0};
    const View in = make_view(kCpu, hb, l), out = make_view(kGpu, db, l);
    const Status st = kt::run_cast(in, out);
    KCHECK(st.code() == StatusCode::DeviceError) << code_name(st) << " " << st.message();
  }

  // No int32 division, on CUDA as on the CPU.
  {
    Buffer db(kGpu, 64);
    const Layout l{DType::Int32, {16}, {}, 0};
    const View v = make_view(kGpu, db, l);
    const Status st = kt::run_binary("div", v, v, v);
    KCHECK(st.code() == StatusCode::NoKernel) << code_name(st) << " " << st.message();
    KCHECK(st.message().find("cuda") != std::string::npos) << st.message();
  }

  // rand needs a contiguous output; cast needs equal shapes; views stay inside their storage.
  {
    Buffer db(kGpu, 4096);
    const View strided = make_view(kGpu, db, Layout{DType::Float32, {4, 4}, {1, 4}, 0});
    Status st = kt::run_random("rand", strided, 1, 0);
    KCHECK(st.code() == StatusCode::ShapeError) << code_name(st) << " " << st.message();

    const View a = make_view(kGpu, db, Layout{DType::Float32, {4, 4}, {}, 0});
    const View b = make_view(kGpu, db, Layout{DType::Float16, {4, 5}, {}, 0});
    st = kt::run_cast(a, b);
    KCHECK(st.code() == StatusCode::ShapeError) << code_name(st) << " " << st.message();

    const View big = make_view(kGpu, db, Layout{DType::Float32, {1025}, {}, 0});
    st = kt::run_fill(big, 0);
    KCHECK(st.code() == StatusCode::ShapeError) << code_name(st) << " " << st.message();
  }

  // Out of memory is a status, and the device keeps working afterwards.
  {
    const kiln::cuda::AllocatorStats before = kiln::cuda::allocator_stats(0);
    for (size_t huge : {size_t(1) << 50, std::numeric_limits<size_t>::max()}) {
      void* p = reinterpret_cast<void*>(0x1);
      const Status st = kiln::cuda::malloc(0, huge, &p);
      KCHECK(st.code() == StatusCode::OutOfMemory) << huge << ": " << code_name(st) << " " << st.message();
      KCHECK(st.message().find("cuda:0") != std::string::npos) << st.message();
      KCHECK(st.message().find(std::to_string(huge)) != std::string::npos) << st.message();
      KCHECK(p == nullptr);
    }
    const kiln::cuda::AllocatorStats after = kiln::cuda::allocator_stats(0);
    KCHECK_EQ(after.allocated_bytes, before.allocated_bytes);
    KCHECK_EQ(after.allocations, before.allocations);

    Buffer db(kGpu, 16);
    KCHECK(db.status().ok()) << db.status().message();
    const View v = make_view(kGpu, db, Layout{DType::Int32, {4}, {}, 0});
    const Status st = kt::run_fill(v, 0x12345678);
    KCHECK(st.ok()) << "a kernel after an out-of-memory error: " << st.message();
    int32_t host[4] = {};
    const Status rs = kiln::storage_copy(kCpu, host, kGpu, db.ptr(), 16);
    KCHECK(rs.ok()) << rs.message();
    for (int i = 0; i < 4; ++i) KCHECK_EQ(host[i], 0x12345678);
    KCHECK(kiln::cuda::synchronize(0).ok());
  }
}

KTEST(cuda, copy_roundtrip) {
  require_cuda();
  std::mt19937_64 rng(7);
  for (size_t n : {size_t(0), size_t(1), size_t(3), size_t(4097), (size_t(1) << 20) + 5}) {
    std::vector<uint8_t> src(n), back(n, 0);
    for (auto& b : src) b = static_cast<uint8_t>(rng());
    Buffer g1(kGpu, n), g2(kGpu, n);
    KCHECK(g1.status().ok() && g2.status().ok()) << n << ": " << g1.status().message() << g2.status().message();
    if (n == 0) KCHECK(g1.ptr() == nullptr) << "a zero-byte storage holds no memory";
    Status st = kiln::storage_copy(kGpu, g1.ptr(), kCpu, src.data(), n);
    KCHECK(st.ok()) << "h2d " << n << ": " << st.message();
    st = kiln::storage_copy(kGpu, g2.ptr(), kGpu, g1.ptr(), n);
    KCHECK(st.ok()) << "d2d " << n << ": " << st.message();
    st = kiln::storage_copy(kCpu, back.data(), kGpu, g2.ptr(), n);
    KCHECK(st.ok()) << "d2h " << n << ": " << st.message();
    KCHECK(back == src) << n << " bytes: the round trip changed the data";

    if (n >= 3) {
      // Unaligned offsets on both sides, and a copy within one device buffer.
      const size_t m = n - 2;
      st = kiln::storage_copy(kGpu, g1.bytes_ptr() + 1, kCpu, src.data() + 2, m);
      KCHECK(st.ok()) << st.message();
      st = kiln::storage_copy(kGpu, g2.bytes_ptr() + 2, kGpu, g1.bytes_ptr() + 1, m);
      KCHECK(st.ok()) << st.message();
      std::vector<uint8_t> part(m, 0);
      st = kiln::storage_copy(kCpu, part.data(), kGpu, g2.bytes_ptr() + 2, m);
      KCHECK(st.ok()) << st.message();
      KCHECK(std::equal(part.begin(), part.end(), src.begin() + 2)) << n << ": offset copies changed the data";
      // g2[0..1] still hold the first round trip's bytes.
      uint8_t head[2] = {0, 0};
      st = kiln::storage_copy(kCpu, head, kGpu, g2.ptr(), 2);
      KCHECK(st.ok() && head[0] == src[0] && head[1] == src[1]) << n << ": bytes outside the copied range changed";
    }
  }
}

KTEST(cuda, allocator_reuse) {
  require_cuda();
  using kiln::cuda::AllocatorStats;
  KCHECK(kiln::cuda::empty_cache(0).ok());
  const AllocatorStats s0 = kiln::cuda::allocator_stats(0);
  KCHECK_EQ(s0.reserved_bytes, s0.allocated_bytes);  // nothing cached

  for (size_t size : {(size_t(3) << 20) + 7, size_t(1000), size_t(1)}) {
    const AllocatorStats b = kiln::cuda::allocator_stats(0);  // nothing cached here
    void* p = nullptr;
    Status st = kiln::cuda::malloc(0, size, &p);
    KCHECK(st.ok() && p != nullptr) << size << ": " << st.message();
    const AllocatorStats s1 = kiln::cuda::allocator_stats(0);
    KCHECK_EQ(s1.allocations, b.allocations + 1);
    KCHECK_EQ(s1.cache_hits, b.cache_hits);
    KCHECK(s1.allocated_bytes >= b.allocated_bytes + size) << size;
    KCHECK(s1.reserved_bytes >= b.reserved_bytes + size) << size;
    // The block is usable over the whole requested size.
    std::vector<uint8_t> pat(size, 0x3C), back(size, 0);
    KCHECK(kiln::storage_copy(kGpu, p, kCpu, pat.data(), size).ok());
    KCHECK(kiln::storage_copy(kCpu, back.data(), kGpu, p, size).ok());
    KCHECK(back == pat) << size;

    kiln::cuda::free(0, p, size);
    const AllocatorStats s2 = kiln::cuda::allocator_stats(0);
    KCHECK_EQ(s2.allocated_bytes, b.allocated_bytes);
    KCHECK_EQ(s2.reserved_bytes, s1.reserved_bytes);

    void* q = nullptr;
    st = kiln::cuda::malloc(0, size, &q);
    KCHECK(st.ok()) << st.message();
    const AllocatorStats s3 = kiln::cuda::allocator_stats(0);
    KCHECK_EQ(s3.cache_hits, s2.cache_hits + 1);
    KCHECK_EQ(s3.reserved_bytes, s2.reserved_bytes);  // no new cudaMalloc
    KCHECK(q == p) << size << ": the cached block was not reused";

    // A second live block of the same size is a different block.
    void* r = nullptr;
    st = kiln::cuda::malloc(0, size, &r);
    KCHECK(st.ok() && r != nullptr && r != q) << size << ": " << st.message();
    kiln::cuda::free(0, r, size);
    kiln::cuda::free(0, q, size);
    kiln::cuda::free(0, q, size);  // a second free of the same pointer is ignored
    const AllocatorStats s4 = kiln::cuda::allocator_stats(0);
    KCHECK_EQ(s4.allocated_bytes, b.allocated_bytes);

    KCHECK(kiln::cuda::empty_cache(0).ok());
    const AllocatorStats s5 = kiln::cuda::allocator_stats(0);
    KCHECK(s5.reserved_bytes < s4.reserved_bytes) << s5.reserved_bytes << " vs " << s4.reserved_bytes;
    KCHECK_EQ(s5.reserved_bytes, s5.allocated_bytes);
  }

  // A cached block much larger than the request is not handed out; one within 2x is.
  {
    void* big = nullptr;
    KCHECK(kiln::cuda::malloc(0, size_t(8) << 20, &big).ok());
    kiln::cuda::free(0, big, size_t(8) << 20);
    const AllocatorStats a = kiln::cuda::allocator_stats(0);
    void* small = nullptr;
    KCHECK(kiln::cuda::malloc(0, size_t(2) << 20, &small).ok());
    const AllocatorStats b = kiln::cuda::allocator_stats(0);
    KCHECK_EQ(b.cache_hits, a.cache_hits);
    KCHECK(small != big);
    void* mid = nullptr;
    KCHECK(kiln::cuda::malloc(0, size_t(5) << 20, &mid).ok());
    const AllocatorStats c = kiln::cuda::allocator_stats(0);
    KCHECK_EQ(c.cache_hits, b.cache_hits + 1);
    KCHECK(mid == big);
    kiln::cuda::free(0, small, size_t(2) << 20);
    kiln::cuda::free(0, mid, size_t(5) << 20);
    KCHECK(kiln::cuda::empty_cache(0).ok());
    const AllocatorStats d = kiln::cuda::allocator_stats(0);
    KCHECK_EQ(d.reserved_bytes, s0.reserved_bytes);
    KCHECK_EQ(d.allocated_bytes, s0.allocated_bytes);
  }
}

// =====================================================================================================
// kernels against the CPU
// =====================================================================================================

KTEST(cuda, fill) {
  require_cuda();
  std::mt19937_64 rng(11);
  for (DType t : kAllDTypes) {
    const std::vector<Layout> layouts = {
        Layout{t, {100003}, {}, 0},
        Layout{t, {5, 7}, {16, 2}, 3},          // strided, with an offset: the gaps must stay untouched
        Layout{t, {3, 1, 4, 2}, {1, 9, 3, 12}, 1},  // permuted
        Layout{t, {4, 3}, {0, 1}, 0},           // a broadcast (stride 0) output
        Layout{t, {}, {}, 5},                   // a scalar
        Layout{t, {3, 0, 2}, {}, 0},            // empty: no launch
    };
    for (const Layout& l : layouts) {
      const int64_t bits = static_cast<int64_t>(rng());
      Operand out = operand(l, rng);  // random background, so untouched gaps are checked too
      compare(std::string("fill ") + layout_str(l) + " bits " + hex(static_cast<uint64_t>(bits)), "fill", t, {}, {out},
                 {bits});
    }
  }
}

KTEST(cuda, rand_randn) {
  require_cuda();
  const uint64_t kSeeds[][2] = {{0, 0}, {42, 3}, {0x9E3779B97F4A7C15ull, uint64_t(1) << 40}, {~uint64_t(0), 12345}};
  const int64_t kSizes[] = {1, 3, 4, 5, 17, 1023, 4097};
  for (const char* op : {"rand", "randn"}) {
    for (DType t : kFloatDTypes) {
      for (const auto& so : kSeeds) {
        const std::vector<int64_t> ints = {static_cast<int64_t>(so[0]), static_cast<int64_t>(so[1])};
        for (int64_t n : kSizes) {
          compare(std::string(op) + " " + kiln::dtype_name(t) + " n=" + std::to_string(n) + " seed " + hex(so[0]) +
                         " offset " + std::to_string(so[1]),
                     op, t, {}, {output(Layout{t, {n}, {}, 0})}, ints);
        }
        // At an element offset inside a larger storage, and as a 3-d contiguous view.
        compare(std::string(op) + " " + kiln::dtype_name(t) + " offset view", op, t, {},
                   {output(Layout{t, {37}, {}, 11})}, ints);
        compare(std::string(op) + " " + kiln::dtype_name(t) + " 3-d", op, t, {}, {output(Layout{t, {3, 5, 7}, {}, 0})},
                   ints);
      }
    }
    // A larger run (many blocks, grid-stride), and an empty one.
    compare(std::string(op) + " float32 n=2^18+3", op, DType::Float32, {},
               {output(Layout{DType::Float32, {(1 << 18) + 3}, {}, 0})}, {1234567, 99});
    compare(std::string(op) + " bfloat16 n=2^18+3", op, DType::BFloat16, {},
               {output(Layout{DType::BFloat16, {(1 << 18) + 3}, {}, 0})}, {7654321, 0});
    compare(std::string(op) + " empty", op, DType::Float32, {}, {output(Layout{DType::Float32, {0}, {}, 0})}, {1, 2});
  }
}

KTEST(cuda, cast_sweep) {
  require_cuda();
  // Contiguous sources covering the value space of each source dtype.
  struct Source {
    DType dtype;
    std::vector<uint8_t> image;
  };
  std::vector<Source> sources;
  const std::vector<uint32_t> f32 = f32_sweep_patterns();
  sources.push_back({DType::Float32, image_of_u32(f32)});
  {
    std::vector<uint32_t> i32 = f32;  // the same bit patterns as integers: every magnitude
    for (int v = -1000; v <= 1000; ++v) i32.push_back(static_cast<uint32_t>(v));
    const int64_t edges[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 16777216, 16777217, 16777219,
                             -16777217, 33554435, 2147483520, 2147483584, 65504, 65520, 65519, 448, 464, 57344, 61440};
    for (int64_t v : edges) i32.push_back(static_cast<uint32_t>(v));
    sources.push_back({DType::Int32, image_of_u32(i32)});
  }
  for (DType t : {DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2, DType::Int8, DType::UInt8,
                  DType::Bool}) {
    sources.push_back({t, all_codes(t)});
  }
  std::printf("    %zu float32 patterns\n", f32.size());

  for (const Source& s : sources) {
    const int64_t n = static_cast<int64_t>(s.image.size() / kiln::dtype_size(s.dtype));
    for (DType d : kAllDTypes) {
      compare(std::string("cast ") + kiln::dtype_name(s.dtype) + " -> " + kiln::dtype_name(d) + " (" +
                     std::to_string(n) + " values)",
                 "cast", s.dtype, {Operand{Layout{s.dtype, {n}, {}, 0}, s.image}}, {output(Layout{d, {n}, {}, 0})}, {});
      if (kt::failures_in_test() > 20) return;
    }
  }
}

KTEST(cuda, cast_strided) {
  require_cuda();
  std::mt19937_64 rng(13);
  struct Case {
    const char* name;
    Layout src, dst;  // dtypes filled in per pair
  };
  const std::vector<Case> cases = {
      {"transposed source", Layout{DType::Float32, {4, 5, 6}, {1, 4, 20}, 0}, Layout{DType::Float32, {4, 5, 6}, {}, 0}},
      {"source offset", Layout{DType::Float32, {4, 5, 6}, {30, 6, 1}, 17}, Layout{DType::Float32, {4, 5, 6}, {}, 0}},
      {"strided destination", Layout{DType::Float32, {4, 5, 6}, {}, 0}, Layout{DType::Float32, {4, 5, 6}, {70, 13, 2}, 3}},
      {"both strided", Layout{DType::Float32, {6, 5, 4}, {1, 12, 60}, 2}, Layout{DType::Float32, {6, 5, 4}, {25, 1, 5}, 1}},
      {"broadcast source", Layout{DType::Float32, {4, 5, 6}, {0, 6, 1}, 0}, Layout{DType::Float32, {4, 5, 6}, {}, 0}},
      {"size-1 dims", Layout{DType::Float32, {1, 7, 1, 3}, {5, 3, 9, 1}, 4}, Layout{DType::Float32, {1, 7, 1, 3}, {100, 4, 1, 1}, 0}},
      {"scalar", Layout{DType::Float32, {}, {}, 3}, Layout{DType::Float32, {}, {}, 2}},
      {"empty", Layout{DType::Float32, {3, 0, 2}, {}, 0}, Layout{DType::Float32, {3, 0, 2}, {}, 0}},
  };
  for (DType st : kAllDTypes) {
    for (DType dt : kAllDTypes) {
      for (const Case& c : cases) {
        Layout src = c.src, dst = c.dst;
        src.dtype = st;
        dst.dtype = dt;
        compare(std::string("cast ") + c.name + ": " + layout_str(src) + " -> " + layout_str(dst), "cast", st,
                   {operand(src, rng)}, {operand(dst, rng)}, {});
      }
      if (kt::failures_in_test() > 20) return;
    }
  }
  // Large non-contiguous casts (many blocks): a transpose, and a strided destination.
  compare("cast float32 [1000,1031] transposed -> bfloat16", "cast", DType::Float32,
             {operand(Layout{DType::Float32, {1000, 1031}, {1, 1000}, 0}, rng)},
             {output(Layout{DType::BFloat16, {1000, 1031}, {}, 0})}, {});
  compare("cast float16 [999,1001] -> float32 every other element", "cast", DType::Float16,
             {operand(Layout{DType::Float16, {999, 1001}, {}, 0}, rng)},
             {operand(Layout{DType::Float32, {999, 1001}, {2002, 2}, 1}, rng)}, {});
}

KTEST(cuda, binary) {
  require_cuda();
  std::mt19937_64 rng(17);
  struct Case {
    const char* name;
    Layout a, b, out;
  };
  const DType f = DType::Float32;  // replaced per dtype
  const std::vector<Case> cases = {
      {"same shape", Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}},
      {"broadcast [4,1,33] x [5,1]", Layout{f, {4, 1, 33}, {}, 0}, Layout{f, {5, 1}, {}, 0}, Layout{f, {4, 5, 33}, {}, 0}},
      {"transposed x scalar", Layout{f, {4, 33}, {1, 4}, 0}, Layout{f, {}, {}, 2}, Layout{f, {4, 33}, {}, 0}},
      {"scalar x transposed", Layout{f, {}, {}, 0}, Layout{f, {4, 33}, {1, 4}, 1}, Layout{f, {4, 33}, {}, 0}},
      {"strided output", Layout{f, {6, 7}, {}, 0}, Layout{f, {7}, {3}, 2}, Layout{f, {6, 7}, {16, 2}, 1}},
      {"5-d broadcast", Layout{f, {2, 1, 3, 1, 5}, {}, 0}, Layout{f, {1, 4, 1, 6, 1}, {}, 0}, Layout{f, {2, 4, 3, 6, 5}, {}, 0}},
      {"both strided, offset", Layout{f, {7, 9}, {20, 2}, 5}, Layout{f, {7, 9}, {1, 7}, 3}, Layout{f, {7, 9}, {1, 8}, 2}},
      {"large broadcast row", Layout{f, {513, 1000}, {}, 0}, Layout{f, {1000}, {}, 0}, Layout{f, {513, 1000}, {}, 0}},
      {"empty", Layout{f, {3, 1}, {}, 0}, Layout{f, {1, 0}, {}, 0}, Layout{f, {3, 0}, {}, 0}},
  };
  const char* kOps[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
  for (DType t : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32}) {
    for (const char* op : kOps) {
      if (t == DType::Int32 && std::strcmp(op, "div") == 0) continue;
      // NaNs made by arithmetic have a backend-specific sign/payload; maximum
      // and minimum only select an input, so they must match exactly.
      const bool nan_equal = std::strncmp(op, "max", 3) != 0 && std::strncmp(op, "min", 3) != 0;
      for (const Case& c : cases) {
        Layout a = c.a, b = c.b, out = c.out;
        a.dtype = b.dtype = out.dtype = t;
        compare(std::string(op) + " " + kiln::dtype_name(t) + " " + c.name, op, t, {operand(a, rng), operand(b, rng)},
                   {operand(out, rng)}, {}, {}, nan_equal);
      }
      if (kt::failures_in_test() > 20) return;
    }
  }
}

}  // namespace
