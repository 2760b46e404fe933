// Suite 'fireq': the FireQ fragment layout of INT4 weights (kiln/quant_fireq.h)
// and the arithmetic of the CUDA kernels that read it (cuda/quant_fireq.cu),
// on the host.
//
//   - the in-register conversion: decode() of every scale code (all 256) x
//     every q in [-7, 7] x every position in a word, with random neighbours,
//     equals w8 = e4m3(q * s) from quant_testing.h's independent E4M3
//     reference (NaN codes: NaN);
//   - the layout is a bijection: every (n, k) of the padded [16 N', Kp] gets
//     its own 3 magnitude bits and sign bit, and the words are all used;
//   - quant_int4_fireq_pack / _unpack: round trips to the canonical bytes
//     (random q in [-7, 7], N not a multiple of 16, K not a multiple of 128,
//     several chunks), padding rows all zero, q = -8 refused with a
//     ValueError naming the element and nothing written, bad shapes refused;
//   - the kernels' fragment arithmetic: both CUDA kernels (decode: weights as
//     the mma A operand, tokens as B, split-K over blocks and 4 warps; prefill: 64 x 64
//     tiles, activations as A from the staged tile, weights as B) are replayed
//     lane by lane with the kernels' own index helpers (lane_load, frag_k,
//     acc_row, acc_col, decode) and an m16n8k32 that places register bytes
//     as the PTX ISA lists them, summing exactly: P equals the exact int64
//     sums of quant_testing.h for every (m, n). A slip in the layout, the
//     fragment coordinates or the accumulator mapping fails here without a GPU.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "harness.h"
#include "kiln/quant_fireq.h"
#include "quant_testing.h"

namespace {

namespace fq = kiln::quant::fireq;
using kiln::DType;
using kiln::StatusCode;
using qt::Tensor;
using qt::Weight;

bool same_code(uint8_t got, uint8_t want) {
  const double g = qt::e4m3_value(got), w = qt::e4m3_value(want);
  return (std::isnan(g) && std::isnan(w)) || got == want;
}

// ---- the conversion ----------------------------------------------------------------------

KTEST(fireq, lut_every_scale_code) {
  for (int c = 0; c < 256; ++c) {
    const fq::Lut t = fq::lut_of(static_cast<uint8_t>(c));
    for (int m = 0; m < 8; ++m) {
      const uint8_t got = static_cast<uint8_t>(((m < 4 ? t.lo : t.hi) >> (8 * (m & 3))) & 0xFF);
      KCHECK(same_code(got, qt::w8_ref(m, static_cast<uint8_t>(c)))) << "scale code " << c << " m " << m;
    }
  }
}

// A word's 8 positions: (half, byte) with the slot of row 0 / k = 16 half + byte in block 0.
fq::Slot position(int half, int b) { return fq::slot_of(0, 16 * half + b, 128); }

KTEST(fireq, decode_every_code_q_and_position) {
  kt::Rng rng(7);
  int bad = 0;
  for (int c = 0; c < 256 && bad < 10; ++c) {
    const fq::Lut t = fq::lut_of(static_cast<uint8_t>(c));
    for (int pos = 0; pos < 8; ++pos) {
      for (int q = -7; q <= 7; ++q) {
        int qs[8];
        uint32_t word = 0;
        for (int p = 0; p < 8; ++p) {
          qs[p] = p == pos ? q : static_cast<int>(rng.below(15)) - 7;
          word |= fq::encode(qs[p], position(p / 4, p % 4));
        }
        const fq::Codes got = fq::decode(word, t);
        for (int p = 0; p < 8; ++p) {
          const uint8_t code = static_cast<uint8_t>(((p < 4 ? got.first : got.second) >> (8 * (p % 4))) & 0xFF);
          if (!same_code(code, qt::w8_ref(qs[p], static_cast<uint8_t>(c)))) {
            ++bad;
            KCHECK(false) << "scale code " << c << " position " << p << " q " << qs[p] << ": got 0x" << std::hex
                          << int(code) << " want 0x" << int(qt::w8_ref(qs[p], static_cast<uint8_t>(c))) << std::dec;
          }
        }
      }
    }
  }
  KCHECK(bad == 0) << bad << " wrong codes";
}

// byte_perm on the host is PRMT's default mode for selectors in [0, 7]: check it
// on every selector nibble against a byte array.
KTEST(fireq, byte_perm_selectors) {
  const uint32_t lo = 0x33221100u, hi = 0x77665544u;
  for (uint32_t sel = 0; sel < 0x8000; ++sel) {
    if (sel & 0x8888u) continue;
    const uint32_t r = fq::byte_perm(lo, hi, sel);
    for (int i = 0; i < 4; ++i) {
      const uint32_t want = ((sel >> (4 * i)) & 7u) * 0x11u;
      KCHECK(((r >> (8 * i)) & 0xFFu) == want) << "selector " << std::hex << sel << std::dec << " byte " << i;
    }
  }
}

KTEST(fireq, layout_is_a_bijection) {
  for (int64_t n : {1, 16, 37}) {
    for (int64_t kp : {128, 384}) {
      const int64_t np = fq::padded_n(n), words = np * kp / 8;
      std::vector<uint32_t> used(static_cast<size_t>(words), 0);
      bool ok = true;
      for (int64_t r = 0; r < np && ok; ++r) {
        for (int64_t k = 0; k < kp && ok; ++k) {
          const fq::Slot s = fq::slot_of(r, k, kp);
          const uint32_t bits = (7u << s.mag_shift) | (1u << s.sign_shift);
          ok = s.word >= 0 && s.word < words && (used[static_cast<size_t>(s.word)] & bits) == 0 &&
               s.mag_shift % 4 == 0 && (s.sign_shift & 3) == 3;
          KCHECK(ok) << "n " << r << " k " << k << " (N " << n << ", Kp " << kp << ") overlaps or is out of range";
          if (ok) used[static_cast<size_t>(s.word)] |= bits;
        }
      }
      for (size_t i = 0; i < used.size() && ok; ++i) KCHECK(used[i] == 0xFFFFFFFFu) << "word " << i << " not filled";
      KCHECK(np % 16 == 0 && np >= n && np < n + 16);
    }
  }
}

// ---- pack / unpack ------------------------------------------------------------------------

Weight random_weight(int64_t n, int64_t k, int64_t group, kt::Rng& rng, int lo = -7) {
  Weight w = qt::empty_weight(n, k, group);
  qt::clear(w);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) qt::set_q(w, r, c, lo + static_cast<int>(rng.below(8 - lo)));
    for (int64_t g = 0; g < w.kp / group; ++g) qt::set_byte(w.scales, r * (w.kp / group) + g, static_cast<uint8_t>(1 + rng.below(0x68)));
  }
  return w;
}

kiln::Status pack(const Tensor& packed, Tensor& frags) {
  return kt::run("quant_int4_fireq_pack", DType::UInt8, {packed.v}, {frags.v});
}
kiln::Status unpack(const Tensor& frags, Tensor& packed) {
  return kt::run("quant_int4_fireq_unpack", DType::UInt8, {frags.v}, {packed.v});
}

KTEST(fireq, pack_round_trip) {
  kt::Rng rng(3);
  struct Case {
    int64_t n, k;
  };
  for (const Case& cs : {Case{1, 100}, Case{16, 128}, Case{37, 300}, Case{70, 1000}}) {
    Weight w = random_weight(cs.n, cs.k, 32, rng);
    const int64_t np = fq::padded_n(cs.n);
    Tensor frags = qt::make(DType::UInt8, {np, w.kp / 2});
    const kiln::Status s = pack(w.packed, frags);
    KCHECK(s.ok()) << s.message();
    if (!s.ok()) continue;
    // every element where the layout puts it, the padding rows q = 0
    const uint32_t* words = reinterpret_cast<const uint32_t*>(frags.ptr(0));
    for (int64_t r = 0; r < np; ++r) {
      for (int64_t k = 0; k < w.kp; ++k) {
        const int want = r < cs.n ? w.q(r, k) : 0;
        const fq::Slot sl = fq::slot_of(r, k, w.kp);
        KCHECK(fq::decode_q(words[sl.word], sl) == want && (want != 0 || ((words[sl.word] >> sl.sign_shift) & 1u) == 0))
            << "N " << cs.n << " K " << cs.k << " at " << r << "," << k;
      }
    }
    Tensor back = qt::make(DType::UInt8, {cs.n, w.kp / 2});
    const kiln::Status u = unpack(frags, back);
    KCHECK(u.ok()) << u.message();
    KCHECK(std::memcmp(back.ptr(0), w.packed.ptr(0), static_cast<size_t>(cs.n * w.kp / 2)) == 0)
        << "N " << cs.n << " K " << cs.k << ": unpack(pack(w)) differs from w";
  }
}

KTEST(fireq, pack_refuses_minus_eight_and_bad_shapes) {
  kt::Rng rng(4);
  Weight w = random_weight(5, 200, 64, rng);
  qt::set_q(w, 3, 151, -8);
  Tensor frags = qt::make(DType::UInt8, {16, w.kp / 2});
  for (int64_t i = 0; i < frags.numel(); ++i) qt::set_byte(frags, i, 0xA5);
  const kiln::Status s = pack(w.packed, frags);
  KCHECK(s.code() == StatusCode::ValueError) << kiln::status_code_name(s.code()) << " " << s.message();
  KCHECK(s.message().find("q[3, 151] = -8") != std::string::npos) << s.message();
  bool untouched = true;
  for (int64_t i = 0; i < frags.numel(); ++i) untouched = untouched && qt::byte_at(frags, i) == 0xA5;
  KCHECK(untouched) << "the refused pack wrote its output";

  Weight ok = random_weight(5, 200, 64, rng);
  Tensor wrong_rows = qt::make(DType::UInt8, {5, ok.kp / 2});
  const kiln::Status r = pack(ok.packed, wrong_rows);
  KCHECK(r.code() == StatusCode::ShapeError) << r.message();
  KCHECK(r.message().find("[16, 128]") != std::string::npos) << r.message();
  Tensor wrong_dtype = qt::make(DType::Int8, {16, ok.kp / 2});
  KCHECK(pack(ok.packed, wrong_dtype).code() == StatusCode::DTypeError);
  Tensor odd = qt::make(DType::UInt8, {4, 50});  // Kp = 100: not a multiple of 128
  Tensor odd_out = qt::make(DType::UInt8, {16, 50});
  KCHECK(pack(odd, odd_out).code() == StatusCode::ShapeError);
  Tensor back = qt::make(DType::UInt8, {6, ok.kp / 2});  // N = 6 pads to 16: frags [16, ...] fits
  Tensor frags_ok = qt::make(DType::UInt8, {16, ok.kp / 2});
  KCHECK(pack(ok.packed, frags_ok).ok());
  KCHECK(unpack(frags_ok, back).ok());
  Tensor back_bad = qt::make(DType::UInt8, {17, ok.kp / 2});  // 17 pads to 32
  KCHECK(unpack(frags_ok, back_bad).code() == StatusCode::ShapeError);
}

// ---- the kernels' fragment arithmetic, replayed ----------------------------------------------

// One warp's registers: 32 lanes x (4 A words, 2 B words, 4 accumulators).
struct Warp {
  std::array<std::array<uint32_t, 4>, 32> a{};
  std::array<std::array<uint32_t, 2>, 32> b{};
};

// d += A (16 x 32) B (32 x 8) for one warp, the fragments placed as the PTX ISA
// lists them for mma.m16n8k32 with 8-bit types: a_i byte j is A[gq + 8 (i % 2)]
// [4 tq + j + 16 (i / 2)], b_i byte j is B[4 tq + j + 16 i][gq], d_i is
// D[gq + 8 (i / 2)][2 tq + i % 2]. Exact sums (double: products of E4M3 codes
// are multiples of 2^-18 below 2^18, and these sums stay far below 2^53).
void mma_ref(const Warp& w, std::array<std::array<double, 4>, 32>& d) {
  double A[16][32], B[32][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int gq = lane / 4, tq = lane % 4;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) A[gq + 8 * (i % 2)][4 * tq + j + 16 * (i / 2)] = qt::e4m3_value(static_cast<uint8_t>(w.a[lane][i] >> (8 * j)));
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j) B[4 * tq + j + 16 * i][gq] = qt::e4m3_value(static_cast<uint8_t>(w.b[lane][i] >> (8 * j)));
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int gq = lane / 4, tq = lane % 4;
    for (int i = 0; i < 4; ++i) {
      double s = 0;
      for (int k = 0; k < 32; ++k) s += A[gq + 8 * (i / 2)][k] * B[k][2 * tq + i % 2];
      d[lane][static_cast<size_t>(i)] += s;
    }
  }
}

uint32_t word_of(const uint32_t* words, int64_t load, int j) { return words[load * 4 + j]; }

uint32_t codes4(const std::vector<uint8_t>& act, int64_t at) {
  return static_cast<uint32_t>(act[static_cast<size_t>(at)]) | (static_cast<uint32_t>(act[static_cast<size_t>(at + 1)]) << 8) |
         (static_cast<uint32_t>(act[static_cast<size_t>(at + 2)]) << 16) | (static_cast<uint32_t>(act[static_cast<size_t>(at + 3)]) << 24);
}

uint8_t scale_code(const Weight& w, int64_t n, int64_t k) { return n < w.n ? w.s(n, k) : 0; }

// The decode kernel (fireq_decode<NT>, then fireq_splits when splits > 1): P [M, N] for M <= 8 NT.
std::vector<double> replay_decode(const std::vector<uint8_t>& act, int64_t M, const Weight& w, const uint32_t* words, int NT,
                                  int splits) {
  const int64_t nch = w.kp / fq::kChunk, np = fq::padded_n(w.n);
  using Acc = std::array<std::array<double, 4>, 32>;
  std::vector<double> P(static_cast<size_t>(M * w.n), std::nan(""));
  for (int64_t blk = 0; blk < np / 16; ++blk) {
    const int64_t tile = 2 * blk;
    // [split][warp][token tile]
    std::vector<Acc> part(static_cast<size_t>(splits * fq::kDecodeWarps * NT), Acc{});
    for (int split = 0; split < splits; ++split) {
      for (int warp = 0; warp < fq::kDecodeWarps; ++warp) {
        for (int64_t c = fq::decode_first_chunk(split, warp); c < nch; c += fq::decode_chunk_stride(splits)) {
          for (int j = 0; j < 4; ++j) {
            const int64_t k = c * fq::kChunk + 32 * j;
            for (int t = 0; t < NT; ++t) {
              Warp reg;
              for (int lane = 0; lane < 32; ++lane) {
                const int gq = lane >> 2;
                const int64_t na = 8 * tile + gq, nb = na + 8;
                const fq::Codes ra = fq::decode(word_of(words, fq::lane_load(tile, c, lane, w.kp), j), fq::lut_of(scale_code(w, na, k)));
                const fq::Codes rb = fq::decode(word_of(words, fq::lane_load(tile + 1, c, lane, w.kp), j), fq::lut_of(scale_code(w, nb, k)));
                reg.a[lane] = {ra.first, rb.first, ra.second, rb.second};
                const int64_t m = 8 * t + gq;
                reg.b[lane] = {m < M ? codes4(act, m * w.kp + k + fq::frag_k(lane, 0)) : 0u,
                               m < M ? codes4(act, m * w.kp + k + fq::frag_k(lane, 1)) : 0u};
              }
              mma_ref(reg, part[static_cast<size_t>((split * fq::kDecodeWarps + warp) * NT + t)]);
            }
          }
        }
      }
    }
    for (int t = 0; t < NT; ++t) {
      for (int lane = 0; lane < 32; ++lane) {
        for (int e = 0; e < 4; ++e) {
          double p = 0;
          for (int sw = 0; sw < splits * fq::kDecodeWarps; ++sw) p += part[static_cast<size_t>(sw * NT + t)][static_cast<size_t>(lane)][static_cast<size_t>(e)];
          const int64_t n = 8 * tile + fq::acc_row(lane, e), m = 8 * t + fq::acc_col(lane, e);
          if (n < w.n && m < M) P[static_cast<size_t>(m * w.n + n)] = p;
        }
      }
    }
  }
  return P;
}

// The prefill kernel (fireq_prefill): 64 x 64 tiles, warp (wm, wn) = 32 x 32.
std::vector<double> replay_prefill(const std::vector<uint8_t>& act, int64_t M, const Weight& w, const uint32_t* words) {
  const int64_t nch = w.kp / fq::kChunk, tiles = fq::padded_n(w.n) / 8;
  std::vector<double> P(static_cast<size_t>(M * w.n), std::nan(""));
  for (int64_t n0 = 0; n0 < w.n; n0 += 64) {
    for (int64_t m0 = 0; m0 < M; m0 += 64) {
      for (int warp = 0; warp < 4; ++warp) {
        const int wm = warp >> 1, wn = warp & 1;
        const int64_t tile0 = n0 / 8 + wn * 4;
        std::array<std::array<std::array<std::array<double, 4>, 32>, 4>, 2> acc{};
        for (int64_t c = 0; c < nch; ++c) {
          for (int j = 0; j < 4; ++j) {
            const int64_t k = c * fq::kChunk + 32 * j;
            for (int t = 0; t < 4; ++t) {
              for (int i = 0; i < 2; ++i) {
                Warp reg;
                for (int lane = 0; lane < 32; ++lane) {
                  const int gq = lane >> 2;
                  const int64_t r0 = m0 + wm * 32 + i * 16 + gq, r1 = r0 + 8;  // rows of the staged tile (zeros past M)
                  auto a4 = [&](int64_t m, int half) { return m < M ? codes4(act, m * w.kp + k + fq::frag_k(lane, half)) : 0u; };
                  reg.a[lane] = {a4(r0, 0), a4(r1, 0), a4(r0, 1), a4(r1, 1)};
                  const int64_t tile = tile0 + t;
                  const uint32_t word = tile < tiles ? word_of(words, fq::lane_load(tile, c, lane, w.kp), j) : 0u;
                  const fq::Codes b = fq::decode(word, fq::lut_of(scale_code(w, 8 * tile + gq, k)));
                  reg.b[lane] = {b.first, b.second};
                }
                mma_ref(reg, acc[static_cast<size_t>(i)][static_cast<size_t>(t)]);
              }
            }
          }
        }
        for (int i = 0; i < 2; ++i)
          for (int t = 0; t < 4; ++t)
            for (int lane = 0; lane < 32; ++lane)
              for (int e = 0; e < 4; ++e) {
                const int64_t m = m0 + wm * 32 + i * 16 + fq::acc_row(lane, e);
                const int64_t n = n0 + wn * 32 + t * 8 + fq::acc_col(lane, e);
                if (m < M && n < w.n) P[static_cast<size_t>(m * w.n + n)] = acc[static_cast<size_t>(i)][static_cast<size_t>(t)][static_cast<size_t>(lane)][static_cast<size_t>(e)];
              }
      }
    }
  }
  return P;
}

void check_replay(const std::string& what, const std::vector<double>& P, const Tensor& acodes, const Weight& w) {
  const std::vector<qt::Exact> ref = qt::exact_all(acodes, w);
  KCHECK(P.size() == ref.size() && !ref.empty()) << what;
  int bad = 0;
  for (size_t i = 0; i < ref.size() && bad < 10; ++i) {
    if (!(P[i] == ref[i].p)) {
      ++bad;
      KCHECK(false) << what << ": P[" << i / static_cast<size_t>(w.n) << ", " << i % static_cast<size_t>(w.n) << "] = " << P[i]
                    << ", exact " << ref[i].p;
    }
  }
  KCHECK(bad == 0) << what << ": " << bad << "+ outputs differ from the exact sums";
}

KTEST(fireq, kernel_fragments_replayed_exactly) {
  kt::Rng rng(9);
  struct Case {
    int64_t m, n, k, g;
  };
  const Case cases[] = {{1, 16, 128, 128}, {3, 37, 300, 32}, {8, 24, 640, 160}, {11, 40, 256, 64},
                        {16, 9, 1000, 128}, {20, 70, 260, 384}, {67, 130, 200, 256}};
  for (const Case& cs : cases) {
    Weight w = random_weight(cs.n, cs.k, cs.g, rng);
    Tensor a = qt::make(DType::Float8E4M3, {cs.m, cs.k});
    std::vector<uint8_t> act(static_cast<size_t>(cs.m * w.kp), 0);  // the kernels' staged [M, Kp] buffer
    for (int64_t m = 0; m < cs.m; ++m) {
      const bool zero_row = m == 1;
      for (int64_t k = 0; k < cs.k; ++k) {
        uint8_t code = static_cast<uint8_t>(rng.below(256));
        if ((code & 0x7F) == 0x7F || zero_row) code = 0;  // no NaN here: exact sums compare
        qt::set_byte(a, m * cs.k + k, code);
        act[static_cast<size_t>(m * w.kp + k)] = code;
      }
    }
    Tensor frags = qt::make(DType::UInt8, {fq::padded_n(cs.n), w.kp / 2});
    const kiln::Status s = pack(w.packed, frags);
    KCHECK(s.ok()) << s.message();
    if (!s.ok()) continue;
    const uint32_t* words = reinterpret_cast<const uint32_t*>(frags.ptr(0));
    const std::string what = "M " + std::to_string(cs.m) + " N " + std::to_string(cs.n) + " K " + std::to_string(cs.k) +
                             " G " + std::to_string(cs.g);
    if (cs.m <= 16) {
      for (int splits : {1, 2, 3}) {
        check_replay("decode (" + std::to_string(splits) + " splits) " + what,
                     replay_decode(act, cs.m, w, words, cs.m <= 8 ? 1 : 2, splits), a, w);
      }
    }
    check_replay("prefill " + what, replay_prefill(act, cs.m, w, words), a, w);
  }
}

}  // namespace
