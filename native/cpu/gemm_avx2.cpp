// GEMM packing and micro-kernels compiled for the 'avx2' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx2
#define KILN_GEMM_LEVEL 1
#include "gemm_impl.inc"
