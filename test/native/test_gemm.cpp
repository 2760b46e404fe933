// Suite 'gemm': the CPU kernel 'matmul' (native/KERNELS.md "Matmul"), reached
// through kiln::run_kernel, for float32, float16 and bfloat16.
//
// Reference: float64 dot products computed here from the stored input values
// (16-bit codes decoded from their definition, no kiln code). Each C element
// must satisfy |C - C64| <= K * 2^-23 * sum_k |a_k b_k| (float32 accumulation),
// plus, for 16-bit outputs, half an ulp of the dtype for the final rounding.
// Operands are built with arbitrary strides: transposed views, non-unit strides
// on both dimensions, storage offsets, and batch dimensions broadcast with
// stride 0.
//
// Determinism (native/KERNELS.md: split over M and N only):
//   - results are bit-identical for 1, 2 and 3 threads at every ISA level;
//   - the avx2 and avx512 levels both accumulate with FMA in k order, so they
//     are bit-identical to each other; the portable level multiplies and adds
//     separately and is held to the same error bound only;
//   - a row of C does not depend on the other rows or on the kernel's path
//     (stream / strip / blocked): a 1-row product gives the same bits;
//   - the result does not depend on the cache blocking (tested with tiny blocks
//     that make small products cross every block boundary).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cpu_features.h"
#include "kiln/element.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "kiln/view.h"
#include "testing.h"

namespace kiln {
namespace cpu {
// native/cpu/gemm.h (not on the test include path): the blocking hook.
void gemm_set_blocking_for_testing(int64_t kc, int64_t mc, int64_t nc);
}  // namespace cpu
}  // namespace kiln

namespace {

using namespace kiln;

using kt::Rng;
using kt::shape_str;

// ---- element values -----------------------------------------------------------------------

// A random value stored in dtype dt at p (any representable value in about [-2, 2]).
void write_random(DType dt, unsigned char* p, Rng& rng) {
  const double v = (rng.unit() * 4.0 - 2.0) * (rng.next() % 8 == 0 ? 1.0 / 64 : 1.0);
  if (dt == DType::Float32) {
    const float f = static_cast<float>(v);
    std::memcpy(p, &f, 4);
  } else {
    const uint16_t h = dt == DType::Float16 ? el::F16::from_f64(v) : el::BF16::from_f64(v);
    std::memcpy(p, &h, 2);
  }
}

// ---- operands ---------------------------------------------------------------------------

// A tensor's storage and the View the kernel sees.
struct Operand {
  std::vector<unsigned char> bytes;
  View view;
  // byte address of an element (by multi-index over the view's shape)
  const unsigned char* at(const int64_t* idx) const {
    int64_t off = view.offset;
    for (int d = 0; d < view.ndim; ++d) off += idx[d] * view.strides[d];
    return bytes.data() + off * static_cast<int64_t>(dtype_size(view.dtype));
  }
};

// How the last two dims [R, C] of an input are laid out in memory.
enum class Layout {
  RowMajor,    // strides (C, 1)
  Transposed,  // stored as [C, R]: strides (1, R)
  Strided,     // strides (3C + 5, 2) with an offset: non-unit strides on both dims
  StridedT,    // transposed with gaps: strides (2, 2R + 3)
};

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::RowMajor: return "row";
    case Layout::Transposed: return "trans";
    case Layout::Strided: return "strided";
    default: return "strided-trans";
  }
}

// An input of shape batch + [R, C]; batch dims listed in `broadcast` get stride 0.
Operand make_input(DType dt, const std::vector<int64_t>& batch, const std::vector<bool>& broadcast, int64_t R, int64_t C,
                   Layout layout, Rng& rng) {
  Operand o;
  View& v = o.view;
  v.dtype = dt;
  v.ndim = static_cast<int>(batch.size()) + 2;
  const int nd = v.ndim;
  v.shape[nd - 2] = R;
  v.shape[nd - 1] = C;
  int64_t matrix_span = 0;  // elements one matrix spans
  switch (layout) {
    case Layout::RowMajor:
      v.strides[nd - 2] = C;
      v.strides[nd - 1] = 1;
      matrix_span = R * C;
      break;
    case Layout::Transposed:
      v.strides[nd - 2] = 1;
      v.strides[nd - 1] = R;
      matrix_span = R * C;
      break;
    case Layout::Strided:
      v.strides[nd - 2] = 3 * C + 5;
      v.strides[nd - 1] = 2;
      matrix_span = R * (3 * C + 5);
      break;
    case Layout::StridedT:
      v.strides[nd - 2] = 2;
      v.strides[nd - 1] = 2 * R + 3;
      matrix_span = C * (2 * R + 3);
      break;
  }
  int64_t step = std::max<int64_t>(matrix_span, 1) + 3;  // a gap between batch entries
  for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
    v.shape[d] = batch[d];
    if (broadcast[d]) {
      v.strides[d] = 0;
    } else {
      v.strides[d] = step;
      step *= batch[d];
    }
  }
  v.offset = layout == Layout::Strided || layout == Layout::StridedT ? 7 : 0;
  int64_t last = v.offset;
  bool empty = false;
  for (int d = 0; d < nd; ++d) {
    if (v.shape[d] == 0) empty = true;
    if (v.shape[d] > 0) last += (v.shape[d] - 1) * v.strides[d];
  }
  const int64_t elems = empty ? 0 : last + 1;
  const size_t esz = dtype_size(dt);
  o.bytes.assign(static_cast<size_t>(elems) * esz + 64, 0);
  // Fill the whole storage (gaps too: the kernel must not read them into C).
  for (int64_t i = 0; i < elems; ++i) write_random(dt, o.bytes.data() + i * esz, rng);
  v.base = elems > 0 ? o.bytes.data() : nullptr;
  v.storage_bytes = elems > 0 ? o.bytes.size() : 0;
  return o;
}

// A contiguous output batch + [M, N], filled with a NaN pattern.
Operand make_output(DType dt, const std::vector<int64_t>& batch, int64_t M, int64_t N) {
  Operand o;
  View& v = o.view;
  v.dtype = dt;
  v.ndim = static_cast<int>(batch.size()) + 2;
  v.shape[v.ndim - 2] = M;
  v.shape[v.ndim - 1] = N;
  for (size_t d = 0; d < batch.size(); ++d) v.shape[d] = batch[d];
  int64_t s = 1;
  for (int d = v.ndim - 1; d >= 0; --d) {
    v.strides[d] = s;
    s *= v.shape[d];
  }
  o.bytes.assign(static_cast<size_t>(s) * dtype_size(dt) + 64, 0xFF);  // NaN in every dtype
  v.base = s > 0 ? o.bytes.data() : nullptr;
  v.storage_bytes = s > 0 ? o.bytes.size() : 0;
  return o;
}

Status run_matmul(const View& a, const View& b, const View& c) { return kt::run("matmul", a.dtype, {a, b}, {c}); }

// Restores the ISA level, thread count and blocking when a test ends.
struct Restore : kt::RestoreIsa {
  ~Restore() { cpu::gemm_set_blocking_for_testing(0, 0, 0); }
};

// ---- reference ---------------------------------------------------------------------------

struct Reference {
  std::vector<double> value, abs_sum;  // per C element (row-major over batch + [M, N])
};

Reference reference(const Operand& A, const Operand& B, int64_t M, int64_t K, int64_t N) {
  const View& av = A.view;
  const int nd = av.ndim;
  int64_t nb = 1;
  for (int d = 0; d < nd - 2; ++d) nb *= av.shape[d];
  Reference r;
  r.value.assign(static_cast<size_t>(nb * M * N), 0.0);
  r.abs_sum.assign(r.value.size(), 0.0);
  const DType dt = av.dtype;
  std::vector<double> arow(static_cast<size_t>(K)), bcol(static_cast<size_t>(K) * static_cast<size_t>(N));
  int64_t idx[kMaxDims] = {};
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi;
    for (int d = nd - 3; d >= 0; --d) {
      idx[d] = rem % av.shape[d];
      rem /= av.shape[d];
    }
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t j = 0; j < N; ++j) {
        idx[nd - 2] = k;
        idx[nd - 1] = j;
        bcol[static_cast<size_t>(j * K + k)] = kt::decode(dt, B.at(idx));
      }
    }
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t k = 0; k < K; ++k) {
        idx[nd - 2] = i;
        idx[nd - 1] = k;
        arow[static_cast<size_t>(k)] = kt::decode(dt, A.at(idx));
      }
      for (int64_t j = 0; j < N; ++j) {
        double s = 0, sa = 0;
        const double* bc = bcol.data() + j * K;
        for (int64_t k = 0; k < K; ++k) {
          const double p = arow[static_cast<size_t>(k)] * bc[k];
          s += p;
          sa += std::fabs(p);
        }
        r.value[static_cast<size_t>((bi * M + i) * N + j)] = s;
        r.abs_sum[static_cast<size_t>((bi * M + i) * N + j)] = sa;
      }
    }
  }
  return r;
}

// Largest error allowed for one C element.
double tolerance(DType dt, int64_t K, double value, double abs_sum) {
  const double acc = static_cast<double>(K) * 0x1.0p-23 * abs_sum;
  if (dt == DType::Float32) return acc;
  const double u = dt == DType::Float16 ? 0x1.0p-11 : 0x1.0p-8;        // half an ulp, relative
  const double tiny = dt == DType::Float16 ? 0x1.0p-25 : 0x1.0p-134;  // half the smallest subnormal
  return acc + u * (std::fabs(value) + acc) + tiny;
}

struct CheckResult {
  int64_t bad = 0;
  std::string first;
  double worst_ratio = 0;  // max |err| / tol
};

CheckResult check_output(const Operand& C, const Reference& ref, int64_t K) {
  CheckResult res;
  const DType dt = C.view.dtype;
  const size_t esz = dtype_size(dt);
  for (size_t e = 0; e < ref.value.size(); ++e) {
    const double got = kt::decode(dt, C.bytes.data() + e * esz);
    const double want = ref.value[e];
    const double tol = tolerance(dt, K, want, ref.abs_sum[e]);
    const double err = std::fabs(got - want);
    if (!(err <= tol)) {
      if (res.bad++ == 0) {
        res.first = "element " + std::to_string(e) + ": got " + std::to_string(got) + ", float64 " +
                    std::to_string(want) + ", tolerance " + std::to_string(tol);
      }
    } else if (tol > 0) {
      res.worst_ratio = std::max(res.worst_ratio, err / tol);
    }
  }
  return res;
}

// ---- the sweep ---------------------------------------------------------------------------

struct Case {
  std::vector<int64_t> batch;
  std::vector<bool> a_bcast, b_bcast;
  int64_t M, K, N;
  Layout la, lb;
};

std::string case_name(const Case& c, DType dt) {
  std::string s = std::string(dtype_name(dt)) + " " + shape_str(c.batch) + " M=" + std::to_string(c.M) +
                  " K=" + std::to_string(c.K) + " N=" + std::to_string(c.N) + " A:" + layout_name(c.la) +
                  " B:" + layout_name(c.lb);
  for (size_t d = 0; d < c.batch.size(); ++d) {
    if (c.a_bcast[d]) s += " A-bcast" + std::to_string(d);
    if (c.b_bcast[d]) s += " B-bcast" + std::to_string(d);
  }
  return s;
}

struct SweepStats {
  int64_t cases = 0, elements = 0, runs = 0;
  double worst_ratio[3] = {0, 0, 0};  // per dtype: float32, float16, bfloat16
};

// Runs one case at every ISA level and 1, 2 and 3 threads; checks the error
// bound, thread-count invariance and avx2 == avx512.
void run_case(const Case& c, DType dt, uint64_t seed, SweepStats* stats, const std::vector<int>& thread_counts) {
  Rng rng(seed);
  const Operand A = make_input(dt, c.batch, c.a_bcast, c.M, c.K, c.la, rng);
  const Operand B = make_input(dt, c.batch, c.b_bcast, c.K, c.N, c.lb, rng);
  const Reference ref = reference(A, B, c.M, c.K, c.N);
  const std::string name = case_name(c, dt);
  std::vector<std::vector<unsigned char>> per_isa(3);
  for (cpu::IsaLevel isa : kt::isa_levels()) {
    KCHECK(cpu::set_isa(isa).ok());
    std::vector<unsigned char> first;
    for (int threads : thread_counts) {
      cpu::set_num_threads(threads);
      Operand C = make_output(dt, c.batch, c.M, c.N);
      const Status s = run_matmul(A.view, B.view, C.view);
      KCHECK(s.ok()) << name << ": " << s.message();
      if (!s.ok()) continue;
      ++stats->runs;
      if (first.empty()) {
        const CheckResult r = check_output(C, ref, c.K);
        KCHECK_EQ(r.bad, 0) << name << " at " << cpu::isa_name(isa) << ", " << threads << " threads: " << r.first;
        double& worst = stats->worst_ratio[static_cast<int>(dt)];
        worst = std::max(worst, r.worst_ratio);
        first = C.bytes;
      } else {
        KCHECK(C.bytes == first) << name << " at " << cpu::isa_name(isa) << ": " << threads
                                 << " threads differ from " << thread_counts[0] << " thread(s)";
      }
    }
    per_isa[static_cast<int>(isa)] = first;
  }
  const auto& v2 = per_isa[static_cast<int>(cpu::IsaLevel::Avx2)];
  const auto& v512 = per_isa[static_cast<int>(cpu::IsaLevel::Avx512)];
  if (!v2.empty() && !v512.empty()) KCHECK(v2 == v512) << name << ": avx2 and avx512 results differ";
  cpu::set_num_threads(0);
  ++stats->cases;
  stats->elements += static_cast<int64_t>(ref.value.size());
}

const DType kDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16};

void report(const char* what, const SweepStats& s) {
  std::cout << "    " << what << ": " << s.cases << " cases, " << s.runs << " kernel runs, " << s.elements
            << " elements checked against float64; worst |err| / tolerance: float32 " << s.worst_ratio[0]
            << ", float16 " << s.worst_ratio[1] << ", bfloat16 " << s.worst_ratio[2] << " (ISA levels up to "
            << cpu::isa_name(cpu::detected_isa()) << ")" << std::endl;
}

}  // namespace

KTEST(gemm, shapes_layouts_dtypes_all_isas) {
  Restore restore;
  const Layout layouts[] = {Layout::RowMajor, Layout::Transposed, Layout::Strided, Layout::StridedT};
  std::vector<Case> cases;
  auto add = [&](int64_t M, int64_t K, int64_t N, Layout la, Layout lb) {
    cases.push_back(Case{{}, {}, {}, M, K, N, la, lb});
  };
  // Tiny and odd sizes, vectors, and every layout pair on one odd shape.
  add(1, 1, 1, Layout::RowMajor, Layout::RowMajor);
  add(7, 13, 5, Layout::RowMajor, Layout::RowMajor);
  for (Layout la : layouts)
    for (Layout lb : layouts) add(9, 37, 35, la, lb);
  add(1, 300, 97, Layout::RowMajor, Layout::RowMajor);     // a GEMV (stream path)
  add(1, 300, 97, Layout::RowMajor, Layout::Transposed);   // a GEMV with B^T (strip path)
  add(3, 70, 200, Layout::Strided, Layout::RowMajor);      // few rows
  add(4, 33, 129, Layout::Transposed, Layout::Strided);
  add(16, 129, 131, Layout::RowMajor, Layout::RowMajor);   // skinny (strip path)
  add(16, 129, 131, Layout::RowMajor, Layout::StridedT);
  add(40, 1, 33, Layout::RowMajor, Layout::RowMajor);      // K = 1
  add(33, 65, 1, Layout::RowMajor, Layout::RowMajor);      // N = 1
  add(33, 65, 1, Layout::Transposed, Layout::Strided);
  add(70, 3, 17, Layout::StridedT, Layout::Transposed);
  add(100, 64, 64, Layout::RowMajor, Layout::RowMajor);    // blocked path
  add(65, 200, 47, Layout::Transposed, Layout::Transposed);
  SweepStats stats;
  uint64_t seed = 1;
  for (DType dt : kDTypes) {
    for (const Case& c : cases) run_case(c, dt, seed++, &stats, {1, 2, 3});
  }
  report("shapes x layouts", stats);
}

KTEST(gemm, crosses_default_blocks) {
  // Sizes beyond the default KC / MC blocks of every level (KC <= 384, MC <= 192)
  // and an odd size in every dimension.
  Restore restore;
  SweepStats stats;
  const Case big{{}, {}, {}, 257, 515, 129, Layout::RowMajor, Layout::RowMajor};
  const Case big_t{{}, {}, {}, 257, 515, 129, Layout::Transposed, Layout::Transposed};
  run_case(big, DType::Float32, 101, &stats, {1, 2, 3});
  run_case(big_t, DType::Float32, 102, &stats, {1, 2});
  run_case(big, DType::Float16, 103, &stats, {1, 2});
  run_case(big, DType::BFloat16, 104, &stats, {1, 2});
  report("257x515x129", stats);
}

KTEST(gemm, crosses_small_blocks) {
  // Tiny blocks (KC = 16, MC = 2 slivers, NC = 2 slivers) make modest products cross
  // every block boundary (K blocks, M blocks, N panels, edge slivers) in every path.
  Restore restore;
  cpu::gemm_set_blocking_for_testing(16, 1, 1);
  SweepStats stats;
  uint64_t seed = 200;
  const Case cases[] = {
      {{}, {}, {}, 61, 53, 97, Layout::RowMajor, Layout::RowMajor},
      {{}, {}, {}, 61, 53, 97, Layout::Transposed, Layout::StridedT},
      {{}, {}, {}, 2, 53, 97, Layout::RowMajor, Layout::RowMajor},
      {{}, {}, {}, 30, 47, 70, Layout::Strided, Layout::Transposed},
  };
  for (DType dt : kDTypes) {
    for (const Case& c : cases) run_case(c, dt, seed++, &stats, {1, 2, 3});
  }
  report("tiny blocking", stats);
}

KTEST(gemm, batched_and_broadcast) {
  Restore restore;
  SweepStats stats;
  uint64_t seed = 300;
  const Case cases[] = {
      {{3}, {false}, {false}, 5, 7, 9, Layout::RowMajor, Layout::RowMajor},
      {{2, 3}, {false, true}, {true, false}, 17, 20, 33, Layout::RowMajor, Layout::Transposed},
      {{2, 3}, {true, false}, {false, false}, 40, 24, 40, Layout::Strided, Layout::RowMajor},
      {{4}, {false}, {true}, 1, 64, 50, Layout::RowMajor, Layout::RowMajor},  // shared weight, GEMV rows
      {{5}, {true}, {false}, 12, 9, 70, Layout::Transposed, Layout::StridedT},
      {{300}, {false}, {false}, 3, 4, 5, Layout::RowMajor, Layout::RowMajor},  // many tiny matrices
      {{2, 1, 3}, {false, false, true}, {true, false, false}, 6, 11, 10, Layout::RowMajor, Layout::Strided},
  };
  for (DType dt : kDTypes) {
    for (const Case& c : cases) run_case(c, dt, seed++, &stats, {1, 2, 3});
  }
  report("batched", stats);
}

KTEST(gemm, rows_do_not_depend_on_path_or_blocking) {
  // One row computed alone (the GEMV stream path), within 16 rows (the strip
  // path) and within 100 rows (the blocked path), with default and tiny blocks:
  // the same bits at every ISA level.
  Restore restore;
  for (DType dt : kDTypes) {
    Rng rng(400 + static_cast<int>(dt));
    const int64_t M = 100, K = 300, N = 77;
    const Operand A = make_input(dt, {}, {}, M, K, Layout::RowMajor, rng);
    const Operand B = make_input(dt, {}, {}, K, N, Layout::RowMajor, rng);
    const size_t esz = dtype_size(dt);
    for (cpu::IsaLevel isa : kt::isa_levels()) {
      KCHECK(cpu::set_isa(isa).ok());
      for (int blocking = 0; blocking < 2; ++blocking) {
        cpu::gemm_set_blocking_for_testing(blocking ? 32 : 0, blocking ? 8 : 0, blocking ? 32 : 0);
        Operand full = make_output(dt, {}, M, N);
        KCHECK(run_matmul(A.view, B.view, full.view).ok());
        for (int64_t rows : {int64_t(1), int64_t(3), int64_t(16)}) {
          for (int64_t r0 : {int64_t(0), int64_t(41), M - rows}) {
            View sub = A.view;
            sub.shape[0] = rows;
            sub.offset = A.view.offset + r0 * A.view.strides[0];
            Operand part = make_output(dt, {}, rows, N);
            KCHECK(run_matmul(sub, B.view, part.view).ok());
            const bool same = std::memcmp(part.bytes.data(), full.bytes.data() + r0 * N * esz,
                                          static_cast<size_t>(rows * N) * esz) == 0;
            KCHECK(same) << dtype_name(dt) << " at " << cpu::isa_name(isa) << ": rows " << r0 << ".." << r0 + rows
                         << " computed alone differ from the full product (blocking " << blocking << ")";
          }
        }
      }
      cpu::gemm_set_blocking_for_testing(0, 0, 0);
    }
  }
}

KTEST(gemm, empty_and_k_zero) {
  Restore restore;
  Rng rng(500);
  for (DType dt : kDTypes) {
    // K = 0: C = 0 (the output starts as NaN).
    const Operand A = make_input(dt, {2}, {false}, 3, 0, Layout::RowMajor, rng);
    const Operand B = make_input(dt, {2}, {false}, 0, 4, Layout::RowMajor, rng);
    Operand C = make_output(dt, {2}, 3, 4);
    const Status s = run_matmul(A.view, B.view, C.view);
    KCHECK(s.ok()) << s.message();
    bool zero = true;
    for (int64_t e = 0; e < 24; ++e) zero = zero && kt::decode(dt, C.bytes.data() + e * dtype_size(dt)) == 0.0;
    KCHECK(zero) << dtype_name(dt) << ": K = 0 must give zeros";
    // M = 0 and N = 0: nothing to do.
    const Operand A0 = make_input(dt, {}, {}, 0, 5, Layout::RowMajor, rng);
    const Operand B5 = make_input(dt, {}, {}, 5, 4, Layout::RowMajor, rng);
    Operand C0 = make_output(dt, {}, 0, 4);
    KCHECK(run_matmul(A0.view, B5.view, C0.view).ok());
    const Operand A5 = make_input(dt, {}, {}, 3, 5, Layout::RowMajor, rng);
    const Operand B0 = make_input(dt, {}, {}, 5, 0, Layout::RowMajor, rng);
    Operand C30 = make_output(dt, {}, 3, 0);
    const Status s30 = run_matmul(A5.view, B0.view, C30.view);
    KCHECK(s30.ok()) << s30.message();
  }
}

KTEST(gemm, errors) {
  Rng rng(700);
  auto in = [&](DType dt, std::vector<int64_t> shape) {
    const std::vector<int64_t> batch(shape.begin(), shape.end() - 2);
    return make_input(dt, batch, std::vector<bool>(batch.size(), false), shape[shape.size() - 2], shape.back(),
                      Layout::RowMajor, rng);
  };
  auto out = [&](DType dt, std::vector<int64_t> shape) {
    const std::vector<int64_t> batch(shape.begin(), shape.end() - 2);
    return make_output(dt, batch, shape[shape.size() - 2], shape.back());
  };
  auto expect = [&](const Status& s, StatusCode code, const std::string& needle, const char* what) {
    KCHECK(s.code() == code) << what << ": got '" << s.message() << "'";
    KCHECK(s.message().find(needle) != std::string::npos) << what << ": '" << s.message() << "' lacks '" << needle << "'";
    KCHECK(s.message().find("matmul") != std::string::npos) << what << ": " << s.message();
  };
  {
    const Operand a = in(DType::Float32, {2, 3}), b = in(DType::Float32, {4, 5});
    Operand c = out(DType::Float32, {2, 5});
    expect(run_matmul(a.view, b.view, c.view), StatusCode::ShapeError, "float32[2, 3] on cpu", "mismatched K");
  }
  {
    const Operand a = in(DType::Float32, {2, 3}), b = in(DType::Float32, {2, 3, 4});
    Operand c = out(DType::Float32, {2, 4});
    expect(run_matmul(a.view, b.view, c.view), StatusCode::ShapeError, "rank", "different ranks");
  }
  {
    Operand a = in(DType::Float32, {2, 3});
    a.view.ndim = 1;  // [2]
    Operand b = in(DType::Float32, {2, 3});
    b.view.ndim = 1;
    Operand c = out(DType::Float32, {1, 1});
    c.view.ndim = 1;
    expect(run_matmul(a.view, b.view, c.view), StatusCode::ShapeError, "at least 2", "rank 1");
  }
  {
    const Operand a = in(DType::Float32, {2, 3}), b = in(DType::Float32, {3, 4});
    Operand c = out(DType::Float32, {2, 5});
    expect(run_matmul(a.view, b.view, c.view), StatusCode::ShapeError, "output", "wrong output shape");
  }
  {
    const Operand a = in(DType::Float32, {2, 2, 3}), b = in(DType::Float32, {3, 3, 4});
    Operand c = out(DType::Float32, {2, 2, 4});
    expect(run_matmul(a.view, b.view, c.view), StatusCode::ShapeError, "batch", "batch mismatch");
  }
  {
    const Operand a = in(DType::Float32, {2, 3}), b = in(DType::Float16, {3, 4});
    Operand c = out(DType::Float32, {2, 4});
    expect(run_matmul(a.view, b.view, c.view), StatusCode::DTypeError, "float16[3, 4] on cpu", "mixed dtypes");
  }
  {
    const Operand a = in(DType::BFloat16, {2, 3}), b = in(DType::BFloat16, {3, 4});
    Operand c = out(DType::Float32, {2, 4});
    expect(run_matmul(a.view, b.view, c.view), StatusCode::DTypeError, "bfloat16", "output dtype");
  }
  {
    // The output must be contiguous (native/KERNELS.md): a transposed output view is refused.
    const Operand a = in(DType::Float32, {3, 5}), b = in(DType::Float32, {5, 4});
    Operand c = out(DType::Float32, {4, 3});
    View ct = c.view;
    ct.shape[0] = 3;
    ct.shape[1] = 4;
    ct.strides[0] = 1;
    ct.strides[1] = 3;
    expect(run_matmul(a.view, b.view, ct), StatusCode::ShapeError, "contiguous", "strided output");
  }
  {
    const Operand a = in(DType::Int32, {2, 3}), b = in(DType::Int32, {3, 4});
    Operand c = out(DType::Int32, {2, 4});
    expect(run_matmul(a.view, b.view, c.view), StatusCode::NoKernel, "no kernel for dtype int32", "int32");
  }
}
