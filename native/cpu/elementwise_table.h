// Per-ISA inner loops for elementwise kernels. elementwise_impl.inc is compiled
// once per ISA (elementwise_{portable,avx2,avx512}.cpp, each with its own
// compiler flags and namespace); table() picks one at run time.
#pragma once
#include <cstdint>

#include "kiln/compare.h"
#include "kiln/cpu_features.h"
#include "kiln/dtype.h"
#include "kiln/elementwise.h"

namespace kiln {
namespace cpu {

// Strides are in elements; o[i*so] = a[i*sa] op b[i*sb] for i < n.
using BinaryRunFn = void (*)(const char* a, int64_t sa, const char* b, int64_t sb, char* o, int64_t so, int64_t n);
// d[i*ds] = convert(s[i*ss]) for i < n.
using CastRunFn = void (*)(const char* s, int64_t ss, char* d, int64_t ds, int64_t n);
// Comparisons and logical_and / logical_or (kiln/compare.h): a, b of the input
// dtype, o bool (0 / 1 bytes); strides in elements of each operand's own type.
using CompareRunFn = BinaryRunFn;
// logical_not: d[i*ds] = !s[i*ss] (bool -> bool).
using LogicalNotRunFn = CastRunFn;

struct ElementwiseTable {
  BinaryRunFn binary[kNumBinaryOps][kNumDTypes];  // nullptr: no kernel for that dtype
  CastRunFn cast[kNumDTypes][kNumDTypes];
  CompareRunFn compare[kNumCompareOps][kNumDTypes];  // indexed by the inputs' dtype; nullptr: none
  LogicalNotRunFn logical_not;
};

namespace portable { const ElementwiseTable& elementwise_table(); }
namespace avx2 { const ElementwiseTable& elementwise_table(); }
namespace avx512 { const ElementwiseTable& elementwise_table(); }

// The table for the active ISA level.
inline const ElementwiseTable& elementwise_table() {
  switch (active_isa()) {
    case IsaLevel::Avx512: return avx512::elementwise_table();
    case IsaLevel::Avx2: return avx2::elementwise_table();
    default: return portable::elementwise_table();
  }
}

}  // namespace cpu
}  // namespace kiln
