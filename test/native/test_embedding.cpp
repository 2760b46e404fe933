// Suite 'embedding': the CPU kernels embedding and embedding_backward on
// float32 / float16 / bfloat16, contiguous and strided / transposed weights,
// ids and gradients, repeated and unused ids, empty shapes; every ISA level and
// 1, 2 and 3 threads must give the same bits.
//
// embedding must copy rows exactly. embedding_backward is specified bit for
// bit (native/KERNELS.md: float32 accumulation in increasing position order
// per row, one rounding), so the reference replays that order here; it is also
// checked against a float64 sum (within the float32 accumulation error) and
// against central finite differences of L(W) = sum gout * embedding(W, ids).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/registry.h"
#include "ops_testing.h"

namespace {

using namespace kiln;
using ot::Layout;
using ot::Tensor;

struct Case {
  int64_t vocab, dim, n;
  Layout wl, il, gl;
  bool threads;
};
const Case kCases[] = {
    {10, 4, 7, Layout::Contig, Layout::Contig, Layout::Contig, false},
    {5, 3, 40, Layout::Transposed, Layout::Strided, Layout::Strided, false},  // many repeats
    {1, 1, 1, Layout::Contig, Layout::Contig, Layout::Contig, false},
    {6, 0, 4, Layout::Contig, Layout::Contig, Layout::Contig, false},
    {6, 5, 0, Layout::Contig, Layout::Contig, Layout::Contig, false},
    {0, 5, 0, Layout::Contig, Layout::Contig, Layout::Contig, false},
    {3000, 64, 5000, Layout::Contig, Layout::Contig, Layout::Contig, true},
    {200, 700, 300, Layout::Strided, Layout::Contig, Layout::Transposed, true},
};

KTEST(embedding, forward_copies_rows) {
  ot::Restore restore;
  int64_t runs = 0, rows = 0;
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      ot::Rng r(seed++);
      Tensor w = ot::make(dt, {c.vocab, c.dim}, c.wl), ids = ot::make(DType::Int32, {c.n}, c.il);
      ot::fill(w, r, 3.0, true);
      for (int64_t i = 0; i < c.n; ++i) ids.seti(i, static_cast<int32_t>(r.below(std::max<int64_t>(1, c.vocab))));
      const std::string ctx = std::string("embedding ") + dtype_name(dt) + " V " + std::to_string(c.vocab) + " D " +
                              std::to_string(c.dim) + " N " + std::to_string(c.n);
      Tensor o0 = ot::make(dt, {c.n, c.dim}, c.gl);
      const std::vector<unsigned char> got = ot::same_everywhere(ctx, [&] {
        Tensor o = ot::clone(o0);
        const Status s = kt::run("embedding", dt, {w.v, ids.v}, {o.v});
        KCHECK(s.ok()) << ctx << ": " << s.message();
        KCHECK(o.guards_intact()) << ctx;
        return o.bytes();
      }, c.threads, &runs);
      int64_t bad = 0;
      for (int64_t i = 0; i < c.n && !got.empty(); ++i) {
        for (int64_t d = 0; d < c.dim; ++d) {
          const unsigned char* want = w.ptr(ids.geti(i) * c.dim + d);
          if (std::memcmp(got.data() + (i * c.dim + d) * static_cast<int64_t>(w.es), want, w.es) != 0 && ++bad <= 3) {
            KCHECK(false) << ctx << ": out[" << i << ", " << d << "] differs from weight[" << ids.geti(i) << ", " << d << "]";
          }
        }
        ++rows;
      }
      KCHECK_EQ(bad, 0) << ctx;
    }
  }
  std::cout << "    " << runs << " kernel runs, " << rows << " rows copied" << std::endl;
}

KTEST(embedding, backward_float32_in_position_order) {
  ot::Restore restore;
  int64_t runs = 0, fd_checked = 0;
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      ot::Rng r(seed++);
      Tensor ids = ot::make(DType::Int32, {c.n}, c.il), gout = ot::make(dt, {c.n, c.dim}, c.gl);
      ot::fill(gout, r, 2.0, false);
      for (int64_t i = 0; i < c.n; ++i) {
        // Skewed ids: some rows get many positions, some none.
        const int64_t v = r.below(3) == 0 ? r.below(std::max<int64_t>(1, c.vocab / 10 + 1)) : r.below(std::max<int64_t>(1, c.vocab));
        ids.seti(i, static_cast<int32_t>(std::min(v, std::max<int64_t>(0, c.vocab - 1))));
      }
      const std::string ctx = std::string("embedding_backward ") + dtype_name(dt) + " V " + std::to_string(c.vocab) +
                              " D " + std::to_string(c.dim) + " N " + std::to_string(c.n);
      Tensor g0 = ot::make(dt, {c.vocab, c.dim}, c.wl);
      // Non-zero garbage in the output: the kernel must zero it first.
      for (int64_t k = 0; k < g0.numel(); ++k) g0.set(k, 99.0);
      const std::vector<unsigned char> got = ot::same_everywhere(ctx, [&] {
        Tensor g = ot::clone(g0);
        const Status s = kt::run("embedding_backward", dt, {ids.v, gout.v}, {g.v});
        KCHECK(s.ok()) << ctx << ": " << s.message();
        KCHECK(g.guards_intact()) << ctx;
        return g.bytes();
      }, c.threads, &runs);
      // The contract's order, replayed: float32 sums in increasing position, rounded once.
      std::vector<float> acc(static_cast<size_t>(c.vocab * c.dim), 0.0f);
      std::vector<double> exact(acc.size(), 0.0), abs_sum(acc.size(), 0.0);
      for (int64_t i = 0; i < c.n; ++i) {
        for (int64_t d = 0; d < c.dim; ++d) {
          const size_t k = static_cast<size_t>(ids.geti(i) * c.dim + d);
          const double v = gout.get(i * c.dim + d);
          acc[k] += static_cast<float>(v);
          exact[k] += v;
          abs_sum[k] += std::fabs(v);
        }
      }
      int64_t bad = 0;
      for (size_t k = 0; k < acc.size() && !got.empty(); ++k) {
        const double g = ot::decode(dt, got.data() + static_cast<int64_t>(k) * static_cast<int64_t>(gout.es));
        const double want = ot::round_to(dt, acc[k]);
        if (!(g == want) && ++bad <= 3) KCHECK(false) << ctx << ": gweight element " << k << " = " << g << ", want " << want;
        // float64 sum: float32 accumulation of n terms is within n 2^-24 sum |v|, plus the dtype's rounding.
        const double eps = dt == DType::Float32 ? 0x1p-24 : (dt == DType::Float16 ? 0x1p-11 : 0x1p-8);
        if (!(std::fabs(g - exact[k]) <= c.n * 0x1p-24 * abs_sum[k] + 2 * eps * std::fabs(exact[k]) + 1e-7) && ++bad <= 3) {
          KCHECK(false) << ctx << ": gweight element " << k << " = " << g << ", float64 sum " << exact[k];
        }
      }
      // Central differences of L(W) = sum_{i,d} gout[i,d] W[ids[i], d] (linear, so exact up to rounding).
      if (dt == DType::Float32 && c.vocab * c.dim <= 200) {
        for (int64_t v = 0; v < c.vocab; ++v) {
          for (int64_t d = 0; d < c.dim; ++d) {
            auto loss = [&](double wvd) {
              double l = 0;
              for (int64_t i = 0; i < c.n; ++i) l += ids.geti(i) == v ? gout.get(i * c.dim + d) * wvd : 0.0;
              return l;
            };
            const double h = 1e-3, w0 = 0.3;
            const double fd = (loss(w0 + h) - loss(w0 - h)) / (2 * h);
            const double g = ot::decode(dt, got.data() + (v * c.dim + d) * static_cast<int64_t>(gout.es));
            ++fd_checked;
            if (!(std::fabs(g - fd) <= 1e-6 * (1 + std::fabs(fd))) && ++bad <= 3) {
              KCHECK(false) << ctx << ": gweight[" << v << ", " << d << "] = " << g << ", finite differences " << fd;
            }
          }
        }
      }
      KCHECK_EQ(bad, 0) << ctx;
    }
  }
  std::cout << "    " << runs << " kernel runs, " << fd_checked << " gradients checked against finite differences" << std::endl;
}

KTEST(embedding, errors_name_position_and_value) {
  Tensor w = ot::make(DType::Float32, {10, 4}), ids = ot::make(DType::Int32, {5}), out = ot::make(DType::Float32, {5, 4});
  Tensor h = ot::make(DType::Float16, {5, 4}), o3 = ot::make(DType::Float32, {5, 3}), idf = ot::make(DType::Float32, {5});
  Tensor w1 = ot::make(DType::Float32, {10}), ids2 = ot::make(DType::Int32, {5, 1}), wi = ot::make(DType::Int32, {10, 4});
  for (int i = 0; i < 5; ++i) ids.seti(i, i);
  auto has = [](const Status& s, const char* part) { return s.message().find(part) != std::string::npos; };
  ids.seti(3, 10);
  Status s = kt::run("embedding", DType::Float32, {w.v, ids.v}, {out.v});
  KCHECK(s.code() == StatusCode::ValueError && has(s, "id 10 at position 3") && has(s, "[0, 10)")) << s.message();
  ids.seti(3, -1);
  s = kt::run("embedding_backward", DType::Float32, {ids.v, out.v}, {w.v});
  KCHECK(s.code() == StatusCode::ValueError && has(s, "id -1 at position 3")) << s.message();
  bool untouched = true;
  for (unsigned char c : out.mem) untouched = untouched && c == ot::kGuard;
  for (unsigned char c : w.mem) untouched = untouched && c == ot::kGuard;
  KCHECK(untouched) << "a failed call wrote data";
  ids.seti(3, 3);
  s = kt::run("embedding", DType::Float32, {w.v, ids.v}, {h.v});
  KCHECK(s.code() == StatusCode::DTypeError) << s.message();
  s = kt::run("embedding", DType::Float32, {w.v, ids.v}, {o3.v});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "float32[5, 3]")) << s.message();
  s = kt::run("embedding", DType::Float32, {w.v, idf.v}, {out.v});
  KCHECK(s.code() == StatusCode::DTypeError && has(s, "ids")) << s.message();
  s = kt::run("embedding", DType::Float32, {w1.v, ids.v}, {out.v});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "weight")) << s.message();
  s = kt::run("embedding", DType::Float32, {w.v, ids2.v}, {out.v});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "ids")) << s.message();
  s = kt::run("embedding", DType::Int32, {wi.v, ids.v}, {out.v});
  KCHECK(s.code() == StatusCode::NoKernel) << s.message();
  s = kt::run("embedding_backward", DType::Float32, {ids.v, o3.v}, {w.v});
  KCHECK(s.code() == StatusCode::ShapeError && has(s, "gout")) << s.message();
  s = kt::run("embedding_backward", DType::Float32, {ids.v}, {w.v});
  KCHECK(s.code() == StatusCode::Internal) << s.message();
}

}  // namespace
