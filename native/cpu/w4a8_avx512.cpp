// W4A8 activation quantizer and GEMM tiles compiled for the avx512 level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx512
#define KILN_W4A8_LEVEL 2
#include "w4a8_impl.inc"
