// The kernel registry (in the manner of tfjs-core): every kernel is registered
// under (op name, device kind, dtype) and reached only through run_kernel, which
// first validates what every kernel relies on (views inside their storage, all
// operands on one device). A missing combination is a NoKernel status:
//   "kiln: op 'X' has no kernel for dtype Y on device Z".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

struct KernelArgs {
  const char* op = "";
  const View* in = nullptr;
  int n_in = 0;
  const View* out = nullptr;
  int n_out = 0;
  const int64_t* ints = nullptr;  // integer attributes (seeds, op codes, raw fill bytes)
  int n_ints = 0;
  const double* floats = nullptr;  // real attributes (eps, scales)
  int n_floats = 0;
};

using KernelFn = Status (*)(const KernelArgs&);

// Returns true so it can initialise a static (see KILN_REGISTER_KERNEL).
bool register_kernel(const char* op, DeviceKind device, DType dtype, KernelFn fn);

// Registers fn for every dtype of a list (e.g. kAllDTypes).
template <size_t N>
bool register_kernels(const char* op, DeviceKind device, const DType (&dtypes)[N], KernelFn fn) {
  for (DType t : dtypes) register_kernel(op, device, t, fn);
  return true;
}

// The NoKernel status: "kiln: op 'X' has no kernel for dtype Y on device Z".
Status no_kernel(const char* op, DType dtype, DeviceKind device);

// Looks up (op, device of the operands, key dtype), validates the operands and runs it.
Status run_kernel(DType key_dtype, const KernelArgs& args);

// "op/device/dtype" for every registered kernel, sorted (for kiln.kernels()).
std::vector<std::string> registered_kernels();

// Helpers kernels use to report argument problems in one style.
Status expect_counts(const KernelArgs& a, int n_in, int n_out, int n_ints, int n_floats);

}  // namespace kiln

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)
#define KILN_REGISTER_KERNEL(op, device, dtype, fn) \
  static const bool KILN_CONCAT(kiln_registered_, __COUNTER__) = ::kiln::register_kernel(op, device, dtype, fn)
#define KILN_REGISTER_KERNELS(op, device, dtypes, fn) \
  static const bool KILN_CONCAT(kiln_registered_, __COUNTER__) = ::kiln::register_kernels(op, device, dtypes, fn)
