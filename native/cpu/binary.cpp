// CPU kernels for add, sub, mul, div, maximum, minimum, pow with NumPy broadcasting.
#include "elementwise_table.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "nd_iter.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kGrain = 1 << 15;

Status binary_kernel(const KernelArgs& args) {
  BinaryPlan plan;
  KILN_RETURN_IF_ERROR(prepare_binary(args, &plan));
  const View &a = args.in[0], &b = args.in[1], &out = args.out[0];
  const BinaryRunFn run = elementwise_table().binary[static_cast<int>(plan.op)][static_cast<int>(out.dtype)];
  if (run == nullptr) return no_kernel(args.op, out.dtype, DeviceKind::CPU);
  const int64_t esize = static_cast<int64_t>(dtype_size(out.dtype));
  const int64_t sizes[3] = {esize, esize, esize};
  char* bases[3] = {out.data(), a.data(), b.data()};
  const int64_t* strides[3] = {out.strides, plan.a_strides, plan.b_strides};
  NdIter<3> it;
  it.init(out.ndim, out.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) {
      run(p[1], s[1] / esize, p[2], s[2] / esize, p[0], s[0] / esize, n);
    });
  });
  return Status::Ok();
}

const bool kRegistered = register_binary_kernels(DeviceKind::CPU, binary_kernel);
const bool kRegisteredPow = register_binary_op(BinaryOp::Pow, DeviceKind::CPU, binary_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
