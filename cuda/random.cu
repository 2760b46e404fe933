// CUDA kernels 'rand' (uniform [0, 1)) and 'randn' (standard normal) over a
// contiguous output; ints = [seed, counter offset]. Element i is
// rng::uniform_at / rng::normal_at(seed, offset, i), computed four at a time
// by the same rng::*_block functions the CPU kernel (native/cpu/random.cpp)
// calls, so both give the same bits.
#include <string>

#include "common.cuh"
#include "kiln/element.h"
#include "kiln/philox.h"
#include "kiln/elementwise.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

// One thread per Philox block: four elements from one Philox call (and two
// Box-Muller pairs), the same values the CPU computes (rng::*_block).
template <class E, bool NORMAL>
__global__ void random_elements(typename E::T* out, int64_t n, uint64_t seed, uint64_t offset, int bits) {
  const int64_t blocks = (n + 3) / 4;
  KILN_GRID_STRIDE_LOOP(blk, blocks) {
    float v[4];
    if (NORMAL) {
      rng::normal_block(seed, offset, static_cast<uint64_t>(blk), v);
    } else {
      rng::uniform_block(seed, offset, static_cast<uint64_t>(blk), bits, v);
    }
    const int64_t first = blk * 4;
    const int64_t count = n - first < 4 ? n - first : 4;
    for (int64_t j = 0; j < count; ++j) out[first + j] = E::from_f32(v[j]);
  }
}

Status random_kernel(const KernelArgs& args) {
  RandomPlan plan;
  KILN_RETURN_IF_ERROR(prepare_random(args, &plan));
  const View& dst = args.out[0];
  const int64_t n = dst.numel();
  if (n == 0) return Status::Ok();
  KILN_CUDA_ENTER(guard, dst.device.index, args.op, s);
  return el::visit(dst.dtype, [&](auto tag) -> Status {
    using E = decltype(tag);
    if constexpr (E::is_float) {
      typename E::T* out = reinterpret_cast<typename E::T*>(dst.data());
      if (plan.normal) {
        random_elements<E, true><<<grid_for((n + 3) / 4), kBlock, 0, s>>>(out, n, plan.seed, plan.offset, plan.bits);
      } else {
        random_elements<E, false><<<grid_for((n + 3) / 4), kBlock, 0, s>>>(out, n, plan.seed, plan.offset, plan.bits);
      }
      KILN_CUDA_LAUNCH_CHECK(args.op);
    }
    return Status::Ok();
  });
}

KILN_REGISTER_KERNELS("rand", DeviceKind::CUDA, kFloatDTypes, random_kernel);
KILN_REGISTER_KERNELS("randn", DeviceKind::CUDA, kFloatDTypes, random_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
