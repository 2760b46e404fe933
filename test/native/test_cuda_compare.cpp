// Native tests for the CUDA comparison and logical kernels (suite
// 'cuda_compare') against the CPU kernels, the reference (suite 'compare'
// checks those against float64): every (op, dtype) runs through run_kernel on
// the CPU and on cuda:0 over identical copies of the same operands
// (contiguous, transposed, strided with offsets, broadcast with stride 0,
// size-1 and empty dims, every 16-bit code, NaN / inf / -0 / subnormal
// specials, bool bytes other than 0 and 1), and the whole output storages --
// including the gaps a strided output skips -- must be the same bytes.
// Refused operands must give cuda the CPU's status code and message, with the
// output untouched.
//
// Without a usable GPU the GPU tests skip with the reason kiln reports; the
// registration test (the CUDA kernels cover exactly the CPU's (op, dtype)
// pairs) needs only a CUDA build. This file uses only kiln's backend-neutral
// headers, so it compiles with or without CUDA.
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "device_testing.h"
#include "harness.h"
#include "kiln/cuda.h"
#include "kiln/dtype.h"
#include "kiln/registry.h"
#include "kiln/status.h"

namespace {

using dvt::Layout;
using dvt::Operand;
using dvt::output;
using dvt::require_cuda;
using dvt::storage_elems;
using kiln::DType;
using kiln::StatusCode;

const char* const kCompareOps[] = {"eq", "ne", "lt", "le", "gt", "ge"};
const DType kCompareDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32,
                                DType::Int8,    DType::UInt8,   DType::Bool};

std::string dt(DType t) { return kiln::dtype_name(t); }

// ---- element data ---------------------------------------------------------------------------

// A storage image of n elements of dtype t made for comparisons (unlike
// dvt::random_image: values that repeat, 1.0 beside 1.0 + ulp, int8 extremes,
// bool bytes other than 0 and 1): half from a pool of specials (-0 / +0, NaNs
// of both signs and several payloads, inf, subnormals, extremes), half
// arbitrary bit patterns; bool: 0, 1 and other nonzero bytes.
std::vector<uint8_t> compare_image(DType t, int64_t n, std::mt19937_64& rng) {
  static const uint32_t kF32[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
                                  0x7FA00001u, 0x3F800000u, 0xBF800000u, 0x3F800001u, 0x00000001u, 0x807FFFFFu,
                                  0x7F7FFFFFu, 0x00800000u};
  static const uint16_t kF16[] = {0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x0001, 0x83FF, 0x7BFF, 0x3C00, 0x3C01, 0x0400};
  static const uint16_t kBF16[] = {0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x0001, 0x807F, 0x7F7F, 0x3F80, 0x3F81, 0x0080};
  static const uint32_t kI32[] = {0u, 1u, 0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, 0x80000001u, 2u};
  static const uint8_t kI8[] = {0, 1, 0x7F, 0x80, 0xFF, 0x81, 2};
  const size_t es = kiln::dtype_size(t);
  std::vector<uint8_t> img(static_cast<size_t>(n) * es);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t x = rng();
    const bool pool = (x >> 60) < 8;
    uint64_t bits = 0;
    switch (t) {
      case DType::Float32: bits = pool ? kF32[x % 14] : static_cast<uint32_t>(x); break;
      case DType::Float16: bits = pool ? kF16[x % 12] : static_cast<uint16_t>(x); break;
      case DType::BFloat16: bits = pool ? kBF16[x % 12] : static_cast<uint16_t>(x); break;
      case DType::Int32: bits = pool ? kI32[x % 7] : static_cast<uint32_t>(x); break;
      case DType::Bool: {
        const uint64_t k = x % 10;
        bits = k < 4 ? 0 : (k < 8 ? 1 : (k == 8 ? 2 : 0xFF));
        break;
      }
      default: bits = pool ? kI8[x % 7] : (x & 0xFF); break;
    }
    std::memcpy(img.data() + static_cast<size_t>(i) * es, &bits, es);
  }
  return img;
}


Operand input(const Layout& l, std::mt19937_64& rng) { return Operand{l, compare_image(l.dtype, storage_elems(l), rng)}; }

// Both succeed and the output storages are the same bytes.
void compare(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins, const Operand& out) {
  dvt::compare(what, op, key, ins, {out});
}

// Both refuse with the same code and message, and neither wrote the output.
void compare_error(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins, const Operand& out,
                   StatusCode want) {
  const dvt::Outcome r = dvt::run_both(what, op, key, ins, {out});
  if (!r.ran) return;
  KCHECK(r.cpu.code() == want) << what << ": cpu " << kiln::status_code_name(r.cpu.code()) << " " << r.cpu.message();
  KCHECK(r.gpu.code() == r.cpu.code()) << what << ": cuda " << kiln::status_code_name(r.gpu.code()) << " vs cpu "
                                       << kiln::status_code_name(r.cpu.code());
  if (want == StatusCode::NoKernel) {  // the message names the device
    std::string cpu_msg = r.cpu.message();
    const std::string tail = "on device cpu";
    if (cpu_msg.size() >= tail.size() && cpu_msg.compare(cpu_msg.size() - tail.size(), tail.size(), tail) == 0) {
      cpu_msg.replace(cpu_msg.size() - tail.size(), tail.size(), "on device cuda");
    }
    KCHECK_EQ(r.gpu.message(), cpu_msg) << what;
  } else {
    KCHECK_EQ(r.gpu.message(), r.cpu.message()) << what;
  }
  KCHECK(r.cpu_out[0] == out.init) << what << ": the cpu wrote the output before failing";
  KCHECK(r.gpu_out[0] == out.init) << what << ": cuda wrote the output before failing";
}

// ---- cases --------------------------------------------------------------------------------

struct Case {
  const char* name;
  Layout a, b, out;  // dtypes set per run (out: bool)
};

Layout with(const Layout& l, DType t) { return dvt::with_dtype(l, t); }

std::vector<Case> cases() {
  const DType f = DType::Float32;
  return {
      {"contiguous", Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}},
      {"row broadcast", Layout{f, {37, 129}, {}, 0}, Layout{f, {129}, {}, 0}, Layout{f, {37, 129}, {}, 0}},
      {"scalar operand", Layout{f, {}, {}, 2}, Layout{f, {5, 77}, {}, 0}, Layout{f, {5, 77}, {}, 0}},
      {"outer broadcast", Layout{f, {3, 1, 5}, {}, 0}, Layout{f, {4, 1}, {}, 0}, Layout{f, {3, 4, 5}, {}, 0}},
      {"transposed, strided output",
       Layout{f, {33, 40}, {1, 33}, 0}, Layout{f, {33, 40}, {81, 2}, 5}, Layout{f, {33, 40}, {1, 35}, 3}},
      {"expanded (stride 0)", Layout{f, {6, 64}, {0, 1}, 2}, Layout{f, {6, 64}, {1, 0}, 1}, Layout{f, {6, 64}, {}, 0}},
      {"size-1 dims", Layout{f, {1, 7, 1, 3}, {5, 3, 9, 1}, 4}, Layout{f, {1, 1, 3}, {}, 0},
       Layout{f, {1, 7, 1, 3}, {100, 4, 1, 1}, 0}},
      {"scalars", Layout{f, {}, {}, 3}, Layout{f, {}, {}, 0}, Layout{f, {}, {}, 1}},
      {"empty", Layout{f, {3, 0, 2}, {}, 0}, Layout{f, {1, 2}, {}, 0}, Layout{f, {3, 0, 2}, {}, 0}},
  };
}

// =====================================================================================================

KTEST(cuda_compare, same_kernels_as_cpu) {
  if (!kiln::cuda::compiled()) kt::skip("kiln was built without CUDA");
  const std::vector<std::string> names = kiln::registered_kernels();
  const std::set<std::string> have(names.begin(), names.end());
  for (const char* op : {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not"}) {
    int cpu_count = 0;
    for (DType t : kiln::kAllDTypes) {
      const bool cpu = have.count(std::string(op) + "/cpu/" + dt(t)) > 0;
      const bool gpu = have.count(std::string(op) + "/cuda/" + dt(t)) > 0;
      cpu_count += cpu ? 1 : 0;
      KCHECK(cpu == gpu) << op << " " << dt(t) << ": cpu kernel " << cpu << ", cuda kernel " << gpu;
    }
    KCHECK(cpu_count > 0) << op << " has no CPU kernel at all";
  }
}

KTEST(cuda_compare, comparisons_match_cpu) {
  require_cuda();
  std::mt19937_64 rng(11);
  for (const Case& c : cases()) {
    for (DType t : kCompareDTypes) {
      for (const char* op : kCompareOps) {
        const std::string what = std::string(op) + " " + dt(t) + " " + c.name;
        compare(what, op, t, {input(with(c.a, t), rng), input(with(c.b, t), rng)}, output(with(c.out, DType::Bool)));
        if (kt::failures_in_test() > 20) return;
      }
    }
  }
}

KTEST(cuda_compare, logical_ops_match_cpu) {
  require_cuda();
  std::mt19937_64 rng(12);
  for (const Case& c : cases()) {
    for (const char* op : {"logical_and", "logical_or"}) {
      const std::string what = std::string(op) + " " + c.name;
      compare(what, op, DType::Bool, {input(with(c.a, DType::Bool), rng), input(with(c.b, DType::Bool), rng)},
              output(with(c.out, DType::Bool)));
    }
    // logical_not: the output's shape (a's layout when it matches, else contiguous)
    Layout x = with(c.out, DType::Bool);
    x.strides.clear();
    x.offset = 1;
    const std::string what = std::string("logical_not ") + c.name;
    compare(what, "logical_not", DType::Bool, {input(x, rng)}, output(with(c.out, DType::Bool)));
    Layout xt = with(c.a, DType::Bool);
    compare(what + " (a's layout)", "logical_not", DType::Bool, {input(xt, rng)},
            output(Layout{DType::Bool, c.a.shape, {}, 0}));
  }
}

// Every 16-bit code against a column of codes (specials and random ones), every op.
KTEST(cuda_compare, every_16bit_code) {
  require_cuda();
  std::mt19937_64 rng(13);
  for (DType t : {DType::Float16, DType::BFloat16}) {
    Operand all{Layout{t, {65536}, {}, 0}, std::vector<uint8_t>(65536 * 2)};
    for (uint32_t i = 0; i < 65536; ++i) {
      const uint16_t h = static_cast<uint16_t>(i);
      std::memcpy(all.init.data() + 2 * i, &h, 2);
    }
    std::vector<uint16_t> col = {0x0000, 0x8000, 0x0001, 0x8001, 0x3C00, 0xBC00, 0x3F80, 0xBF80, 0x7BFF, 0xFBFF,
                                 0x7F7F, 0xFF7F, 0x7C00, 0xFC00, 0x7F80, 0xFF80, 0x7E00, 0x7FC0, 0xFFFF, 0x7C01};
    for (int i = 0; i < 12; ++i) col.push_back(static_cast<uint16_t>(rng()));
    const int64_t m = static_cast<int64_t>(col.size());
    Operand other{Layout{t, {m, 1}, {}, 0}, std::vector<uint8_t>(col.size() * 2)};
    std::memcpy(other.init.data(), col.data(), col.size() * 2);
    for (const char* op : kCompareOps) {
      compare(std::string(op) + " " + dt(t) + " every code", op, t, {other, all}, output(Layout{DType::Bool, {m, 65536}, {}, 0}));
      compare(std::string(op) + " " + dt(t) + " every code, swapped", op, t, {all, other},
              output(Layout{DType::Bool, {m, 65536}, {}, 0}));
    }
  }
}

KTEST(cuda_compare, errors_match_cpu) {
  require_cuda();
  std::mt19937_64 rng(14);
  const Layout f{DType::Float32, {3, 4}, {}, 0};
  compare_error("dtypes differ", "lt", DType::Float32, {input(f, rng), input(with(f, DType::Float16), rng)},
                output(with(f, DType::Bool)), StatusCode::DTypeError);
  compare_error("output not bool", "eq", DType::Float32, {input(f, rng), input(f, rng)}, output(f), StatusCode::DTypeError);
  compare_error("shapes", "ge", DType::Float32, {input(f, rng), input(Layout{DType::Float32, {3, 5}, {}, 0}, rng)},
                output(with(f, DType::Bool)), StatusCode::ShapeError);
  compare_error("output shape", "ne", DType::Int32, {input(with(f, DType::Int32), rng), input(with(f, DType::Int32), rng)},
                output(Layout{DType::Bool, {2, 3, 4}, {}, 0}), StatusCode::ShapeError);
  compare_error("float8", "eq", DType::Float8E4M3, {input(with(f, DType::Float8E4M3), rng), input(with(f, DType::Float8E4M3), rng)},
                output(with(f, DType::Bool)), StatusCode::NoKernel);
  compare_error("logical_and of float32", "logical_and", DType::Float32, {input(f, rng), input(f, rng)},
                output(with(f, DType::Bool)), StatusCode::NoKernel);
  compare_error("logical_not to float32", "logical_not", DType::Bool, {input(with(f, DType::Bool), rng)}, output(f),
                StatusCode::DTypeError);
  compare_error("logical_not shape", "logical_not", DType::Bool, {input(with(f, DType::Bool), rng)},
                output(Layout{DType::Bool, {4, 3}, {}, 0}), StatusCode::ShapeError);
}

}  // namespace
