// CPU kernel 'rope' (native/KERNELS.md "Rotary embedding"): rotates pairs of
// the last dimension by angle = pos * theta^(-2i/D), with the angle, cos and
// sin in float64, cos and sin rounded to float32, the rotation in float32:
//   y0 = x0 cos - x1 sin, y1 = x1 cos + x0 sin (sin negated when inverse).
// Parallel over (batch, position); each computes its cos / sin once for all heads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kiln/element.h"
#include "kiln/nn_ops.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"

namespace kiln {
namespace cpu {
namespace {

template <class E>
void rope_run(const KernelArgs& args, const RopePlan& p) {
  using T = typename E::T;
  const View &x = args.in[0], &pos = args.in[1], &y = args.out[0];
  const int64_t B = p.batch, H = p.heads, S = p.seq, D = p.dim, half = D / 2;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[static_cast<size_t>(i)] = std::pow(p.theta, -static_cast<double>(2 * i) / static_cast<double>(D));
  }
  const T* xp = reinterpret_cast<const T*>(x.data());
  T* yp = reinterpret_cast<T*>(y.data());
  const int32_t* pp = reinterpret_cast<const int32_t*>(pos.data());
  const int64_t lo = p.interleaved ? 2 : 1, hi_off = p.interleaved ? 1 : half;  // pair i: (i * lo, i * lo + hi_off)
  const int64_t xs = x.strides[3], ys = y.strides[3];
  parallel_for(B * S, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, H * D)), [&](int64_t t0, int64_t t1) {
    std::vector<float> cs(static_cast<size_t>(2 * half));
    float* cv = cs.data();
    float* sv = cv + half;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / S, s = t % S;
      const int32_t ps = p.batched_positions ? pp[b * pos.strides[0] + s * pos.strides[1]] : pp[s * pos.strides[0]];
      for (int64_t i = 0; i < half; ++i) {
        const double a = static_cast<double>(ps) * inv_freq[static_cast<size_t>(i)];
        cv[i] = static_cast<float>(std::cos(a));
        const float sn = static_cast<float>(std::sin(a));
        sv[i] = p.inverse ? -sn : sn;
      }
      for (int64_t h = 0; h < H; ++h) {
        const T* xr = xp + b * x.strides[0] + h * x.strides[1] + s * x.strides[2];
        T* yr = yp + b * y.strides[0] + h * y.strides[1] + s * y.strides[2];
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i0 = i * lo, i1 = i0 + hi_off;
          const float x0 = E::to_f32(xr[i0 * xs]), x1 = E::to_f32(xr[i1 * xs]);
          const float c = cv[i], sn = sv[i];
          yr[i0 * ys] = E::from_f32(x0 * c - x1 * sn);
          yr[i1 * ys] = E::from_f32(x1 * c + x0 * sn);
        }
      }
    }
  });
}

Status rope_kernel(const KernelArgs& args) {
  RopePlan plan;
  KILN_RETURN_IF_ERROR(prepare_rope(args, &plan));
  if (args.out[0].numel() == 0) return Status::Ok();
  switch (args.in[0].dtype) {
    case DType::Float32: rope_run<el::F32>(args, plan); break;
    case DType::Float16: rope_run<el::F16>(args, plan); break;
    case DType::BFloat16: rope_run<el::BF16>(args, plan); break;
    default: return no_kernel(args.op, args.in[0].dtype, DeviceKind::CPU);
  }
  return Status::Ok();
}

KILN_REGISTER_KERNELS("rope", DeviceKind::CPU, kFloat16Plus, rope_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
