// CUDA kernel 'fill': writes one encoded value (ints[0] holds its raw bits)
// into every element of a (possibly strided) view, like native/cpu/fill.cpp.
#include "common.cuh"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

template <class T>
__global__ void fill_elements(T* dst, StridedIndex<1> ix, T value) {
  const int64_t n = ix.numel;
  if (ix.contiguous()) {
    KILN_GRID_STRIDE_LOOP(i, n) { dst[i] = value; }
  } else {
    KILN_GRID_STRIDE_LOOP(i, n) {
      int64_t off[1];
      ix.offsets(i, off);
      dst[off[0]] = value;
    }
  }
}

template <class T>
Status launch_fill(const View& dst, const StridedIndex<1>& ix, uint64_t bits, cudaStream_t s) {
  fill_elements<T><<<grid_for(ix.numel), kBlock, 0, s>>>(reinterpret_cast<T*>(dst.data()), ix, static_cast<T>(bits));
  KILN_CUDA_LAUNCH_CHECK("fill");
  return Status::Ok();
}

Status fill_kernel(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 0, 1, 1, 0));
  const View& dst = args.out[0];
  const uint64_t bits = static_cast<uint64_t>(args.ints[0]);
  if (dst.numel() == 0) return Status::Ok();
  StridedIndex<1> ix;
  const int64_t* strides[1] = {dst.strides};
  ix.init(dst.ndim, dst.shape, strides);
  KILN_CUDA_ENTER(guard, dst.device.index, "fill", s);
  switch (dtype_size(dst.dtype)) {
    case 4: return launch_fill<uint32_t>(dst, ix, bits, s);
    case 2: return launch_fill<uint16_t>(dst, ix, bits, s);
    default: return launch_fill<uint8_t>(dst, ix, bits, s);
  }
}

KILN_REGISTER_KERNELS("fill", DeviceKind::CUDA, kAllDTypes, fill_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
