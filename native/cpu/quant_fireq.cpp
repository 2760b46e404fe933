// CPU kernels 'quant_int4_fireq_pack' and 'quant_int4_fireq_unpack': the
// offline re-encoding of canonical INT4 weights into the FireQ fragment layout
// of the CUDA kernels and back (kiln/quant_fireq.h; operands in kiln/quant.h).
// Packing refuses q = -8 (no sign-magnitude form) with a ValueError naming the
// first such element, before anything is written. Rows past N are q = 0.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include "kiln/quant.h"
#include "kiln/quant_fireq.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"

namespace kiln {
namespace cpu {
namespace {

namespace fq = quant::fireq;

Status fireq_pack_kernel(const KernelArgs& args) {
  FireqPackPlan p;
  KILN_RETURN_IF_ERROR(prepare_fireq_pack(args, &p));
  const uint8_t* packed = reinterpret_cast<const uint8_t*>(args.in[0].data());
  const int64_t half = p.kp / 2;
  for (int64_t i = 0; i < p.n * half; ++i) {
    const uint8_t b = packed[i];
    if ((b & 0xF) == 0x8 || (b >> 4) == 0x8) {
      const int64_t n = i / half, k = (i % half) * 2 + ((b & 0xF) == 0x8 ? 0 : 1);
      return Status(StatusCode::ValueError,
                    std::string("kiln: ") + args.op + ": q[" + std::to_string(n) + ", " + std::to_string(k) +
                        "] = -8 has no sign-magnitude form in the FireQ layout (q in [-7, 7]); keep these weights "
                        "in the canonical layout (packed " + args.in[0].describe() + ")");
    }
  }
  uint32_t* words = reinterpret_cast<uint32_t*>(args.out[0].data());
  const int64_t np = fq::padded_n(p.n);
  std::memset(words, 0, static_cast<size_t>(np * half));
  // one row-tile of 8 rows per task: its words are disjoint from the other tiles'
  parallel_for(np / 8, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t n = t0 * 8; n < t1 * 8 && n < p.n; ++n) {
      const uint8_t* row = packed + n * half;
      for (int64_t k = 0; k < p.kp; ++k) {
        const fq::Slot s = fq::slot_of(n, k, p.kp);
        words[s.word] |= fq::encode(quant::packed_q(row, k), s);
      }
    }
  });
  return Status::Ok();
}

Status fireq_unpack_kernel(const KernelArgs& args) {
  FireqPackPlan p;
  KILN_RETURN_IF_ERROR(prepare_fireq_pack(args, &p));
  const uint32_t* words = reinterpret_cast<const uint32_t*>(args.in[0].data());
  uint8_t* packed = reinterpret_cast<uint8_t*>(args.out[0].data());
  const int64_t half = p.kp / 2;
  parallel_for(p.n, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t k = 0; k < p.kp; k += 2) {
        const int q0 = fq::decode_q(words[fq::slot_of(n, k, p.kp).word], fq::slot_of(n, k, p.kp));
        const int q1 = fq::decode_q(words[fq::slot_of(n, k + 1, p.kp).word], fq::slot_of(n, k + 1, p.kp));
        packed[n * half + k / 2] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      }
    }
  });
  return Status::Ok();
}

KILN_REGISTER_KERNEL("quant_int4_fireq_pack", DeviceKind::CPU, DType::UInt8, fireq_pack_kernel);
KILN_REGISTER_KERNEL("quant_int4_fireq_unpack", DeviceKind::CPU, DType::UInt8, fireq_unpack_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
