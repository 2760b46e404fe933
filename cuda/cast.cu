// CUDA kernel 'cast': strided copy with dtype conversion, bit for bit the CPU
// kernel (native/cpu/cast.cpp): every element goes through el::convert<S, D>.
#include "common.cuh"
#include "kiln/element.h"
#include "kiln/elementwise.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

// Operand 0 is the destination, operand 1 the source (offsets in elements
// from each view's first element).
template <class S, class D>
__global__ void cast_elements(const typename S::T* src, typename D::T* dst, StridedIndex<2> ix) {
  const int64_t n = ix.numel;
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { dst[i] = el::convert<S, D>(src[i]); }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[2];
      ix.offsets(i, off);
      dst[off[0]] = el::convert<S, D>(src[off[1]]);
    }
  }
}

template <class S, class D>
Status launch_cast(const View& src, const View& dst, const StridedIndex<2>& ix, cudaStream_t s) {
  if constexpr (std::is_same<S, D>::value) {
    if (ix.contiguous()) {  // a plain copy
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst.data(), src.data(), static_cast<size_t>(ix.numel) * sizeof(typename S::T),
                                                cudaMemcpyDeviceToDevice, s),
                                "cast");
      return Status::Ok();
    }
  }
  cast_elements<S, D><<<grid_for(ix.numel), kBlock, 0, s>>>(reinterpret_cast<const typename S::T*>(src.data()),
                                                            reinterpret_cast<typename D::T*>(dst.data()), ix);
  KILN_CUDA_LAUNCH_CHECK("cast");
  return Status::Ok();
}

Status cast_kernel(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 1, 1, 0, 0));
  const View &src = args.in[0], &dst = args.out[0];
  KILN_RETURN_IF_ERROR(check_cast(src, dst));
  if (dst.numel() == 0) return Status::Ok();
  StridedIndex<2> ix;
  const int64_t* strides[2] = {dst.strides, src.strides};
  ix.init(dst.ndim, dst.shape, strides);
  KILN_CUDA_ENTER(guard, dst.device.index, "cast", s);
  return el::visit(src.dtype, [&](auto stag) -> Status {
    return el::visit(dst.dtype, [&](auto dtag) -> Status {
      return launch_cast<decltype(stag), decltype(dtag)>(src, dst, ix, s);
    });
  });
}

KILN_REGISTER_KERNELS("cast", DeviceKind::CUDA, kAllDTypes, cast_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
