// CPU kernels 'w4a8_gemm' and 'w4a8_linear' (specs/quant.md "W4A8 GEMM";
// operands in kiln/quant.h): Y = P * s_a * 2^-e + bias with P = sum_k a * w8.
//
// The driver (this file): validation (kiln/quant.h), then
//   1. activations, split over rows: w4a8_linear quantizes each row of x to
//      E4M3 (dynamic per token, or the static scale); w4a8_gemm reads the
//      given codes. Each row is prepared in the level's layout (w4a8.h) and
//      alpha[m] = s_a[m] * 2^-e is formed (one float32 rounding);
//   2. the product, split over output rectangles (columns first, so every
//      thread streams its own weights; rows only when there are more threads
//      than column blocks). Each output is computed whole by one thread in an
//      order fixed by K and the ISA level: results never depend on the thread
//      count (native/KERNELS.md).
// The lookup tables of w8 = e4m3(q*s) for every scale code are built here once.
#include "w4a8.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kiln/numerics.h"
#include "kiln/quant.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "scratch.h"

namespace kiln {
namespace cpu {
namespace {

struct Luts {
  alignas(64) float f32[256 * 16];
  alignas(64) uint16_t bf16[256 * 16];
};

const Luts& luts() {
  static const Luts* tables = [] {
    static Luts l;
    for (int c = 0; c < 256; ++c) {
      for (int nib = 0; nib < 16; ++nib) {
        const float v = num::e4m3_to_f32(quant::w8_code(quant::nibble_value(static_cast<uint32_t>(nib)), static_cast<uint8_t>(c)));
        l.f32[c * 16 + nib] = v;
        l.bf16[c * 16 + nib] = static_cast<uint16_t>(num::f32_bits(v) >> 16);  // exact: 3 mantissa bits
      }
    }
    return &l;
  }();
  return *tables;
}

bool& bf16_enabled() {
  static bool enabled = true;
  return enabled;
}

// Element (i, j) of a 2-D float view (any strides), widened exactly.
inline float float_at(const View& v, int64_t i, int64_t j) {
  const int64_t at = i * v.strides[0] + j * (v.ndim > 1 ? v.strides[1] : 0);
  const char* base = v.data();
  switch (v.dtype) {
    case DType::Float16: return num::f16_to_f32(reinterpret_cast<const uint16_t*>(base)[at]);
    case DType::BFloat16: return num::bf16_to_f32(reinterpret_cast<const uint16_t*>(base)[at]);
    default: return reinterpret_cast<const float*>(base)[at];
  }
}

// Row m of a 2-D float view (any strides) widened exactly into dst.
void widen_row(const View& v, int64_t m, int64_t k, float* dst) {
  const char* base = v.data();
  const int64_t s0 = v.strides[0], s1 = v.strides[1];
  switch (v.dtype) {
    case DType::Float16:
      for (int64_t i = 0; i < k; ++i) dst[i] = num::f16_to_f32(reinterpret_cast<const uint16_t*>(base)[m * s0 + i * s1]);
      break;
    case DType::BFloat16:
      for (int64_t i = 0; i < k; ++i) dst[i] = num::bf16_to_f32(reinterpret_cast<const uint16_t*>(base)[m * s0 + i * s1]);
      break;
    default:
      for (int64_t i = 0; i < k; ++i) dst[i] = reinterpret_cast<const float*>(base)[m * s0 + i * s1];
      break;
  }
}

// Below this many multiply-adds per task, fewer threads are used.
constexpr double kMinMacsPerTask = 1 << 20;
// Output columns per unit of the thread split (whole column quads for the tiles).
constexpr int64_t kColUnit = 16;
constexpr int64_t kRowUnit = 4;

Status w4a8_kernel(const KernelArgs& args) {
  W4A8Plan p;
  KILN_RETURN_IF_ERROR(prepare_w4a8(args, &p));
  if (p.m == 0 || p.n == 0) return Status::Ok();
  int e = 0;
  KILN_RETURN_IF_ERROR(read_exponent(args.in[p.exponent], args.op, &e));
  const W4A8Kernels& kern = w4a8_kernels();
  const View& x = args.in[p.x];
  const int64_t M = p.m, N = p.n, K = p.k, Kp = p.kp;
  const size_t act_row_bytes = static_cast<size_t>(Kp) * static_cast<size_t>(kern.act_bytes);

  Scratch act, alpha, bias;
  if (!act.alloc(static_cast<size_t>(M) * act_row_bytes) || !alpha.alloc(static_cast<size_t>(M) * 4) ||
      (p.has_bias && !bias.alloc(static_cast<size_t>(N) * 4))) {
    return Status(StatusCode::OutOfMemory, std::string("kiln: ") + args.op + ": could not allocate the activation buffer (" +
                                               x.describe() + ")");
  }
  if (p.has_bias) {
    const View& b = args.in[p.bias];
    for (int64_t j = 0; j < N; ++j) bias.as<float>()[j] = float_at(b, j, 0);
  }

  // 1. activations, by rows
  const float two_e = std::ldexp(1.0f, -e);
  const float static_scale = p.is_static ? p.static_scale : 0.0f;
  std::atomic<bool> ok{true};
  parallel_for(M, std::max<int64_t>(1, 16384 / Kp), [&](int64_t m0, int64_t m1) {
    Scratch xf, codes;
    if (!xf.alloc(static_cast<size_t>(K) * 4) || !codes.alloc(static_cast<size_t>(K))) {
      ok.store(false);
      return;
    }
    for (int64_t m = m0; m < m1; ++m) {
      float s;
      if (p.fused) {
        const float* row = xf.as<float>();
        if (x.dtype == DType::Float32 && (x.strides[1] == 1 || K == 1)) {
          row = reinterpret_cast<const float*>(x.data()) + m * x.strides[0];  // read in place
        } else {
          widen_row(x, m, K, xf.as<float>());
        }
        s = kern.quantize_row(row, K, static_scale, codes.as<uint8_t>());
      } else {
        const uint8_t* a = reinterpret_cast<const uint8_t*>(x.data());
        for (int64_t k = 0; k < K; ++k) codes.as<uint8_t>()[k] = a[m * x.strides[0] + k * x.strides[1]];
        s = float_at(args.in[p.s_a], m, 0);
      }
      kern.prepare_row(codes.as<uint8_t>(), K, Kp, act.as<char>() + static_cast<size_t>(m) * act_row_bytes);
      alpha.as<float>()[m] = s * two_e;
    }
  });

  // 2. the product, by output rectangles
  const int64_t threads = std::max(1, num_threads());
  const int64_t col_units = (N + kColUnit - 1) / kColUnit, row_units = (M + kRowUnit - 1) / kRowUnit;
  const int64_t tn = std::min(threads, col_units);
  const int64_t tm = std::min(std::max<int64_t>(1, threads / tn), row_units);
  const int64_t tasks = tm * tn;
  const double macs_per_task = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(Kp) / static_cast<double>(tasks);
  const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(kMinMacsPerTask / macs_per_task));
  const Luts& tables = luts();
  const View& y = args.out[0];
  const int64_t ysz = static_cast<int64_t>(dtype_size(y.dtype));
  const uint8_t* packed = reinterpret_cast<const uint8_t*>(args.in[p.packed].data());
  const uint8_t* scales = reinterpret_cast<const uint8_t*>(args.in[p.scales].data());
  const int64_t ng = Kp / p.group;
  if (ok.load()) {
    parallel_for(tasks, grain, [&](int64_t b, int64_t end) {
      for (int64_t task = b; task < end; ++task) {
        const int64_t im = task / tn, in = task % tn;
        const int64_t m0 = std::min(M, row_units * im / tm * kRowUnit), m1 = std::min(M, row_units * (im + 1) / tm * kRowUnit);
        const int64_t n0 = std::min(N, col_units * in / tn * kColUnit), n1 = std::min(N, col_units * (in + 1) / tn * kColUnit);
        if (m0 >= m1 || n0 >= n1) continue;
        W4A8Tile t;
        t.act = act.as<char>() + static_cast<size_t>(m0) * act_row_bytes;
        t.act_ld = Kp;
        t.alpha = alpha.as<float>() + m0;
        t.packed = packed + n0 * (Kp / 2);
        t.scales = scales + n0 * ng;
        t.bias = p.has_bias ? bias.as<float>() + n0 : nullptr;
        t.y = y.data() + (m0 * N + n0) * ysz;
        t.y_ld = N;
        t.out = y.dtype;
        t.rows = m1 - m0;
        t.cols = n1 - n0;
        t.kp = Kp;
        t.group = p.group;
        t.lut_f32 = tables.f32;
        t.lut_bf16 = tables.bf16;
        if (!kern.tile(t)) ok.store(false);
      }
    });
  }
  if (!ok.load()) {
    return Status(StatusCode::OutOfMemory, std::string("kiln: ") + args.op + ": could not allocate work buffers (" +
                                               x.describe() + ", N " + std::to_string(N) + ")");
  }
  return Status::Ok();
}

KILN_REGISTER_KERNELS("w4a8_gemm", DeviceKind::CPU, kFloat16Plus, w4a8_kernel);
KILN_REGISTER_KERNELS("w4a8_linear", DeviceKind::CPU, kFloat16Plus, w4a8_kernel);

}  // namespace

const float* w4a8_lut_f32() { return luts().f32; }
const uint16_t* w4a8_lut_bf16() { return luts().bf16; }

const W4A8Kernels& w4a8_kernels() {
  switch (active_isa()) {
    case IsaLevel::Avx512:
      return features().avx512bf16 && bf16_enabled() ? avx512bf16::w4a8_kernels() : avx512::w4a8_kernels();
    case IsaLevel::Avx2: return avx2::w4a8_kernels();
    default: return portable::w4a8_kernels();
  }
}

void w4a8_set_bf16_for_testing(bool enabled) { bf16_enabled() = enabled; }

}  // namespace cpu
}  // namespace kiln
