// CPU kernels 'attention' and 'attention_backward' (native/KERNELS.md
// "Attention"): flash-attention style tiles (kAttnBlockQ x kAttnBlockK) with
// an online softmax; the backward recomputes probabilities from lse, gq in
// parallel over query blocks and gk / gv over key blocks. Validation:
// kiln/nn_ops.h; the loops: nn_kernels_impl.inc, compiled per ISA level.
#include "kiln/nn_ops.h"
#include "kiln/registry.h"
#include "nn_kernels.h"

namespace kiln {
namespace cpu {
namespace {

Status attention_kernel(const KernelArgs& args) {
  AttentionPlan plan;
  KILN_RETURN_IF_ERROR(prepare_attention(args, &plan));
  return nn_table().attention(args, plan);
}

KILN_REGISTER_KERNELS("attention", DeviceKind::CPU, kFloat16Plus, attention_kernel);
KILN_REGISTER_KERNELS("attention_backward", DeviceKind::CPU, kFloat16Plus, attention_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
