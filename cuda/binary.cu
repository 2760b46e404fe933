// CUDA kernels for add, sub, mul, div, maximum, minimum, pow with NumPy
// broadcasting; the arithmetic is kiln/binary_apply.h, shared with the CPU, so
// the results are the CPU's bits (pow is fastmath's pow_f32: this file is
// compiled with -fmad=false, see CMakeLists.txt, so that nvcc does not contract
// its float/double expressions into FMA). NaNs made by add ... div carry the
// GPU's canonical NaN bits instead of x86's; pow's NaN is the canonical
// 0x7FC00000 on both.
#include <string>

#include "common.cuh"
#include "kiln/binary_apply.h"
#include "kiln/elementwise.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

// Operand 0 is the output, 1 and 2 the inputs (broadcast strides may be 0).
template <BinaryOp OP, class E>
__global__ void binary_elements(const typename E::T* a, const typename E::T* b, typename E::T* o, StridedIndex<3> ix) {
  const int64_t n = ix.numel;
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { o[i] = binary_apply<OP, E>(a[i], b[i]); }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[3];
      ix.offsets(i, off);
      o[off[0]] = binary_apply<OP, E>(a[off[1]], b[off[2]]);
    }
  }
}

struct Operands {
  const View* a;
  const View* b;
  const View* out;
  StridedIndex<3> ix;
  cudaStream_t stream;
  const char* op;
};

template <BinaryOp OP, class E>
Status launch(const Operands& p) {
  using T = typename E::T;
  binary_elements<OP, E><<<grid_for(p.ix.numel), kBlock, 0, p.stream>>>(
      reinterpret_cast<const T*>(p.a->data()), reinterpret_cast<const T*>(p.b->data()),
      reinterpret_cast<T*>(p.out->data()), p.ix);
  KILN_CUDA_LAUNCH_CHECK(p.op);
  return Status::Ok();
}

template <BinaryOp OP>
Status launch_op(const Operands& p) {
  switch (p.out->dtype) {
    case DType::Float32: return launch<OP, el::F32>(p);
    case DType::Float16: return launch<OP, el::F16>(p);
    case DType::BFloat16: return launch<OP, el::BF16>(p);
    case DType::Int32:
      if constexpr (OP != BinaryOp::Div && OP != BinaryOp::Pow) return launch<OP, el::I32>(p);
      break;
    default: break;
  }
  return no_kernel(p.op, p.out->dtype, DeviceKind::CUDA);
}

Status binary_kernel(const KernelArgs& args) {
  BinaryPlan plan;
  KILN_RETURN_IF_ERROR(prepare_binary(args, &plan));
  const View &a = args.in[0], &b = args.in[1], &out = args.out[0];
  if (out.numel() == 0) return Status::Ok();
  Operands p;
  p.a = &a;
  p.b = &b;
  p.out = &out;
  p.op = args.op;
  const int64_t* strides[3] = {out.strides, plan.a_strides, plan.b_strides};
  p.ix.init(out.ndim, out.shape, strides);
  KILN_CUDA_ENTER(guard, out.device.index, args.op, s);
  p.stream = s;
  switch (plan.op) {
    case BinaryOp::Add: return launch_op<BinaryOp::Add>(p);
    case BinaryOp::Sub: return launch_op<BinaryOp::Sub>(p);
    case BinaryOp::Mul: return launch_op<BinaryOp::Mul>(p);
    case BinaryOp::Div: return launch_op<BinaryOp::Div>(p);
    case BinaryOp::Maximum: return launch_op<BinaryOp::Maximum>(p);
    case BinaryOp::Minimum: return launch_op<BinaryOp::Minimum>(p);
    case BinaryOp::Pow: return launch_op<BinaryOp::Pow>(p);
  }
  return Status(StatusCode::Internal, std::string("kiln: unknown binary op ") + args.op);
}

const bool kRegistered = register_binary_kernels(DeviceKind::CUDA, binary_kernel);
const bool kRegisteredPow = register_binary_op(BinaryOp::Pow, DeviceKind::CUDA, binary_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
