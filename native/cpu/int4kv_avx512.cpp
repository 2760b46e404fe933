// attention_int4kv loops compiled for the avx512 ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS avx512
#include "int4kv_impl.inc"
