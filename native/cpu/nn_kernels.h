// Per-ISA implementations of the normalization and attention kernels.
// nn_kernels_impl.inc is compiled once per ISA level
// (nn_kernels_{portable,avx2,avx512}.cpp, each with its own compiler flags and
// namespace); nn_table() picks one at run time. Validation happens before
// (kiln/nn_ops.h), so these functions only compute.
#pragma once
#include "kiln/cpu_features.h"
#include "kiln/nn_ops.h"
#include "kiln/registry.h"
#include "kiln/status.h"

namespace kiln {
namespace cpu {

struct NnTable {
  Status (*norm)(const KernelArgs& args, const NormPlan& plan);            // forward and backward
  Status (*attention)(const KernelArgs& args, const AttentionPlan& plan);  // forward and backward
};

namespace portable { const NnTable& nn_table(); }
namespace avx2 { const NnTable& nn_table(); }
namespace avx512 { const NnTable& nn_table(); }

// The table for the active ISA level.
inline const NnTable& nn_table() {
  switch (active_isa()) {
    case IsaLevel::Avx512: return avx512::nn_table();
    case IsaLevel::Avx2: return avx2::nn_table();
    default: return portable::nn_table();
  }
}

// Attention tile sizes (query rows x key columns). Results depend on them (the
// online softmax rescales per key tile), never on the thread count.
constexpr int64_t kAttnBlockQ = 64;
constexpr int64_t kAttnBlockK = 64;

}  // namespace cpu
}  // namespace kiln
