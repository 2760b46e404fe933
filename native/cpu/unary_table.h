// Per-ISA inner loops for the unary ops, their backward ops, clamp and where
// (the math: kiln/unary_apply.h, kiln/fastmath.h). unary_impl.inc is compiled
// once per ISA level (unary_{portable,avx2,avx512}.cpp, each with its own
// compiler flags and namespace); unary_table() picks one at run time. The
// loops do the same IEEE operations at every level (no FMA contraction), so
// every level gives the same bits.
#pragma once
#include <cstdint>

#include "kiln/cpu_features.h"
#include "kiln/dtype.h"
#include "kiln/elementwise.h"

namespace kiln {
namespace cpu {

// Strides in elements. y[i*sy] = f(x[i*sx]) for i < n.
using UnaryRunFn = void (*)(const char* x, int64_t sx, char* y, int64_t sy, int64_t n);
// gx[i*sgx] = f'(x[i*sx]) * gy[i*sgy] for i < n.
using UnaryGradRunFn = void (*)(const char* x, int64_t sx, const char* gy, int64_t sgy, char* gx, int64_t sgx,
                                int64_t n);
// y[i*sy] = clamp(x[i*sx], plan bounds) for i < n.
using ClampRunFn = void (*)(const char* x, int64_t sx, char* y, int64_t sy, int64_t n, const ClampPlan& plan);
// o[i*so] = c[i*sc] != 0 ? a[i*sa] : b[i*sb] for i < n, on raw elements of one size.
using WhereRunFn = void (*)(const char* c, int64_t sc, const char* a, int64_t sa, const char* b, int64_t sb, char* o,
                            int64_t so, int64_t n);

struct UnaryTable {
  UnaryRunFn unary[kNumUnaryOps][kNumDTypes];  // nullptr: no kernel for that dtype
  UnaryGradRunFn grad[kNumUnaryGradOps][kNumDTypes];
  ClampRunFn clamp[kNumDTypes];
  WhereRunFn where[3];  // element size 1, 2, 4 bytes
};

namespace portable { const UnaryTable& unary_table(); }
namespace avx2 { const UnaryTable& unary_table(); }
namespace avx512 { const UnaryTable& unary_table(); }

// The table for the active ISA level.
inline const UnaryTable& unary_table() {
  switch (active_isa()) {
    case IsaLevel::Avx512: return avx512::unary_table();
    case IsaLevel::Avx2: return avx2::unary_table();
    default: return portable::unary_table();
  }
}

}  // namespace cpu
}  // namespace kiln
