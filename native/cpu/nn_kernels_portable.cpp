// Normalization and attention kernels compiled for the 'portable' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS portable
#include "nn_kernels_impl.inc"
