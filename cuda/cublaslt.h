// cuBLASLt, loaded at run time (dlopen, never linked) for the CUDA 'matmul'
// kernel; cuda/*.cu only. The build machines have no cuBLAS headers, so the
// few entry points, handles and enums kiln uses are declared here (lt_abi),
// copied from cublasLt.h / cublas_api.h / library_types.h of CUDA 12.x and
// 13.x, whose values and layouts are the same for everything below:
//   - cublasStatus_t, cublasComputeType_t, cublasOperation_t, cudaDataType_t and
//     the attribute enums are C enums (int-sized); kiln passes them as int;
//   - cublasLtMatmulAlgo_t is { uint64_t data[8]; } and
//     cublasLtMatmulHeuristicResult_t is { algo; size_t workspaceSize;
//     cublasStatus_t state; float wavesCount; int reserved[4]; } (96 bytes);
//   - the descriptors are opaque pointers (kiln never looks inside them).
// cublaslt.cu loads libcublasLt.so.13 or .so.12, checks cublasLtGetVersion()
// (major 12 or 13) and resolves every entry point before using any.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kiln/dtype.h"

namespace kiln {
namespace cuda {
namespace lt_abi {

using cublasStatus_t = int;
constexpr cublasStatus_t CUBLAS_STATUS_SUCCESS = 0;
constexpr cublasStatus_t CUBLAS_STATUS_NOT_INITIALIZED = 1;
constexpr cublasStatus_t CUBLAS_STATUS_ALLOC_FAILED = 3;
constexpr cublasStatus_t CUBLAS_STATUS_INVALID_VALUE = 7;
constexpr cublasStatus_t CUBLAS_STATUS_ARCH_MISMATCH = 8;
constexpr cublasStatus_t CUBLAS_STATUS_MAPPING_ERROR = 11;
constexpr cublasStatus_t CUBLAS_STATUS_EXECUTION_FAILED = 13;
constexpr cublasStatus_t CUBLAS_STATUS_INTERNAL_ERROR = 14;
constexpr cublasStatus_t CUBLAS_STATUS_NOT_SUPPORTED = 15;
constexpr cublasStatus_t CUBLAS_STATUS_LICENSE_ERROR = 16;

using cublasComputeType_t = int;
constexpr cublasComputeType_t CUBLAS_COMPUTE_32F = 68;  // float32 accumulation, no TF32 (77 would allow it)

using cudaDataType_t = int;  // library_types.h
constexpr cudaDataType_t CUDA_R_32F = 0;
constexpr cudaDataType_t CUDA_R_16F = 2;
constexpr cudaDataType_t CUDA_R_16BF = 14;

using cublasOperation_t = int;
constexpr cublasOperation_t CUBLAS_OP_N = 0;
constexpr cublasOperation_t CUBLAS_OP_T = 1;

// cublasLtMatmulDescAttributes_t
constexpr int CUBLASLT_MATMUL_DESC_TRANSA = 3;  // int32_t
constexpr int CUBLASLT_MATMUL_DESC_TRANSB = 4;  // int32_t

// cublasLtMatrixLayoutAttribute_t
constexpr int CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5;           // int32_t
constexpr int CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6;  // int64_t (elements)

// cublasLtMatmulPreferenceAttributes_t
constexpr int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1;    // uint64_t
constexpr int CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = 3;  // uint32_t
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5;  // uint32_t (default 256)
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8;

// cublasLtReductionScheme_t: NONE = "dot-product shall be performed in one sequence" (no split-K)
constexpr uint32_t CUBLASLT_REDUCTION_SCHEME_NONE = 0;

// cublasLtMatmulAlgoConfigAttributes_t
constexpr int CUBLASLT_ALGO_CONFIG_SPLITK_NUM = 2;         // int32_t, default 1
constexpr int CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME = 3;   // uint32_t, default NONE

struct cublasLtContext;
using cublasLtHandle_t = cublasLtContext*;
struct cublasLtMatmulDescOpaque;
using cublasLtMatmulDesc_t = cublasLtMatmulDescOpaque*;
struct cublasLtMatrixLayoutOpaque;
using cublasLtMatrixLayout_t = cublasLtMatrixLayoutOpaque*;
struct cublasLtMatmulPreferenceOpaque;
using cublasLtMatmulPreference_t = cublasLtMatmulPreferenceOpaque*;

struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};
static_assert(sizeof(cublasLtMatmulAlgo_t) == 64, "cublasLtMatmulAlgo_t is 64 bytes");
static_assert(sizeof(cublasLtMatmulHeuristicResult_t) == 96, "cublasLtMatmulHeuristicResult_t is 96 bytes");
static_assert(offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize) == 64, "layout");
static_assert(offsetof(cublasLtMatmulHeuristicResult_t, state) == 72, "layout");

// Entry points (extern "C" in the library; the x86-64 / aarch64 C and C++
// calling conventions are the same for these signatures).
using PFN_cublasLtCreate = cublasStatus_t (*)(cublasLtHandle_t*);
using PFN_cublasLtGetVersion = size_t (*)();
using PFN_cublasLtGetStatusName = const char* (*)(cublasStatus_t);
using PFN_cublasLtMatmulDescCreate = cublasStatus_t (*)(cublasLtMatmulDesc_t*, cublasComputeType_t, cudaDataType_t);
using PFN_cublasLtMatmulDescDestroy = cublasStatus_t (*)(cublasLtMatmulDesc_t);
using PFN_cublasLtMatmulDescSetAttribute = cublasStatus_t (*)(cublasLtMatmulDesc_t, int, const void*, size_t);
using PFN_cublasLtMatrixLayoutCreate = cublasStatus_t (*)(cublasLtMatrixLayout_t*, cudaDataType_t, uint64_t rows,
                                                          uint64_t cols, int64_t ld);
using PFN_cublasLtMatrixLayoutDestroy = cublasStatus_t (*)(cublasLtMatrixLayout_t);
using PFN_cublasLtMatrixLayoutSetAttribute = cublasStatus_t (*)(cublasLtMatrixLayout_t, int, const void*, size_t);
using PFN_cublasLtMatmulPreferenceCreate = cublasStatus_t (*)(cublasLtMatmulPreference_t*);
using PFN_cublasLtMatmulPreferenceDestroy = cublasStatus_t (*)(cublasLtMatmulPreference_t);
using PFN_cublasLtMatmulPreferenceSetAttribute = cublasStatus_t (*)(cublasLtMatmulPreference_t, int, const void*,
                                                                    size_t);
using PFN_cublasLtMatmulAlgoGetHeuristic = cublasStatus_t (*)(
    cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
    cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc, cublasLtMatmulPreference_t, int requestedAlgoCount,
    cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount);
using PFN_cublasLtMatmulAlgoConfigGetAttribute = cublasStatus_t (*)(const cublasLtMatmulAlgo_t*, int, void*, size_t,
                                                                    size_t* sizeWritten);
using PFN_cublasLtMatmul = cublasStatus_t (*)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void* alpha, const void* A,
                                              cublasLtMatrixLayout_t Adesc, const void* B,
                                              cublasLtMatrixLayout_t Bdesc, const void* beta, const void* C,
                                              cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,
                                              const cublasLtMatmulAlgo_t* algo, void* workspace,
                                              size_t workspaceSizeInBytes, cudaStream_t stream);

}  // namespace lt_abi

// One strided-batched GEMM in cuBLAS's column-major terms, alpha 1, beta 0:
//   D[i] (m x n, leading dimension ldc) = op(A[i]) (m x k) * op(B[i]) (k x n)
// for i < batch, with A[i] = a + i * stride_a elements (likewise B, D).
// trans_a: A is stored as a k x m column-major matrix (op = transpose), else m x k.
// trans_b: B is stored n x k, else k x n. Strides may be 0 (broadcast inputs).
struct LtGemm {
  DType dtype = DType::Float32;  // of A, B and D (float32 accumulation, float32 scale)
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  void* d = nullptr;
};

// Enqueues g on `stream` (kiln's stream of `device`, which must be current)
// with cuBLASLt, restricted to algorithms without split-K (every D element is
// one dot product accumulated in float32 in one sequence). Returns true when
// cuBLASLt launched it; false when cuBLASLt is turned off, not loaded, has no
// such algorithm for this problem, or failed (the caller then runs kiln's own
// kernel, which overwrites every D element). A problem class that failed twice
// is not tried again. Never throws, never aborts.
bool cublaslt_gemm(int device, cudaStream_t stream, const LtGemm& g);

}  // namespace cuda
}  // namespace kiln
