// Optimizer inner loops compiled for the 'avx2' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx2
#include "optim_impl.inc"
