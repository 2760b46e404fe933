// Normalization and attention kernels compiled for the 'avx512' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx512
#include "nn_kernels_impl.inc"
