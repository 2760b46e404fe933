// Elementwise op families shared by the CPU and CUDA backends.
#pragma once
#include <cstdint>

#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

enum class BinaryOp : int { Add = 0, Sub, Mul, Div, Maximum, Minimum, Pow };
constexpr int kNumBinaryOps = 7;

// "add" -> BinaryOp::Add; false for other names.
bool binary_op_from_name(const char* name, BinaryOp* op);

// Element strides of `in` broadcast (NumPy rules, right-aligned) to out's shape.
// Fails with a ShapeError naming both shapes when in cannot broadcast to out.
Status broadcast_strides(const View& in, const View& out, const char* op, int64_t* strides);

// Checks a binary op's operands: same dtype everywhere, out's shape the
// broadcast of a's and b's shapes.
Status check_binary(const char* op, const View& a, const View& b, const View& out);

// Dtypes with a binary kernel: float32, float16, bfloat16 (computed in
// float32, rounded once) and int32 (wrapping; no division, no pow).
bool binary_supports(BinaryOp op, DType dtype);

// Registers add, sub, mul, div, maximum, minimum for every supported dtype on `device`.
bool register_binary_kernels(DeviceKind device, KernelFn fn);
// Registers one binary op (e.g. BinaryOp::Pow) for every dtype binary_supports allows.
bool register_binary_op(BinaryOp op, DeviceKind device, KernelFn fn);

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

// ---- unary ops: in = [x], out = [y] (same shape and dtype, any strides) ---------------
// Arithmetic: kiln/unary_apply.h. float32/float16/bfloat16 compute in float32
// (kiln/fastmath.h) and round once to the dtype; neg, abs, relu also int32
// (neg and abs wrap: -INT32_MIN = INT32_MIN).
enum class UnaryOp : int { Neg = 0, Abs, Relu, Exp, Log, Sqrt, Rsqrt, Sigmoid, Tanh, Silu, Gelu, GeluTanh };
constexpr int kNumUnaryOps = 12;
bool unary_op_from_name(const char* name, UnaryOp* op);
const char* unary_op_name(UnaryOp op);
bool unary_supports(UnaryOp op, DType dtype);
bool register_unary_kernels(DeviceKind device, KernelFn fn);
Status prepare_unary(const KernelArgs& args, UnaryOp* op);

// ---- unary backward: in = [x (or y for sigmoid/tanh), gy], out = [gx] -------------------
// All three the same shape and float dtype, any strides. gx = f'(x) gy.
enum class UnaryGradOp : int { Relu = 0, Gelu, GeluTanh, Silu, Sigmoid, Tanh };
constexpr int kNumUnaryGradOps = 6;
bool unary_grad_op_from_name(const char* name, UnaryGradOp* op);  // "relu_backward" -> Relu
const char* unary_grad_op_name(UnaryGradOp op);
bool register_unary_grad_kernels(DeviceKind device, KernelFn fn);
Status prepare_unary_grad(const KernelArgs& args, UnaryGradOp* op);

// ---- where: in = [cond (bool), a, b], out = [out]; all broadcast to out's shape -------
// a, b and out share one dtype (any); the registry key is a's dtype.
struct WherePlan {
  int64_t cond_strides[kMaxDims];
  int64_t a_strides[kMaxDims];
  int64_t b_strides[kMaxDims];
};
Status prepare_where(const KernelArgs& args, WherePlan* plan);

// ---- clamp: in = [x], out = [y], floats = [lo, hi] (NaN: no bound) ----------------------
// y = min(max(x, lo), hi): NaN x stays NaN; lo > hi gives hi. Each bound is first
// rounded toward the inside to a value of the dtype: lo up (the least value >= lo),
// hi down (the greatest value <= hi); for int32 ceil(lo) / floor(hi), saturated
// to [INT32_MIN, INT32_MAX]. A missing bound is -inf / +inf (INT32_MIN / INT32_MAX).
struct ClampPlan {
  float lo, hi;        // float dtypes: values of the dtype, as float32
  int32_t ilo, ihi;    // int32
};
Status prepare_clamp(const KernelArgs& args, ClampPlan* plan);

}  // namespace kiln
