// Reduction and softmax-row inner loops compiled for the 'avx512' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx512
#include "reduce_impl.inc"
