// CPU kernels 'quant_int4_kv' and 'attention_int4kv' (kiln/quant_kv.h): the
// INT4 KV cache of FireQ's attention stage.
//
// quant_int4_kv: per (b, h, s) row and group of G along head_dim, with
// t = 2^e[h]: s = max(e4m3(fl32(amax t) / 7), 2^-9), q = clamp(rne(fl32(x t)
// / s), -8, 7), two per byte (even d in the low nibble). A non-finite x is a
// ValueError naming the element, found before anything is written.
//
// attention_int4kv: one task per (b, kv head, query), for the query heads
// that share the kv head, so each key and value row is read once: rows are
// read as INT4 and turned into e4m3(q s) by the 256 x 16 lookup table of the
// W4A8 kernels (native/cpu/w4a8.h); scores (q . k) 2^-e_k scale in float32
// (8 interleaved partial sums, added in a fixed order), the softmax with the
// row max subtracted, o = 2^-e_v sum_j p_j v_j / sum_j p_j (j in order): a
// different order than kiln.nn.attention over the dequantized cache, so the
// two agree within float32 rounding (tests: 1e-5 relative), not bit for bit.
// The work splits over tasks only: results do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/numerics.h"
#include "kiln/quant_kv.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "int4kv.h"
#include "w4a8.h"

namespace kiln {
namespace cpu {
namespace {

float float_at(const View& v, int64_t at) {
  const char* base = v.data();
  switch (v.dtype) {
    case DType::Float16: return num::f16_to_f32(reinterpret_cast<const uint16_t*>(base)[at]);
    case DType::BFloat16: return num::bf16_to_f32(reinterpret_cast<const uint16_t*>(base)[at]);
    default: return reinterpret_cast<const float*>(base)[at];
  }
}


Status int4_kv_kernel(const KernelArgs& args) {
  Int4KvPlan p;
  KILN_RETURN_IF_ERROR(prepare_int4_kv(args, &p));
  const View &x = args.in[0], &e = args.in[1], &packed = args.out[0], &scales = args.out[1];
  const int64_t rows = p.b * p.h * p.s, xs3 = x.strides[3];
  auto row_base = [&](const View& v, int64_t r) { return offset4(v, r / (p.h * p.s), (r / p.s) % p.h, r % p.s); };
  // non-finite inputs first, so an error writes nothing
  std::atomic<int64_t> bad{rows * p.hd};
  parallel_for(rows, std::max<int64_t>(1, 16384 / p.hd), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t base = row_base(x, r);
      for (int64_t d = 0; d < p.hd; ++d) {
        if (!std::isfinite(float_at(x, base + d * xs3))) {
          int64_t have = bad.load();
          while (r * p.hd + d < have && !bad.compare_exchange_weak(have, r * p.hd + d)) {
          }
          break;
        }
      }
    }
  });
  if (bad.load() < rows * p.hd) {
    const int64_t i = bad.load(), r = i / p.hd, d = i % p.hd;
    return Status(StatusCode::ValueError, std::string("kiln: ") + args.op + ": x[" + std::to_string(r / (p.h * p.s)) + ", " +
                                              std::to_string((r / p.s) % p.h) + ", " + std::to_string(r % p.s) + ", " +
                                              std::to_string(d) + "] is not finite (x " + x.describe() + ")");
  }
  parallel_for(rows, std::max<int64_t>(1, 16384 / p.hd), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t xb = row_base(x, r);
      const float t = std::ldexp(1.0f, exponent_at(e, (r / p.s) % p.h));
      uint8_t* qrow = reinterpret_cast<uint8_t*>(packed.data()) + row_base(packed, r);
      uint8_t* srow = reinterpret_cast<uint8_t*>(scales.data()) + row_base(scales, r);
      for (int64_t g0 = 0; g0 < p.hd; g0 += p.group) {
        float amax = 0.0f;
        for (int64_t d = g0; d < g0 + p.group; ++d) amax = std::max(amax, std::fabs(float_at(x, xb + d * xs3)));
        const uint8_t code = quant::kv_scale_code(amax, t);
        srow[g0 / p.group] = code;
        const float s = num::e4m3_to_f32(code);
        for (int64_t d = g0; d < g0 + p.group; ++d) {
          const uint32_t nib = static_cast<uint32_t>(quant::kv_q(float_at(x, xb + d * xs3), t, s)) & 0xFu;
          uint8_t& byte = qrow[d / 2];
          byte = (d & 1) ? static_cast<uint8_t>((byte & 0x0F) | (nib << 4)) : static_cast<uint8_t>((byte & 0xF0) | nib);
        }
      }
    }
  });
  return Status::Ok();
}

Status attention_int4kv_kernel(const KernelArgs& args) {
  Int4KvAttend a;
  KILN_RETURN_IF_ERROR(prepare_attention_int4kv(args, &a.p));
  a.q = &args.in[0];
  a.kp = &args.in[1];
  a.ks = &args.in[2];
  a.ke = &args.in[3];
  a.vp = &args.in[4];
  a.vs = &args.in[5];
  a.ve = &args.in[6];
  a.out = reinterpret_cast<float*>(args.out[0].data());
  a.lut = w4a8_lut_f32();
  const int64_t tasks = a.p.b * a.p.hkv * a.p.sq;
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, a.p.len * a.p.hd * (a.p.hq / std::max<int64_t>(1, a.p.hkv))));
  const Int4KvAttendFn fn = int4kv_attend();
  parallel_for(tasks, grain, [&](int64_t t0, int64_t t1) { fn(a, t0, t1); });
  return Status::Ok();
}

KILN_REGISTER_KERNELS("quant_int4_kv", DeviceKind::CPU, kFloat16Plus, int4_kv_kernel);
KILN_REGISTER_KERNEL("attention_int4kv", DeviceKind::CPU, DType::Float32, attention_int4kv_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
