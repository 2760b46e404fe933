// Unary/backward/clamp/where inner loops compiled for the 'avx2' ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx2
#include "unary_impl.inc"
