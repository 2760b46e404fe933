// Calling registered kernels from native tests: one helper per op family,
// each building the KernelArgs the addon would and going through run_kernel
// (so the registry's own validation runs too).
#pragma once
#include <cstdint>
#include <vector>

#include "kiln/registry.h"

namespace kt {

inline kiln::Status run_binary(const char* op, const kiln::View& a, const kiln::View& b, const kiln::View& out) {
  const kiln::View in[2] = {a, b};
  kiln::KernelArgs args;
  args.op = op;
  args.in = in;
  args.n_in = 2;
  args.out = &out;
  args.n_out = 1;
  return kiln::run_kernel(out.dtype, args);
}

inline kiln::Status run_cast(const kiln::View& src, const kiln::View& dst) {
  kiln::KernelArgs args;
  args.op = "cast";
  args.in = &src;
  args.n_in = 1;
  args.out = &dst;
  args.n_out = 1;
  return kiln::run_kernel(src.dtype, args);
}

inline kiln::Status run_fill(const kiln::View& out, int64_t bits) {
  kiln::KernelArgs args;
  args.op = "fill";
  args.out = &out;
  args.n_out = 1;
  args.ints = &bits;
  args.n_ints = 1;
  return kiln::run_kernel(out.dtype, args);
}

// op: "rand" or "randn"; ints = [seed, counter offset].
inline kiln::Status run_random(const char* op, const kiln::View& out, int64_t seed, int64_t offset) {
  const int64_t ints[2] = {seed, offset};
  kiln::KernelArgs args;
  args.op = op;
  args.out = &out;
  args.n_out = 1;
  args.ints = ints;
  args.n_ints = 2;
  return kiln::run_kernel(out.dtype, args);
}

// Any kernel: views in and out, integer and real attributes, registry key dtype.
inline kiln::Status run(const char* op, kiln::DType key, const std::vector<kiln::View>& ins,
                        const std::vector<kiln::View>& outs, const std::vector<int64_t>& ints = {},
                        const std::vector<double>& floats = {}) {
  kiln::KernelArgs args;
  args.op = op;
  args.in = ins.data();
  args.n_in = static_cast<int>(ins.size());
  args.out = outs.data();
  args.n_out = static_cast<int>(outs.size());
  args.ints = ints.data();
  args.n_ints = static_cast<int>(ints.size());
  args.floats = floats.data();
  args.n_floats = static_cast<int>(floats.size());
  return kiln::run_kernel(key, args);
}

}  // namespace kt
