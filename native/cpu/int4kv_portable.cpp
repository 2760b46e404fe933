// attention_int4kv loops compiled for the portable ISA level (flags set in CMakeLists.txt).
#define KILN_ISA_NS portable
#include "int4kv_impl.inc"
