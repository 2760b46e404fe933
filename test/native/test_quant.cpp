// Suite 'quant': the W4A8 kernels of kiln/quant.h on the CPU, held to
// specs/quant.md.
//
// References (quant_testing.h) share no code with kiln: E4M3 from its
// definition, the FireQ recipe written again, exact sums in integers. The
// exact reference kernel (w4a8_reference) is checked against those sums, and
// every fast path (each ISA level, and the avx512 level with and without
// AVX512-BF16) against them:
//   - lookup tables: all 127 non-negative finite scale codes x 16 nibbles, in
//     the tables and through the GEMM with one-hot activations;
//   - structural inputs (a in {0, +-1, +-2}, s = 1, t = 1): bit-exact;
//   - random inputs (outlier channels, zero rows, tiny amax, M = 1, M not a
//     multiple of 64, K not a multiple of 128, every group size kind):
//     |P - P_ref| <= K 2^-24 A, checked through the monotone epilogue
//     y = round(fmaf(P, alpha, bias));
//   - bit-identical results for 1, 2 and 3 threads, for the fused op
//     against quantize-then-GEMM.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "harness.h"
#include "quant_testing.h"

namespace {

using kiln::DType;
using kiln::StatusCode;
using kt::shape_str;
using qt::Tensor;
using qt::Weight;

// A weight of n rows where row r's group g has the scale code scale(r, g) and q(r, k) values.
template <class Q, class S>
Weight weight_of(int64_t n, int64_t k, int64_t group, int e, Q q, S scale) {
  Weight w = qt::empty_weight(n, k, group);
  qt::clear(w);
  qt::set_byte(w.exponent, 0, static_cast<uint8_t>(e));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) qt::set_q(w, r, c, q(r, c));
    for (int64_t g = 0; g < w.kp / group; ++g) qt::set_byte(w.scales, r * (w.kp / group) + g, scale(r, g));
  }
  return w;
}

Tensor ones_f32(int64_t m) {
  Tensor t = qt::make(DType::Float32, {m});
  for (int64_t i = 0; i < m; ++i) t.set(i, 1.0);
  return t;
}

// ---- lookup tables ------------------------------------------------------------------------

KTEST(quant, lut_exhaustive) {
  const float* f32 = kiln::cpu::w4a8_lut_f32();
  const uint16_t* bf16 = kiln::cpu::w4a8_lut_bf16();
  for (int c = 0; c < 256; ++c) {
    for (int nib = 0; nib < 16; ++nib) {
      const double want = qt::e4m3_value(qt::w8_ref(qt::from_nibble(nib), static_cast<uint8_t>(c)));
      const double got = f32[c * 16 + nib];
      const double got16 = kt::ieee_value(bf16[c * 16 + nib], 8, 7);
      const bool same = (std::isnan(want) && std::isnan(got) && std::isnan(got16)) ||
                        (got == want && got16 == want && std::signbit(got) == std::signbit(want));
      KCHECK(same) << "scale code " << c << " nibble " << nib << ": want " << want << " got " << got << " / " << got16;
    }
  }
}

// Through the kernels: weight row n has scale code n (0..126), q(k) = the
// nibble k % 16; activation row j is one-hot at k = j0 + j, so y[j, n] = w8(q(j0 + j), code n).
KTEST(quant, lut_through_gemm_every_path) {
  qt::Restore restore;
  const int64_t N = 127, K = 128;
  Weight w = weight_of(N, K, K, 0, [](int64_t, int64_t c) { return qt::from_nibble(static_cast<int>(c % 16)); },
                       [](int64_t r, int64_t) { return static_cast<uint8_t>(r); });
  for (const qt::Path& path : qt::paths()) {
    path.activate();
    for (int64_t M : {16, 4, 3, 1}) {
      for (int64_t j0 : {int64_t(0), 16 - M}) {
        Tensor a = qt::make(DType::Float8E4M3, {M, K});
        for (int64_t i = 0; i < a.numel(); ++i) qt::set_byte(a, i, 0);
        for (int64_t j = 0; j < M; ++j) qt::set_byte(a, j * K + j0 + j, 0x38);  // 1.0
        Tensor sa = ones_f32(M);
        Tensor y = qt::make(DType::Float32, {M, N});
        KCHECK(qt::gemm(a, sa, w, nullptr, y).ok());
        for (int64_t j = 0; j < M; ++j) {
          for (int64_t n = 0; n < N; ++n) {
            const double want = qt::e4m3_value(qt::w8_ref(qt::from_nibble(static_cast<int>((j0 + j) % 16)), static_cast<uint8_t>(n)));
            const double got = y.get(j * N + n);
            KCHECK(got == want || (std::isnan(got) && std::isnan(want)))
                << path.name() << " M " << M << " row " << j << " code " << n << ": " << got << " want " << want;
          }
        }
        KCHECK(y.guards_intact()) << path.name();
      }
    }
  }
}

// ---- the exact reference -------------------------------------------------------------------

KTEST(quant, reference_is_exact) {
  kt::Rng rng(11);
  const int64_t M = 5, N = 9, K = 300, G = 64;
  Weight w = weight_of(N, K, G, 3, [&](int64_t, int64_t) { return static_cast<int>(rng.below(16)) - 8; },
                       [&](int64_t, int64_t) { return static_cast<uint8_t>(1 + rng.below(0x68)); });
  Tensor a = qt::make(DType::Float8E4M3, {M, K});
  for (int64_t i = 0; i < a.numel(); ++i) {
    uint8_t c = static_cast<uint8_t>(rng.below(256));
    if ((c & 0x7F) == 0x7F) c = 0x01;
    qt::set_byte(a, i, c);
  }
  Tensor P = qt::make(DType::Float32, {M, N}), A = qt::make(DType::Float32, {M, N});
  KCHECK(qt::reference(a, w, P, A).ok());
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      const qt::Exact ex = qt::exact_dot(a, m, K, w, n);
      KCHECK_EQ(P.get(m * N + n), static_cast<double>(static_cast<float>(ex.p))) << m << "," << n;
      KCHECK_EQ(A.get(m * N + n), static_cast<double>(static_cast<float>(ex.a))) << m << "," << n;
    }
  }
  // A NaN activation makes its row NaN.
  qt::set_byte(a, 2 * K + 7, 0xFF);
  KCHECK(qt::reference(a, w, P, A).ok());
  KCHECK(std::isnan(P.get(2 * N)) && std::isnan(A.get(2 * N + 3)) && !std::isnan(P.get(N)));
}

// ---- structural inputs: every partial sum an integer below 2^12 ------------------------------

KTEST(quant, structural_bit_exact_every_path_and_thread_count) {
  qt::Restore restore;
  kt::Rng rng(5);
  const uint8_t codes[5] = {0x00, 0x38, 0xB8, 0x40, 0xC0};  // 0, 1, -1, 2, -2
  struct Case {
    int64_t m, n, k, g;
  };
  const Case cases[] = {{1, 37, 255, 32}, {3, 16, 100, 128}, {5, 33, 200, 64}, {17, 20, 128, 32},
                        {67, 9, 96, 128}, {4, 70, 250, 256}, {2, 5, 32, 32}};
  for (const Case& cs : cases) {
    Weight w = weight_of(cs.n, cs.k, cs.g, 0, [&](int64_t, int64_t) { return static_cast<int>(rng.below(16)) - 8; },
                         [](int64_t, int64_t) { return uint8_t(0x38); });
    Tensor a = qt::make(DType::Float8E4M3, {cs.m, cs.k});
    for (int64_t i = 0; i < a.numel(); ++i) qt::set_byte(a, i, codes[rng.below(5)]);
    if (cs.m > 1) {
      for (int64_t c = 0; c < cs.k; ++c) qt::set_byte(a, cs.k + c, 0x00);  // a zero row
    }
    Tensor sa = ones_f32(cs.m);
    Tensor bias = qt::make(DType::Float32, {cs.n});
    for (int64_t j = 0; j < cs.n; ++j) bias.set(j, static_cast<double>(rng.below(64)) - 32);
    const std::string ctx = "M " + std::to_string(cs.m) + " N " + std::to_string(cs.n) + " K " + std::to_string(cs.k) +
                            " G " + std::to_string(cs.g);
    Tensor P = qt::make(DType::Float32, {cs.m, cs.n}), A = qt::make(DType::Float32, {cs.m, cs.n});
    KCHECK(qt::reference(a, w, P, A).ok());
    const std::vector<qt::Exact> exact = qt::exact_all(a, w);
    for (int64_t i = 0; i < cs.m * cs.n; ++i) KCHECK_EQ(P.get(i), exact[static_cast<size_t>(i)].p) << ctx;
    for (const qt::Path& path : qt::paths()) {
      path.activate();
      for (int threads : {1, 2, 3}) {
        kiln::cpu::set_num_threads(threads);
        for (DType out : {DType::Float32, DType::BFloat16, DType::Float16}) {
          for (bool with_bias : {false, true}) {
            Tensor y = qt::make(out, {cs.m, cs.n});
            KCHECK(qt::gemm(a, sa, w, with_bias ? &bias : nullptr, y).ok()) << ctx;
            for (int64_t m = 0; m < cs.m; ++m) {
              for (int64_t n = 0; n < cs.n; ++n) {
                const qt::Exact& ex = exact[static_cast<size_t>(m * cs.n + n)];
                const double want = kt::round_to(out, ex.p + (with_bias ? bias.get(n) : 0.0));
                KCHECK_EQ(y.get(m * cs.n + n), want) << ctx << " " << path.name() << " threads " << threads << " out "
                                                     << kiln::dtype_name(out) << " bias " << with_bias << " at " << m
                                                     << "," << n;
              }
            }
            KCHECK(y.guards_intact()) << ctx;
          }
        }
      }
      kiln::cpu::set_num_threads(0);
    }
  }
}

// ---- random inputs within the spec's bounds ---------------------------------------------------

// x [M, K]: normal values; outlier channels 3 and K-1 (x50); row 1 zero; row 2
// tiny (amax below 448 * 2^-126, so s_a = 2^-126).
Tensor activations(DType dt, int64_t M, int64_t K, kt::Layout layout, kt::Rng& rng) {
  Tensor x = qt::make(dt, {M, K}, layout);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) {
      double v = rng.normal();
      if (k == 3 || k == K - 1) v *= 50;
      if (m == 1) v = 0;
      if (m == 2) v *= 1e-37;
      x.set(m * K + k, v);
    }
  }
  return x;
}

// w [N, K]: N(0, 0.02) with outlier input channels (x20), a zero group and a tiny row.
Tensor weights(DType dt, int64_t N, int64_t K, kt::Rng& rng) {
  Tensor w = qt::make(dt, {N, K});
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      double v = 0.02 * rng.normal();
      if (k % 37 == 5) v *= 20;
      if (n == 0 && k < 32) v = 0;
      if (n == 1) v *= 1e-6;
      w.set(n * K + k, v);
    }
  }
  return w;
}

// y[m, n] lies between the epilogue of P_ref -+ K 2^-24 A (fmaf and the output
// rounding are monotone in P for alpha > 0).
void check_within_bound(const Tensor& y, const Tensor& acodes, const Tensor& sa, const Weight& w, const Tensor* bias,
                        const std::string& ctx) {
  const int64_t M = y.shape[0], N = y.shape[1], K = acodes.shape[1];
  const DType out = y.dtype();
  const std::vector<qt::Exact> exact = qt::exact_all(acodes, w);
  for (int64_t m = 0; m < M; ++m) {
    const float alpha = static_cast<float>(sa.get(m)) * std::ldexp(1.0f, -w.e());
    for (int64_t n = 0; n < N; ++n) {
      const qt::Exact& ex = exact[static_cast<size_t>(m * N + n)];
      const double tol = static_cast<double>(K) * std::ldexp(1.0, -24) * ex.a;
      const float plo = std::nextafter(static_cast<float>(ex.p - tol), -INFINITY);
      const float phi = std::nextafter(static_cast<float>(ex.p + tol), INFINITY);
      const float b = bias ? static_cast<float>(bias->get(n)) : 0.0f;
      const double lo = kt::round_to(out, std::fma(plo, alpha, b)), hi = kt::round_to(out, std::fma(phi, alpha, b));
      const double got = y.get(m * N + n);
      KCHECK(got >= lo && got <= hi) << ctx << " at " << m << "," << n << ": " << got << " not in [" << lo << ", " << hi
                                     << "] (P_ref " << ex.p << ", A " << ex.a << ")";
      if (kt::failures_in_test() > 10) return;
    }
  }
}

KTEST(quant, random_within_tolerance_every_path) {
  qt::Restore restore;
  kt::Rng rng(21);
  struct Case {
    int64_t m, n, k, g;
    DType xt, wt, out;
  };
  const Case cases[] = {
      {1, 64, 4096, 128, DType::Float32, DType::Float32, DType::Float32},
      {3, 37, 300, 32, DType::BFloat16, DType::Float32, DType::BFloat16},
      {67, 24, 100, 128, DType::Float32, DType::BFloat16, DType::Float16},
      {6, 19, 256, 256, DType::Float16, DType::Float16, DType::Float32},
      {9, 33, 1000, 64, DType::Float32, DType::Float32, DType::BFloat16},
      {70, 21, 4200, 128, DType::BFloat16, DType::Float32, DType::Float32},  // several K blocks of the panel path
  };
  for (const Case& cs : cases) {
    const std::string ctx = "M " + std::to_string(cs.m) + " N " + std::to_string(cs.n) + " K " + std::to_string(cs.k) +
                            " G " + std::to_string(cs.g);
    Tensor wf = weights(cs.wt, cs.n, cs.k, rng);
    Weight w = qt::empty_weight(cs.n, cs.k, cs.g);
    KCHECK(qt::quantize_weight(wf, w).ok()) << ctx;
    Tensor x = activations(cs.xt, cs.m, cs.k, cs.m > 3 ? kt::Layout::Strided : kt::Layout::Contig, rng);
    Tensor bias = qt::make(DType::Float32, {cs.n});
    for (int64_t j = 0; j < cs.n; ++j) bias.set(j, rng.normal());
    std::vector<unsigned char> first;
    for (const qt::Path& path : qt::paths()) {
      path.activate();
      Tensor a = qt::make(DType::Float8E4M3, {cs.m, cs.k}), sa = qt::make(DType::Float32, {cs.m});
      KCHECK(qt::quantize_activation(x, a, sa).ok()) << ctx;
      std::vector<unsigned char> y_bytes;
      for (int threads : {1, 2, 3}) {
        kiln::cpu::set_num_threads(threads);
        Tensor y = qt::make(cs.out, {cs.m, cs.n});
        KCHECK(qt::linear(x, w, &bias, y).ok()) << ctx;
        if (threads == 1) {
          check_within_bound(y, a, sa, w, &bias, ctx + " " + path.name());
          y_bytes = y.bytes();
          Tensor y2 = qt::make(cs.out, {cs.m, cs.n});
          KCHECK(qt::gemm(a, sa, w, &bias, y2).ok()) << ctx;
          KCHECK(y2.bytes() == y_bytes) << ctx << " " << path.name() << ": w4a8_linear differs from quantize + w4a8_gemm";
        } else {
          KCHECK(y.bytes() == y_bytes) << ctx << " " << path.name() << ": threads " << threads << " differ from 1 thread";
        }
        KCHECK(y.guards_intact()) << ctx;
      }
      kiln::cpu::set_num_threads(0);
      // Every row is independent of the others: a 1-row product gives the same bits.
      Tensor x1 = qt::make(cs.xt, {1, cs.k});
      const int64_t row = cs.m - 1;
      for (int64_t k = 0; k < cs.k; ++k) x1.set(k, x.get(row * cs.k + k));
      Tensor y1 = qt::make(cs.out, {1, cs.n});
      KCHECK(qt::linear(x1, w, &bias, y1).ok()) << ctx;
      const size_t es = kiln::dtype_size(cs.out);
      const std::vector<unsigned char> row_bytes = y1.bytes();
      KCHECK(std::equal(row_bytes.begin(), row_bytes.end(), y_bytes.begin() + static_cast<int64_t>(row * cs.n * es)))
          << ctx << " " << path.name() << ": the last row alone differs";
    }
  }
}

// ---- the weight quantizer ---------------------------------------------------------------------

KTEST(quant, weight_quantizer_matches_recipe) {
  kt::Rng rng(7);
  struct Case {
    int64_t n, k, g;
    DType dt;
    double scale;
  };
  const Case cases[] = {{5, 300, 128, DType::Float32, 1.0},   {4, 128, 32, DType::BFloat16, 0.02},
                        {3, 100, 128, DType::Float16, 3.0},   {6, 96, 128, DType::Float32, 1e-5},
                        {2, 512, 512, DType::Float32, 400.0}, {3, 250, 64, DType::Float32, 1e-30}};
  for (const Case& cs : cases) {
    Tensor wf = weights(cs.dt, cs.n, cs.k, rng);
    std::vector<float> vals(static_cast<size_t>(cs.n * cs.k));
    for (int64_t i = 0; i < cs.n * cs.k; ++i) {
      wf.set(i, wf.get(i) * cs.scale);
      vals[static_cast<size_t>(i)] = static_cast<float>(wf.get(i));
    }
    Weight w = qt::empty_weight(cs.n, cs.k, cs.g);
    KCHECK(qt::quantize_weight(wf, w).ok());
    const qt::RecipeWeight r = qt::recipe(vals, cs.n, cs.k, cs.g);
    const std::string ctx = "N " + std::to_string(cs.n) + " K " + std::to_string(cs.k) + " G " + std::to_string(cs.g) +
                            " scale " + std::to_string(cs.scale);
    KCHECK_EQ(w.e(), r.e) << ctx;
    for (int64_t i = 0; i < w.scales.numel(); ++i) KCHECK_EQ(int(qt::byte_at(w.scales, i)), int(r.scales[static_cast<size_t>(i)])) << ctx << " scale " << i;
    for (int64_t n = 0; n < cs.n; ++n) {
      for (int64_t k = 0; k < w.kp; ++k) KCHECK_EQ(w.q(n, k), r.q[static_cast<size_t>(n * w.kp + k)]) << ctx << " q " << n << "," << k;
    }
    KCHECK(w.packed.guards_intact() && w.scales.guards_intact() && w.exponent.guards_intact());
    // every scale is positive and at most 64 (7 s does not saturate)
    for (int64_t i = 0; i < w.scales.numel(); ++i) {
      const double s = qt::e4m3_value(qt::byte_at(w.scales, i));
      KCHECK(s >= std::ldexp(1.0, -9) && s <= 64.0) << ctx << " s " << s;
    }
    // dequantize: w = e4m3(q s) / t, rounded once to the dtype
    for (DType out : {DType::Float32, DType::BFloat16}) {
      Tensor d = qt::make(out, {cs.n, cs.k}, kt::Layout::Strided);
      KCHECK(kt::run("quant_int4_dequantize", out, {w.packed.v, w.scales.v, w.exponent.v}, {d.v}).ok());
      for (int64_t n = 0; n < cs.n; ++n) {
        for (int64_t k = 0; k < cs.k; ++k) {
          const double want = kt::round_to(out, std::ldexp(qt::e4m3_value(qt::w8_ref(w.q(n, k), w.s(n, k))), -w.e()));
          KCHECK_EQ(d.get(n * cs.k + k), want) << ctx << " dequantize " << n << "," << k;
        }
      }
      KCHECK(d.guards_intact());
    }
  }
}

KTEST(quant, weight_exponent_boundaries) {
  // amax = 448 / 2^j exactly gives e = j; just above gives j - 1; 0 gives 0; tiny saturates at 14.
  const struct {
    double amax;
    int e;
  } cases[] = {{448.0, 0}, {224.0, 1}, {std::nextafter(224.0f, 1000.0f), 0}, {0.0, 0}, {1e-9, 14}, {448.0 / 16384, 14}, {1.0, 8}};
  for (const auto& c : cases) {
    Tensor wf = qt::make(DType::Float32, {2, 40});
    for (int64_t i = 0; i < wf.numel(); ++i) wf.set(i, 0.0);
    wf.set(41, -c.amax);
    Weight w = qt::empty_weight(2, 40, 128);
    KCHECK(qt::quantize_weight(wf, w).ok());
    KCHECK_EQ(w.e(), c.e) << "amax " << c.amax;
  }
}

// ---- the activation quantizer ----------------------------------------------------------------

KTEST(quant, activation_quantizer_every_path) {
  qt::Restore restore;
  kt::Rng rng(3);
  const int64_t M = 7, K = 77;
  for (DType dt : {DType::Float32, DType::BFloat16, DType::Float16}) {
    Tensor x = activations(dt, M, K, kt::Layout::Strided, rng);
    x.set(4 * K + 2, std::numeric_limits<double>::quiet_NaN());  // a NaN row
    x.set(5 * K + 1, 60000);  // a large value
    for (double static_scale : {0.0, 0.125, 3.0e-3}) {
      std::vector<unsigned char> first;
      for (const qt::Path& path : qt::paths()) {
        path.activate();
        Tensor a = qt::make(DType::Float8E4M3, {M, K}, kt::Layout::Strided), sa = qt::make(DType::Float32, {M});
        KCHECK(qt::quantize_activation(x, a, sa, static_scale).ok());
        for (int64_t m = 0; m < M; ++m) {
          float amax = 0;
          bool nan = false;
          for (int64_t k = 0; k < K; ++k) {
            const float v = static_cast<float>(x.get(m * K + k));
            nan |= std::isnan(v);
            amax = std::max(amax, std::fabs(v));
          }
          float s = static_cast<float>(static_scale);
          if (static_scale == 0) s = nan ? NAN : amax == 0 ? 1.0f : std::max(amax / 448.0f, FLT_MIN);
          const float got_s = static_cast<float>(sa.get(m));
          KCHECK(got_s == s || (std::isnan(got_s) && std::isnan(s))) << kiln::dtype_name(dt) << " row " << m << " s_a " << got_s << " want " << s;
          for (int64_t k = 0; k < K; ++k) {
            const float q = static_cast<float>(x.get(m * K + k)) / s;
            KCHECK_EQ(int(qt::byte_at(a, m * K + k)), int(qt::e4m3_round(q)))
                << kiln::dtype_name(dt) << " " << path.name() << " row " << m << " k " << k << " x/s " << q;
          }
        }
        KCHECK(a.guards_intact() && sa.guards_intact());
        if (first.empty()) {
          first = a.bytes();
        } else {
          KCHECK(a.bytes() == first) << path.name();
        }
      }
    }
  }
}

// ---- errors -------------------------------------------------------------------------------------

KTEST(quant, bad_input_gives_typed_status) {
  const int64_t N = 8, K = 100, G = 32;
  Weight w = qt::empty_weight(N, K, G);
  qt::clear(w);
  Tensor x = qt::make(DType::Float32, {2, K});
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, 0.5);
  Tensor y = qt::make(DType::BFloat16, {2, N});
  KCHECK(qt::linear(x, w, nullptr, y).ok());

  auto expect = [](const kiln::Status& s, StatusCode code, const char* what) {
    KCHECK(s.code() == code) << what << ": got " << kiln::status_code_name(s.code()) << " " << s.message();
    KCHECK(s.message().find("kiln: ") == 0) << what << ": " << s.message();
  };
  // K mismatch: x with 200 columns against Kp = 128 weights
  Tensor x200 = qt::make(DType::Float32, {2, 200});
  expect(qt::linear(x200, w, nullptr, y), StatusCode::ShapeError, "K mismatch");
  // output shape
  Tensor ybad = qt::make(DType::BFloat16, {2, N + 1});
  expect(qt::linear(x, w, nullptr, ybad), StatusCode::ShapeError, "y shape");
  // x dtype
  Tensor xi = qt::make(DType::Int32, {2, K});
  expect(qt::linear(xi, w, nullptr, y), StatusCode::DTypeError, "x int32");
  // exponent out of range
  qt::set_byte(w.exponent, 0, 15);
  expect(qt::linear(x, w, nullptr, y), StatusCode::ValueError, "e = 15");
  qt::set_byte(w.exponent, 0, 0xFF);
  expect(qt::linear(x, w, nullptr, y), StatusCode::ValueError, "e = -1");
  qt::set_byte(w.exponent, 0, 0);
  // static scale
  expect(qt::linear(x, w, nullptr, y, -1.0), StatusCode::ValueError, "static scale -1");
  expect(qt::linear(x, w, nullptr, y, NAN), StatusCode::ValueError, "static scale NaN");
  expect(qt::linear(x, w, nullptr, y, 1e-50), StatusCode::ValueError, "static scale 0 in float32");
  // bias shape
  Tensor b = qt::make(DType::Float32, {N - 1});
  expect(qt::linear(x, w, &b, y), StatusCode::ShapeError, "bias shape");
  // scales with a group size that is not a multiple of 32: Kp = 128, 5 groups
  Weight w5 = w;
  w5.scales = qt::make(DType::Float8E4M3, {N, 5});
  expect(qt::linear(x, w5, nullptr, y), StatusCode::ShapeError, "5 groups");
  // packed weights not contiguous
  Weight wt = w;
  wt.packed = qt::make(DType::UInt8, {N, 64}, kt::Layout::Strided);
  expect(qt::linear(x, wt, nullptr, y), StatusCode::ShapeError, "strided packed");
  // the quantizer: group size, non-finite and too large weights
  Tensor wf = qt::make(DType::Float32, {N, K});
  for (int64_t i = 0; i < wf.numel(); ++i) wf.set(i, 0.25);
  Weight q48 = qt::empty_weight(N, K, 128);
  q48.group = 48;
  q48.scales = qt::make(DType::Float8E4M3, {N, 3});
  expect(qt::quantize_weight(wf, q48), StatusCode::ValueError, "group 48");
  Weight q = qt::empty_weight(N, K, 128);
  wf.set(3 * K + 9, INFINITY);
  expect(qt::quantize_weight(wf, q), StatusCode::ValueError, "inf weight");
  wf.set(3 * K + 9, 449.0);
  expect(qt::quantize_weight(wf, q), StatusCode::ValueError, "|w| > 448");
  // K = 0
  Tensor x0 = qt::make(DType::Float32, {2, 0});
  expect(qt::linear(x0, w, nullptr, y), StatusCode::ShapeError, "K = 0");
  // M = 0 is fine and writes nothing
  Tensor xm0 = qt::make(DType::Float32, {0, K});
  Tensor ym0 = qt::make(DType::BFloat16, {0, N});
  KCHECK(qt::linear(xm0, w, nullptr, ym0).ok());
  // no kernel for an fp8 output
  Tensor y8 = qt::make(DType::Float8E4M3, {2, N});
  expect(qt::linear(x, w, nullptr, y8), StatusCode::NoKernel, "fp8 y");
}

}  // namespace
