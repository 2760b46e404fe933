// W4A8 activation quantizer and GEMM tiles compiled for the avx2 level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx2
#define KILN_W4A8_LEVEL 1
#include "w4a8_impl.inc"
