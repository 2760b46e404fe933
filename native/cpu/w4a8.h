// The CPU W4A8 GEMM (kernels 'w4a8_gemm', 'w4a8_linear'): the per-ISA pieces
// that w4a8.cpp's driver (validation, activation preparation, threading)
// calls through a table. w4a8_impl.inc is compiled once per level:
//   portable    scalar, float32 lookup, k in order
//   avx2        8 lanes, float32 lookup (two vpermps + blend), FMA
//   avx512      16 lanes, float32 lookup (vpermps), FMA
//   avx512bf16  16 lanes x 2, bfloat16 lookup (vpermw) and vdpbf16ps
// Every E4M3 value and every w8 = e4m3(q*s) is exactly a bfloat16 and the
// product of two is exact in float32 (specs/quant.md "W4A8 GEMM"), so the
// bf16 path only rounds the float32 additions, like the others.
//
// Layout: activations are prepared once per call into rows of Kp elements
// (the level's type, zero past K), permuted within each chunk of C k's so
// that one nibble mask / shift of C/2 packed bytes gives the lanes' weights:
// chunk layout [a at even k | a at odd k]. The weights are read in the
// canonical packed layout (no repacking): for each group, the 16-entry lookup
// of w8 for its scale code. Up to 32 rows the weights are decoded on the fly
// for every block of 4 rows (a block of columns at a time, in L2); for more
// rows a panel of columns is first decoded into the same vector layout and
// reused by every row block, K in blocks that keep a row block's activations
// in L1. Weight rows are prefetched ahead (a GEMV streams them from RAM).
//
// Arithmetic of one output, fixed by K and the level (never by M, N, the
// thread count, the row block or whether the weights were pre-decoded): two
// vector accumulators (even-k and odd-k lanes) start at 0 and take the
// chunks in k order; P = horizontal sum of (even + odd) in a fixed tree;
// y = fmaf(P, alpha[m], bias[n]) rounded once to y's dtype.
#pragma once
#include <cstdint>

#include "kiln/cpu_features.h"
#include "kiln/dtype.h"

namespace kiln {
namespace cpu {

// w8 = e4m3(q * s) for every scale code c (256) and nibble (16): [c * 16 + nibble].
// 64-byte aligned; built once.
const float* w4a8_lut_f32();
const uint16_t* w4a8_lut_bf16();  // the same values as bfloat16 bits (exact)

// One rectangle of the output: rows [0, rows) of the prepared activations and
// columns [0, cols) of the weights (pointers already at the rectangle's corner).
struct W4A8Tile {
  const void* act;        // row 0; row r at act + r * act_ld elements
  int64_t act_ld;
  const float* alpha;     // [rows]: s_a * 2^-e
  const uint8_t* packed;  // weight row (output column) 0; row j at + j * kp / 2
  const uint8_t* scales;  // row j at + j * (kp / group)
  const float* bias;      // [cols] or nullptr
  char* y;                // element (0, 0); row r at + r * y_ld elements
  int64_t y_ld;
  DType out;
  int64_t rows, cols, kp, group;
  const float* lut_f32;
  const uint16_t* lut_bf16;
};

struct W4A8Kernels {
  const char* name;
  int act_bytes;   // bytes per prepared activation element (4, or 2 for bf16)
  int block_rows;  // rows multiplied per weight decode (fused tiles up to this many rows)
  // float32 row x (k values) -> E4M3 codes; returns s_a (static_scale > 0: that scale).
  float (*quantize_row)(const float* x, int64_t k, float static_scale, uint8_t* codes);
  // E4M3 codes (k) -> the level's activation row (kp elements, zero padded).
  void (*prepare_row)(const uint8_t* codes, int64_t k, int64_t kp, void* dst);
  // The tile, epilogue included; false when a work buffer could not be allocated.
  bool (*tile)(const W4A8Tile& t);
};

namespace portable { const W4A8Kernels& w4a8_kernels(); }
namespace avx2 { const W4A8Kernels& w4a8_kernels(); }
namespace avx512 { const W4A8Kernels& w4a8_kernels(); }
namespace avx512bf16 { const W4A8Kernels& w4a8_kernels(); }

// The level in use: the active ISA level, and at avx512 the bf16 path when the
// CPU has AVX512-BF16 (unless turned off for testing).
const W4A8Kernels& w4a8_kernels();

// Testing hook: false makes the avx512 level use its float32 path. Not thread-safe.
void w4a8_set_bf16_for_testing(bool enabled);

}  // namespace cpu
}  // namespace kiln
