// CPU kernels for eq, ne, lt, le, gt, ge, logical_and, logical_or (NumPy
// broadcasting, bool output) and logical_not; the inner loops are the per-ISA
// ones of elementwise_impl.inc, the arithmetic kiln/compare.h.
#include "elementwise_table.h"
#include "kiln/compare.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "nd_iter.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kGrain = 1 << 15;

Status compare_kernel(const KernelArgs& args) {
  ComparePlan plan;
  KILN_RETURN_IF_ERROR(prepare_compare(args, &plan));
  const View &a = args.in[0], &b = args.in[1], &out = args.out[0];
  const CompareRunFn run = elementwise_table().compare[static_cast<int>(plan.op)][static_cast<int>(a.dtype)];
  if (run == nullptr) return no_kernel(args.op, a.dtype, DeviceKind::CPU);
  const int64_t esize = static_cast<int64_t>(dtype_size(a.dtype));
  const int64_t sizes[3] = {1, esize, esize};
  char* bases[3] = {out.data(), a.data(), b.data()};
  const int64_t* strides[3] = {out.strides, plan.a_strides, plan.b_strides};
  NdIter<3> it;
  it.init(out.ndim, out.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) {
      run(p[1], s[1] / esize, p[2], s[2] / esize, p[0], s[0], n);
    });
  });
  return Status::Ok();
}

Status logical_not_kernel(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(prepare_logical_not(args));
  const View &x = args.in[0], &y = args.out[0];
  const LogicalNotRunFn run = elementwise_table().logical_not;
  const int64_t sizes[2] = {1, 1};
  char* bases[2] = {y.data(), x.data()};
  const int64_t* strides[2] = {y.strides, x.strides};
  NdIter<2> it;
  it.init(y.ndim, y.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) { run(p[1], s[1], p[0], s[0], n); });
  });
  return Status::Ok();
}

const bool kRegistered = register_compare_kernels(DeviceKind::CPU, compare_kernel);
KILN_REGISTER_KERNEL("logical_not", DeviceKind::CPU, DType::Bool, logical_not_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
