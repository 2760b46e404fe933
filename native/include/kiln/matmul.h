// Validation shared by every backend's 'matmul' kernel (native/KERNELS.md
// "Matmul"): A [..., M, K] @ B [..., K, N] -> C [..., M, N].
//
// A backend kernel calls check_matmul_args (counts, then check_matmul) first;
// on Ok it may rely on:
//   - A, B, C have one dtype, and it is float32, float16 or bfloat16;
//   - the same rank r >= 2, the same batch shape (dims 0 .. r-3; lib/ passes
//     broadcast batch dims with stride 0), A's last dim == B's dim r-2 (K),
//     C's last two dims == (M, N);
//   - C is contiguous (row-major); A and B may have any non-negative strides
//     (run_kernel has checked that every view lies inside its storage).
#pragma once
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

// ShapeError / DTypeError naming `op`, the shapes, dtypes and device.
Status check_matmul(const View& a, const View& b, const View& c, const char* op);

// expect_counts(args, 2, 1, 0, 0), then check_matmul(in[0], in[1], out[0], args.op).
Status check_matmul_args(const KernelArgs& args);

}  // namespace kiln
