// Per-ISA inner loops of the optimizer kernels (optim.cpp). optim_impl.inc is
// compiled once per ISA level (optim_{portable,avx2,avx512}.cpp); optim_table()
// picks one at run time. Every function works on elements [begin, end) of one
// tensor, contiguous. The reductions run inside one block (begin is a multiple
// of kCpuBlock from the tensor's start, end - begin <= kCpuBlock): element j
// goes to lane (j - begin) % 16, float32 lanes, combined pairwise at the end,
// so every ISA level gives the same bits.
#pragma once
#include <cstdint>

#include "kiln/cpu_features.h"
#include "kiln/optim.h"

namespace kiln {
namespace cpu {

// Raw pointers of one tensor's operands (element 0 of each; nullptr when absent).
struct OptimPtrs {
  char* p = nullptr;        // the parameter (its dtype)
  const char* g = nullptr;  // the gradient (p's dtype)
  float* m = nullptr;
  float* v = nullptr;
  float* vmax = nullptr;
  float* buf = nullptr;
  float* master = nullptr;
};

constexpr int kOptimDTypes = 3;  // 0 float32, 1 float16, 2 bfloat16
inline int optim_dtype_index(DType t) { return t == DType::Float16 ? 1 : t == DType::BFloat16 ? 2 : 0; }

using AdamwFn = void (*)(const OptimPtrs& t, const optim::AdamwGroup& c, const optim::AdamwScalars& s, int64_t begin,
                         int64_t end);
// Pass A: updates m, v; returns the block's sum p^2 and u^2.
using LambAFn = void (*)(const OptimPtrs& t, const optim::LambGroup& c, const optim::LambScalars& s, int64_t begin,
                         int64_t end, float* pp, float* uu);
using LambBFn = void (*)(const OptimPtrs& t, const optim::LambGroup& c, const optim::LambScalars& s, int64_t begin,
                         int64_t end);
// Pass A: the block's sum p^2 and g^2 (or (g + wd p)^2 when combined).
using LarsAFn = void (*)(const OptimPtrs& t, const optim::LarsGroup& c, const optim::LarsScalars& s, int64_t begin,
                         int64_t end, float* pp, float* gg);
using LarsBFn = void (*)(const OptimPtrs& t, const optim::LarsGroup& c, const optim::LarsScalars& s, bool first,
                         int64_t begin, int64_t end);
// The block's sum (g / gscale)^2 and sum of g * 0 (NaN iff an element is inf or NaN).
using SumsqFn = void (*)(const char* g, float gscale, int64_t begin, int64_t end, float* ss, float* nf);

struct OptimTable {
  AdamwFn adamw[kOptimDTypes][2][2][2];  // [dtype][master][amsgrad][l2]
  LambAFn lamb_a[kOptimDTypes][2][3];    // [dtype][master][decay]
  LambBFn lamb_b[kOptimDTypes][2][3];
  LarsAFn lars_a[kOptimDTypes][2][2];     // [dtype][master][combined]
  LarsBFn lars_b[kOptimDTypes][2][3][2];  // [dtype][master][style][nesterov]
  SumsqFn sumsq[kOptimDTypes];
};

namespace portable { const OptimTable& optim_table(); }
namespace avx2 { const OptimTable& optim_table(); }
namespace avx512 { const OptimTable& optim_table(); }

inline const OptimTable& optim_table() {
  switch (active_isa()) {
    case IsaLevel::Avx512: return avx512::optim_table();
    case IsaLevel::Avx2: return avx2::optim_table();
    default: return portable::optim_table();
  }
}

}  // namespace cpu
}  // namespace kiln
