// W4A8 activation quantizer and GEMM tiles compiled for the portable level (flags set in CMakeLists.txt).
#define KILN_ISA_NS portable
#define KILN_W4A8_LEVEL 0
#include "w4a8_impl.inc"
