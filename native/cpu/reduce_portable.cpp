// Reduction and softmax-row inner loops compiled for the 'portable' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS portable
#include "reduce_impl.inc"
