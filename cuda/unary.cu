// CUDA kernels for the unary ops (neg abs relu exp log sqrt rsqrt sigmoid tanh
// silu gelu gelu_tanh), their backward ops (relu_backward ... tanh_backward),
// clamp and where, registered for exactly the CPU's (op, dtype) sets
// (native/cpu/unary.cpp). Validation: native/core/elementwise.cpp (the same
// prepare_* calls as the CPU); arithmetic: kiln/unary_apply.h and
// kiln/fastmath.h, the CPU's own functions, one thread per output element.
//
// Bit-identity with the CPU: fastmath is plain IEEE float/double arithmetic,
// and this file is compiled with -fmad=false (CMakeLists.txt), so nvcc does not
// contract a*b+c into FMA; division and sqrt are IEEE (nvcc's defaults
// -prec-div=true, -prec-sqrt=true, -ftz=false; never fast-math); double ->
// float conversions round to nearest even. fastmath's nan_in / sqrt_f32 keep a
// NaN argument's sign and payload on the device too. So every output is the
// CPU's bits, except NaNs that arithmetic makes from non-NaN operands (sqrt or
// rsqrt of a negative number, inf * 0 inside a backward op), which are NaN on
// both but carry the GPU's canonical bits rather than x86's.
#include <string>
#include <type_traits>

#include "common.cuh"
#include "kiln/element.h"
#include "kiln/elementwise.h"
#include "kiln/registry.h"
#include "kiln/unary_apply.h"

namespace kiln {
namespace cuda {
namespace {

// ---- unary -------------------------------------------------------------------------------

template <UnaryOp OP, class E>
__device__ __forceinline__ typename E::T unary_elem(typename E::T x) {
  if constexpr (std::is_same<E, el::I32>::value) {
    return unary_apply_i32<OP>(x);
  } else {
    return E::from_f32(unary_apply_f32<OP>(E::to_f32(x)));
  }
}

// Operand 0 is y, operand 1 is x.
template <UnaryOp OP, class E>
__global__ void unary_elements(const typename E::T* x, typename E::T* y, StridedIndex<2> ix) {
  const int64_t n = ix.numel;
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { y[i] = unary_elem<OP, E>(x[i]); }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[2];
      ix.offsets(i, off);
      y[off[0]] = unary_elem<OP, E>(x[off[1]]);
    }
  }
}

template <UnaryOp OP, class E>
Status launch_unary(const View& x, const View& y, const StridedIndex<2>& ix, cudaStream_t s, const char* op) {
  using T = typename E::T;
  unary_elements<OP, E><<<grid_for(ix.numel), kBlock, 0, s>>>(reinterpret_cast<const T*>(x.data()),
                                                               reinterpret_cast<T*>(y.data()), ix);
  KILN_CUDA_LAUNCH_CHECK(op);
  return Status::Ok();
}

template <UnaryOp OP>
Status unary_dtype(const View& x, const View& y, const StridedIndex<2>& ix, cudaStream_t s, const char* op) {
  switch (x.dtype) {
    case DType::Float32: return launch_unary<OP, el::F32>(x, y, ix, s, op);
    case DType::Float16: return launch_unary<OP, el::F16>(x, y, ix, s, op);
    case DType::BFloat16: return launch_unary<OP, el::BF16>(x, y, ix, s, op);
    case DType::Int32:
      if constexpr (OP == UnaryOp::Neg || OP == UnaryOp::Abs || OP == UnaryOp::Relu) {
        return launch_unary<OP, el::I32>(x, y, ix, s, op);
      }
      break;
    default: break;
  }
  return no_kernel(op, x.dtype, DeviceKind::CUDA);
}

Status unary_kernel(const KernelArgs& args) {
  UnaryOp op;
  KILN_RETURN_IF_ERROR(prepare_unary(args, &op));
  const View &x = args.in[0], &y = args.out[0];
  if (y.numel() == 0) return Status::Ok();
  StridedIndex<2> ix;
  const int64_t* strides[2] = {y.strides, x.strides};
  ix.init(y.ndim, y.shape, strides);
  KILN_CUDA_ENTER(guard, y.device.index, args.op, s);
  switch (op) {
    case UnaryOp::Neg: return unary_dtype<UnaryOp::Neg>(x, y, ix, s, args.op);
    case UnaryOp::Abs: return unary_dtype<UnaryOp::Abs>(x, y, ix, s, args.op);
    case UnaryOp::Relu: return unary_dtype<UnaryOp::Relu>(x, y, ix, s, args.op);
    case UnaryOp::Exp: return unary_dtype<UnaryOp::Exp>(x, y, ix, s, args.op);
    case UnaryOp::Log: return unary_dtype<UnaryOp::Log>(x, y, ix, s, args.op);
    case UnaryOp::Sqrt: return unary_dtype<UnaryOp::Sqrt>(x, y, ix, s, args.op);
    case UnaryOp::Rsqrt: return unary_dtype<UnaryOp::Rsqrt>(x, y, ix, s, args.op);
    case UnaryOp::Sigmoid: return unary_dtype<UnaryOp::Sigmoid>(x, y, ix, s, args.op);
    case UnaryOp::Tanh: return unary_dtype<UnaryOp::Tanh>(x, y, ix, s, args.op);
    case UnaryOp::Silu: return unary_dtype<UnaryOp::Silu>(x, y, ix, s, args.op);
    case UnaryOp::Gelu: return unary_dtype<UnaryOp::Gelu>(x, y, ix, s, args.op);
    case UnaryOp::GeluTanh: return unary_dtype<UnaryOp::GeluTanh>(x, y, ix, s, args.op);
  }
  return Status(StatusCode::Internal, std::string("kiln: unknown unary op ") + args.op);
}

// ---- unary backward ----------------------------------------------------------------------------

// Operand 0 is gx, 1 is x (or y), 2 is gy.
template <UnaryGradOp OP, class E>
__global__ void grad_elements(const typename E::T* x, const typename E::T* gy, typename E::T* gx, StridedIndex<3> ix) {
  const int64_t n = ix.numel;
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { gx[i] = E::from_f32(unary_grad_apply_f32<OP>(E::to_f32(x[i]), E::to_f32(gy[i]))); }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[3];
      ix.offsets(i, off);
      gx[off[0]] = E::from_f32(unary_grad_apply_f32<OP>(E::to_f32(x[off[1]]), E::to_f32(gy[off[2]])));
    }
  }
}

template <UnaryGradOp OP, class E>
Status launch_grad(const KernelArgs& args, const StridedIndex<3>& ix, cudaStream_t s) {
  using T = typename E::T;
  grad_elements<OP, E><<<grid_for(ix.numel), kBlock, 0, s>>>(reinterpret_cast<const T*>(args.in[0].data()),
                                                              reinterpret_cast<const T*>(args.in[1].data()),
                                                              reinterpret_cast<T*>(args.out[0].data()), ix);
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

template <UnaryGradOp OP>
Status grad_dtype(const KernelArgs& args, const StridedIndex<3>& ix, cudaStream_t s) {
  switch (args.in[0].dtype) {
    case DType::Float32: return launch_grad<OP, el::F32>(args, ix, s);
    case DType::Float16: return launch_grad<OP, el::F16>(args, ix, s);
    case DType::BFloat16: return launch_grad<OP, el::BF16>(args, ix, s);
    default: break;
  }
  return no_kernel(args.op, args.in[0].dtype, DeviceKind::CUDA);
}

Status unary_grad_kernel(const KernelArgs& args) {
  UnaryGradOp op;
  KILN_RETURN_IF_ERROR(prepare_unary_grad(args, &op));
  const View &x = args.in[0], &gy = args.in[1], &gx = args.out[0];
  if (gx.numel() == 0) return Status::Ok();
  StridedIndex<3> ix;
  const int64_t* strides[3] = {gx.strides, x.strides, gy.strides};
  ix.init(gx.ndim, gx.shape, strides);
  KILN_CUDA_ENTER(guard, gx.device.index, args.op, s);
  switch (op) {
    case UnaryGradOp::Relu: return grad_dtype<UnaryGradOp::Relu>(args, ix, s);
    case UnaryGradOp::Gelu: return grad_dtype<UnaryGradOp::Gelu>(args, ix, s);
    case UnaryGradOp::GeluTanh: return grad_dtype<UnaryGradOp::GeluTanh>(args, ix, s);
    case UnaryGradOp::Silu: return grad_dtype<UnaryGradOp::Silu>(args, ix, s);
    case UnaryGradOp::Sigmoid: return grad_dtype<UnaryGradOp::Sigmoid>(args, ix, s);
    case UnaryGradOp::Tanh: return grad_dtype<UnaryGradOp::Tanh>(args, ix, s);
  }
  return Status(StatusCode::Internal, std::string("kiln: unknown op ") + args.op);
}

// ---- clamp -------------------------------------------------------------------------------------

// The bounds are values of the dtype (prepare_clamp rounded them), so the
// result is x or a bound: exact.
template <class E>
__global__ void clamp_elements(const typename E::T* x, typename E::T* y, StridedIndex<2> ix, ClampPlan plan) {
  const int64_t n = ix.numel;
  auto f = [&](typename E::T v) -> typename E::T {
    if constexpr (std::is_same<E, el::I32>::value) {
      return clamp_apply_i32(v, plan.ilo, plan.ihi);
    } else {
      return E::from_f32(clamp_apply_f32(E::to_f32(v), plan.lo, plan.hi));
    }
  };
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { y[i] = f(x[i]); }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[2];
      ix.offsets(i, off);
      y[off[0]] = f(x[off[1]]);
    }
  }
}

template <class E>
Status launch_clamp(const View& x, const View& y, const StridedIndex<2>& ix, const ClampPlan& plan, cudaStream_t s) {
  using T = typename E::T;
  clamp_elements<E><<<grid_for(ix.numel), kBlock, 0, s>>>(reinterpret_cast<const T*>(x.data()),
                                                          reinterpret_cast<T*>(y.data()), ix, plan);
  KILN_CUDA_LAUNCH_CHECK("clamp");
  return Status::Ok();
}

Status clamp_kernel(const KernelArgs& args) {
  ClampPlan plan;
  KILN_RETURN_IF_ERROR(prepare_clamp(args, &plan));
  const View &x = args.in[0], &y = args.out[0];
  if (y.numel() == 0) return Status::Ok();
  StridedIndex<2> ix;
  const int64_t* strides[2] = {y.strides, x.strides};
  ix.init(y.ndim, y.shape, strides);
  KILN_CUDA_ENTER(guard, y.device.index, args.op, s);
  switch (x.dtype) {
    case DType::Float32: return launch_clamp<el::F32>(x, y, ix, plan, s);
    case DType::Float16: return launch_clamp<el::F16>(x, y, ix, plan, s);
    case DType::BFloat16: return launch_clamp<el::BF16>(x, y, ix, plan, s);
    case DType::Int32: return launch_clamp<el::I32>(x, y, ix, plan, s);
    default: break;
  }
  return no_kernel(args.op, x.dtype, DeviceKind::CUDA);
}

// ---- where -------------------------------------------------------------------------------------

// Raw elements of one size (any dtype): out = cond ? a : b, bytes copied.
// Operand 0 is out, 1 cond, 2 a, 3 b.
template <class T>
__global__ void where_elements(const uint8_t* c, const T* a, const T* b, T* o, StridedIndex<4> ix) {
  const int64_t n = ix.numel;
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { o[i] = c[i] != 0 ? a[i] : b[i]; }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[4];
      ix.offsets(i, off);
      o[off[0]] = c[off[1]] != 0 ? a[off[2]] : b[off[3]];
    }
  }
}

template <class T>
Status launch_where(const KernelArgs& args, const StridedIndex<4>& ix, cudaStream_t s) {
  where_elements<T><<<grid_for(ix.numel), kBlock, 0, s>>>(
      reinterpret_cast<const uint8_t*>(args.in[0].data()), reinterpret_cast<const T*>(args.in[1].data()),
      reinterpret_cast<const T*>(args.in[2].data()), reinterpret_cast<T*>(args.out[0].data()), ix);
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

Status where_kernel(const KernelArgs& args) {
  WherePlan plan;
  KILN_RETURN_IF_ERROR(prepare_where(args, &plan));
  const View& out = args.out[0];
  if (out.numel() == 0) return Status::Ok();
  StridedIndex<4> ix;
  const int64_t* strides[4] = {out.strides, plan.cond_strides, plan.a_strides, plan.b_strides};
  ix.init(out.ndim, out.shape, strides);
  KILN_CUDA_ENTER(guard, out.device.index, args.op, s);
  switch (dtype_size(out.dtype)) {
    case 4: return launch_where<uint32_t>(args, ix, s);
    case 2: return launch_where<uint16_t>(args, ix, s);
    default: return launch_where<uint8_t>(args, ix, s);
  }
}

const bool kUnary = register_unary_kernels(DeviceKind::CUDA, unary_kernel);
const bool kGrad = register_unary_grad_kernels(DeviceKind::CUDA, unary_grad_kernel);
KILN_REGISTER_KERNELS("clamp", DeviceKind::CUDA, kFloat16PlusInt32, clamp_kernel);
KILN_REGISTER_KERNELS("where", DeviceKind::CUDA, kAllDTypes, where_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
