// CPU kernels sum, mean, max, min, argmax (native/KERNELS.md "Reductions").
// Validation and the index plan: native/core/reduce.cpp; inner loops per ISA:
// reduce_impl.inc.
//
// Summation order (fixed by the plan, never by the thread count or ISA level):
//   case A, the innermost reduced dim is the better one to stream (e.g. over the
//     last axis): the reduced elements of one output are cut into fixed blocks
//     (16384 elements of one run, or whole runs up to 16384 elements); inside a
//     block element i of each run goes to lane i % 16, the lanes are combined
//     pairwise at the end of the block, and the block results are combined in
//     block order.
//   case B, the innermost kept dim is the better one (e.g. over leading axes):
//     rows of reduced elements are accumulated into one accumulator per output
//     column, in blocks of 256 rows; block results are combined in block order.
// Threads split over outputs, or over the blocks of an output when outputs are
// few; either way every block is computed the same way and folded in order,
// so 1, 2 or n threads give the same bits. Float sums and means accumulate in
// float64 and round once (a NaN result is the canonical quiet NaN); int32 sums wrap.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kiln/element.h"
#include "kiln/reduce.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "reduce_keys.h"
#include "reduce_table.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kBlockA = 16384;     // reduced elements per block (case A)
constexpr int64_t kBlockRowsB = 256;   // reduced rows per block (case B)
constexpr int64_t kTileB = 16384;      // output columns per task (case B): whole rows, so x streams
constexpr int64_t kWorkGrain = 32768;  // elements of work per parallel chunk
constexpr int64_t kFoldChunk = 256;    // blocks computed in parallel before folding
constexpr int64_t kFoldBytes = 4 << 20;  // at most this much partial state per fold chunk (case B)

// Element offset of row-major index k over (shape, strides) of n dims.
inline int64_t offset_of(int64_t k, int n, const int64_t* shape, const int64_t* strides) {
  int64_t off = 0;
  for (int d = n - 1; d >= 0; --d) {
    const int64_t q = k / shape[d];
    off += (k - q * shape[d]) * strides[d];
    k = q;
  }
  return off;
}

// ---- accumulator policies ----------------------------------------------------------------

// sum, mean, max, min on dtype E: the partial result of a block is one
// accumulator value (double / uint32 for sums; int32 keys (reduce_keys.h) or
// int32 values for max and min).
template <int KIND, class E>
struct ValueOps {
  static constexpr bool kInt = std::is_same<E, el::I32>::value;
  using P = typename Acc<KIND, E>::A;
  struct Lanes {
    P v[kLanes];
  };
  static P identity() { return Acc<KIND, E>::identity(); }
  static P combine(P a, P b) { return Acc<KIND, E>::combine(a, b); }  // b follows a
  static void lanes_init(Lanes& s) {
    for (P& v : s.v) v = identity();
  }
  static void run(const ReduceTable& t, Lanes& s, const char* x, int64_t stride, int64_t n, int64_t /*base*/) {
    t.run[KIND][static_cast<int>(E::dtype)](s.v, x, stride, n);
  }
  static P lanes_finish(Lanes& s) { return Acc<KIND, E>::lanes_total(s.v); }
  // Short runs, one block each: the same values as run + lanes_finish.
  static void runs(const ReduceTable& t, std::vector<P>& parts, const char* x, int64_t rstride, int64_t stride, int64_t L,
                   int64_t n) {
    parts.resize(static_cast<size_t>(n));
    t.runs[KIND][static_cast<int>(E::dtype)](parts.data(), x, rstride, stride, L, n);
  }
  // Columns (case B).
  struct Cols {
    std::vector<P> v;
  };
  static void cols_init(Cols& c, int64_t n) { c.v.assign(static_cast<size_t>(n), identity()); }
  static void rows(const ReduceTable& t, Cols& c, const char* x, int64_t rs, int64_t cs, int64_t nrows, int64_t ncols,
                   int64_t /*base*/) {
    t.rows[KIND][static_cast<int>(E::dtype)](c.v.data(), x, rs, cs, nrows, ncols);
  }
  static P col(const Cols& c, int64_t j) { return c.v[static_cast<size_t>(j)]; }

  static void write(char* p, P total, int64_t n_red, bool mean) {
    typename E::T* out = reinterpret_cast<typename E::T*>(p);
    if constexpr (KIND == kReduceSum && kInt) {
      *out = static_cast<int32_t>(total);
    } else if constexpr (KIND == kReduceSum) {
      double v = n_red == 0 ? 0.0 : total;  // the sum of nothing is +0
      if (mean) v = v / static_cast<double>(n_red);  // 0 / 0 = NaN
      // Which NaN an addition keeps depends on operand order, which vectorised
      // code may swap: NaN sums come out as the one canonical quiet NaN.
      if (v != v) v = std::numeric_limits<double>::quiet_NaN();
      *out = E::from_f64(v);
    } else if constexpr (kInt) {
      *out = total;
    } else {
      *out = E::from_f32(key_float(total));
    }
  }
};

// argmax: a partial result is (key, index); keys are arg_key / int32 values
// (every NaN the one largest key), index -1 = no element yet.
template <class E>
struct ArgmaxOps {
  struct P {
    int64_t k;
    int64_t i;
  };
  struct Lanes {
    int64_t k[kLanes];
    int64_t i[kLanes];
  };
  static P identity() { return P{std::numeric_limits<int64_t>::min(), -1}; }
  // b holds later indices than a: the first of equal keys stays.
  static P combine(P a, P b) { return b.k > a.k ? b : a; }
  static void lanes_init(Lanes& s) {
    for (int j = 0; j < kLanes; ++j) {
      s.k[j] = std::numeric_limits<int64_t>::min();
      s.i[j] = -1;
    }
  }
  static void run(const ReduceTable& t, Lanes& s, const char* x, int64_t stride, int64_t n, int64_t base) {
    t.argmax_run[static_cast<int>(E::dtype)](s.k, s.i, x, stride, n, base);
  }
  // Lanes hold interleaved indices: the largest key wins, then the smallest index.
  static P lanes_finish(Lanes& s) {
    P best;
    arg_lanes_best(s.k, s.i, &best.k, &best.i);
    return best;
  }
  static void runs(const ReduceTable& t, std::vector<P>& parts, const char* x, int64_t rstride, int64_t stride, int64_t L,
                   int64_t n) {
    std::vector<int64_t> k(static_cast<size_t>(n)), i(static_cast<size_t>(n));
    t.argmax_runs[static_cast<int>(E::dtype)](k.data(), i.data(), x, rstride, stride, L, n);
    parts.resize(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) parts[static_cast<size_t>(r)] = P{k[static_cast<size_t>(r)], i[static_cast<size_t>(r)]};
  }
  struct Cols {
    std::vector<int64_t> k;
    std::vector<int64_t> i;
  };
  static void cols_init(Cols& c, int64_t n) {
    c.k.assign(static_cast<size_t>(n), std::numeric_limits<int64_t>::min());
    c.i.assign(static_cast<size_t>(n), -1);
  }
  static void rows(const ReduceTable& t, Cols& c, const char* x, int64_t rs, int64_t cs, int64_t nrows, int64_t ncols,
                   int64_t base) {
    t.argmax_rows[static_cast<int>(E::dtype)](c.k.data(), c.i.data(), x, rs, cs, nrows, ncols, base);
  }
  static P col(const Cols& c, int64_t j) { return P{c.k[static_cast<size_t>(j)], c.i[static_cast<size_t>(j)]}; }
  static void write(char* p, P total, int64_t, bool) { *reinterpret_cast<int32_t*>(p) = static_cast<int32_t>(total.i); }
};

// ---- the two iteration schemes ------------------------------------------------------------------

template <class Ops>
struct Reducer {
  using P = typename Ops::P;
  const ReducePlan& plan;
  const ReduceTable& table;
  const char* xb;  // x.data()
  char* yb;        // y.data()
  int64_t xes, yes;  // element sizes
  bool mean;

  // Folds blocks [0, n_blocks) of one output in order; block(b) computes one
  // partial. Blocks are computed in parallel when `parallel`.
  template <class Block>
  P fold(int64_t n_blocks, bool parallel, int64_t block_work, Block&& block) const {
    P total = Ops::identity();
    if (!parallel) {
      for (int64_t b = 0; b < n_blocks; ++b) total = Ops::combine(total, block(b));
      return total;
    }
    std::vector<P> parts(static_cast<size_t>(std::min(n_blocks, kFoldChunk)));
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kFoldChunk) {
      const int64_t nb = std::min(kFoldChunk, n_blocks - b0);
      parallel_for(nb, std::max<int64_t>(1, kWorkGrain / std::max<int64_t>(1, block_work)), [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) parts[static_cast<size_t>(b)] = block(b0 + b);
      });
      for (int64_t b = 0; b < nb; ++b) total = Ops::combine(total, parts[static_cast<size_t>(b)]);
    }
    return total;
  }

  // Case A: runs along the innermost reduced dim.
  void case_a() const {
    const ReducePlan& p = plan;
    const int64_t L = p.nr > 0 ? p.rshape[p.nr - 1] : 1;
    const int64_t rs = p.nr > 0 ? p.rin[p.nr - 1] : 0;
    const int nro = p.nr > 0 ? p.nr - 1 : 0;  // outer reduced dims
    const int64_t M = L > 0 ? p.n_red / L : 0;
    const bool long_runs = L >= kBlockA;
    const int64_t chunks = long_runs ? (L + kBlockA - 1) / kBlockA : 1;
    const int64_t G = long_runs ? 1 : std::max<int64_t>(1, kBlockA / std::max<int64_t>(1, L));  // runs per block
    const int64_t n_blocks = p.n_red == 0 ? 0 : (long_runs ? M * chunks : (M + G - 1) / G);
    auto block = [&](const char* xo, int64_t b) -> P {
      typename Ops::Lanes lanes;
      Ops::lanes_init(lanes);
      if (long_runs) {
        const int64_t m = b / chunks, c = b - m * chunks;
        const int64_t start = c * kBlockA, len = std::min(kBlockA, L - start);
        const char* ptr = xo + (offset_of(m, nro, p.rshape, p.rin) + start * rs) * xes;
        Ops::run(table, lanes, ptr, rs, len, m * L + start);
      } else {
        const int64_t m1 = std::min(M, (b + 1) * G);
        for (int64_t m = b * G; m < m1; ++m) {
          Ops::run(table, lanes, xo + offset_of(m, nro, p.rshape, p.rin) * xes, rs, L, m * L);
        }
      }
      return Ops::lanes_finish(lanes);
    };
    // One run per output (a single reduced dim of at most one block): whole
    // batches of outputs along the innermost kept dim per call, same values.
    if (p.nr <= 1 && !long_runs && p.nk >= 1 && p.n_red > 0) {
      const int64_t C = p.kshape[p.nk - 1], ks = p.kin[p.nk - 1], kos = p.kout[p.nk - 1];
      const int64_t kBatch = 1024;
      const int64_t batches = (C + kBatch - 1) / kBatch, Ko = p.n_out / C;
      const int64_t grain = std::max<int64_t>(1, kWorkGrain / std::max<int64_t>(1, std::min(C, kBatch) * L));
      parallel_for(Ko * batches, grain, [&](int64_t lo, int64_t hi) {
        std::vector<P> parts;
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t ko = t / batches, c0 = (t - ko * batches) * kBatch, w = std::min(kBatch, C - c0);
          Ops::runs(table, parts, xb + (offset_of(ko, p.nk - 1, p.kshape, p.kin) + c0 * ks) * xes, ks, rs, L, w);
          char* yo = yb + (offset_of(ko, p.nk - 1, p.kshape, p.kout) + c0 * kos) * yes;
          for (int64_t j = 0; j < w; ++j) {
            Ops::write(yo + j * kos * yes, Ops::combine(Ops::identity(), parts[static_cast<size_t>(j)]), p.n_red, mean);
          }
        }
      });
      return;
    }
    const int64_t block_work = long_runs ? kBlockA : G * L;
    const bool many_outputs = p.n_out >= 4 * num_threads() || p.n_red <= kBlockA;
    auto one_output = [&](int64_t k, bool parallel) {
      const char* xo = xb + offset_of(k, p.nk, p.kshape, p.kin) * xes;
      const P total = fold(n_blocks, parallel, block_work, [&](int64_t b) { return block(xo, b); });
      Ops::write(yb + offset_of(k, p.nk, p.kshape, p.kout) * yes, total, p.n_red, mean);
    };
    if (many_outputs) {
      const int64_t grain = std::max<int64_t>(1, kWorkGrain / std::max<int64_t>(1, p.n_red));
      parallel_for(p.n_out, grain, [&](int64_t lo, int64_t hi) {
        for (int64_t k = lo; k < hi; ++k) one_output(k, false);
      });
    } else {
      for (int64_t k = 0; k < p.n_out; ++k) one_output(k, true);
    }
  }

  // Case B: rows of the innermost kept dim (columns), accumulated per column.
  void case_b() const {
    const ReducePlan& p = plan;
    const int64_t C = p.kshape[p.nk - 1], cs = p.kin[p.nk - 1], cos = p.kout[p.nk - 1];
    const int nko = p.nk - 1;
    const int64_t Ko = p.n_out / C;
    const int64_t Li = p.rshape[p.nr - 1], rsi = p.rin[p.nr - 1];
    const int nro = p.nr - 1;
    const int64_t tiles = (C + kTileB - 1) / kTileB;
    const int64_t n_tasks = Ko * tiles;
    const int64_t n_blocks = (p.n_red + kBlockRowsB - 1) / kBlockRowsB;
    // Accumulates the block's rows into cols for columns [c0, c0 + w) of outer kept index ko.
    auto block_rows = [&](typename Ops::Cols& cols, const char* xo, int64_t b, int64_t w) {
      const int64_t r1 = std::min(p.n_red, (b + 1) * kBlockRowsB);
      for (int64_t r = b * kBlockRowsB; r < r1;) {
        const int64_t m = r / Li, i = r - m * Li;
        const int64_t len = std::min(Li - i, r1 - r);
        const char* ptr = xo + (offset_of(m, nro, p.rshape, p.rin) + i * rsi) * xes;
        Ops::rows(table, cols, ptr, rsi, cs, len, w, r);
        r += len;
      }
    };
    auto task = [&](int64_t t, bool parallel) {
      const int64_t ko = t / tiles, c0 = (t - ko * tiles) * kTileB, w = std::min(kTileB, C - c0);
      const char* xo = xb + (offset_of(ko, nko, p.kshape, p.kin) + c0 * cs) * xes;
      char* yo = yb + (offset_of(ko, nko, p.kshape, p.kout) + c0 * cos) * yes;
      std::vector<P> total(static_cast<size_t>(w), Ops::identity());
      auto fold_block = [&](const typename Ops::Cols& cols) {
        for (int64_t j = 0; j < w; ++j) total[static_cast<size_t>(j)] = Ops::combine(total[static_cast<size_t>(j)], Ops::col(cols, j));
      };
      if (!parallel) {
        typename Ops::Cols cols;
        for (int64_t b = 0; b < n_blocks; ++b) {
          Ops::cols_init(cols, w);
          block_rows(cols, xo, b, w);
          fold_block(cols);
        }
      } else {
        const int64_t chunk = std::max<int64_t>(8, std::min<int64_t>(kFoldChunk, kFoldBytes / (16 * w)));
        std::vector<typename Ops::Cols> parts(static_cast<size_t>(std::min(n_blocks, chunk)));
        for (int64_t b0 = 0; b0 < n_blocks; b0 += chunk) {
          const int64_t nb = std::min(chunk, n_blocks - b0);
          parallel_for(nb, std::max<int64_t>(1, kWorkGrain / (kBlockRowsB * w)), [&](int64_t lo, int64_t hi) {
            for (int64_t b = lo; b < hi; ++b) {
              Ops::cols_init(parts[static_cast<size_t>(b)], w);
              block_rows(parts[static_cast<size_t>(b)], xo, b0 + b, w);
            }
          });
          for (int64_t b = 0; b < nb; ++b) fold_block(parts[static_cast<size_t>(b)]);
        }
      }
      for (int64_t j = 0; j < w; ++j) Ops::write(yo + j * cos * yes, total[static_cast<size_t>(j)], p.n_red, mean);
    };
    const bool many_tasks = n_tasks >= 4 * num_threads() || p.n_red <= kBlockRowsB;
    if (many_tasks) {
      const int64_t grain = std::max<int64_t>(1, kWorkGrain / std::max<int64_t>(1, p.n_red * std::min(C, kTileB)));
      parallel_for(n_tasks, grain, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) task(t, false);
      });
    } else {
      for (int64_t t = 0; t < n_tasks; ++t) task(t, true);
    }
  }

  void run() const {
    const ReducePlan& p = plan;
    const bool b = p.nk >= 1 && p.nr >= 1 && p.kin[p.nk - 1] >= 1 && p.rin[p.nr - 1] > p.kin[p.nk - 1];
    if (b) {
      case_b();
    } else {
      case_a();
    }
  }
};

template <class Ops>
void reduce_with(const ReducePlan& plan, const View& x, const View& y) {
  Reducer<Ops> r{plan,
                 reduce_table(),
                 x.data(),
                 y.data(),
                 static_cast<int64_t>(dtype_size(x.dtype)),
                 static_cast<int64_t>(dtype_size(y.dtype)),
                 plan.op == ReduceOp::Mean};
  r.run();
}

template <class E>
void reduce_dtype(const ReducePlan& plan, const View& x, const View& y) {
  switch (plan.op) {
    case ReduceOp::Sum:
    case ReduceOp::Mean: reduce_with<ValueOps<kReduceSum, E>>(plan, x, y); break;
    case ReduceOp::Max: reduce_with<ValueOps<kReduceMax, E>>(plan, x, y); break;
    case ReduceOp::Min: reduce_with<ValueOps<kReduceMin, E>>(plan, x, y); break;
    case ReduceOp::Argmax: reduce_with<ArgmaxOps<E>>(plan, x, y); break;
  }
}

Status reduce_kernel(const KernelArgs& args) {
  ReducePlan plan;
  KILN_RETURN_IF_ERROR(prepare_reduce(args, &plan));
  if (plan.n_out == 0) return Status::Ok();
  const View &x = args.in[0], &y = args.out[0];
  switch (x.dtype) {
    case DType::Float32: reduce_dtype<el::F32>(plan, x, y); break;
    case DType::Float16: reduce_dtype<el::F16>(plan, x, y); break;
    case DType::BFloat16: reduce_dtype<el::BF16>(plan, x, y); break;
    case DType::Int32: reduce_dtype<el::I32>(plan, x, y); break;
    default: return no_kernel(args.op, x.dtype, DeviceKind::CPU);
  }
  return Status::Ok();
}

const bool kRegistered = register_reduce_kernels(DeviceKind::CPU, reduce_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
