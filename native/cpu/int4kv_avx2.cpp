// attention_int4kv loops compiled for the avx2 ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx2
#include "int4kv_impl.inc"
