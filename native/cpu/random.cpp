// CPU kernels 'rand' (uniform [0, 1)) and 'randn' (standard normal) over a
// contiguous output; ints = [seed, counter offset]. Element i depends only on
// (seed, offset, i), so CUDA (cuda/random.cu) produces the same numbers.
#include <algorithm>

#include "kiln/element.h"
#include "kiln/elementwise.h"
#include "kiln/philox.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kGrain = 1 << 12;

Status random_kernel(const KernelArgs& args) {
  RandomPlan plan;
  KILN_RETURN_IF_ERROR(prepare_random(args, &plan));
  const View& dst = args.out[0];
  return el::visit(dst.dtype, [&](auto tag) -> Status {
    using E = decltype(tag);
    if constexpr (E::is_float) {
      typename E::T* out = reinterpret_cast<typename E::T*>(dst.data());
      const int64_t n = dst.numel();
      // Threads split over Philox blocks (4 elements each); the last may be partial.
      parallel_for((n + 3) / 4, kGrain / 4, [&](int64_t begin, int64_t end) {
        float v[4];
        for (int64_t blk = begin; blk < end; ++blk) {
          if (plan.normal) {
            rng::normal_block(plan.seed, plan.offset, static_cast<uint64_t>(blk), v);
          } else {
            rng::uniform_block(plan.seed, plan.offset, static_cast<uint64_t>(blk), plan.bits, v);
          }
          const int64_t first = blk * 4;
          const int64_t count = std::min<int64_t>(4, n - first);
          for (int64_t j = 0; j < count; ++j) out[first + j] = E::from_f32(v[j]);
        }
      });
    }
    return Status::Ok();
  });
}

KILN_REGISTER_KERNELS("rand", DeviceKind::CPU, kFloatDTypes, random_kernel);
KILN_REGISTER_KERNELS("randn", DeviceKind::CPU, kFloatDTypes, random_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
