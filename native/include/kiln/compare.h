// Comparisons and logical ops: the bool-valued elementwise ops, shared by the
// CPU and CUDA backends (native/KERNELS.md "Elementwise").
//
//   eq ne lt le gt ge          in = [a, b] (one dtype, broadcast to out), out = [bool]
//   logical_and logical_or     in = [a, b] (bool, broadcast to out),      out = [bool]
//   logical_not                in = [x] (bool),                           out = [bool] (same shape)
//
// Results are 0 or 1 bytes. IEEE semantics: every comparison with a NaN is
// false except ne (true); -0 == +0. float16 / bfloat16 compare their exact
// values (no rounding anywhere). A bool input is true when its byte is nonzero
// (as where's cond), so comparisons of bools compare truth values (false < true).
// The arithmetic (compare_apply, below) is one definition for the host and the
// device, so both backends give the same bytes.
#pragma once
#include <cstdint>
#include <type_traits>

#include "kiln/element.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

// The ops with two inputs and a bool output.
enum class CompareOp : int { Eq = 0, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr };
constexpr int kNumCompareOps = 8;

// "eq" -> CompareOp::Eq, ..., "logical_or" -> CompareOp::LogicalOr; false for other names.
bool compare_op_from_name(const char* name, CompareOp* op);
const char* compare_op_name(CompareOp op);

// Input dtypes with a kernel: the comparisons take float32, float16, bfloat16,
// int32, int8, uint8 and bool; logical_and / logical_or take bool only.
bool compare_supports(CompareOp op, DType dtype);

// Registers every CompareOp for every dtype compare_supports allows on `device`
// (registry key: the inputs' dtype).
bool register_compare_kernels(DeviceKind device, KernelFn fn);

// Validates a comparison / logical_and / logical_or: a and b of one dtype,
// out bool with the broadcast shape of a and b (any strides everywhere).
struct ComparePlan {
  CompareOp op;
  int64_t a_strides[kMaxDims];  // element strides broadcast to out's shape
  int64_t b_strides[kMaxDims];
};
Status prepare_compare(const KernelArgs& args, ComparePlan* plan);

// Validates logical_not: x and y bool, the same shape (any strides).
Status prepare_logical_not(const KernelArgs& args);

// ---- the arithmetic ------------------------------------------------------------------
namespace {  // internal linkage: ISA-specific translation units must not share copies

// A 16-bit IEEE code (float16: inf = 0x7C00, bfloat16: inf = 0x7F80) as an integer
// that orders like its value: sign-magnitude to two's complement, so -0 and +0
// are both 0. NaN codes (magnitude above inf's) must be screened out first.
KILN_HDM int32_t ordered_key16(uint16_t h) {
  const int32_t mag = static_cast<int32_t>(h & 0x7FFFu);
  return (h & 0x8000u) ? -mag : mag;
}

template <CompareOp OP, class K>
KILN_HDM bool compare_ordered(K a, K b) {
  if constexpr (OP == CompareOp::Eq) return a == b;
  if constexpr (OP == CompareOp::Ne) return a != b;
  if constexpr (OP == CompareOp::Lt) return a < b;
  if constexpr (OP == CompareOp::Le) return a <= b;
  if constexpr (OP == CompareOp::Gt) return a > b;
  if constexpr (OP == CompareOp::Ge) return a >= b;
  return false;
}

// One element of op OP on storage values of element type E, as 0 / 1.
template <CompareOp OP, class E>
KILN_HDM uint8_t compare_apply(typename E::T a, typename E::T b) {
  if constexpr (OP == CompareOp::LogicalAnd) {
    return static_cast<uint8_t>((a != 0) & (b != 0));
  } else if constexpr (OP == CompareOp::LogicalOr) {
    return static_cast<uint8_t>((a != 0) | (b != 0));
  } else if constexpr (std::is_same<E, el::F16>::value || std::is_same<E, el::BF16>::value) {
    // Exact: the ordered integer keys compare like the values; a NaN makes every
    // comparison false, except ne.
    constexpr uint32_t kInf = std::is_same<E, el::F16>::value ? 0x7C00u : 0x7F80u;
    const bool unordered = ((a & 0x7FFFu) > kInf) | ((b & 0x7FFFu) > kInf);
    const bool r = compare_ordered<OP>(ordered_key16(a), ordered_key16(b));
    if constexpr (OP == CompareOp::Ne) return static_cast<uint8_t>(r | unordered);
    return static_cast<uint8_t>(r & !unordered);
  } else if constexpr (std::is_same<E, el::Bool>::value) {
    return static_cast<uint8_t>(compare_ordered<OP>(static_cast<int>(a != 0), static_cast<int>(b != 0)));
  } else {
    // float32 (IEEE compares: NaN unordered, -0 == +0) and the integer types.
    return static_cast<uint8_t>(compare_ordered<OP>(a, b));
  }
}

KILN_HDM uint8_t logical_not_apply(uint8_t x) { return static_cast<uint8_t>(x == 0); }

}  // namespace
}  // namespace kiln
