// CPU kernel 'w4a8_reference' (specs/quant.md "W4A8 GEMM", exact reference):
// P[m, n] = sum_k a[m, k] * w8[n, k] and A[m, n] = sum_k |a * w8|, exact.
// Every E4M3 value is an integer multiple of 2^-9 below 2^9, so each product is
// an integer times 2^-18 below 2^36 in magnitude: the sums are exact in int64
// (K <= 65536) and converted once to float32 (RNE), then scaled by 2^-18
// (exact). w8 = e4m3(q * s) is computed here per element (no lookup table and
// none of the fast paths' code). A NaN activation or weight makes P and A NaN.
// Scalar and slow on purpose: tests only.
#include <cmath>
#include <cstdint>
#include <limits>

#include "kiln/numerics.h"
#include "kiln/quant.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"

namespace kiln {
namespace cpu {
namespace {

// An E4M3 code as an integer count of 2^-9; false for NaN.
inline bool e4m3_units(uint8_t code, int64_t* units) {
  if ((code & 0x7F) == 0x7F) return false;
  *units = static_cast<int64_t>(num::e4m3_to_f32(code) * 512.0f);  // exact integer
  return true;
}

Status w4a8_reference_kernel(const KernelArgs& args) {
  W4A8Plan p;
  KILN_RETURN_IF_ERROR(prepare_w4a8(args, &p));
  if (p.m == 0 || p.n == 0) return Status::Ok();
  const View& a = args.in[0];
  const uint8_t* packed = reinterpret_cast<const uint8_t*>(args.in[1].data());
  const uint8_t* scales = reinterpret_cast<const uint8_t*>(args.in[2].data());
  float* P = reinterpret_cast<float*>(args.out[0].data());
  float* A = reinterpret_cast<float*>(args.out[1].data());
  const uint8_t* acodes = reinterpret_cast<const uint8_t*>(a.data());
  const int64_t ng = p.kp / p.group;
  const float kScale = std::ldexp(1.0f, -18);
  parallel_for(p.m * p.n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t m = i / p.n, n = i % p.n;
      const uint8_t* qrow = packed + n * (p.kp / 2);
      int64_t sum = 0, abs_sum = 0;
      bool nan = false;
      for (int64_t k = 0; k < p.kp; ++k) {
        const uint8_t w8 = quant::w8_code(quant::packed_q(qrow, k), scales[n * ng + k / p.group]);
        int64_t wu = 0, au = 0;
        const uint8_t ac = k < p.k ? acodes[m * a.strides[0] + k * a.strides[1]] : 0;
        if (!e4m3_units(w8, &wu) || !e4m3_units(ac, &au)) {
          nan = true;
          continue;
        }
        sum += au * wu;
        abs_sum += std::llabs(au * wu);
      }
      const float nanf = std::numeric_limits<float>::quiet_NaN();
      P[i] = nan ? nanf : static_cast<float>(sum) * kScale;  // int64 -> float32 rounds once (RNE)
      A[i] = nan ? nanf : static_cast<float>(abs_sum) * kScale;
    }
  });
  return Status::Ok();
}

KILN_REGISTER_KERNEL("w4a8_reference", DeviceKind::CPU, DType::Float8E4M3, w4a8_reference_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
