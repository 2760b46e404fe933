// CPU kernels 'rand' (uniform [0, 1)) and 'randn' (standard normal) over a
// contiguous output; ints = [seed, counter offset]. Element i depends only on
// (seed, offset, i), so CUDA (cuda/random.cu) produces the same numbers.
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
      parallel_for(dst.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const uint64_t u = static_cast<uint64_t>(i);
          const float v = plan.normal ? rng::normal_at(plan.seed, plan.offset, u)
                                      : rng::uniform_at(plan.seed, plan.offset, u, plan.bits);
          out[i] = E::from_f32(v);
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
