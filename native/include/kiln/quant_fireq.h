// The FireQ fragment layout of INT4 weights: the canonical packed form
// (kiln/quant.h) re-encoded offline so that the CUDA W4A8 kernels
// (cuda/quant_fireq.cu) load each lane's weights of one mma fragment with one
// 16-byte load and turn them into E4M3 codes in registers with two byte
// permutes and two logic ops per 8 weights (FireQ's design: sign-magnitude
// INT4, a per-group 8-entry lookup table, PRMT). specs/quant.md "INT4 weights":
// the layout is derived from the canonical form and round-trip tested
// against it (suite 'fireq').
//
// The FP8 mma (m16n8k32, e4m3) gives each lane (gq = lane / 4, tq = lane % 4)
// of a weight row-tile of 8 rows the row n = 8 t + gq and, per 32-wide block
// of k, two 32-bit registers: k = 32 j + 4 tq + 0..3 ("first") and the same
// + 16 ("second"). As the mma's B operand they are b0, b1; as its A operand
// (rows n, the decode kernel) a0, a2 for row gq and a1, a3 for row gq + 8.
//
// Layout: uint32 words, word index ((t * Kp/128 + c) * 32 + lane) * 4 + j for
// row-tile t = n / 8, chunk c = k / 128, block j = (k % 128) / 32; a lane's
// four words of a chunk are one aligned 16-byte load, and a warp's loads of a
// chunk are 512 contiguous bytes. N is padded to a multiple of 16 (q = 0).
// In a word, the element (half h in {0: first, 1: second}, byte b = k % 4)
// keeps |q| in bits [4 (4h + b), +3) and its sign in bit 8b + 7 (h = 0) or
// 8b + 3 (h = 1): every nibble's top bit is a sign, so
//   sel = word & 0x77777777
//   first  = prmt(lut, sel)       ^ (word & 0x80808080)
//   second = prmt(lut, sel >> 16) ^ ((word << 4) & 0x80808080)
// with lut = the E4M3 codes of m * s, m = 0..7 (8 bytes, two registers).
// e4m3(-m s) = e4m3(m s) with the sign bit flipped (round-to-nearest-even and
// saturation are symmetric), so this equals w8_code(q, s) for q in [-7, 7]
// and any scale code (NaN scales give a NaN code). q = -8 has no sign-magnitude
// form: the packing op refuses weights that hold it (ValueError); they stay on
// the canonical kernels.
#pragma once
#include <cstdint>

#include "kiln/numerics.h"
#include "kiln/quant.h"

namespace kiln {
namespace quant {
namespace fireq {

constexpr int64_t kRowAlign = 16;  // N is padded to this (two row-tiles: one m16 A operand)
constexpr int64_t kChunk = 128;    // k per lane load (four 32-wide mma blocks)
constexpr int kWordsPerLane = 4;

KILN_HD int64_t padded_n(int64_t n) { return (n + kRowAlign - 1) / kRowAlign * kRowAlign; }

// The word index of (row-tile t, chunk c, lane, block j) for padded length kp.
KILN_HD int64_t word_index(int64_t tile, int64_t chunk, int lane, int j, int64_t kp) {
  return ((tile * (kp / kChunk) + chunk) * 32 + lane) * kWordsPerLane + j;
}

// The 16-byte load (uint4 index) of a lane's four words of (row-tile, chunk).
KILN_HD int64_t lane_load(int64_t tile, int64_t chunk, int lane, int64_t kp) {
  return word_index(tile, chunk, lane, 0, kp) / kWordsPerLane;
}

// Fragment coordinates of the m16n8k32 mma (PTX ISA, "Matrix fragments for
// mma.m16n8k32"): a lane's 4 codes of register half h start at k = 4 tq + 16 h;
// its accumulator e (0..3) is the row gq + 8 (e / 2), column 2 tq + e % 2.
KILN_HD int frag_k(int lane, int half) { return 4 * (lane & 3) + 16 * half; }
KILN_HD int acc_row(int lane, int e) { return (lane >> 2) + 8 * (e >> 1); }
KILN_HD int acc_col(int lane, int e) { return 2 * (lane & 3) + (e & 1); }

// The decode kernel's split of K: block row `split` of `splits`, warp w of
// kDecodeWarps takes the chunks first_chunk, first_chunk + chunk_stride, ...
constexpr int kDecodeWarps = 4;
KILN_HD int64_t decode_first_chunk(int split, int warp) { return static_cast<int64_t>(split) * kDecodeWarps + warp; }
KILN_HD int64_t decode_chunk_stride(int splits) { return static_cast<int64_t>(splits) * kDecodeWarps; }

// Where element (n, k) lives: its word and the bit positions of |q| and the sign.
struct Slot {
  int64_t word;
  int mag_shift, sign_shift;
};
KILN_HD Slot slot_of(int64_t n, int64_t k, int64_t kp) {
  const int lane = static_cast<int>((n & 7) * 4 + ((k & 15) >> 2));
  const int j = static_cast<int>((k & 127) >> 5);
  const int half = static_cast<int>((k & 31) >> 4), b = static_cast<int>(k & 3);
  Slot s;
  s.word = word_index(n >> 3, k >> 7, lane, j, kp);
  s.mag_shift = 4 * (4 * half + b);
  s.sign_shift = half == 0 ? 8 * b + 7 : 8 * b + 3;
  return s;
}

// The bits of q (in [-7, 7]) at its slot.
KILN_HD uint32_t encode(int q, const Slot& s) {
  const uint32_t mag = static_cast<uint32_t>(q < 0 ? -q : q);
  return (mag << s.mag_shift) | (static_cast<uint32_t>(q < 0) << s.sign_shift);
}

// q back from a word (sign-magnitude; "-0" reads as 0).
KILN_HD int decode_q(uint32_t word, const Slot& s) {
  const int mag = static_cast<int>((word >> s.mag_shift) & 7u);
  return ((word >> s.sign_shift) & 1u) ? -mag : mag;
}

// PRMT / __byte_perm with a selector whose nibbles are in [0, 7]: byte i of
// the result is byte sel[4i+2 : 4i] of the 8 bytes {hi, lo}.
KILN_HD uint32_t byte_perm(uint32_t lo, uint32_t hi, uint32_t sel) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(lo, hi, sel);
#else
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t idx = (sel >> (4 * i)) & 7u;
    const uint32_t src = idx < 4 ? lo : hi;
    r |= ((src >> (8 * (idx & 3u))) & 0xFFu) << (8 * i);
  }
  return r;
#endif
}

// The lookup table of a scale code: byte m (of lo for m < 4, of hi for m >= 4) = w8_code(m, s).
struct Lut {
  uint32_t lo, hi;
};
KILN_HD Lut lut_of(uint8_t s_code) {
  Lut t{0, 0};
  for (int m = 0; m < 4; ++m) {
    t.lo |= static_cast<uint32_t>(w8_code(m, s_code)) << (8 * m);
    t.hi |= static_cast<uint32_t>(w8_code(m + 4, s_code)) << (8 * m);
  }
  return t;
}

// The E4M3 codes of a word's 8 weights: first = k 4tq + 0..3, second = + 16.
struct Codes {
  uint32_t first, second;
};
KILN_HD Codes decode(uint32_t word, Lut t) {
  const uint32_t sel = word & 0x77777777u;
  Codes c;
  c.first = byte_perm(t.lo, t.hi, sel) ^ (word & 0x80808080u);
  c.second = byte_perm(t.lo, t.hi, sel >> 16) ^ ((word << 4) & 0x80808080u);
  return c;
}

}  // namespace fireq
}  // namespace quant
}  // namespace kiln
