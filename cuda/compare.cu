// CUDA kernels for eq, ne, lt, le, gt, ge, logical_and, logical_or (NumPy
// broadcasting, bool output) and logical_not, registered for exactly the CPU's
// (op, dtype) sets (native/cpu/compare.cpp). Validation: prepare_compare /
// prepare_logical_not (native/core/elementwise.cpp), as on the CPU; the
// arithmetic is kiln/compare.h, the CPU's own functions (IEEE float compares and
// integer compares, no rounding anywhere), so the output bytes are the CPU's.
#include <string>

#include "common.cuh"
#include "kiln/compare.h"
#include "kiln/element.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

// Operand 0 is the output, 1 and 2 the inputs (broadcast strides may be 0).
template <CompareOp OP, class E>
__global__ void compare_elements(const typename E::T* a, const typename E::T* b, uint8_t* o, StridedIndex<3> ix) {
  const int64_t n = ix.numel;
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { o[i] = compare_apply<OP, E>(a[i], b[i]); }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[3];
      ix.offsets(i, off);
      o[off[0]] = compare_apply<OP, E>(a[off[1]], b[off[2]]);
    }
  }
}

template <CompareOp OP, class E>
Status launch(const KernelArgs& args, const StridedIndex<3>& ix, cudaStream_t s) {
  using T = typename E::T;
  compare_elements<OP, E><<<grid_for(ix.numel), kBlock, 0, s>>>(
      reinterpret_cast<const T*>(args.in[0].data()), reinterpret_cast<const T*>(args.in[1].data()),
      reinterpret_cast<uint8_t*>(args.out[0].data()), ix);
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

template <CompareOp OP>
Status launch_op(const KernelArgs& args, const StridedIndex<3>& ix, cudaStream_t s) {
  const DType t = args.in[0].dtype;
  if constexpr (OP == CompareOp::LogicalAnd || OP == CompareOp::LogicalOr) {
    if (t == DType::Bool) return launch<OP, el::Bool>(args, ix, s);
  } else {
    switch (t) {
      case DType::Float32: return launch<OP, el::F32>(args, ix, s);
      case DType::Float16: return launch<OP, el::F16>(args, ix, s);
      case DType::BFloat16: return launch<OP, el::BF16>(args, ix, s);
      case DType::Int32: return launch<OP, el::I32>(args, ix, s);
      case DType::Int8: return launch<OP, el::I8>(args, ix, s);
      case DType::UInt8: return launch<OP, el::U8>(args, ix, s);
      case DType::Bool: return launch<OP, el::Bool>(args, ix, s);
      default: break;
    }
  }
  return no_kernel(args.op, t, DeviceKind::CUDA);
}

Status compare_kernel(const KernelArgs& args) {
  ComparePlan plan;
  KILN_RETURN_IF_ERROR(prepare_compare(args, &plan));
  const View& out = args.out[0];
  if (out.numel() == 0) return Status::Ok();
  StridedIndex<3> ix;
  const int64_t* strides[3] = {out.strides, plan.a_strides, plan.b_strides};
  ix.init(out.ndim, out.shape, strides);
  KILN_CUDA_ENTER(guard, out.device.index, args.op, s);
  switch (plan.op) {
    case CompareOp::Eq: return launch_op<CompareOp::Eq>(args, ix, s);
    case CompareOp::Ne: return launch_op<CompareOp::Ne>(args, ix, s);
    case CompareOp::Lt: return launch_op<CompareOp::Lt>(args, ix, s);
    case CompareOp::Le: return launch_op<CompareOp::Le>(args, ix, s);
    case CompareOp::Gt: return launch_op<CompareOp::Gt>(args, ix, s);
    case CompareOp::Ge: return launch_op<CompareOp::Ge>(args, ix, s);
    case CompareOp::LogicalAnd: return launch_op<CompareOp::LogicalAnd>(args, ix, s);
    case CompareOp::LogicalOr: return launch_op<CompareOp::LogicalOr>(args, ix, s);
  }
  return Status(StatusCode::Internal, std::string("kiln: unknown comparison op ") + args.op);
}

// Operand 0 is y, operand 1 is x.
__global__ void logical_not_elements(const uint8_t* x, uint8_t* y, StridedIndex<2> ix) {
  const int64_t n = ix.numel;
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { y[i] = logical_not_apply(x[i]); }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[2];
      ix.offsets(i, off);
      y[off[0]] = logical_not_apply(x[off[1]]);
    }
  }
}

Status logical_not_kernel(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(prepare_logical_not(args));
  const View &x = args.in[0], &y = args.out[0];
  if (y.numel() == 0) return Status::Ok();
  StridedIndex<2> ix;
  const int64_t* strides[2] = {y.strides, x.strides};
  ix.init(y.ndim, y.shape, strides);
  KILN_CUDA_ENTER(guard, y.device.index, args.op, s);
  logical_not_elements<<<grid_for(ix.numel), kBlock, 0, s>>>(reinterpret_cast<const uint8_t*>(x.data()),
                                                             reinterpret_cast<uint8_t*>(y.data()), ix);
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

const bool kRegistered = register_compare_kernels(DeviceKind::CUDA, compare_kernel);
KILN_REGISTER_KERNEL("logical_not", DeviceKind::CUDA, DType::Bool, logical_not_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
