// Optimizer inner loops compiled for the 'avx512' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx512
#include "optim_impl.inc"
