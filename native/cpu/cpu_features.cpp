#include "kiln/cpu_features.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define KILN_X86 1
#endif

namespace kiln {
namespace cpu {
namespace {

#ifdef KILN_X86
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef KILN_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse42 = (c >> 20) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  const bool osxsave = (c >> 27) & 1;
  const bool avx_cpu = (c >> 28) & 1;
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;        // XMM + YMM state
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  f.avx = avx_cpu && os_avx;
  f.fma = f.fma && f.avx;
  f.f16c = f.f16c && f.avx;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = f.avx && ((b >> 5) & 1);
    f.avx512f = os_avx512 && ((b >> 16) & 1);
    f.avx512dq = f.avx512f && ((b >> 17) & 1);
    f.avx512bw = f.avx512f && ((b >> 30) & 1);
    f.avx512vl = f.avx512f && ((b >> 31) & 1);
    f.avx512vnni = f.avx512f && ((c >> 11) & 1);
    f.avx512fp16 = f.avx512f && ((d >> 23) & 1);
    unsigned a1, b1, c1, d1;
    if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) {
      f.avx512bf16 = f.avx512f && ((a1 >> 5) & 1);
      f.avxvnni = f.avx && ((a1 >> 4) & 1);
    }
  }
#endif
  return f;
}

IsaLevel level_of(const CpuFeatures& f) {
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c) return IsaLevel::Avx512;
  if (f.avx2 && f.fma && f.f16c) return IsaLevel::Avx2;
  return IsaLevel::Portable;
}

IsaLevel initial_level() {
  IsaLevel level = level_of(features());
  if (const char* env = std::getenv("KILN_ISA")) {
    IsaLevel want = level;
    if (std::strcmp(env, "portable") == 0) want = IsaLevel::Portable;
    if (std::strcmp(env, "avx2") == 0) want = IsaLevel::Avx2;
    if (std::strcmp(env, "avx512") == 0) want = IsaLevel::Avx512;
    if (static_cast<int>(want) < static_cast<int>(level)) level = want;
  }
  return level;
}

IsaLevel& active() {
  static IsaLevel level = initial_level();
  return level;
}

}  // namespace

const CpuFeatures& features() {
  static const CpuFeatures f = detect();
  return f;
}

IsaLevel detected_isa() { return level_of(features()); }

IsaLevel active_isa() { return active(); }

const char* isa_name(IsaLevel level) {
  switch (level) {
    case IsaLevel::Avx512: return "avx512";
    case IsaLevel::Avx2: return "avx2";
    default: return "portable";
  }
}

Status set_isa(IsaLevel level) {
  if (static_cast<int>(level) > static_cast<int>(detected_isa())) {
    return Status(StatusCode::ValueError, std::string("kiln: setIsa: this CPU supports at most '") +
                                              isa_name(detected_isa()) + "', not '" + isa_name(level) + "'");
  }
  active() = level;
  return Status::Ok();
}

std::vector<std::string> feature_names() {
  const CpuFeatures& f = features();
  std::vector<std::string> out;
  auto add = [&](bool on, const char* name) {
    if (on) out.emplace_back(name);
  };
  add(f.sse42, "sse4.2");
  add(f.avx, "avx");
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avxvnni, "avx_vnni");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq");
  add(f.avx512vnni, "avx512_vnni");
  add(f.avx512bf16, "avx512_bf16");
  add(f.avx512fp16, "avx512_fp16");
  return out;
}

}  // namespace cpu
}  // namespace kiln
