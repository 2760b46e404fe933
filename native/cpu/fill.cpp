// CPU kernel 'fill': writes one encoded value (ints[0] holds its raw bits)
// into every element of a (possibly strided) view.
#include <cstring>

#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "nd_iter.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kGrain = 1 << 16;

template <class T>
void fill_run(char* p, int64_t stride_bytes, int64_t n, T value) {
  if (stride_bytes == static_cast<int64_t>(sizeof(T))) {
    T* d = reinterpret_cast<T*>(p);
    for (int64_t i = 0; i < n; ++i) d[i] = value;
  } else {
    for (int64_t i = 0; i < n; ++i) std::memcpy(p + i * stride_bytes, &value, sizeof(T));
  }
}

Status fill_kernel(const KernelArgs& args) {
  KILN_RETURN_IF_ERROR(expect_counts(args, 0, 1, 1, 0));
  const View& dst = args.out[0];
  const uint64_t bits = static_cast<uint64_t>(args.ints[0]);
  const size_t esize = dtype_size(dst.dtype);
  const int64_t sizes[1] = {static_cast<int64_t>(esize)};
  char* bases[1] = {dst.data()};
  const int64_t* strides[1] = {dst.strides};
  NdIter<1> it;
  it.init(dst.ndim, dst.shape, bases, strides, sizes);
  parallel_for(it.numel, kGrain, [&](int64_t begin, int64_t end) {
    it.for_range(begin, end, [&](char* const* p, const int64_t* s, int64_t n) {
      if (esize == 4) fill_run<uint32_t>(p[0], s[0], n, static_cast<uint32_t>(bits));
      else if (esize == 2) fill_run<uint16_t>(p[0], s[0], n, static_cast<uint16_t>(bits));
      else fill_run<uint8_t>(p[0], s[0], n, static_cast<uint8_t>(bits));
    });
  });
  return Status::Ok();
}

KILN_REGISTER_KERNELS("fill", DeviceKind::CPU, kAllDTypes, fill_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
