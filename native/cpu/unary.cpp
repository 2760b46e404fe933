// CPU kernels for the unary ops (neg abs relu exp log sqrt rsqrt sigmoid tanh
// silu gelu gelu_tanh), their backward ops (relu_backward ... tanh_backward),
// clamp and where: validation in native/core/elementwise.cpp, inner loops per
// ISA in unary_impl.inc. Work is split over output elements only.
#include "kiln/elementwise.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "nd_iter.h"
#include "unary_table.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

Status unary_kernel(const KernelArgs& args) {
  UnaryOp op;
  KILN_RETURN_IF_ERROR(prepare_unary(args, &op));
  const View &x = args.in[0], &y = args.out[0];
  const UnaryRunFn run = unary_table().unary[static_cast<int>(op)][static_cast<int>(x.dtype)];
  if (run == nullptr) return no_kernel(args.op, x.dtype, DeviceKind::CPU);
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype));
  const int64_t sizes[2] = {es, es};
  char* bases[2] = {y.data(), x.data()};
  const int64_t* strides[2] = {y.strides, x.strides};
  NdIter<2> it;
  it.init(y.ndim, y.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) { run(p[1], s[1] / es, p[0], s[0] / es, n); });
  });
  return Status::Ok();
}

Status unary_grad_kernel(const KernelArgs& args) {
  UnaryGradOp op;
  KILN_RETURN_IF_ERROR(prepare_unary_grad(args, &op));
  const View &x = args.in[0], &gy = args.in[1], &gx = args.out[0];
  const UnaryGradRunFn run = unary_table().grad[static_cast<int>(op)][static_cast<int>(x.dtype)];
  if (run == nullptr) return no_kernel(args.op, x.dtype, DeviceKind::CPU);
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype));
  const int64_t sizes[3] = {es, es, es};
  char* bases[3] = {gx.data(), x.data(), gy.data()};
  const int64_t* strides[3] = {gx.strides, x.strides, gy.strides};
  NdIter<3> it;
  it.init(gx.ndim, gx.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) {
      run(p[1], s[1] / es, p[2], s[2] / es, p[0], s[0] / es, n);
    });
  });
  return Status::Ok();
}

Status clamp_kernel(const KernelArgs& args) {
  ClampPlan plan;
  KILN_RETURN_IF_ERROR(prepare_clamp(args, &plan));
  const View &x = args.in[0], &y = args.out[0];
  const ClampRunFn run = unary_table().clamp[static_cast<int>(x.dtype)];
  if (run == nullptr) return no_kernel(args.op, x.dtype, DeviceKind::CPU);
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype));
  const int64_t sizes[2] = {es, es};
  char* bases[2] = {y.data(), x.data()};
  const int64_t* strides[2] = {y.strides, x.strides};
  NdIter<2> it;
  it.init(y.ndim, y.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain * 4, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) {
      run(p[1], s[1] / es, p[0], s[0] / es, n, plan);
    });
  });
  return Status::Ok();
}

Status where_kernel(const KernelArgs& args) {
  WherePlan plan;
  KILN_RETURN_IF_ERROR(prepare_where(args, &plan));
  const View &c = args.in[0], &a = args.in[1], &b = args.in[2], &out = args.out[0];
  const int64_t es = static_cast<int64_t>(dtype_size(out.dtype));
  const WhereRunFn run = unary_table().where[es == 1 ? 0 : (es == 2 ? 1 : 2)];
  const int64_t sizes[4] = {es, 1, es, es};
  char* bases[4] = {out.data(), c.data(), a.data(), b.data()};
  const int64_t* strides[4] = {out.strides, plan.cond_strides, plan.a_strides, plan.b_strides};
  NdIter<4> it;
  it.init(out.ndim, out.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain * 4, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) {
      run(p[1], s[1], p[2], s[2] / es, p[3], s[3] / es, p[0], s[0] / es, n);
    });
  });
  return Status::Ok();
}

const bool kUnary = register_unary_kernels(DeviceKind::CPU, unary_kernel);
const bool kGrad = register_unary_grad_kernels(DeviceKind::CPU, unary_grad_kernel);
KILN_REGISTER_KERNELS("clamp", DeviceKind::CPU, kFloat16PlusInt32, clamp_kernel);
KILN_REGISTER_KERNELS("where", DeviceKind::CPU, kAllDTypes, where_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
