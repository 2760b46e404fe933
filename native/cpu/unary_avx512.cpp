// Unary/backward/clamp/where inner loops compiled for the 'avx512' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx512
#include "unary_impl.inc"
