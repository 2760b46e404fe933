// Optimizer inner loops compiled for the 'portable' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS portable
#include "optim_impl.inc"
