// CPU feature detection (cpuid + xgetbv) and the ISA level kernels dispatch on.
#pragma once
#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln {
namespace cpu {

// Dispatch levels. Avx2 means AVX2 + FMA + F16C; Avx512 means F + BW + VL + DQ.
enum class IsaLevel : int { Portable = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512bf16 = false, avx512vnni = false, avx512fp16 = false, avxvnni = false;
};

const CpuFeatures& features();
IsaLevel detected_isa();
// The level kernels use: the detected one, lowered by KILN_ISA=portable|avx2|avx512
// or set_isa (tests use it to run every path on one machine).
IsaLevel active_isa();
Status set_isa(IsaLevel level);
const char* isa_name(IsaLevel level);
// Feature names for kiln.devices().cpu.isa, e.g. ["sse4.2", "avx2", "fma", ...].
std::vector<std::string> feature_names();

}  // namespace cpu
}  // namespace kiln
