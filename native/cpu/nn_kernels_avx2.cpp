// Normalization and attention kernels compiled for the 'avx2' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx2
#include "nn_kernels_impl.inc"
