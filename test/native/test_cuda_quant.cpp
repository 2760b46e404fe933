// Suite 'cuda_quant': the CUDA W4A8 kernels (cuda/quant.cu) quant_fp8_activation,
// w4a8_gemm, w4a8_linear and quant_int4_dequantize against the CPU kernels (the
// reference; suite 'quant' checks those against specs/quant.md), through
// kiln::run_kernel on copies of the same operands (dvt::run_both: whole
// storages, so writes outside a tensor show).
//
//   - activation quantization: the CPU's bytes (a and s_a), float32 / float16 /
//     bfloat16 input, dynamic and static scales, strided x / a / s_a, zero rows,
//     tiny rows, NaN rows, special values;
//   - w4a8_gemm / w4a8_linear: the SIMT kernel accumulates each output in k
//     order like the CPU's portable level, so it is compared with that level bit
//     for bit (the CPU's ISA is set to portable for the reference run; the other
//     levels are held to |P - P_ref| <= K 2^-24 A by suite 'quant'), over the
//     random shapes of suite 'quant' and more: M = 1, M not a multiple of the
//     tiles (16, 64), N not a multiple of 64, K not a multiple of 128 (padded),
//     every group size kind (32, 64, 128, 256, per channel), every output dtype,
//     bias of every dtype with a stride, strided a and s_a, NaN codes;
//   - structural inputs (a in {0, +-1, +-2}, s = 1, t = 1): bit-exact against
//     the CPU's active level (specs/quant.md: bit-exact on every backend);
//   - the tensor-core path (sm_89+; forced for the test, SIMT forced for the
//     bit-for-bit tests above): within specs/quant.md's CUDA tolerance
//     |P - P_ref| <= (K/32) 2^-13 A against exact sums, through the monotone
//     epilogue; structural inputs bit-exact; the fused op equal to
//     quantize-then-gemm;
//   - quant_int4_dequantize: the CPU's bytes, every exponent kind, strided w;
//   - determinism: two CUDA runs give the same bytes;
//   - error statuses equal to the CPU's (the device name in the message aside),
//     outputs untouched.
// Without a usable GPU every test skips; the file uses only kiln's
// backend-neutral headers, so it compiles with or without CUDA.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "device_testing.h"
#include "harness.h"
#include "kiln/cpu_features.h"
#include "kiln/cuda.h"
#include "kiln/numerics.h"
#include "kiln/quant.h"
#include "kiln/quant_fireq.h"
#include "kiln/registry.h"
#include "testing.h"

#if KILN_WITH_CUDA
namespace kiln {
namespace cuda {
// cuda/quant.cu: 0 automatic, 1 SIMT always, 2 tensor cores whenever the device has FP8 mma.
void w4a8_set_path_for_testing(int path);
bool w4a8_has_tensor_cores_for_testing(int device);
}  // namespace cuda
}  // namespace kiln
#endif

namespace {

using dvt::Layout;
using dvt::Operand;
using kiln::DType;

std::string dt(DType t) { return kiln::dtype_name(t); }

int64_t padded(int64_t k) { return (k + 127) / 128 * 128; }

// ---- storage images ---------------------------------------------------------------------------

uint64_t float_bits(DType t, double v) {
  const float f = static_cast<float>(v);
  switch (t) {
    case DType::Float16: return kiln::num::f32_to_f16(f);
    case DType::BFloat16: return kiln::num::f32_to_bf16(f);
    default: return kiln::num::f32_bits(f);
  }
}

// An operand of layout l whose elements (row-major) get bits(i); the gaps of a
// strided layout hold random bytes.
template <class F>
Operand filled(const Layout& l, kt::Rng& rng, F bits) {
  const size_t es = kiln::dtype_size(l.dtype);
  std::vector<uint8_t> img(static_cast<size_t>(dvt::storage_elems(l)) * es);
  for (auto& b : img) b = static_cast<uint8_t>(rng.next());
  const std::vector<int64_t> offs = dvt::element_offsets(l);
  for (size_t i = 0; i < offs.size(); ++i) dvt::put(&img, static_cast<size_t>(offs[i]), es, bits(static_cast<int64_t>(i)));
  return Operand{l, img};
}

// Row-major strides of [rows, cols] with the column stride `cs` and `pad` extra elements per row.
std::vector<int64_t> strided2(int64_t cols, int64_t cs, int64_t pad) { return {cols * cs + pad, cs}; }

// x [M, K] float: N(0, 1) with outlier channels 3 and K-1 (x50), row 1 zero,
// row 2 tiny (s_a = 2^-126).
Operand activations(DType t, int64_t M, int64_t K, bool strided, kt::Rng& rng) {
  Layout l{t, {M, K}, strided ? strided2(K, 2, 3) : std::vector<int64_t>{}, strided ? 5 : 0};
  return filled(l, rng, [&](int64_t i) {
    const int64_t m = i / K, k = i % K;
    double v = rng.normal();
    if (k == 3 || k == K - 1) v *= 50;
    if (m == 1) v = 0;
    if (m == 2) v *= 1e-37;
    return float_bits(t, v);
  });
}

// a [M, K] E4M3 codes: finite codes (both signs, subnormals, +-448); with nan, about 1 in 500 a NaN code.
Operand codes(int64_t M, int64_t K, bool strided, bool nan, kt::Rng& rng) {
  Layout l{DType::Float8E4M3, {M, K}, strided ? strided2(K, 3, 1) : std::vector<int64_t>{}, strided ? 2 : 0};
  return filled(l, rng, [&](int64_t) -> uint64_t {
    if (nan && rng.below(500) == 0) return rng.below(2) ? 0x7F : 0xFF;
    uint64_t c = rng.next() & 0xFF;
    while ((c & 0x7F) == 0x7F) c = rng.next() & 0xFF;
    return c;
  });
}

// s_a [M] float32 in [2^-10, 2^-2), stride 1 or 2.
Operand act_scales(int64_t M, bool strided, kt::Rng& rng) {
  Layout l{DType::Float32, {M}, strided ? std::vector<int64_t>{2} : std::vector<int64_t>{}, strided ? 1 : 0};
  return filled(l, rng, [&](int64_t) { return kiln::num::f32_bits(static_cast<float>(std::ldexp(1.0 + rng.unit(), -10 + static_cast<int>(rng.below(8))))); });
}

struct WeightOps {
  Operand packed, scales, exponent;
};

// packed [N, Kp/2] (q random in [-8, 7] below K, 0 past K), scales [N, Kp/G]
// (codes in [2^-9, 64]; with any_scale, any code, NaN included), exponent e.
WeightOps weight(int64_t N, int64_t K, int64_t G, int e, bool any_scale, kt::Rng& rng) {
  const int64_t Kp = padded(K);
  WeightOps w;
  w.packed = filled(Layout{DType::UInt8, {N, Kp / 2}}, rng, [&](int64_t i) -> uint64_t {
    const int64_t k = (i % (Kp / 2)) * 2;
    const uint64_t lo = k < K ? rng.below(16) : 0, hi = k + 1 < K ? rng.below(16) : 0;
    return lo | (hi << 4);
  });
  w.scales = filled(Layout{DType::Float8E4M3, {N, Kp / G}}, rng, [&](int64_t) -> uint64_t {
    if (any_scale) return rng.next() & 0xFF;
    return 1 + rng.below(0x68);  // 2^-9 .. 64
  });
  w.exponent = filled(Layout{DType::Int8, {}}, rng, [&](int64_t) { return static_cast<uint64_t>(static_cast<uint8_t>(e)); });
  return w;
}

Operand bias_of(DType t, int64_t N, bool strided, kt::Rng& rng) {
  Layout l{t, {N}, strided ? std::vector<int64_t>{3} : std::vector<int64_t>{}, strided ? 1 : 0};
  return filled(l, rng, [&](int64_t) { return float_bits(t, rng.normal()); });
}

// The CPU's ISA level set to `level` for the scope (the reference run of run_both).
struct IsaScope {
  kt::RestoreIsa restore;
  explicit IsaScope(kiln::cpu::IsaLevel level) { kiln::cpu::set_isa(level); }
};

// The CUDA W4A8 GEMM path for the scope: 1 SIMT, 2 tensor cores (sm_89+).
struct GemmPath {
  explicit GemmPath(int path) { set(path); }
  ~GemmPath() { set(0); }
  static void set(int path) {
#if KILN_WITH_CUDA
    kiln::cuda::w4a8_set_path_for_testing(path);
#else
    (void)path;
#endif
  }
  static bool tensor_cores() {
#if KILN_WITH_CUDA
    return kiln::cuda::w4a8_has_tensor_cores_for_testing(0);
#else
    return false;
#endif
  }
};

// ---- registration --------------------------------------------------------------------------------

KTEST(cuda_quant, same_kernels_as_cpu) {
  if (!kiln::cuda::compiled()) kt::skip("kiln was built without CUDA");
  const std::vector<std::string> names = kiln::registered_kernels();
  auto has = [&](const std::string& s) { return std::find(names.begin(), names.end(), s) != names.end(); };
  for (const char* op : {"quant_fp8_activation", "w4a8_gemm", "w4a8_linear", "quant_int4_dequantize"}) {
    for (DType t : {DType::Float32, DType::Float16, DType::BFloat16}) {
      KCHECK(has(std::string(op) + "/cpu/" + dt(t))) << op << " " << dt(t) << " on the CPU";
      KCHECK(has(std::string(op) + "/cuda/" + dt(t))) << op << " " << dt(t) << " on CUDA";
    }
  }
}

// ---- activation quantization ----------------------------------------------------------------------

KTEST(cuda_quant, activation_matches_cpu_bit_for_bit) {
  dvt::require_cuda();
  kt::Rng rng(3);
  struct Case {
    int64_t m, k;
  };
  const Case cases[] = {{7, 77}, {1, 1}, {3, 4096}, {300, 50}, {5, 1000}};
  for (const Case& cs : cases) {
    for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
      for (int variant = 0; variant < 3; ++variant) {  // 0 contiguous, 1 strided, 2 special values
        const bool strided = variant >= 1;
        Operand x = activations(t, cs.m, cs.k, strided, rng);
        if (variant == 2) {
          std::mt19937_64 mt(rng.next());
          x.init = dvt::random_image(t, dvt::storage_elems(x.layout), mt);  // infinities, NaNs, subnormals, any bits
        } else if (cs.m > 4) {
          const int64_t at = dvt::element_offsets(x.layout)[static_cast<size_t>(4 * cs.k + cs.k / 2)];
          dvt::put(&x.init, static_cast<size_t>(at), kiln::dtype_size(t), float_bits(t, NAN));  // a NaN row
        }
        const Layout la{DType::Float8E4M3, {cs.m, cs.k}, strided ? strided2(cs.k, 2, 1) : std::vector<int64_t>{}, 0};
        const Layout ls{DType::Float32, {cs.m}, strided ? std::vector<int64_t>{3} : std::vector<int64_t>{}, 0};
        for (double static_scale : {0.0, 0.125, 3.0e-3}) {
          std::vector<double> floats;
          if (static_scale != 0) floats.push_back(static_scale);
          const std::string what = "quant_fp8_activation " + dt(t) + " [" + std::to_string(cs.m) + ", " +
                                   std::to_string(cs.k) + "] variant " + std::to_string(variant) + " static " +
                                   std::to_string(static_scale);
          dvt::compare(what, "quant_fp8_activation", t, {x}, {dvt::output(la), dvt::output(ls)}, {}, floats,
                       /*nan_equal=*/true, /*twice=*/variant == 0);
        }
      }
    }
  }
}

// ---- the GEMM -----------------------------------------------------------------------------------

struct GemmCase {
  int64_t m, n, k, g;
  DType xt, out;
};

// The shapes of suite 'quant' and the CUDA tiles' edges.
const GemmCase kGemmCases[] = {
    {1, 64, 4096, 128, DType::Float32, DType::Float32},
    {3, 37, 300, 32, DType::BFloat16, DType::BFloat16},
    {67, 24, 100, 128, DType::Float32, DType::Float16},
    {6, 19, 256, 256, DType::Float16, DType::Float32},
    {9, 33, 1000, 64, DType::Float32, DType::BFloat16},
    {70, 21, 4200, 128, DType::BFloat16, DType::Float32},
    {16, 64, 128, 32, DType::Float32, DType::BFloat16},   // exactly one small-M tile
    {17, 65, 129, 32, DType::Float16, DType::Float16},    // one past the small-M tile and the column tile
    {64, 128, 384, 384, DType::Float32, DType::Float32},  // per-channel scales, exact tiles
    {130, 200, 257, 128, DType::BFloat16, DType::BFloat16},
    {1, 1, 1, 128, DType::Float32, DType::Float32},
};

std::string gemm_name(const char* op, const GemmCase& cs, const std::string& extra) {
  return std::string(op) + " M " + std::to_string(cs.m) + " N " + std::to_string(cs.n) + " K " + std::to_string(cs.k) +
         " G " + std::to_string(cs.g) + " x " + dt(cs.xt) + " y " + dt(cs.out) + extra;
}

KTEST(cuda_quant, gemm_matches_cpu_portable_bit_for_bit) {
  dvt::require_cuda();
  GemmPath simt(1);
  IsaScope portable(kiln::cpu::IsaLevel::Portable);
  kt::Rng rng(21);
  int i = 0;
  for (const GemmCase& cs : kGemmCases) {
    const bool strided = (i++ % 2) == 1;
    const int e = static_cast<int>(rng.below(15));
    WeightOps w = weight(cs.n, cs.k, cs.g, e, false, rng);
    Operand a = codes(cs.m, cs.k, strided, false, rng);
    Operand sa = act_scales(cs.m, strided, rng);
    const Layout ly{cs.out, {cs.m, cs.n}};
    for (int b = 0; b < 3; ++b) {  // no bias, float32 bias, a strided bias of x's dtype
      std::vector<Operand> ins = {a, sa, w.packed, w.scales, w.exponent};
      if (b > 0) ins.push_back(bias_of(b == 1 ? DType::Float32 : cs.xt, cs.n, b == 2, rng));
      const std::string what = gemm_name("w4a8_gemm", cs, " bias " + std::to_string(b) + " e " + std::to_string(e));
      dvt::compare(what, "w4a8_gemm", cs.out, ins, {dvt::output(ly)}, {}, {}, false, /*twice=*/b == 0);
    }
    for (DType out : {DType::Float32, DType::BFloat16, DType::Float16}) {
      if (out == cs.out) continue;
      std::vector<Operand> ins = {a, sa, w.packed, w.scales, w.exponent, bias_of(DType::Float32, cs.n, false, rng)};
      dvt::compare(gemm_name("w4a8_gemm", cs, " out " + dt(out)), "w4a8_gemm", out, ins,
                   {dvt::output(Layout{out, {cs.m, cs.n}})});
    }
  }
}

KTEST(cuda_quant, linear_matches_cpu_portable_bit_for_bit) {
  dvt::require_cuda();
  GemmPath simt(1);
  IsaScope portable(kiln::cpu::IsaLevel::Portable);
  kt::Rng rng(22);
  int i = 0;
  for (const GemmCase& cs : kGemmCases) {
    const bool strided = (i++ % 2) == 0;
    const int e = static_cast<int>(rng.below(15));
    WeightOps w = weight(cs.n, cs.k, cs.g, e, false, rng);
    Operand x = activations(cs.xt, cs.m, cs.k, strided, rng);
    const Layout ly{cs.out, {cs.m, cs.n}};
    for (double static_scale : {0.0, 0.02}) {
      std::vector<double> floats;
      if (static_scale != 0) floats.push_back(static_scale);
      std::vector<Operand> ins = {x, w.packed, w.scales, w.exponent, bias_of(cs.xt, cs.n, strided, rng)};
      const std::string what = gemm_name("w4a8_linear", cs, " static " + std::to_string(static_scale));
      dvt::compare(what, "w4a8_linear", cs.out, ins, {dvt::output(ly)}, {}, floats, false, /*twice=*/static_scale == 0);
      ins.pop_back();
      dvt::compare(what + " no bias", "w4a8_linear", cs.out, ins, {dvt::output(ly)}, {}, floats);
    }
  }
}

// NaN activation codes and arbitrary scale codes (NaN included): NaN where the CPU has NaN.
KTEST(cuda_quant, gemm_nan_operands_match_cpu) {
  dvt::require_cuda();
  GemmPath simt(1);
  IsaScope portable(kiln::cpu::IsaLevel::Portable);
  kt::Rng rng(23);
  const GemmCase cases[] = {{5, 70, 300, 32, DType::Float32, DType::Float32}, {33, 9, 128, 64, DType::Float32, DType::BFloat16}};
  for (const GemmCase& cs : cases) {
    WeightOps w = weight(cs.n, cs.k, cs.g, 3, true, rng);
    std::vector<Operand> ins = {codes(cs.m, cs.k, false, true, rng), act_scales(cs.m, false, rng), w.packed, w.scales,
                                w.exponent};
    dvt::compare(gemm_name("w4a8_gemm", cs, " NaN codes"), "w4a8_gemm", cs.out, ins,
                 {dvt::output(Layout{cs.out, {cs.m, cs.n}})}, {}, {}, /*nan_equal=*/true);
  }
}

// specs/quant.md: structural inputs are bit-exact on every backend, so against
// the CPU's active level too.
KTEST(cuda_quant, structural_bit_exact_against_active_cpu_level) {
  dvt::require_cuda();
  kt::Rng rng(5);
  const uint8_t kCodes[5] = {0x00, 0x38, 0xB8, 0x40, 0xC0};  // 0, 1, -1, 2, -2
  const GemmCase cases[] = {{1, 37, 255, 32, DType::Float32, DType::Float32},   {3, 16, 100, 128, DType::Float32, DType::BFloat16},
                            {5, 33, 200, 64, DType::Float32, DType::Float16},   {17, 20, 128, 32, DType::Float32, DType::Float32},
                            {67, 9, 96, 128, DType::Float32, DType::BFloat16},  {4, 70, 250, 256, DType::Float32, DType::Float32}};
  for (const GemmCase& cs : cases) {
    WeightOps w = weight(cs.n, cs.k, cs.g, 0, false, rng);
    w.scales = filled(w.scales.layout, rng, [](int64_t) -> uint64_t { return 0x38; });  // s = 1
    Operand a = codes(cs.m, cs.k, false, false, rng);
    a = filled(a.layout, rng, [&](int64_t i) -> uint64_t { return i / cs.k == 1 ? 0x00 : kCodes[rng.below(5)]; });
    Operand sa = filled(Layout{DType::Float32, {cs.m}}, rng, [](int64_t) { return kiln::num::f32_bits(1.0f); });
    Operand bias = filled(Layout{DType::Float32, {cs.n}}, rng, [&](int64_t) {
      return kiln::num::f32_bits(static_cast<float>(static_cast<int64_t>(rng.below(64)) - 32));
    });
    for (int path : {1, 2}) {
      if (path == 2 && !GemmPath::tensor_cores()) continue;
      GemmPath use(path);
      dvt::compare(gemm_name("w4a8_gemm", cs, path == 1 ? " structural simt" : " structural tensor cores"), "w4a8_gemm",
                   cs.out, {a, sa, w.packed, w.scales, w.exponent, bias}, {dvt::output(Layout{cs.out, {cs.m, cs.n}})});
    }
  }
}

// ---- the tensor-core path: within specs/quant.md's CUDA tolerance ---------------------------------

uint64_t image_bits(const Operand& o, int64_t elem) {
  const size_t es = kiln::dtype_size(o.layout.dtype);
  return dvt::load_bits(o.init.data() + static_cast<size_t>(elem) * es, es);
}

double float_of(DType t, uint64_t bits) {
  switch (t) {
    case DType::Float16: return kiln::num::f16_to_f32(static_cast<uint16_t>(bits));
    case DType::BFloat16: return kiln::num::bf16_to_f32(static_cast<uint16_t>(bits));
    default: return kiln::num::bits_f32(static_cast<uint32_t>(bits));
  }
}

float round_to(DType t, float v) { return static_cast<float>(float_of(t, float_bits(t, v))); }

// y (from a w4a8_gemm run) lies between the epilogue of P_ref -+ (Kp/32) 2^-13 A,
// P_ref and A exact (double: every product is a multiple of 2^-18 below 2^18).
void check_tensor_core_bound(const std::string& what, const std::vector<uint8_t>& y, DType yt, const Operand& a,
                             const Operand& sa, const WeightOps& w, const Operand* bias, int64_t M, int64_t N, int64_t K,
                             int64_t G) {
  const int64_t Kp = padded(K), ng = Kp / G;
  const std::vector<int64_t> aoff = dvt::element_offsets(a.layout), soff = dvt::element_offsets(sa.layout);
  std::vector<int64_t> boff;
  if (bias) boff = dvt::element_offsets(bias->layout);
  const int e = static_cast<int8_t>(w.exponent.init[0]);
  const size_t ys = kiln::dtype_size(yt);
  int bad = 0;
  for (int64_t m = 0; m < M && bad < 10; ++m) {
    const float alpha = kiln::num::bits_f32(static_cast<uint32_t>(image_bits(sa, soff[static_cast<size_t>(m)]))) * std::ldexp(1.0f, -e);
    for (int64_t n = 0; n < N && bad < 10; ++n) {
      double p = 0, abs_sum = 0;
      const uint8_t* row = w.packed.init.data() + n * (Kp / 2);
      for (int64_t k = 0; k < K; ++k) {
        const uint8_t w8 = kiln::quant::w8_code(kiln::quant::packed_q(row, k), w.scales.init[static_cast<size_t>(n * ng + k / G)]);
        const double prod = static_cast<double>(kiln::num::e4m3_to_f32(static_cast<uint8_t>(image_bits(a, aoff[static_cast<size_t>(m * K + k)])))) *
                            static_cast<double>(kiln::num::e4m3_to_f32(w8));
        p += prod;
        abs_sum += std::fabs(prod);
      }
      const double tol = static_cast<double>(Kp / 32) * std::ldexp(1.0, -13) * abs_sum;
      const float plo = std::nextafter(static_cast<float>(p - tol), -INFINITY);
      const float phi = std::nextafter(static_cast<float>(p + tol), INFINITY);
      const float b = bias ? static_cast<float>(float_of(bias->layout.dtype, image_bits(*bias, boff[static_cast<size_t>(n)]))) : 0.0f;
      const double lo = round_to(yt, std::fma(plo, alpha, b)), hi = round_to(yt, std::fma(phi, alpha, b));
      const double got = float_of(yt, dvt::load_bits(y.data() + static_cast<size_t>(m * N + n) * ys, ys));
      if (!(got >= lo && got <= hi)) {
        ++bad;
        KCHECK(false) << what << " at " << m << "," << n << ": " << got << " not in [" << lo << ", " << hi << "] (P_ref " << p
                      << ", A " << abs_sum << ")";
      }
    }
  }
}

KTEST(cuda_quant, tensor_cores_within_tolerance) {
  dvt::require_cuda();
  if (!GemmPath::tensor_cores()) kt::skip("the GPU has no FP8 mma (compute capability below 8.9)");
  GemmPath tc(2);
  kt::Rng rng(24);
  int i = 0;
  for (const GemmCase& cs : kGemmCases) {
    const bool strided = (i++ % 2) == 1;
    const int e = static_cast<int>(rng.below(15));
    WeightOps w = weight(cs.n, cs.k, cs.g, e, false, rng);
    const Operand a = codes(cs.m, cs.k, strided, false, rng);
    const Operand sa = act_scales(cs.m, strided, rng);
    const Operand bias = bias_of(cs.xt, cs.n, strided, rng);
    const std::string what = gemm_name("w4a8_gemm (tensor cores)", cs, " e " + std::to_string(e));
    const dvt::Outcome r = dvt::run_both(what, "w4a8_gemm", cs.out, {a, sa, w.packed, w.scales, w.exponent, bias},
                                         {dvt::output(Layout{cs.out, {cs.m, cs.n}})}, {}, {}, /*twice=*/true);
    if (!dvt::both_ok(what, r)) continue;
    check_tensor_core_bound(what, r.gpu_out[0], cs.out, a, sa, w, &bias, cs.m, cs.n, cs.k, cs.g);
    // the fused op on the same path: quantize-then-gemm bit for bit
    const Operand x = activations(cs.xt, cs.m, cs.k, strided, rng);
    const Layout la{DType::Float8E4M3, {cs.m, cs.k}}, ls{DType::Float32, {cs.m}};
    const dvt::Outcome q = dvt::run_both(what + " quantize", "quant_fp8_activation", cs.xt, {x}, {dvt::output(la), dvt::output(ls)});
    if (!dvt::both_ok(what, q)) continue;
    const Operand qa{la, q.gpu_out[0]}, qs{ls, q.gpu_out[1]};
    const dvt::Outcome fused = dvt::run_both(what + " linear", "w4a8_linear", cs.out, {x, w.packed, w.scales, w.exponent},
                                             {dvt::output(Layout{cs.out, {cs.m, cs.n}})});
    const dvt::Outcome split = dvt::run_both(what + " gemm", "w4a8_gemm", cs.out, {qa, qs, w.packed, w.scales, w.exponent},
                                             {dvt::output(Layout{cs.out, {cs.m, cs.n}})});
    if (dvt::both_ok(what, fused) && dvt::both_ok(what, split)) {
      KCHECK(fused.gpu_out[0] == split.gpu_out[0]) << what << ": w4a8_linear differs from quantize + w4a8_gemm";
    }
  }
}

// ---- the FireQ layout (w4a8_fireq_gemm / w4a8_fireq_linear, sm_89+) ----------------------------

// The weight with every q = -8 turned into 0 (the FireQ layout holds [-7, 7]).
void drop_minus_eight(WeightOps& w) {
  for (uint8_t& b : w.packed.init) {
    if ((b & 0x0F) == 0x08) b &= 0xF0;
    if ((b & 0xF0) == 0x80) b &= 0x0F;
  }
}

// The FireQ-layout image of w's packed bytes (kiln/quant_fireq.h; suite 'fireq'
// checks this layout and quant_int4_fireq_pack against each other).
Operand fireq_of(const WeightOps& w, int64_t N, int64_t K) {
  namespace fq = kiln::quant::fireq;
  const int64_t Kp = padded(K), Np = fq::padded_n(N);
  std::vector<uint32_t> words(static_cast<size_t>(Np * Kp / 8), 0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < Kp; ++k) {
      const fq::Slot s = fq::slot_of(n, k, Kp);
      words[static_cast<size_t>(s.word)] |= fq::encode(kiln::quant::packed_q(w.packed.init.data() + n * (Kp / 2), k), s);
    }
  }
  Operand o{Layout{DType::UInt8, {Np, Kp / 2}}, std::vector<uint8_t>(words.size() * 4)};
  std::memcpy(o.init.data(), words.data(), o.init.size());
  return o;
}

KTEST(cuda_quant, fireq_layout_within_tolerance) {
  dvt::require_cuda();
  kt::Rng rng(41);
  const GemmCase extra[] = {
      {8, 4096, 4096, 128, DType::Float32, DType::BFloat16},  // decode, one token tile
      {12, 48, 640, 160, DType::BFloat16, DType::Float32},    // decode, two token tiles, groups across chunks
      {256, 96, 512, 64, DType::Float16, DType::Float16},     // prefill, several M tiles
  };
  std::vector<GemmCase> cases(std::begin(kGemmCases), std::end(kGemmCases));
  cases.insert(cases.end(), std::begin(extra), std::end(extra));
  int i = 0;
  for (const GemmCase& cs : cases) {
    const bool strided = (i++ % 2) == 1;
    const int e = static_cast<int>(rng.below(15));
    WeightOps w = weight(cs.n, cs.k, cs.g, e, false, rng);
    drop_minus_eight(w);
    const Operand frags = fireq_of(w, cs.n, cs.k);
    const Operand a = codes(cs.m, cs.k, strided, false, rng);
    const Operand sa = act_scales(cs.m, strided, rng);
    const Operand bias = bias_of(cs.xt, cs.n, strided, rng);
    const std::string what = gemm_name("w4a8_fireq_gemm", cs, " e " + std::to_string(e));
    const dvt::Outcome r = dvt::run_gpu(what, "w4a8_fireq_gemm", cs.out, {a, sa, frags, w.scales, w.exponent, bias},
                                        {dvt::output(Layout{cs.out, {cs.m, cs.n}})}, {}, {}, /*twice=*/true);
    if (!GemmPath::tensor_cores()) {  // below sm_89: a DeviceError, nothing written
      KCHECK(r.ran && r.gpu.code() == kiln::StatusCode::DeviceError) << what << ": " << r.gpu.message();
      KCHECK(r.ran && r.gpu_out[0] == dvt::output(Layout{cs.out, {cs.m, cs.n}}).init) << what << ": output written";
      return;
    }
    if (!r.ran) continue;
    KCHECK(r.gpu.ok()) << what << ": " << r.gpu.message();
    if (!r.gpu.ok()) continue;
    check_tensor_core_bound(what, r.gpu_out[0], cs.out, a, sa, w, &bias, cs.m, cs.n, cs.k, cs.g);
    // the fused op: quantize-then-gemm bit for bit
    const Operand x = activations(cs.xt, cs.m, cs.k, strided, rng);
    const Layout la{DType::Float8E4M3, {cs.m, cs.k}}, ls{DType::Float32, {cs.m}};
    const dvt::Outcome q = dvt::run_gpu(what + " quantize", "quant_fp8_activation", cs.xt, {x}, {dvt::output(la), dvt::output(ls)});
    if (!q.ran || !q.gpu.ok()) continue;
    const Operand qa{la, q.gpu_out[0]}, qs{ls, q.gpu_out[1]};
    const dvt::Outcome fused = dvt::run_gpu(what + " linear", "w4a8_fireq_linear", cs.out, {x, frags, w.scales, w.exponent},
                                            {dvt::output(Layout{cs.out, {cs.m, cs.n}})});
    const dvt::Outcome split = dvt::run_gpu(what + " gemm", "w4a8_fireq_gemm", cs.out, {qa, qs, frags, w.scales, w.exponent},
                                            {dvt::output(Layout{cs.out, {cs.m, cs.n}})});
    KCHECK(fused.ran && split.ran && fused.gpu.ok() && split.gpu.ok()) << what << ": " << fused.gpu.message() << " / " << split.gpu.message();
    if (fused.ran && split.ran) KCHECK(fused.gpu_out[0] == split.gpu_out[0]) << what << ": w4a8_fireq_linear differs from quantize + w4a8_fireq_gemm";
  }
}

KTEST(cuda_quant, fireq_layout_bad_operands) {
  dvt::require_cuda();
  kt::Rng rng(43);
  WeightOps w = weight(20, 256, 128, 2, false, rng);
  drop_minus_eight(w);
  const Operand frags = fireq_of(w, 20, 256);
  const Operand a = codes(3, 256, false, false, rng);
  const Operand sa = act_scales(3, false, rng);
  const Layout ly{DType::Float32, {3, 20}};
  // the canonical bytes where the FireQ layout belongs: [20, 128] is not [32, 128]
  const dvt::Outcome r = dvt::run_gpu("canonical bytes", "w4a8_fireq_gemm", DType::Float32, {a, sa, w.packed, w.scales, w.exponent},
                                      {dvt::output(ly)});
  KCHECK(r.ran && r.gpu.code() == kiln::StatusCode::ShapeError) << r.gpu.message();
  // a view that does not start on a 16-byte boundary
  Operand shifted{Layout{DType::UInt8, {32, 128}, {}, 4}, std::vector<uint8_t>(4, 0)};
  shifted.init.insert(shifted.init.end(), frags.init.begin(), frags.init.end());
  const dvt::Outcome m = dvt::run_gpu("misaligned", "w4a8_fireq_gemm", DType::Float32, {a, sa, shifted, w.scales, w.exponent},
                                      {dvt::output(ly)});
  KCHECK(m.ran && m.gpu.code() == kiln::StatusCode::ValueError) << m.gpu.message();
  KCHECK(m.ran && m.gpu_out[0] == dvt::output(ly).init) << "output written";
}

// ---- dequantization -------------------------------------------------------------------------------

KTEST(cuda_quant, dequantize_matches_cpu_bit_for_bit) {
  dvt::require_cuda();
  kt::Rng rng(31);
  struct Case {
    int64_t n, k, g;
  };
  const Case cases[] = {{7, 100, 32}, {1, 1, 128}, {33, 4100, 128}, {5, 384, 384}, {0, 10, 128}};
  for (const Case& cs : cases) {
    for (int e : {0, 5, 14}) {
      for (DType t : {DType::Float32, DType::BFloat16, DType::Float16}) {
        const bool strided = e == 5;
        WeightOps w = weight(cs.n, cs.k, cs.g, e, /*any_scale=*/e == 14, rng);
        const Layout lw{t, {cs.n, cs.k}, strided ? strided2(cs.k, 2, 1) : std::vector<int64_t>{}, strided ? 3 : 0};
        const std::string what = "quant_int4_dequantize N " + std::to_string(cs.n) + " K " + std::to_string(cs.k) +
                                 " G " + std::to_string(cs.g) + " e " + std::to_string(e) + " " + dt(t);
        dvt::compare(what, "quant_int4_dequantize", t, {w.packed, w.scales, w.exponent}, {dvt::output(lw)}, {}, {},
                     /*nan_equal=*/true, /*twice=*/e == 0);
      }
    }
  }
}

// ---- errors and empty operands --------------------------------------------------------------------

// The message with the device names of cuda:0 replaced by the CPU's.
std::string on_cpu(std::string s) {
  const std::pair<std::string, std::string> subs[] = {{" on cuda:0", " on cpu"}, {" on device cuda", " on device cpu"}};
  for (const auto& sub : subs) {
    for (size_t at = s.find(sub.first); at != std::string::npos; at = s.find(sub.first, at + sub.second.size())) {
      s.replace(at, sub.first.size(), sub.second);
    }
  }
  return s;
}

void expect_same_error(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins,
                       const std::vector<Operand>& outs, const std::vector<double>& floats = {}) {
  const dvt::Outcome r = dvt::run_both(what, op, key, ins, outs, {}, floats);
  if (!r.ran) return;
  KCHECK(!r.cpu.ok() && !r.gpu.ok()) << what << ": both refuse (cpu " << r.cpu.message() << ", cuda " << r.gpu.message() << ")";
  KCHECK(r.cpu.code() == r.gpu.code()) << what << ": " << dvt::code_name(r.cpu) << " vs " << dvt::code_name(r.gpu);
  KCHECK(r.cpu.message() == on_cpu(r.gpu.message())) << what << ": " << r.cpu.message() << " vs " << r.gpu.message();
  for (size_t k = 0; k < outs.size(); ++k) {
    KCHECK(r.cpu_out[k] == outs[k].init && r.gpu_out[k] == outs[k].init) << what << ": output " << k << " untouched";
  }
}

KTEST(cuda_quant, errors_match_cpu) {
  dvt::require_cuda();
  kt::Rng rng(41);
  const int64_t M = 2, N = 8, K = 100, G = 32;
  WeightOps w = weight(N, K, G, 0, false, rng);
  Operand x = activations(DType::Float32, M, K, false, rng);
  const Operand y = dvt::output(Layout{DType::BFloat16, {M, N}});
  auto linear = [&](const std::string& what, const Operand& xx, const WeightOps& ww, const Operand& yy,
                    const std::vector<double>& floats = {}) {
    expect_same_error(what, "w4a8_linear", yy.layout.dtype, {xx, ww.packed, ww.scales, ww.exponent}, {yy}, floats);
  };
  linear("K mismatch", activations(DType::Float32, M, 200, false, rng), w, y);
  linear("y shape", x, w, dvt::output(Layout{DType::BFloat16, {M, N + 1}}));
  {
    WeightOps bad = w;
    for (int e : {15, -1}) {
      bad.exponent = filled(Layout{DType::Int8, {}}, rng, [&](int64_t) { return static_cast<uint64_t>(static_cast<uint8_t>(e)); });
      linear("e = " + std::to_string(e), x, bad, y);
      expect_same_error("gemm e = " + std::to_string(e), "w4a8_gemm", DType::Float32,
                        {codes(M, K, false, false, rng), act_scales(M, false, rng), bad.packed, bad.scales, bad.exponent},
                        {dvt::output(Layout{DType::Float32, {M, N}})});
      expect_same_error("dequantize e = " + std::to_string(e), "quant_int4_dequantize", DType::Float32,
                        {bad.packed, bad.scales, bad.exponent}, {dvt::output(Layout{DType::Float32, {N, K}})});
    }
  }
  linear("static scale -1", x, w, y, {-1.0});
  linear("static scale NaN", x, w, y, {NAN});
  linear("static scale 0 in float32", x, w, y, {1e-50});
  {
    WeightOps bad = w;
    bad.scales = filled(Layout{DType::Float8E4M3, {N, 5}}, rng, [](int64_t) -> uint64_t { return 0x38; });
    linear("5 groups", x, bad, y);
    bad = w;
    bad.packed = filled(Layout{DType::UInt8, {N, 64}, {128, 2}}, rng, [](int64_t) -> uint64_t { return 0; });
    linear("strided packed", x, bad, y);
  }
  expect_same_error("bias shape", "w4a8_linear", DType::BFloat16,
                    {x, w.packed, w.scales, w.exponent, bias_of(DType::Float32, N - 1, false, rng)}, {y});
  linear("K = 0", filled(Layout{DType::Float32, {M, 0}}, rng, [](int64_t) -> uint64_t { return 0; }), w, y);
  expect_same_error("a float32", "w4a8_gemm", DType::Float32,
                    {x, act_scales(M, false, rng), w.packed, w.scales, w.exponent}, {dvt::output(Layout{DType::Float32, {M, N}})});
  expect_same_error("activation s_a shape", "quant_fp8_activation", DType::Float32, {x},
                    {dvt::output(Layout{DType::Float8E4M3, {M, K}}), dvt::output(Layout{DType::Float32, {M + 1}})});
  expect_same_error("activation static scale inf", "quant_fp8_activation", DType::Float32, {x},
                    {dvt::output(Layout{DType::Float8E4M3, {M, K}}), dvt::output(Layout{DType::Float32, {M}})}, {INFINITY});
  expect_same_error("fp8 y", "w4a8_linear", DType::Float8E4M3, {x, w.packed, w.scales, w.exponent},
                    {dvt::output(Layout{DType::Float8E4M3, {M, N}})});
}

KTEST(cuda_quant, empty_operands) {
  dvt::require_cuda();
  kt::Rng rng(43);
  const int64_t N = 8, K = 100;
  WeightOps w = weight(N, K, 32, 2, false, rng);
  dvt::compare("linear M = 0", "w4a8_linear", DType::BFloat16,
               {filled(Layout{DType::Float32, {0, K}}, rng, [](int64_t) -> uint64_t { return 0; }), w.packed, w.scales, w.exponent},
               {dvt::output(Layout{DType::BFloat16, {0, N}})});
  WeightOps w0 = weight(0, K, 32, 2, false, rng);
  dvt::compare("linear N = 0", "w4a8_linear", DType::Float32,
               {activations(DType::Float32, 3, K, false, rng), w0.packed, w0.scales, w0.exponent},
               {dvt::output(Layout{DType::Float32, {3, 0}})});
  dvt::compare("activation M = 0", "quant_fp8_activation", DType::Float16,
               {filled(Layout{DType::Float16, {0, K}}, rng, [](int64_t) -> uint64_t { return 0; })},
               {dvt::output(Layout{DType::Float8E4M3, {0, K}}), dvt::output(Layout{DType::Float32, {0}})});
}

}  // namespace
