// CPU kernels 'rms_norm', 'rms_norm_backward', 'layer_norm', 'layer_norm_backward'
// (native/KERNELS.md "Normalization"). Validation: kiln/nn_ops.h; the loops:
// nn_kernels_impl.inc, compiled per ISA level.
#include "kiln/nn_ops.h"
#include "kiln/registry.h"
#include "nn_kernels.h"

namespace kiln {
namespace cpu {
namespace {

Status norm_kernel(const KernelArgs& args) {
  NormPlan plan;
  KILN_RETURN_IF_ERROR(prepare_norm(args, &plan));
  return nn_table().norm(args, plan);
}

KILN_REGISTER_KERNELS("rms_norm", DeviceKind::CPU, kFloat16Plus, norm_kernel);
KILN_REGISTER_KERNELS("rms_norm_backward", DeviceKind::CPU, kFloat16Plus, norm_kernel);
KILN_REGISTER_KERNELS("layer_norm", DeviceKind::CPU, kFloat16Plus, norm_kernel);
KILN_REGISTER_KERNELS("layer_norm_backward", DeviceKind::CPU, kFloat16Plus, norm_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
