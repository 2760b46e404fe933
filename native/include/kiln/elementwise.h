// Elementwise op families shared by the CPU and CUDA backends.
#pragma once
#include <cstdint>

#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

enum class BinaryOp : int { Add = 0, Sub, Mul, Div, Maximum, Minimum };
constexpr int kNumBinaryOps = 6;

// "add" -> BinaryOp::Add; false for other names.
bool binary_op_from_name(const char* name, BinaryOp* op);

// Element strides of `in` broadcast (NumPy rules, right-aligned) to out's shape.
// Fails with a ShapeError naming both shapes when in cannot broadcast to out.
Status broadcast_strides(const View& in, const View& out, const char* op, int64_t* strides);

// Checks a binary op's operands: same dtype everywhere, out's shape the
// broadcast of a's and b's shapes.
Status check_binary(const char* op, const View& a, const View& b, const View& out);

// Dtypes with a binary kernel: float32, float16, bfloat16 (computed in
// float32, rounded once) and int32 (wrapping; no division).
bool binary_supports(BinaryOp op, DType dtype);

// Registers the six binary ops for every supported dtype on `device`.
bool register_binary_kernels(DeviceKind device, KernelFn fn);

// Everything a backend's binary kernel needs, validated: the op, and a's and
// b's element strides broadcast to out's shape.
struct BinaryPlan {
  BinaryOp op;
  int64_t a_strides[kMaxDims];
  int64_t b_strides[kMaxDims];
};
Status prepare_binary(const KernelArgs& args, BinaryPlan* plan);

// 'rand' / 'randn' arguments (ints = [seed, counter offset]; a contiguous
// floating output), validated.
struct RandomPlan {
  bool normal;
  uint64_t seed;
  uint64_t offset;
  int bits;  // significant bits of a uniform sample (rng::uniform_bits_for)
};
Status prepare_random(const KernelArgs& args, RandomPlan* plan);

// Checks a cast's operands: the same shape (any dtypes, any strides).
Status check_cast(const View& src, const View& dst);

}  // namespace kiln
