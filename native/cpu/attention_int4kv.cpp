// CPU kernels 'quant_int4_kv' and 'attention_int4kv' (kiln/quant_kv.h): the
// INT4 KV cache of FireQ's attention stage.
//
// quant_int4_kv: per (b, h, s) row and group of G along head_dim, with
// t = 2^e[h]: s = max(e4m3(fl32(amax t) / 7), 2^-9), q = clamp(rne(fl32(x t)
// / s), -8, 7), two per byte (even d in the low nibble). A non-finite x is a
// ValueError naming the element, found before anything is written.
//
// attention_int4kv: one task per (b, query head, query); the key and value
// rows are read as INT4 and turned into e4m3(q s) by the 256 x 16 lookup table
// of the W4A8 kernels (native/cpu/w4a8.h), times 2^-e. Scores
// (q . k) 2^-e_k * scale in float32 (d in order), the softmax with the row max
// subtracted, o = sum_j p_j v_j / sum_j p_j (j in order, float32): a
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

int64_t offset4(const View& v, int64_t i0, int64_t i1, int64_t i2) {
  return i0 * v.strides[0] + i1 * v.strides[1] + i2 * v.strides[2];
}

int exponent_at(const View& e, int64_t h) { return reinterpret_cast<const int8_t*>(e.data())[h * e.strides[0]]; }

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
  AttentionInt4KvPlan p;
  KILN_RETURN_IF_ERROR(prepare_attention_int4kv(args, &p));
  const View &q = args.in[0], &kp = args.in[1], &ks = args.in[2], &ke = args.in[3];
  const View &vp = args.in[4], &vs = args.in[5], &ve = args.in[6], &o = args.out[0];
  const float* lut = w4a8_lut_f32();
  const int64_t tasks = p.b * p.hq * p.sq, rep = p.hq / p.hkv, ng = p.hd / p.group;
  const float* qbase = reinterpret_cast<const float*>(q.data());
  float* out = reinterpret_cast<float*>(o.data());
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, p.len * p.hd));
  parallel_for(tasks, grain, [&](int64_t t0, int64_t t1) {
    std::vector<float> score(static_cast<size_t>(p.len)), qrow(static_cast<size_t>(p.hd)), acc(static_cast<size_t>(p.hd));
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / (p.hq * p.sq), h = (task / p.sq) % p.hq, i = task % p.sq, kvh = h / rep;
      const int64_t last = p.causal ? p.len - p.sq + i : p.len - 1;  // keys 0 .. last
      for (int64_t d = 0; d < p.hd; ++d) qrow[static_cast<size_t>(d)] = qbase[offset4(q, b, h, i) + d * q.strides[3]];
      const float inv_tk = std::ldexp(1.0f, -exponent_at(ke, kvh)), inv_tv = std::ldexp(1.0f, -exponent_at(ve, kvh));
      float top = -INFINITY;
      for (int64_t j = 0; j <= last; ++j) {
        const uint8_t* kr = reinterpret_cast<const uint8_t*>(kp.data()) + offset4(kp, b, kvh, j);
        const uint8_t* sr = reinterpret_cast<const uint8_t*>(ks.data()) + offset4(ks, b, kvh, j);
        float dot = 0.0f;
        for (int64_t g = 0; g < ng; ++g) {
          const float* l = lut + static_cast<size_t>(sr[g]) * 16;
          for (int64_t d = g * p.group; d < (g + 1) * p.group; ++d) {
            const uint32_t byte = kr[d >> 1];
            dot += qrow[static_cast<size_t>(d)] * l[(d & 1) ? (byte >> 4) : (byte & 0xFu)];
          }
        }
        const float sc = (dot * inv_tk) * p.scale;
        score[static_cast<size_t>(j)] = sc;
        top = std::max(top, sc);
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      float total = 0.0f;
      for (int64_t j = 0; j <= last; ++j) {
        const float w = std::exp(score[static_cast<size_t>(j)] - top);
        total += w;
        const uint8_t* vr = reinterpret_cast<const uint8_t*>(vp.data()) + offset4(vp, b, kvh, j);
        const uint8_t* sr = reinterpret_cast<const uint8_t*>(vs.data()) + offset4(vs, b, kvh, j);
        for (int64_t g = 0; g < ng; ++g) {
          const float* l = lut + static_cast<size_t>(sr[g]) * 16;
          for (int64_t d = g * p.group; d < (g + 1) * p.group; ++d) {
            const uint32_t byte = vr[d >> 1];
            acc[static_cast<size_t>(d)] += w * l[(d & 1) ? (byte >> 4) : (byte & 0xFu)];
          }
        }
      }
      const float norm = inv_tv / total;
      float* orow = out + task * p.hd;
      for (int64_t d = 0; d < p.hd; ++d) orow[d] = acc[static_cast<size_t>(d)] * norm;
    }
  });
  return Status::Ok();
}

KILN_REGISTER_KERNELS("quant_int4_kv", DeviceKind::CPU, kFloat16Plus, int4_kv_kernel);
KILN_REGISTER_KERNEL("attention_int4kv", DeviceKind::CPU, DType::Float32, attention_int4kv_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
