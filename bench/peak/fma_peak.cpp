// kiln_fma_peak: the machine's limits for bench/gemm.ts.
//  - float32 FMA throughput: each thread runs independent chains of vfmadd
//    (AVX-512 zmm and AVX2 ymm, chosen at run time by cpuid), enough of them to
//    hide the FMA latency; best of 3 repeats of all threads together, in GFLOP/s
//    (1 FMA = 2 flops per lane).
//  - memory read bandwidth: every thread sums its share of a 512 MiB buffer
//    (far beyond the caches) with 256-bit loads; best of 5, in GB/s. This is
//    the limit of a product that streams its B matrix once (a GEMV). On a
//    shared machine it moves with the other tenants' memory traffic.
// Built by CMake as an EXCLUDE_FROM_ALL target:
//   cmake --build <dir> --target kiln_fma_peak
// Usage: kiln_fma_peak [threads]   prints one JSON line.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr long kIters = 20'000'000;  // per thread per repeat
// Independent accumulators per thread: more than FMA latency x pipes (4 x 2
// on current cores), and few enough to stay in registers (32 zmm / 16 ymm).
constexpr int kChains512 = 24;
constexpr int kChains256 = 12;

__attribute__((target("avx512f"), noinline)) float chains_avx512(long iters) {
  __m512 acc[kChains512];
  for (int i = 0; i < kChains512; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains512; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kChains512; ++i) s = _mm512_add_ps(s, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  float t = 0;
  for (float v : out) t += v;
  return t;
}

__attribute__((target("avx2,fma"), noinline)) float chains_avx2(long iters) {
  __m256 acc[kChains256];
  for (int i = 0; i < kChains256; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains256; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  float out[8];
  __m256 s = acc[0];
  for (int i = 1; i < kChains256; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(out, s);
  float t = 0;
  for (float v : out) t += v;
  return t;
}

// GFLOP/s of `threads` threads running fn together (best of `repeats`).
double measure(int threads, int lanes, int chains, float (*fn)(long)) {
  double best = 0;
  std::atomic<float> sink{0};
  for (int rep = 0; rep < 3; ++rep) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    std::vector<double> secs(threads);
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load()) {
        }
        const auto t0 = std::chrono::steady_clock::now();
        const float r = fn(kIters);
        secs[t] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        sink.store(sink.load() + r);
      });
    }
    while (ready.load() < threads) {
    }
    go.store(true);
    for (auto& th : pool) th.join();
    const double slowest = *std::max_element(secs.begin(), secs.end());
    const double flops = 2.0 * lanes * chains * static_cast<double>(kIters) * threads;
    best = std::max(best, flops / slowest / 1e9);
  }
  return best;
}

// Read bandwidth (GB/s) of `threads` threads summing disjoint parts of buf.
// Sums n floats (n a multiple of 256) as 4 interleaved sequential streams
// (several streams keep more memory requests in flight than one).
__attribute__((target("avx2"), noinline)) float sum_avx2(const float* p, size_t n) {
  __m256 s[8];
  for (int i = 0; i < 8; ++i) s[i] = _mm256_setzero_ps();
  const size_t q = n / 4;
  const float* p0 = p;
  const float* p1 = p + q;
  const float* p2 = p + 2 * q;
  const float* p3 = p + 3 * q;
  for (size_t i = 0; i + 16 <= q; i += 16) {
    s[0] = _mm256_add_ps(s[0], _mm256_load_ps(p0 + i));
    s[1] = _mm256_add_ps(s[1], _mm256_load_ps(p0 + i + 8));
    s[2] = _mm256_add_ps(s[2], _mm256_load_ps(p1 + i));
    s[3] = _mm256_add_ps(s[3], _mm256_load_ps(p1 + i + 8));
    s[4] = _mm256_add_ps(s[4], _mm256_load_ps(p2 + i));
    s[5] = _mm256_add_ps(s[5], _mm256_load_ps(p2 + i + 8));
    s[6] = _mm256_add_ps(s[6], _mm256_load_ps(p3 + i));
    s[7] = _mm256_add_ps(s[7], _mm256_load_ps(p3 + i + 8));
  }
  for (int j = 1; j < 8; ++j) s[0] = _mm256_add_ps(s[0], s[j]);
  float out[8];
  _mm256_storeu_ps(out, s[0]);
  float t = 0;
  for (float v : out) t += v;
  return t;
}

double read_bandwidth(int threads) {
  const size_t n = size_t(128) << 20;  // floats: 512 MiB
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (buf == nullptr) return 0.0;
  std::vector<std::thread> init;
  for (int t = 0; t < threads; ++t) {
    init.emplace_back([=] {
      for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) buf[i] = 1.0f;
    });
  }
  for (auto& th : init) th.join();
  double best = 0;
  std::atomic<float> sink{0};
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t b = n * t / threads / 256 * 256, e = n * (t + 1) / threads / 256 * 256;
        sink.store(sink.load() + sum_avx2(buf + b, e - b));
      });
    }
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  std::free(buf);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1) threads = 1;
  __builtin_cpu_init();
  const bool has512 = __builtin_cpu_supports("avx512f");
  const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const double avx2 = has2 ? measure(threads, 8, kChains256, chains_avx2) : 0.0;
  const double avx512 = has512 ? measure(threads, 16, kChains512, chains_avx512) : 0.0;
  const double one512 = has512 ? measure(1, 16, kChains512, chains_avx512) : 0.0;
  const double one2 = has2 ? measure(1, 8, kChains256, chains_avx2) : 0.0;
  const double read_gbs = has2 ? read_bandwidth(threads) : 0.0;
  std::printf(
      "{\"threads\": %d, \"avx2_gflops\": %.1f, \"avx512_gflops\": %.1f, \"avx2_gflops_1thread\": %.1f, "
      "\"avx512_gflops_1thread\": %.1f, \"peak_gflops\": %.1f, \"read_gbs\": %.1f}\n",
      threads, avx2, avx512, one2, one512, std::max(avx2, avx512), read_gbs);
  return 0;
}
