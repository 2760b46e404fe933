// Native tests for the CUDA elementwise, reduction, softmax / cross-entropy and
// embedding kernels (suite 'cuda_ops') against the CPU kernels, the reference:
// every op runs through run_kernel on the CPU and on cuda:0 over identical
// copies of the same operands (contiguous, transposed, strided with offsets,
// broadcast with stride 0, size-1 and empty dims, 16-bit dtypes, NaN / inf /
// -0 / subnormal specials), and the output storages -- including the gaps a
// strided output skips -- are compared:
//   - bit for bit where both backends compute the same function in the same
//     order: unary ops, pow, where, clamp, max / min / argmax, int32 sums,
//     softmax and its backward, lse and glogits of cross entropy, embedding
//     and embedding_backward. "NaN-equal" (any two NaN codes) only where
//     arithmetic makes a NaN from non-NaN operands (sqrt of a negative number,
//     inf * 0 in a backward op, inf - inf in a sum of gout rows): its sign and
//     payload differ between x86 and NVIDIA GPUs; NaN arguments keep theirs on
//     both (checked separately, bit for bit);
//   - within a bound elsewhere: float sums and means (float64 accumulation in a
//     different order: |cuda - cpu| <= 1 ulp of the dtype + n 2^-50 sum|x|),
//     and the cross-entropy loss (the row losses summed in a different order:
//     1 ulp of float32 + R 2^-50 sum|loss_r| / n).
// Error statuses (ids / targets out of range) must have the CPU's code and
// message, with every output left as it was. Determinism: the reductions,
// softmax, cross entropy and embedding_backward run twice on the GPU and must
// give the same bytes.
//
// Without a usable GPU every GPU test skips with the reason kiln reports; the
// registration test (the CUDA kernels cover exactly the CPU's (op, dtype)
// pairs) needs only a CUDA build. This file uses only kiln's backend-neutral
// headers, so it compiles with or without CUDA.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "device_testing.h"
#include "harness.h"
#include "kiln/cuda.h"
#include "kiln/dtype.h"
#include "kiln/numerics.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/storage.h"
#include "kiln/view.h"

namespace {

using namespace dvt;
using kiln::StatusCode;

const DType kAllDTypes[] = {DType::Float32,    DType::Float16, DType::BFloat16, DType::Float8E4M3, DType::Float8E5M2,
                            DType::Int8,       DType::UInt8,   DType::Int32,    DType::Bool};
const DType kArith[] = {DType::Float32, DType::Float16, DType::BFloat16};
const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

std::string dt(DType t) { return kiln::dtype_name(t); }

// ---- element data ---------------------------------------------------------------------------

// The value of a float32 / float16 / bfloat16 / int32 element.
double value_of(DType t, uint64_t bits) {
  switch (t) {
    case DType::Float32: return kiln::num::bits_f32(static_cast<uint32_t>(bits));
    case DType::Float16: return kiln::num::f16_to_f32(static_cast<uint16_t>(bits));
    case DType::BFloat16: return kiln::num::bf16_to_f32(static_cast<uint16_t>(bits));
    case DType::Int32: return static_cast<int32_t>(static_cast<uint32_t>(bits));
    default: return static_cast<double>(bits);
  }
}

double elem_value(const std::vector<uint8_t>& img, DType t, int64_t i) {
  const size_t es = kiln::dtype_size(t);
  return value_of(t, load_bits(&img[static_cast<size_t>(i) * es], es));
}

// The code of v in dtype t (one rounding from double).
uint64_t code_of(DType t, double v) {
  switch (t) {
    case DType::Float32: return kiln::num::f32_bits(static_cast<float>(v));
    case DType::Float16: return kiln::num::f64_to_f16(v);
    case DType::BFloat16: return kiln::num::f64_to_bf16(v);
    case DType::Int32: return static_cast<uint32_t>(static_cast<int32_t>(v));
    case DType::Bool: return v != 0.0 ? 1 : 0;
    default: return static_cast<uint64_t>(v) & 0xFF;
  }
}

// Spacing of dtype t's values at magnitude |v| (the subnormal spacing near 0).
double ulp_at(DType t, double v) {
  const int p = t == DType::Float32 ? 24 : (t == DType::Float16 ? 11 : 8);
  const int emin = t == DType::Float16 ? -14 : -126;
  int e = 0;
  std::frexp(std::fabs(v), &e);  // |v| in [2^(e-1), 2^e)
  const int ee = std::max(e - 1, emin);
  return std::ldexp(1.0, ee - (p - 1));
}

// n elements of dtype t from values (each rounded once).
std::vector<uint8_t> values_image(DType t, const std::vector<double>& v) {
  const size_t es = kiln::dtype_size(t);
  std::vector<uint8_t> img(v.size() * es);
  for (size_t i = 0; i < v.size(); ++i) put(&img, i, es, code_of(t, v[i]));
  return img;
}

// n ordinary values, uniform in [lo, hi).
std::vector<double> uniform(int64_t n, double lo, double hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = u(rng);
  return v;
}

// ---- running one op on both backends ------------------------------------------------------------

Operand values_operand(const Layout& l, const std::vector<double>& v) {
  std::vector<double> all = v;
  all.resize(static_cast<size_t>(storage_elems(l)), 0.0);
  return Operand{l, values_image(l.dtype, all)};
}
Operand uniform_operand(const Layout& l, double lo, double hi, std::mt19937_64& rng) {
  return values_operand(l, uniform(storage_elems(l), lo, hi, rng));
}
Operand int32_operand(const Layout& l, const std::vector<int64_t>& values) {
  std::vector<double> v(values.begin(), values.end());
  Layout li = l;
  li.dtype = DType::Int32;
  // Fill the viewed elements (row-major) with the values, the gaps with a pattern.
  std::vector<double> all(static_cast<size_t>(storage_elems(li)), 12345.0);
  const std::vector<int64_t> offs = element_offsets(li);
  for (size_t i = 0; i < offs.size() && i < v.size(); ++i) all[static_cast<size_t>(offs[i])] = v[i];
  return Operand{li, values_image(DType::Int32, all)};
}

// True when both succeeded. When the CPU refuses the operands, cuda must refuse
// them with the same code and message (and false is returned).
bool same_status(const std::string& what, const Outcome& r) {
  if (!r.ran) return false;
  if (!r.cpu.ok()) {
    KCHECK(r.gpu.code() == r.cpu.code()) << what << ": cuda " << code_name(r.gpu) << " vs cpu " << code_name(r.cpu)
                                         << " (" << r.cpu.message() << ")";
    KCHECK_EQ(r.gpu.message(), r.cpu.message()) << what;
    return false;
  }
  return both_ok(what, r);
}

// Both fail with the same code and message, and neither backend wrote an output.
void compare_error(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins,
                   const std::vector<Operand>& outs, const std::vector<int64_t>& ints, const std::vector<double>& floats,
                   StatusCode want, const std::string& message) {
  const Outcome r = run_both(what, op, key, ins, outs, ints, floats);
  if (!r.ran) return;
  KCHECK(r.cpu.code() == want) << what << ": cpu " << code_name(r.cpu) << " " << r.cpu.message();
  KCHECK(r.gpu.code() == r.cpu.code()) << what << ": cuda " << code_name(r.gpu) << " vs cpu " << code_name(r.cpu);
  KCHECK_EQ(r.gpu.message(), r.cpu.message()) << what;
  if (!message.empty()) KCHECK_EQ(r.cpu.message(), message) << what;
  for (size_t i = 0; i < outs.size(); ++i) {
    KCHECK(r.cpu_out[i] == outs[i].init) << what << ": the cpu wrote output " << i << " before failing";
    KCHECK(r.gpu_out[i] == outs[i].init) << what << ": cuda wrote output " << i << " before failing";
  }
}

// =====================================================================================================
// registrations
// =====================================================================================================

const char* const kOps[] = {"pow",
                            "neg",
                            "abs",
                            "relu",
                            "exp",
                            "log",
                            "sqrt",
                            "rsqrt",
                            "sigmoid",
                            "tanh",
                            "silu",
                            "gelu",
                            "gelu_tanh",
                            "relu_backward",
                            "gelu_backward",
                            "gelu_tanh_backward",
                            "silu_backward",
                            "sigmoid_backward",
                            "tanh_backward",
                            "where",
                            "clamp",
                            "sum",
                            "mean",
                            "max",
                            "min",
                            "argmax",
                            "softmax",
                            "log_softmax",
                            "softmax_backward",
                            "log_softmax_backward",
                            "cross_entropy",
                            "cross_entropy_backward",
                            "embedding",
                            "embedding_backward"};

KTEST(cuda_ops, same_kernels_as_cpu) {
  if (!kiln::cuda::compiled()) kt::skip("kiln was built without CUDA");
  const std::vector<std::string> names = kiln::registered_kernels();
  const std::set<std::string> have(names.begin(), names.end());
  for (const char* op : kOps) {
    int cpu_count = 0;
    for (DType t : kAllDTypes) {
      const bool cpu = have.count(std::string(op) + "/cpu/" + dt(t)) > 0;
      const bool gpu = have.count(std::string(op) + "/cuda/" + dt(t)) > 0;
      cpu_count += cpu ? 1 : 0;
      KCHECK(cpu == gpu) << op << " " << dt(t) << ": cpu kernel " << cpu << ", cuda kernel " << gpu;
    }
    KCHECK(cpu_count > 0) << op << " has no CPU kernel at all";
  }
}

// =====================================================================================================
// elementwise
// =====================================================================================================

struct UnaryCase {
  const char* name;
  Layout x, y;  // dtypes set per run
};

std::vector<UnaryCase> unary_cases() {
  const DType f = DType::Float32;
  return {
      {"contiguous", Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}},
      {"transposed input", Layout{f, {33, 40}, {1, 33}, 0}, Layout{f, {33, 40}, {}, 0}},
      {"strided output, offset", Layout{f, {6, 7}, {}, 0}, Layout{f, {6, 7}, {16, 2}, 3}},
      {"broadcast input", Layout{f, {5, 64}, {0, 1}, 2}, Layout{f, {5, 64}, {}, 0}},
      {"size-1 dims", Layout{f, {1, 7, 1, 3}, {5, 3, 9, 1}, 4}, Layout{f, {1, 7, 1, 3}, {100, 4, 1, 1}, 0}},
      {"scalar", Layout{f, {}, {}, 3}, Layout{f, {}, {}, 1}},
      {"empty", Layout{f, {3, 0, 2}, {}, 0}, Layout{f, {3, 0, 2}, {}, 0}},
  };
}

const char* const kUnaryOps[] = {"neg", "abs", "relu", "exp", "log", "sqrt", "rsqrt", "sigmoid", "tanh", "silu", "gelu", "gelu_tanh"};
bool unary_int32(const std::string& op) { return op == "neg" || op == "abs" || op == "relu"; }
// sqrt / rsqrt of a negative number: a NaN made by arithmetic (x86 and GPU bits differ).
bool unary_makes_nan(const std::string& op) { return op == "sqrt" || op == "rsqrt"; }

// Every code of a 16-bit dtype.
std::vector<uint8_t> all_codes16() {
  std::vector<uint8_t> img(65536 * 2);
  for (size_t i = 0; i < 65536; ++i) put(&img, i, 2, i);
  return img;
}

// n float32 NaNs with random signs and payloads (quiet and signalling).
std::vector<uint8_t> nan_image_f32(int64_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> img(static_cast<size_t>(n) * 4);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t m = static_cast<uint32_t>(rng()) & 0x7FFFFFu;
    if (m == 0) m = 1;
    put(&img, static_cast<size_t>(i), 4, (static_cast<uint32_t>(rng() & 1) << 31) | 0x7F800000u | m);
  }
  return img;
}

KTEST(cuda_ops, unary) {
  require_cuda();
  std::mt19937_64 rng(101);
  for (const char* op : kUnaryOps) {
    for (DType t : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32}) {
      if (t == DType::Int32 && !unary_int32(op)) continue;
      for (const UnaryCase& c : unary_cases()) {
        const Layout x = with_dtype(c.x, t), y = with_dtype(c.y, t);
        compare(std::string(op) + " " + dt(t) + " " + c.name, op, t, {operand(x, rng)}, {operand(y, rng)}, {}, {},
                unary_makes_nan(op));
      }
    }
    // Every float16 / bfloat16 code.
    for (DType t : {DType::Float16, DType::BFloat16}) {
      const Layout l{t, {65536}, {}, 0};
      compare(std::string(op) + " " + dt(t) + " every code", op, t, {Operand{l, all_codes16()}}, {output(l)}, {}, {},
              unary_makes_nan(op));
    }
    // Wide float32 values, and NaN arguments (which keep sign and payload, quieted, on both).
    const Layout l{DType::Float32, {20000}, {}, 0};
    compare(std::string(op) + " float32 wide values", op, DType::Float32,
            {values_operand(l, uniform(20000, -120.0, 120.0, rng))}, {output(l)}, {}, {}, unary_makes_nan(op));
    compare(std::string(op) + " float32 NaN arguments", op, DType::Float32, {Operand{l, nan_image_f32(20000, rng)}},
            {output(l)});
    if (kt::failures_in_test() > 20) return;
  }
}

const char* const kGradOps[] = {"relu_backward",  "gelu_backward",    "gelu_tanh_backward",
                                "silu_backward", "sigmoid_backward", "tanh_backward"};

KTEST(cuda_ops, unary_backward) {
  require_cuda();
  std::mt19937_64 rng(102);
  const DType f = DType::Float32;
  struct Case {
    const char* name;
    Layout x, gy, gx;
  };
  const std::vector<Case> cases = {
      {"contiguous", Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}},
      {"transposed x", Layout{f, {33, 40}, {1, 33}, 0}, Layout{f, {33, 40}, {}, 0}, Layout{f, {33, 40}, {}, 0}},
      {"broadcast gy, strided gx", Layout{f, {6, 7}, {}, 0}, Layout{f, {6, 7}, {0, 1}, 1}, Layout{f, {6, 7}, {16, 2}, 3}},
      {"size-1 dims", Layout{f, {1, 7, 1, 3}, {5, 3, 9, 1}, 4}, Layout{f, {1, 7, 1, 3}, {}, 0},
       Layout{f, {1, 7, 1, 3}, {100, 4, 1, 1}, 0}},
      {"scalar", Layout{f, {}, {}, 3}, Layout{f, {}, {}, 0}, Layout{f, {}, {}, 1}},
      {"empty", Layout{f, {3, 0, 2}, {}, 0}, Layout{f, {3, 0, 2}, {}, 0}, Layout{f, {3, 0, 2}, {}, 0}},
  };
  for (const char* op : kGradOps) {
    for (DType t : kArith) {
      // inf * 0 and the like make NaNs from non-NaN operands: NaN-equal.
      for (const Case& c : cases) {
        compare(std::string(op) + " " + dt(t) + " " + c.name, op, t,
                {operand(with_dtype(c.x, t), rng), operand(with_dtype(c.gy, t), rng)}, {operand(with_dtype(c.gx, t), rng)},
                {}, {}, true);
      }
      if (t != DType::Float32) {
        const Layout l{t, {65536}, {}, 0};
        compare(std::string(op) + " " + dt(t) + " every code of x", op, t,
                {Operand{l, all_codes16()}, values_operand(l, uniform(65536, -3.0, 3.0, rng))}, {output(l)}, {}, {},
                true);
      }
    }
    // Ordinary operands: exact; NaN arguments: x's NaN, else gy's, quieted (relu_backward: 0 or gy).
    const Layout l{DType::Float32, {20000}, {}, 0};
    compare(std::string(op) + " float32 ordinary", op, DType::Float32,
            {values_operand(l, uniform(20000, -12.0, 12.0, rng)), values_operand(l, uniform(20000, -2.0, 2.0, rng))},
            {output(l)});
    compare(std::string(op) + " float32 NaN x", op, DType::Float32,
            {Operand{l, nan_image_f32(20000, rng)}, values_operand(l, uniform(20000, -2.0, 2.0, rng))}, {output(l)});
    compare(std::string(op) + " float32 NaN gy", op, DType::Float32,
            {values_operand(l, uniform(20000, -12.0, 12.0, rng)), Operand{l, nan_image_f32(20000, rng)}}, {output(l)});
    if (kt::failures_in_test() > 20) return;
  }
}

KTEST(cuda_ops, pow) {
  require_cuda();
  std::mt19937_64 rng(103);
  const DType f = DType::Float32;
  struct Case {
    const char* name;
    Layout a, b, out;
  };
  const std::vector<Case> cases = {
      {"same shape", Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}},
      {"broadcast [4,1,33] x [5,1]", Layout{f, {4, 1, 33}, {}, 0}, Layout{f, {5, 1}, {}, 0}, Layout{f, {4, 5, 33}, {}, 0}},
      {"transposed x scalar", Layout{f, {4, 33}, {1, 4}, 0}, Layout{f, {}, {}, 2}, Layout{f, {4, 33}, {}, 0}},
      {"strided output", Layout{f, {6, 7}, {}, 0}, Layout{f, {7}, {3}, 2}, Layout{f, {6, 7}, {16, 2}, 1}},
      {"empty", Layout{f, {3, 1}, {}, 0}, Layout{f, {1, 0}, {}, 0}, Layout{f, {3, 0}, {}, 0}},
  };
  for (DType t : kArith) {
    for (const Case& c : cases) {
      compare(std::string("pow ") + dt(t) + " " + c.name, "pow", t,
              {operand(with_dtype(c.a, t), rng), operand(with_dtype(c.b, t), rng)}, {operand(with_dtype(c.out, t), rng)});
    }
    // Ordinary bases and exponents, and every pair of the C99 Annex F special values.
    const Layout l{t, {30000}, {}, 0};
    compare(std::string("pow ") + dt(t) + " ordinary", "pow", t,
            {values_operand(l, uniform(30000, 0.0, 8.0, rng)), values_operand(l, uniform(30000, -20.0, 20.0, rng))},
            {output(l)});
    const std::vector<double> sp = {0.0,  -0.0, 1.0,  -1.0, 0.5,  -0.5, 2.0,   -2.0,   3.0,    -3.0,  2.5,  -2.5,
                                    kInf, -kInf, kNan, 1e-40, -1e-40, 1e30, -1e30, 65504.0, 1e-5, 7.0, -7.0, 0.25};
    const int64_t n = static_cast<int64_t>(sp.size());
    compare(std::string("pow ") + dt(t) + " special pairs", "pow", t,
            {values_operand(Layout{t, {n, 1}, {}, 0}, sp), values_operand(Layout{t, {1, n}, {}, 0}, sp)},
            {output(Layout{t, {n, n}, {}, 0})});
  }
}

KTEST(cuda_ops, where) {
  require_cuda();
  std::mt19937_64 rng(104);
  struct Case {
    const char* name;
    Layout c, a, b, out;  // c is bool; a, b, out set per dtype
  };
  const DType b8 = DType::Bool, f = DType::Float32;
  const std::vector<Case> cases = {
      {"same shape", Layout{b8, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0},
       Layout{f, {100003}, {}, 0}},
      {"broadcast cond and a", Layout{b8, {5, 1}, {}, 0}, Layout{f, {1, 7}, {}, 1}, Layout{f, {5, 7}, {}, 0},
       Layout{f, {5, 7}, {}, 0}},
      {"scalar a, transposed b", Layout{b8, {4, 33}, {}, 0}, Layout{f, {}, {}, 2}, Layout{f, {4, 33}, {1, 4}, 0},
       Layout{f, {4, 33}, {}, 0}},
      {"strided everything", Layout{b8, {6, 7}, {14, 2}, 1}, Layout{f, {6, 7}, {1, 6}, 0}, Layout{f, {7}, {2}, 3},
       Layout{f, {6, 7}, {16, 2}, 1}},
      {"empty", Layout{b8, {3, 0}, {}, 0}, Layout{f, {3, 1}, {}, 0}, Layout{f, {1, 0}, {}, 0}, Layout{f, {3, 0}, {}, 0}},
  };
  for (DType t : kAllDTypes) {
    for (const Case& c : cases) {
      compare(std::string("where ") + dt(t) + " " + c.name, "where", t,
              {operand(c.c, rng), operand(with_dtype(c.a, t), rng), operand(with_dtype(c.b, t), rng)},
              {operand(with_dtype(c.out, t), rng)});
    }
  }
}

KTEST(cuda_ops, clamp) {
  require_cuda();
  std::mt19937_64 rng(105);
  const std::vector<std::pair<double, double>> bounds = {
      {-0.5, 0.25}, {kNan, 1.0},  {-1.0, kNan}, {kNan, kNan}, {0.1, 0.1},       {2.0, -2.0},
      {-kInf, kInf}, {-1e6, 1e6}, {0.0, 0.0},   {-0.0, 0.0},  {-2147483649.5, 3e9}, {1.5, 2.5},
  };
  for (DType t : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32}) {
    for (const auto& lh : bounds) {
      for (const UnaryCase& c : unary_cases()) {
        compare(std::string("clamp ") + dt(t) + " [" + std::to_string(lh.first) + ", " + std::to_string(lh.second) +
                    "] " + c.name,
                "clamp", t, {operand(with_dtype(c.x, t), rng)}, {operand(with_dtype(c.y, t), rng)}, {},
                {lh.first, lh.second});
      }
    }
  }
}

// =====================================================================================================
// reductions
// =====================================================================================================

// The output layout of a reduction: x's shape with the axes set to 1 (contiguous).
Layout reduced_layout(const Layout& x, const std::vector<int64_t>& axes, DType t) {
  Layout y{t, x.shape, {}, 0};
  for (int64_t a : axes) y.shape[static_cast<size_t>(a)] = 1;
  return y;
}

// Per output element (row-major): the sum of |x| over its reduced elements.
std::vector<double> abs_sums(const Operand& x, const Layout& y) {
  const std::vector<int64_t> offs = element_offsets(x.layout);
  std::vector<double> sums(static_cast<size_t>(numel_of(y)), 0.0);
  const size_t nd = x.layout.shape.size();
  for (size_t i = 0; i < offs.size(); ++i) {
    // Row-major index of x -> its output index (reduced coordinates dropped).
    int64_t k = static_cast<int64_t>(i), out = 0, step = 1;
    for (size_t d = nd; d-- > 0;) {
      const int64_t c = k % x.layout.shape[d];
      k /= x.layout.shape[d];
      if (y.shape[d] != 1) {
        out += c * step;
        step *= y.shape[d];
      }
    }
    sums[static_cast<size_t>(out)] += std::fabs(elem_value(x.init, x.layout.dtype, offs[i]));
  }
  return sums;
}

// sum / mean: the gaps of y's storage untouched, the elements equal or (both
// finite) within 1 ulp of the dtype + n_red 2^-50 sum|x| (/ n_red for mean).
void check_sum(const std::string& what, const Outcome& r, const Operand& x, const Layout& y, int64_t n_red, bool mean) {
  const DType t = y.dtype;
  const std::vector<int64_t> offs = element_offsets(y);
  std::vector<uint8_t> cpu = r.cpu_out[0], gpu = r.gpu_out[0];
  const std::vector<double> sums = abs_sums(x, y);
  const size_t es = kiln::dtype_size(t);
  int bad = 0;
  for (size_t j = 0; j < offs.size(); ++j) {
    const size_t at = static_cast<size_t>(offs[j]) * es;
    const uint64_t cb = load_bits(&cpu[at], es), gb = load_bits(&gpu[at], es);
    if (cb != gb) {
      const double c = value_of(t, cb), g = value_of(t, gb);
      double tol = ulp_at(t, std::max(std::fabs(c), std::fabs(g))) +
                   std::ldexp(static_cast<double>(n_red) * sums[j], -50) / (mean ? static_cast<double>(n_red) : 1.0);
      const bool ok = t != DType::Int32 && std::isfinite(c) && std::isfinite(g) && std::fabs(c - g) <= tol;
      if (!ok && bad++ < 3) {
        KCHECK(ok) << what << ": output " << j << ": cpu " << c << " (" << hex(cb) << ") vs cuda " << g << " ("
                   << hex(gb) << "), tolerance " << tol;
      }
    }
    std::memset(&cpu[at], 0, es);  // compared: leave the gaps for the byte comparison
    std::memset(&gpu[at], 0, es);
  }
  KCHECK(bad == 0) << what << ": " << bad << " output(s) out of tolerance";
  KCHECK(cpu == gpu) << what << ": the storage outside the output elements differs";
}

struct ReduceCase {
  const char* name;
  Layout x;  // dtype set per run
  std::vector<int64_t> axes;
  Layout y;  // empty shape: reduced_layout(x, axes)
};

std::vector<ReduceCase> reduce_cases() {
  const DType f = DType::Float32;
  return {
      {"full 1-d", Layout{f, {1000003}, {}, 0}, {0}, {}},
      {"last axis", Layout{f, {37, 129, 5}, {}, 0}, {2}, {}},
      {"middle axis", Layout{f, {37, 129, 5}, {}, 0}, {1}, {}},
      {"first axis", Layout{f, {37, 129, 5}, {}, 0}, {0}, {}},
      {"axes 0,2", Layout{f, {37, 129, 5}, {}, 0}, {0, 2}, {}},
      {"all axes", Layout{f, {37, 129, 5}, {}, 0}, {0, 1, 2}, {}},
      {"no axes", Layout{f, {37, 5}, {}, 0}, {}, {}},
      {"size-1 axis", Layout{f, {4, 1, 6}, {}, 0}, {1}, {}},
      {"transposed, axis 0", Layout{f, {40, 50}, {1, 40}, 0}, {0}, {}},
      {"transposed, axis 1", Layout{f, {40, 50}, {1, 40}, 0}, {1}, {}},
      {"broadcast input", Layout{f, {64, 300}, {0, 1}, 0}, {0}, {}},
      {"strided input, offset", Layout{f, {20, 30}, {64, 2}, 5}, {1}, {}},
      {"strided output", Layout{f, {6, 8}, {}, 0}, {1}, Layout{f, {6, 1}, {3, 1}, 2}},
      {"columns, split", Layout{f, {20000, 40}, {}, 0}, {0}, {}},
      {"columns, few segments", Layout{f, {300, 2048}, {}, 0}, {0}, {}},
      {"rows, split", Layout{f, {7, 100000}, {}, 0}, {1}, {}},
      {"rows, many segments", Layout{f, {2, 1100000}, {}, 0}, {1}, {}},
      {"rows, a warp each", Layout{f, {3000, 200}, {}, 0}, {1}, {}},
      {"rows, a thread each", Layout{f, {5000, 6}, {}, 0}, {1}, {}},
      {"two reduced dims, rows", Layout{f, {6, 50, 7, 30}, {}, 0}, {1, 3}, {}},
      {"two reduced dims, columns", Layout{f, {50, 6, 30, 40}, {}, 0}, {0, 2}, {}},
      {"few columns", Layout{f, {100000, 16}, {}, 0}, {0}, {}},
      {"empty output", Layout{f, {3, 0, 5}, {}, 0}, {0}, {}},
      {"empty reduced axis, many outputs", Layout{f, {40, 0, 3}, {}, 0}, {1}, {}},
      {"empty reduced axes", Layout{f, {4, 0, 5, 6}, {}, 0}, {1, 3}, {}},
  };
}

KTEST(cuda_ops, reductions) {
  require_cuda();
  std::mt19937_64 rng(106);
  for (DType t : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32}) {
    for (const ReduceCase& c : reduce_cases()) {
      const Layout xl = with_dtype(c.x, t);
      // Random bits with specials, and ordinary values (sums without NaN / inf).
      const Operand xs[2] = {operand(xl, rng), t == DType::Int32 ? operand(xl, rng) : uniform_operand(xl, -4.0, 4.0, rng)};
      for (int v = 0; v < 2; ++v) {
        const Operand& x = xs[v];
        const std::string base = std::string(dt(t)) + " " + c.name + (v ? " (ordinary values)" : " (specials)");
        const Layout yl = c.y.shape.empty() ? reduced_layout(xl, c.axes, t) : with_dtype(c.y, t);
        int64_t n_red = 1;
        for (int64_t a : c.axes) n_red *= xl.shape[static_cast<size_t>(a)];
        for (const char* op : {"sum", "mean", "max", "min"}) {
          if (t == DType::Int32 && std::strcmp(op, "mean") == 0) continue;
          const std::string what = std::string(op) + " " + base;
          const bool mean = std::strcmp(op, "mean") == 0, sum = mean || std::strcmp(op, "sum") == 0;
          const Outcome r = run_both(what, op, t, {x}, {output(yl)}, c.axes, {}, sum);
          if (!same_status(what, r)) continue;  // max / min of nothing: the same ShapeError
          if (sum && t != DType::Int32) {
            check_sum(what, r, x, yl, n_red, mean);
          } else {
            const std::string diff = first_difference(r.cpu_out[0], r.gpu_out[0], t, false);
            KCHECK(diff.empty()) << what << ": " << diff;
          }
        }
        // argmax over each single axis.
        for (size_t a = 0; a < xl.shape.size(); ++a) {
          if (c.axes.size() != 1 || c.axes[0] != static_cast<int64_t>(a)) continue;
          const std::string what = "argmax " + base;
          const Layout yi = reduced_layout(xl, {static_cast<int64_t>(a)}, DType::Int32);
          const Outcome r = run_both(what, "argmax", t, {x}, {output(yi)}, {static_cast<int64_t>(a)}, {}, true);
          if (!same_status(what, r)) continue;
          const std::string diff = first_difference(r.cpu_out[0], r.gpu_out[0], DType::Int32, false);
          KCHECK(diff.empty()) << what << ": " << diff;
        }
      }
      if (kt::failures_in_test() > 20) return;
    }
    // Ties: few distinct values (with +-0 and, for floats, NaNs): argmax must pick the first maximum.
    const Layout tl{t, {300, 257}, {}, 0};
    std::vector<double> tv(300 * 257);
    for (double& v : tv) {
      const int k = static_cast<int>(rng() % 7);
      v = k == 0 ? 0.0 : (k == 1 ? -0.0 : (k == 2 && t != DType::Int32 && rng() % 50 == 0 ? kNan : (k % 3) - 1.0));
    }
    for (int64_t axis : {0, 1}) {
      compare(std::string("argmax ties ") + dt(t) + " axis " + std::to_string(axis), "argmax", t,
              {values_operand(tl, tv)}, {output(reduced_layout(tl, {axis}, DType::Int32))}, {axis});
      for (const char* op : {"max", "min"}) {
        compare(std::string(op) + " ties " + dt(t) + " axis " + std::to_string(axis), op, t, {values_operand(tl, tv)},
                {output(reduced_layout(tl, {axis}, t))}, {axis});
      }
    }
  }
}

KTEST(cuda_ops, reductions_zero_elements_and_errors) {
  require_cuda();
  std::mt19937_64 rng(107);
  for (DType t : kArith) {
    const Layout x{t, {3, 0, 5}, {}, 0};
    const Layout y = reduced_layout(x, {1}, t);
    // sum of nothing = +0, mean of nothing = NaN (the canonical one).
    compare(std::string("sum over an empty axis ") + dt(t), "sum", t, {operand(x, rng)}, {output(y)}, {1});
    compare(std::string("mean over an empty axis ") + dt(t), "mean", t, {operand(x, rng)}, {output(y)}, {1});
    for (const char* op : {"max", "min"}) {
      compare_error(std::string(op) + " over an empty axis " + dt(t), op, t, {operand(x, rng)}, {output(y)}, {1}, {},
                    StatusCode::ShapeError, "");
    }
    compare_error(std::string("argmax over an empty axis ") + dt(t), "argmax", t, {operand(x, rng)},
                  {output(reduced_layout(x, {1}, DType::Int32))}, {1}, {}, StatusCode::ShapeError, "");
    compare_error(std::string("sum, axes not ascending ") + dt(t), "sum", t, {operand(Layout{t, {3, 4}, {}, 0}, rng)},
                  {output(Layout{t, {1, 1}, {}, 0})}, {1, 0}, {}, StatusCode::ValueError, "");
  }
}

KTEST(cuda_ops, reductions_large) {
  require_cuda();
  std::mt19937_64 rng(108);
  // A full reduction of 2^22 + 3 elements (many segments), and one over the leading axis.
  for (DType t : kArith) {
    const Layout x{t, {(1 << 22) + 3}, {}, 0};
    const Operand xo = uniform_operand(x, -1.0, 3.0, rng);
    const Layout y{t, {1}, {}, 0};
    for (const char* op : {"sum", "mean"}) {
      const std::string what = std::string(op) + " " + dt(t) + " 2^22+3 elements";
      const Outcome r = run_both(what, op, t, {xo}, {output(y)}, {0}, {}, true);
      if (both_ok(what, r)) check_sum(what, r, xo, y, numel_of(x), op[1] == 'e');
    }
    compare(std::string("max ") + dt(t) + " 2^22+3 elements", "max", t, {xo}, {output(y)}, {0});
    compare(std::string("argmax ") + dt(t) + " 2^22+3 elements", "argmax", t, {xo}, {output(Layout{DType::Int32, {1}, {}, 0})},
            {0}, {}, false, true);
  }
}

// =====================================================================================================
// softmax and cross entropy
// =====================================================================================================

struct RowCase {
  const char* name;
  Layout x, y;  // [R, N]; dtype set per run
};

std::vector<RowCase> row_cases() {
  const DType f = DType::Float32;
  return {
      {"9x300", Layout{f, {9, 300}, {}, 0}, Layout{f, {9, 300}, {}, 0}},
      {"1x1", Layout{f, {1, 1}, {}, 0}, Layout{f, {1, 1}, {}, 0}},
      {"5x1", Layout{f, {5, 1}, {}, 0}, Layout{f, {5, 1}, {}, 0}},
      {"1x5000", Layout{f, {1, 5000}, {}, 0}, Layout{f, {1, 5000}, {}, 0}},
      {"2049x7", Layout{f, {2049, 7}, {}, 0}, Layout{f, {2049, 7}, {}, 0}},
      {"64x4097", Layout{f, {64, 4097}, {}, 0}, Layout{f, {64, 4097}, {}, 0}},
      {"transposed input", Layout{f, {17, 33}, {1, 17}, 0}, Layout{f, {17, 33}, {}, 0}},
      {"strided output, offset", Layout{f, {6, 20}, {}, 0}, Layout{f, {6, 20}, {41, 2}, 3}},
      {"broadcast rows", Layout{f, {8, 50}, {0, 1}, 0}, Layout{f, {8, 50}, {}, 0}},
      {"no rows", Layout{f, {0, 5}, {}, 0}, Layout{f, {0, 5}, {}, 0}},
      {"no columns", Layout{f, {5, 0}, {}, 0}, Layout{f, {5, 0}, {}, 0}},
  };
}

// A [R, N] operand with specials by row: -inf entries (r % 4 == 1), every entry
// -inf (r % 4 == 2), one NaN or +inf entry (r % 4 == 3), ordinary values elsewhere.
Operand special_rows(const Layout& l, std::mt19937_64& rng) {
  std::vector<double> v = uniform(storage_elems(l), -30.0, 30.0, rng);
  const std::vector<int64_t> offs = element_offsets(l);
  const int64_t N = l.shape[1];
  for (size_t i = 0; i < offs.size(); ++i) {
    const int64_t r = static_cast<int64_t>(i) / N, c = static_cast<int64_t>(i) % N;
    double& e = v[static_cast<size_t>(offs[i])];
    if (r % 4 == 1 && c % 3 == 0) e = -kInf;
    if (r % 4 == 2) e = -kInf;
    if (r % 4 == 3 && c == N / 2) e = (r % 8 == 3) ? kNan : kInf;
  }
  return Operand{l, values_image(l.dtype, v)};
}

KTEST(cuda_ops, softmax_family) {
  require_cuda();
  std::mt19937_64 rng(109);
  for (DType t : kArith) {
    for (const RowCase& c : row_cases()) {
      const Layout x = with_dtype(c.x, t), y = with_dtype(c.y, t);
      for (const char* op : {"softmax", "log_softmax"}) {
        const std::string base = std::string(op) + " " + dt(t) + " " + c.name;
        compare(base, op, t, {uniform_operand(x, -8.0, 8.0, rng)}, {operand(y, rng)}, {}, {}, false, true);
        compare(base + " (specials)", op, t, {special_rows(x, rng)}, {operand(y, rng)});
        compare(base + " (random bits)", op, t, {operand(x, rng)}, {operand(y, rng)});
      }
      const std::string b1 = std::string("softmax_backward ") + dt(t) + " " + c.name;
      compare(b1, "softmax_backward", t,
              {uniform_operand(x, 0.0, 1.0, rng), uniform_operand(with_dtype(c.y, t), -2.0, 2.0, rng)}, {operand(y, rng)},
              {}, {}, false, true);
      const std::string b2 = std::string("log_softmax_backward ") + dt(t) + " " + c.name;
      compare(b2, "log_softmax_backward", t,
              {uniform_operand(x, -20.0, 0.0, rng), uniform_operand(with_dtype(c.y, t), -2.0, 2.0, rng)},
              {operand(y, rng)}, {}, {}, false, true);
      if (kt::failures_in_test() > 20) return;
    }
  }
}

// cross_entropy outputs: lse bit for bit; the loss (element loss_at of output 0)
// equal, or within the bound of a different summation order of the row losses
// (all >= 0): 1 ulp of float32 + (R + 1) 2^-50 |loss|; the rest of its storage untouched.
void check_loss(const std::string& what, const Outcome& r, int64_t loss_at, int64_t R) {
  const DType f = DType::Float32;
  const std::string lse_diff = first_difference(r.cpu_out[1], r.gpu_out[1], f, false);
  KCHECK(lse_diff.empty()) << what << ": lse: " << lse_diff;
  const uint64_t cb = load_bits(&r.cpu_out[0][static_cast<size_t>(loss_at) * 4], 4);
  const uint64_t gb = load_bits(&r.gpu_out[0][static_cast<size_t>(loss_at) * 4], 4);
  const double cl = value_of(f, cb), gl = value_of(f, gb);
  const double tol = ulp_at(f, std::fabs(cl)) + std::ldexp(std::fabs(cl) * static_cast<double>(R + 1), -50);
  KCHECK(cb == gb || (std::isfinite(cl) && std::isfinite(gl) && std::fabs(cl - gl) <= tol))
      << what << ": loss cpu " << cl << " (" << hex(cb) << ") vs cuda " << gl << " (" << hex(gb) << ")";
  std::vector<uint8_t> c0 = r.cpu_out[0], g0 = r.gpu_out[0];
  std::memset(&c0[static_cast<size_t>(loss_at) * 4], 0, 4);
  std::memset(&g0[static_cast<size_t>(loss_at) * 4], 0, 4);
  KCHECK(c0 == g0) << what << ": the loss storage around the loss differs";
}

struct CeCase {
  const char* name;
  int64_t R, C;
  int64_t ignore;
  double ls;
  Layout logits;             // empty shape: contiguous [R, C]
  int64_t target_stride = 1;
  int64_t lse_stride = 1;
};

// Targets for R rows: mostly in [0, C), about one in six ignored.
std::vector<int64_t> targets_for(int64_t R, int64_t C, int64_t ignore, std::mt19937_64& rng, bool all_ignored = false) {
  std::vector<int64_t> t(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    t[static_cast<size_t>(r)] = all_ignored || C == 0 || rng() % 6 == 0 ? ignore : static_cast<int64_t>(rng() % C);
  }
  return t;
}

KTEST(cuda_ops, cross_entropy) {
  require_cuda();
  std::mt19937_64 rng(110);
  const DType f = DType::Float32;
  const std::vector<CeCase> cases = {
      {"9x300", 9, 300, -100, 0.0, {}},
      {"9x300 smoothing 0.1", 9, 300, -100, 0.1, {}},
      {"9x300 smoothing 1", 9, 300, -100, 1.0, {}},
      {"2049x7", 2049, 7, -100, 0.0, {}, 2, 3},
      {"64x4097 smoothing 0.2", 64, 4097, -100, 0.2, {}},
      {"ignore a real class", 40, 11, 3, 0.05, {}},
      {"transposed logits", 33, 17, -1, 0.0, Layout{f, {33, 17}, {1, 33}, 0}},
      {"offset logits", 10, 20, -100, 0.1, Layout{f, {10, 20}, {25, 1}, 4}},
      {"3000 rows", 3000, 50, -100, 0.0, {}},
      {"no rows", 0, 5, -100, 0.0, {}},
  };
  for (DType t : kArith) {
    for (const CeCase& c : cases) {
      const Layout ll = c.logits.shape.empty() ? Layout{t, {c.R, c.C}, {}, 0} : with_dtype(c.logits, t);
      const Operand logits = uniform_operand(ll, -6.0, 6.0, rng);
      const std::vector<int64_t> tv = targets_for(c.R, c.C, c.ignore, rng);
      const Operand targets = int32_operand(Layout{DType::Int32, {c.R}, {c.target_stride}, 1}, tv);
      const Layout loss_l{f, {}, {}, 1};
      const Layout lse_l{f, {c.R}, {c.lse_stride}, 2};
      const std::string what = std::string("cross_entropy ") + dt(t) + " " + c.name;
      const Outcome r = run_both(what, "cross_entropy", t, {logits, targets}, {output(loss_l), output(lse_l)}, {c.ignore},
                                 {c.ls}, true);
      if (!both_ok(what, r)) continue;
      check_loss(what, r, 1, c.R);

      // Backward from the CPU's lse, for a gloss of 1 and of 0.37.
      if (c.R > 0) {
        const Operand lse{lse_l, r.cpu_out[1]};
        for (double gl_v : {1.0, 0.37}) {
          const Operand gloss = values_operand(Layout{f, {}, {}, 0}, {gl_v});
          compare(std::string("cross_entropy_backward ") + dt(t) + " " + c.name + " gloss " + std::to_string(gl_v),
                  "cross_entropy_backward", t, {logits, targets, lse, gloss}, {operand(ll, rng)},
                  {c.ignore}, {c.ls}, false, true);
        }
      }
    }
    // Every row ignored: the loss is NaN, glogits 0.
    {
      const Layout ll{t, {6, 9}, {}, 0};
      const Operand logits = uniform_operand(ll, -3.0, 3.0, rng);
      const Operand targets = int32_operand(Layout{DType::Int32, {6}, {}, 0}, targets_for(6, 9, -100, rng, true));
      compare(std::string("cross_entropy every row ignored ") + dt(t), "cross_entropy", t, {logits, targets},
              {output(Layout{f, {}, {}, 0}), output(Layout{f, {6}, {}, 0})}, {-100}, {0.1});
      const Operand lse = uniform_operand(Layout{f, {6}, {}, 0}, 1.0, 3.0, rng);
      const Operand gloss = values_operand(Layout{f, {}, {}, 0}, {1.0});
      compare(std::string("cross_entropy_backward every row ignored ") + dt(t), "cross_entropy_backward", t,
              {logits, targets, lse, gloss}, {operand(ll, rng)}, {-100}, {0.1});
    }
    // No classes (every row must then be ignored): lse = -inf, loss NaN.
    {
      const Layout ll{t, {4, 0}, {}, 0};
      const Operand targets = int32_operand(Layout{DType::Int32, {4}, {}, 0}, {-100, -100, -100, -100});
      compare(std::string("cross_entropy no classes ") + dt(t), "cross_entropy", t, {output(ll), targets},
              {output(Layout{f, {}, {}, 0}), output(Layout{f, {4}, {}, 0})}, {-100}, {0.0});
    }
    // Specials in the logits (-inf, NaN rows, +inf): NaN / inf handled identically.
    {
      const Layout ll{t, {16, 12}, {}, 0};
      const Operand logits = special_rows(ll, rng);
      const Operand targets = int32_operand(Layout{DType::Int32, {16}, {}, 0}, targets_for(16, 12, -100, rng));
      const Layout lse_l{f, {16}, {}, 0};
      const Outcome r = run_both(std::string("cross_entropy specials ") + dt(t), "cross_entropy", t, {logits, targets},
                                 {output(Layout{f, {}, {}, 0}), output(lse_l)}, {-100}, {0.1});
      if (both_ok("cross_entropy specials", r)) {
        check_loss(std::string("cross_entropy specials ") + dt(t), r, 0, 16);
        const Operand lse{lse_l, r.cpu_out[1]};
        compare(std::string("cross_entropy_backward specials ") + dt(t), "cross_entropy_backward", t,
                {logits, targets, lse, values_operand(Layout{f, {}, {}, 0}, {1.0})}, {operand(ll, rng)}, {-100}, {0.1});
      }
    }
  }
}

KTEST(cuda_ops, cross_entropy_target_errors) {
  require_cuda();
  std::mt19937_64 rng(111);
  const DType f = DType::Float32;
  struct Bad {
    std::vector<int64_t> targets;
    int64_t ignore;
    const char* message;
  };
  const std::vector<Bad> bads = {
      {{0, 9, 1, 2, 3}, -100, "kiln: cross_entropy: target 9 in row 1 is outside [0, 4) (ignore_index -100)"},
      {{0, 1, -100, -5, 4}, -100, "kiln: cross_entropy: target -5 in row 3 is outside [0, 4) (ignore_index -100)"},
      {{-100, 1, 2, 3, 0}, 7, "kiln: cross_entropy: target -100 in row 0 is outside [0, 4) (ignore_index 7)"},
      {{0, 1, 2, 3, 2147483647}, -1, "kiln: cross_entropy: target 2147483647 in row 4 is outside [0, 4) (ignore_index -1)"},
  };
  for (DType t : kArith) {
    for (const Bad& b : bads) {
      const Layout ll{t, {5, 4}, {}, 0};
      const Operand logits = uniform_operand(ll, -2.0, 2.0, rng);
      const Operand targets = int32_operand(Layout{DType::Int32, {5}, {2}, 1}, b.targets);
      compare_error(std::string("cross_entropy bad target ") + dt(t), "cross_entropy", t, {logits, targets},
                    {output(Layout{f, {}, {}, 0}), output(Layout{f, {5}, {}, 0})}, {b.ignore}, {0.0},
                    StatusCode::ValueError, b.message);
      std::string msg = b.message;
      msg.replace(msg.find("cross_entropy"), 13, "cross_entropy_backward");
      compare_error(std::string("cross_entropy_backward bad target ") + dt(t), "cross_entropy_backward", t,
                    {logits, targets, uniform_operand(Layout{f, {5}, {}, 0}, 0.0, 1.0, rng),
                     values_operand(Layout{f, {}, {}, 0}, {1.0})},
                    {output(ll)}, {b.ignore}, {0.0}, StatusCode::ValueError, msg);
    }
  }
}

// =====================================================================================================
// embedding
// =====================================================================================================

std::vector<int64_t> random_ids(int64_t n, int64_t vocab, std::mt19937_64& rng) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (auto& v : ids) v = static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab));
  return ids;
}

KTEST(cuda_ops, embedding) {
  require_cuda();
  std::mt19937_64 rng(112);
  struct Case {
    const char* name;
    int64_t V, D, N;
    Layout w, ids, out;  // empty shapes: contiguous
  };
  const DType f = DType::Float32, i32 = DType::Int32;
  const std::vector<Case> cases = {
      {"50x16, 6 ids", 50, 16, 6, {}, {}, {}},
      {"1000x64, 5000 ids", 1000, 64, 5000, {}, {}, {}},
      {"transposed weight", 30, 8, 20, Layout{f, {30, 8}, {1, 30}, 0}, {}, {}},
      {"strided ids and output", 30, 8, 20, {}, Layout{i32, {20}, {3}, 2}, Layout{f, {20, 8}, {10, 1}, 1}},
      {"one id", 1, 5, 7, {}, {}, {}},
      {"no ids", 10, 4, 0, {}, {}, {}},
      {"no columns", 10, 0, 5, {}, {}, {}},
  };
  for (DType t : kArith) {
    for (const Case& c : cases) {
      const Layout wl = c.w.shape.empty() ? Layout{t, {c.V, c.D}, {}, 0} : with_dtype(c.w, t);
      const Layout il = c.ids.shape.empty() ? Layout{i32, {c.N}, {}, 0} : c.ids;
      const Layout ol = c.out.shape.empty() ? Layout{t, {c.N, c.D}, {}, 0} : with_dtype(c.out, t);
      const Operand ids = int32_operand(il, random_ids(c.N, c.V, rng));
      compare(std::string("embedding ") + dt(t) + " " + c.name, "embedding", t, {operand(wl, rng), ids}, {operand(ol, rng)});
    }
  }
}

KTEST(cuda_ops, embedding_backward) {
  require_cuda();
  std::mt19937_64 rng(113);
  struct Case {
    const char* name;
    int64_t V, D, N;
    std::vector<int64_t> ids;  // empty: random in [0, V)
    Layout gout, gw;           // empty shapes: contiguous
  };
  const DType f = DType::Float32;
  std::vector<int64_t> same(3000, 2), skewed(20000);
  for (size_t i = 0; i < skewed.size(); ++i) skewed[i] = rng() % 4 == 0 ? static_cast<int64_t>(rng() % 700) : 0;
  const std::vector<Case> cases = {
      {"50x16, 6 ids", 50, 16, 6, {1, 49, 0, 7, 7, 1}, {}, {}},
      {"1000x64, 5000 ids", 1000, 64, 5000, {}, {}, {}},
      {"one id 3000 times", 4, 8, 3000, same, {}, {}},
      {"skewed ids", 700, 33, 20000, skewed, {}, {}},
      {"transposed gout", 30, 8, 40, {}, Layout{f, {40, 8}, {1, 40}, 0}, {}},
      {"strided gweight, offset", 30, 8, 40, {}, {}, Layout{f, {30, 8}, {12, 1}, 5}},
      {"vocabulary 1", 1, 5, 9, {}, {}, {}},
      {"no ids (zeros)", 10, 4, 0, {}, {}, {}},
      {"no columns", 10, 0, 5, {}, {}, {}},
      {"a large vocabulary", 70000, 3, 1000, {}, {}, {}},
  };
  for (DType t : kArith) {
    for (const Case& c : cases) {
      const Layout gl = c.gout.shape.empty() ? Layout{t, {c.N, c.D}, {}, 0} : with_dtype(c.gout, t);
      const Layout wl = c.gw.shape.empty() ? Layout{t, {c.V, c.D}, {}, 0} : with_dtype(c.gw, t);
      const Operand ids = int32_operand(Layout{DType::Int32, {c.N}, {}, 0}, c.ids.empty() ? random_ids(c.N, c.V, rng) : c.ids);
      const std::string what = std::string("embedding_backward ") + dt(t) + " " + c.name;
      // Ordinary gout: bit for bit; random bits (inf - inf makes NaNs): NaN-equal.
      compare(what, "embedding_backward", t, {ids, uniform_operand(gl, -2.0, 2.0, rng)}, {operand(wl, rng)}, {}, {}, false,
              true);
      compare(what + " (random bits)", "embedding_backward", t, {ids, operand(gl, rng)}, {operand(wl, rng)}, {}, {}, true,
              true);
    }
  }
}

KTEST(cuda_ops, embedding_id_errors) {
  require_cuda();
  std::mt19937_64 rng(114);
  struct Bad {
    std::vector<int64_t> ids;
    const char* message;  // for 'embedding'
  };
  const std::vector<Bad> bads = {
      {{0, 1, 2, 10, 4, -1}, "kiln: embedding: id 10 at position 3 is outside [0, 10)"},
      {{-1, 1, 2, 3}, "kiln: embedding: id -1 at position 0 is outside [0, 10)"},
      {{0, 1, 2, 3, 9, 9, 2147483647}, "kiln: embedding: id 2147483647 at position 6 is outside [0, 10)"},
  };
  for (DType t : kArith) {
    for (const Bad& b : bads) {
      const int64_t n = static_cast<int64_t>(b.ids.size());
      const Operand ids = int32_operand(Layout{DType::Int32, {n}, {2}, 1}, b.ids);
      compare_error(std::string("embedding bad id ") + dt(t), "embedding", t,
                    {operand(Layout{t, {10, 4}, {}, 0}, rng), ids}, {output(Layout{t, {n, 4}, {}, 0})}, {}, {},
                    StatusCode::ValueError, b.message);
      std::string msg = b.message;
      msg.replace(msg.find("embedding"), 9, "embedding_backward");
      compare_error(std::string("embedding_backward bad id ") + dt(t), "embedding_backward", t,
                    {ids, operand(Layout{t, {n, 4}, {}, 0}, rng)}, {output(Layout{t, {10, 4}, {}, 0})}, {}, {},
                    StatusCode::ValueError, msg);
    }
  }
}

}  // namespace
