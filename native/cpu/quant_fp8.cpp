// CPU kernel 'quant_fp8_activation' (specs/quant.md "FP8 activations";
// operands in kiln/quant.h): per row of x, s_a = max |x| / 448 (1 for a zero
// row, at least 2^-126) or the static scale, a = e4m3(x / s_a). The row
// quantizer is the one the fused 'w4a8_linear' uses (w4a8_impl.inc), so the
// fused op equals quantizing here and calling 'w4a8_gemm'.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>

#include "kiln/numerics.h"
#include "kiln/quant.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "scratch.h"
#include "w4a8.h"

namespace kiln {
namespace cpu {
namespace {

Status fp8_activation_kernel(const KernelArgs& args) {
  Fp8ActivationPlan p;
  KILN_RETURN_IF_ERROR(prepare_fp8_activation(args, &p));
  if (p.m == 0) return Status::Ok();
  const View& x = args.in[0];
  const View& a = args.out[0];
  const View& sa = args.out[1];
  const W4A8Kernels& kern = w4a8_kernels();
  std::atomic<bool> ok{true};
  parallel_for(p.m, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, p.k)), [&](int64_t m0, int64_t m1) {
    Scratch rowbuf, codebuf;
    if (!rowbuf.alloc(static_cast<size_t>(p.k) * 4) || !codebuf.alloc(static_cast<size_t>(p.k))) {
      ok.store(false);
      return;
    }
    float* buf = rowbuf.as<float>();
    uint8_t* codes = codebuf.as<uint8_t>();
    for (int64_t m = m0; m < m1; ++m) {
      const float* row = buf;
      const int64_t at = m * x.strides[0], s1 = x.strides[1];
      if (x.dtype == DType::Float32 && (s1 == 1 || p.k == 1)) {
        row = reinterpret_cast<const float*>(x.data()) + at;  // read in place
      } else if (x.dtype == DType::Float32) {
        for (int64_t k = 0; k < p.k; ++k) buf[k] = reinterpret_cast<const float*>(x.data())[at + k * s1];
      } else if (x.dtype == DType::BFloat16) {
        for (int64_t k = 0; k < p.k; ++k) buf[k] = num::bf16_to_f32(reinterpret_cast<const uint16_t*>(x.data())[at + k * s1]);
      } else {
        for (int64_t k = 0; k < p.k; ++k) buf[k] = num::f16_to_f32(reinterpret_cast<const uint16_t*>(x.data())[at + k * s1]);
      }
      uint8_t* out = reinterpret_cast<uint8_t*>(a.data());
      const bool direct = a.strides[1] == 1 || p.k == 1;
      const float s = kern.quantize_row(row, p.k, p.is_static ? p.scale : 0.0f, direct ? out + m * a.strides[0] : codes);
      if (!direct) {
        for (int64_t k = 0; k < p.k; ++k) out[m * a.strides[0] + k * a.strides[1]] = codes[k];
      }
      reinterpret_cast<float*>(sa.data())[m * sa.strides[0]] = s;
    }
  });
  if (!ok.load()) {
    return Status(StatusCode::OutOfMemory, std::string("kiln: ") + args.op + ": could not allocate row buffers (" + x.describe() + ")");
  }
  return Status::Ok();
}

KILN_REGISTER_KERNELS("quant_fp8_activation", DeviceKind::CPU, kFloat16Plus, fp8_activation_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
