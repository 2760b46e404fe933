// CPU kernel 'cast': strided copy with dtype conversion (also serves
// contiguous() and clone() when the dtypes match).
#include "elementwise_table.h"
#include "kiln/elementwise.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "nd_iter.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kGrain = 1 << 15;

Status cast_kernel(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 1, 1, 0, 0));
  const View &src = args.in[0], &dst = args.out[0];
  KILN_RETURN_IF_ERROR(check_cast(src, dst));
  const CastRunFn run = elementwise_table().cast[static_cast<int>(src.dtype)][static_cast<int>(dst.dtype)];
  const int64_t ss = static_cast<int64_t>(dtype_size(src.dtype)), ds = static_cast<int64_t>(dtype_size(dst.dtype));
  const int64_t sizes[2] = {ds, ss};
  char* bases[2] = {dst.data(), src.data()};
  const int64_t* strides[2] = {dst.strides, src.strides};
  NdIter<2> it;
  it.init(dst.ndim, dst.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) { run(p[1], s[1] / ss, p[0], s[0] / ds, n); });
  });
  return Status::Ok();
}

KILN_REGISTER_KERNELS("cast", DeviceKind::CPU, kAllDTypes, cast_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
