// Per-ISA inner loops for the reductions (reduce.cpp) and the softmax /
// cross-entropy rows (softmax.cpp). reduce_impl.inc is compiled once per ISA
// level (reduce_{portable,avx2,avx512}.cpp); reduce_table() picks one at run
// time. Every loop keeps a fixed assignment of elements to accumulators (16
// lanes, or one accumulator per column) and combines them in a fixed order,
// so every ISA level gives the same bits.
#pragma once
#include <cstdint>

#include "kiln/cpu_features.h"
#include "kiln/dtype.h"

namespace kiln {
namespace cpu {

constexpr int kLanes = 16;

// Accumulator kinds. Sum: double per lane / column for float dtypes, uint32
// (wrapping) for int32; Max, Min: int32 keys (reduce_keys.h: NaN wins, -0 < +0)
// for float dtypes, the int32 values for int32.
enum ReduceKind : int { kReduceSum = 0, kReduceMax = 1, kReduceMin = 2 };
constexpr int kNumReduceKinds = 3;

// Runs ("case A", the reduced elements are a strided run): element i of
// x[i*s], i < n, goes into lane i % 16 (i counted from 0 in every call).
using LanesRunFn = void (*)(void* lanes, const char* x, int64_t s, int64_t n);
// argmax over a run: lane keys (int64: arg_key of floats, the int32 values;
// start at INT64_MIN) and indices (base + i); a lane takes a strictly greater key.
using ArgmaxRunFn = void (*)(void* vals, int64_t* idx, const char* x, int64_t s, int64_t n, int64_t base);
// Rows into columns ("case B"): for r < nrows in order, acc[c] op= x[r*rs + c*cs], c < ncols.
using RowsFn = void (*)(void* acc, const char* x, int64_t rs, int64_t cs, int64_t nrows, int64_t ncols);
// argmax rows into columns; row r has index base + r.
using ArgmaxRowsFn = void (*)(void* vals, int64_t* idx, const char* x, int64_t rs, int64_t cs, int64_t nrows,
                              int64_t ncols, int64_t base);

// Many short runs, one output each: part[r] = run r (x + r*rstride, L elements
// s apart) through the 16 lanes and merged: what lanes_run and the lane merge give.
using RunsFn = void (*)(void* parts, const char* x, int64_t rstride, int64_t s, int64_t L, int64_t nruns);
using ArgmaxRunsFn = void (*)(int64_t* keys, int64_t* idx, const char* x, int64_t rstride, int64_t s, int64_t L,
                              int64_t nruns);

struct ReduceTable {
  LanesRunFn run[kNumReduceKinds][kNumDTypes];  // nullptr: no kernel for that dtype
  RunsFn runs[kNumReduceKinds][kNumDTypes];
  ArgmaxRunsFn argmax_runs[kNumDTypes];
  RowsFn rows[kNumReduceKinds][kNumDTypes];
  ArgmaxRunFn argmax_run[kNumDTypes];
  ArgmaxRowsFn argmax_rows[kNumDTypes];

  // Softmax and cross-entropy rows: contiguous float32, n elements. Sums are
  // over 16 double lanes; e^(x - m) is fastmath's exp_sum_d (x - m exact).
  // Outputs are rounded once from double; a NaN output is the canonical quiet NaN.
  float (*row_max)(const float* x, int64_t n);                     // NaN if any is NaN; -inf if n == 0
  double (*row_sum)(const float* x, int64_t n);                    // sum x
  double (*row_sum_exp)(const float* x, int64_t n, float m);       // sum e^(x - m)
  double (*row_dot)(const float* a, const float* b, int64_t n);    // sum a b
  // y = e^(x - m) * scale, rounded once.
  void (*row_exp_scale)(float* y, const float* x, int64_t n, float m, double scale);
  // y = (x - m) - log_s, rounded once (x - m exact).
  void (*row_log_softmax)(float* y, const float* x, int64_t n, float m, double log_s);
  // gx = y (gy - dot)
  void (*row_softmax_bwd)(float* gx, const float* y, const float* gy, int64_t n, double dot);
  // gx = gy - e^y sum_gy
  void (*row_log_softmax_bwd)(float* gx, const float* y, const float* gy, int64_t n, double sum_gy);
  // g = scale (e^(x - lse) - sub)
  void (*row_ce_grad)(float* g, const float* x, int64_t n, float lse, double scale, double sub);
};

namespace portable { const ReduceTable& reduce_table(); }
namespace avx2 { const ReduceTable& reduce_table(); }
namespace avx512 { const ReduceTable& reduce_table(); }

inline const ReduceTable& reduce_table() {
  switch (active_isa()) {
    case IsaLevel::Avx512: return avx512::reduce_table();
    case IsaLevel::Avx2: return avx2::reduce_table();
    default: return portable::reduce_table();
  }
}

}  // namespace cpu
}  // namespace kiln
