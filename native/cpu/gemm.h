// The CPU GEMM (kernel 'matmul'): the per-ISA pieces that gemm.cpp's driver
// (blocking, threading, batching, output conversion) calls through a table.
//
// gemm_impl.inc is compiled once per ISA level (gemm_{portable,avx2,avx512}.cpp,
// each with its own flags and namespace) and fills a GemmKernels table:
//   - pack_a: an mc x kc block of A (any strides; float32, float16 or
//     bfloat16, widened exactly) into MR-row slivers, each [kc][MR] floats;
//   - pack_b: a kc x nc block of B into NR-column slivers, each [kc][NR]
//     floats, zero padded past nc;
//   - ukernel[r] (r = 1..MR): C[0:r, 0:n] (=|+=) A_sliver * B_sliver for one
//     register tile, B either packed (ldb = NR) or read straight from float32
//     rows (ldb = the row stride; full tiles only, with software prefetch);
//   - stream[r] (r = 1..4): a few rows of C, B's float32 rows streamed in order.
//
// bfloat16 and float16 are widened to float32 while packing and multiplied in
// float32 like float32 inputs; AVX512-BF16's vdpbf16ps is not used (it adds
// pairs of products with its own rounding and flushes denormals, which would
// make bfloat16 results differ from the other paths).
//
// Arithmetic, the same in every path of one ISA level: each C element is
// c = 0; for k = 0 .. K-1 in order: c = c + a[k] * b[k], in float32, the
// running value stored in float32 between K blocks. The avx2 and avx512
// levels fuse the multiply-add (FMA, one rounding), so they give bit-identical
// results; the portable level multiplies and adds with two roundings (no FMA
// without -mfma), so its results differ from theirs in the last bits (the
// tests hold it to the same error bound). Nothing depends on the thread count,
// the blocking or the tile a C element falls in.
#pragma once
#include <cstdint>

#include "kiln/cpu_features.h"
#include "kiln/dtype.h"

namespace kiln {
namespace cpu {

constexpr int kGemmMaxMR = 16;

// flags for a micro-kernel call
constexpr int kGemmAccumulate = 1;  // C holds the sum over earlier K blocks: continue it (else start from 0)

// C[i*ldc + j] for i < r, j < n (n <= NR). a: packed sliver (element (i, k) at a[k*MR + i]).
// b: element (k, j) at b[k*ldb + j]; packed slivers have ldb = NR. The "direct" kernels
// read b straight from a float32 matrix (n == NR only) and prefetch rows ahead.
using GemmUKernel = void (*)(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int n,
                             int flags);

// Packs src (element (i, k) at src[i*s_rows + k*s_k], dtype dt) for i < rows, k < kc into
// ceil(rows / MR) slivers of [kc][MR] floats (pack_a) or, for B with (k, j) at
// src[k*s_k + j*s_cols], ceil(cols / NR) slivers of [kc][NR] (pack_b), zero padded.
// dst must hold that many floats plus kGemmPackSlack.
using GemmPackFn = void (*)(const void* src, DType dt, int64_t s_outer, int64_t s_k, int64_t outer, int64_t kc,
                            float* dst);
constexpr int64_t kGemmPackSlack = 64;  // floats a pack routine may write past the last sliver

// Few-row product with B float32 rows read in order (see stream_rows in gemm_impl.inc):
// c[i*ldc + j] (=|+=) sum_k a[k*MR + i] * b[k*ldb + j], i < r, j < n, for any n.
constexpr int kGemmStreamMaxRows = 4;
using GemmStreamFn = void (*)(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                              int64_t n, int flags);

struct GemmKernels {
  const char* isa;
  int mr, nr;
  // Cache blocking: kc rows of K per packed block, mc rows of A per block (in L2),
  // nc columns of B per packed panel.
  int64_t kc, mc, nc;
  GemmPackFn pack_a;
  GemmPackFn pack_b;
  GemmUKernel ukernel[kGemmMaxMR + 1];         // [r], r = 1..mr
  GemmUKernel ukernel_direct[kGemmMaxMR + 1];  // [r], r = 1..mr; b unpacked float32, n == NR
  GemmStreamFn stream[kGemmStreamMaxRows + 1];  // [r], r = 1..kGemmStreamMaxRows
};

namespace portable { const GemmKernels& gemm_kernels(); }
namespace avx2 { const GemmKernels& gemm_kernels(); }
namespace avx512 { const GemmKernels& gemm_kernels(); }

// Testing and tuning hook: replaces the cache blocking of every ISA level
// (0 keeps the level's own value; mc / nc are rounded up to whole slivers), so
// that small products cross every block boundary. Not thread-safe; results do
// not depend on it (see above).
void gemm_set_blocking_for_testing(int64_t kc, int64_t mc, int64_t nc);

inline const GemmKernels& gemm_kernels() {
  switch (active_isa()) {
    case IsaLevel::Avx512: return avx512::gemm_kernels();
    case IsaLevel::Avx2: return avx2::gemm_kernels();
    default: return portable::gemm_kernels();
  }
}

}  // namespace cpu
}  // namespace kiln
