// GEMM packing and micro-kernels compiled for the 'avx512' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx512
#define KILN_GEMM_LEVEL 2
#include "gemm_impl.inc"
