// GEMM packing and micro-kernels compiled for the 'portable' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS portable
#define KILN_GEMM_LEVEL 0
#include "gemm_impl.inc"
