// Suite 'rope': the CPU kernel 'rope' (rotary embedding), reached through
// kiln::run_kernel, against a float64 reference written here (angle, cos and
// sin in float64, no rounding), in the "rotate half" and interleaved layouts,
// with positions [S] and [B, S] (negative and extreme values too), random
// operand layouts, inverse(rope(x)) == x within rounding, the adjoint identity
// <rope(x), g> == <x, rope_inverse(g)> (the inverse is the backward),
// thread-count invariance, empty tensors and error statuses.
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "nn_testing.h"
#include "rope_reference.h"

namespace {

using namespace kiln;
using nnt::Layout;
using nnt::Rng;
using nnt::Tensor;
using vd = std::vector<double>;

const DType kDtypes[] = {DType::Float32, DType::Float16, DType::BFloat16};

using roperef::Case;
using roperef::make_case;
using roperef::pair_scale;
using roperef::ref_rope;

Status run_rope(const Case& c, const Tensor& x, const Tensor& y, bool inverse) {
  return kt::run("rope", x.dtype(), {x.v, c.pos.v}, {y.v}, {c.interleaved ? 1 : 0, inverse ? 1 : 0}, {c.theta});
}

double g_fwd[3] = {}, g_inv[3] = {};

const int64_t kShapes[][4] = {{1, 1, 1, 2}, {2, 3, 5, 8}, {1, 4, 17, 64}, {3, 1, 9, 6}, {2, 2, 33, 128}, {1, 2, 3, 10}};

KTEST(rope, matches_f64_and_inverts) {
  Rng rng(11);
  for (DType dt : kDtypes) {
    for (const auto& s : kShapes) {
      for (int rep = 0; rep < 3; ++rep) {
        Case c = make_case(dt, s[0], s[1], s[2], s[3], rng);
        const double u = nnt::unit_roundoff(dt), u32 = 0x1.0p-24, sub = nnt::subnormal_floor(dt);
        const vd x = c.x.values();
        const vd want = ref_rope(c, x, false), scale = pair_scale(c, x);
        const Status st = run_rope(c, c.x, c.y, false);
        KCHECK(st.ok()) << c.name() << ": " << st.message();
        if (!st.ok()) return;
        // float32: cos/sin rounded, two products and a sum; 16-bit: then one rounding.
        nnt::ErrStat e;
        for (int64_t k = 0; k < c.x.numel(); ++k) e.add(c.y.get(k), want[static_cast<size_t>(k)], u * (scale[static_cast<size_t>(k)] + sub), k);
        KCHECK(e.max_err <= (dt == DType::Float32 ? 4.0 : 1.01)) << c.name() << ": error " << e.max_err << " units at " << e.where;
        KCHECK(c.y.guards_intact()) << c.name() << ": wrote outside y";
        g_fwd[nnt::dt_index(dt)] = std::max(g_fwd[nnt::dt_index(dt)], e.max_err);
        // inverse(rope(x)) == x within the roundings of both.
        Tensor back = nnt::make(dt, c.x.shape, static_cast<Layout>(rng.below(3)), rng);
        KCHECK(run_rope(c, c.y, back, true).ok());
        nnt::ErrStat ei;
        for (int64_t k = 0; k < c.x.numel(); ++k) ei.add(back.get(k), x[static_cast<size_t>(k)], u * (scale[static_cast<size_t>(k)] + sub), k);
        KCHECK(ei.max_err <= (dt == DType::Float32 ? 8.0 : 2.02)) << c.name() << ": inverse(rope(x)) error " << ei.max_err << " units at " << ei.where;
        g_inv[nnt::dt_index(dt)] = std::max(g_inv[nnt::dt_index(dt)], ei.max_err);
        (void)u32;
        if (kt::failures_in_test() > 0) return;
      }
    }
  }
  std::printf("    observed max error, units of u(dtype) * (|x0| + |x1|) [f32 f16 bf16]: rope %.2f %.2f %.2f, inverse(rope) %.2f %.2f %.2f\n",
              g_fwd[0], g_fwd[1], g_fwd[2], g_inv[0], g_inv[1], g_inv[2]);
}

// The backward of rope is the inverse rotation: <rope(x), g> == <x, rope_inverse(g)>.
KTEST(rope, inverse_is_the_adjoint) {
  Rng rng(12);
  for (DType dt : {DType::Float32, DType::BFloat16}) {
    for (const auto& s : kShapes) {
      Case c = make_case(dt, s[0], s[1], s[2], s[3], rng);
      Tensor g = nnt::make(dt, c.x.shape, Layout::Contig, rng), gi = nnt::make(dt, c.x.shape, Layout::Padded, rng);
      g.randomize(rng, -1, 1);
      KCHECK(run_rope(c, c.x, c.y, false).ok());
      KCHECK(run_rope(c, g, gi, true).ok());
      double lhs = 0, rhs = 0, mag = 0;
      for (int64_t k = 0; k < c.x.numel(); ++k) {
        lhs += c.y.get(k) * g.get(k);
        rhs += c.x.get(k) * gi.get(k);
        mag += 2 * std::fabs(c.x.get(k)) * std::fabs(g.get(k)) * 2;
      }
      KCHECK(std::fabs(lhs - rhs) <= 4 * nnt::unit_roundoff(dt) * mag + 1e-300) << c.name() << ": " << lhs << " vs " << rhs;
    }
  }
}

KTEST(rope, thread_count_invariant) {
  Rng rng(13);
  for (DType dt : {DType::Float32, DType::Float16}) {
    Case c = make_case(dt, 3, 5, 70, 64, rng);
    std::vector<unsigned char> first;
    for (int threads = 1; threads <= 3; ++threads) {
      cpu::set_num_threads(threads);
      KCHECK(run_rope(c, c.x, c.y, false).ok());
      if (threads == 1) {
        first = c.y.bytes();
      } else {
        KCHECK(c.y.bytes() == first) << c.name() << ": differs with " << threads << " threads";
      }
    }
  }
  cpu::set_num_threads(0);
}

KTEST(rope, in_place) {
  Rng rng(14);
  Case c = make_case(DType::Float32, 2, 3, 7, 16, rng);
  Tensor x2 = nnt::make(DType::Float32, c.x.shape, Layout::Contig, rng);
  x2.assign(c.x.values());
  KCHECK(run_rope(c, c.x, c.y, false).ok());
  KCHECK(run_rope(c, x2, x2, false).ok());  // y aliases x with the same layout
  KCHECK(x2.values() == c.y.values());
}

KTEST(rope, empty_tensors) {
  Rng rng(15);
  const int64_t shapes[][4] = {{0, 2, 3, 4}, {2, 0, 3, 4}, {2, 3, 0, 4}, {2, 3, 4, 0}};
  for (const auto& s : shapes) {
    Case c = make_case(DType::BFloat16, s[0], s[1], s[2], s[3], rng);
    const Status st = run_rope(c, c.x, c.y, false);
    KCHECK(st.ok()) << c.name() << ": " << st.message();
    KCHECK(c.y.guards_intact());
  }
}

KTEST(rope, error_statuses) {
  Rng rng(16);
  auto T = [&](DType dt, std::vector<int64_t> shape) { return nnt::make(dt, shape, Layout::Contig, rng); };
  const DType F = DType::Float32;
  Tensor x = T(F, {2, 3, 5, 8}), y = T(F, {2, 3, 5, 8}), p = T(DType::Int32, {5}), pb = T(DType::Int32, {2, 5});
  auto run = [&](const Tensor& xx, const Tensor& pp, const Tensor& yy, std::initializer_list<int64_t> ints,
                 std::initializer_list<double> floats) {
    return static_cast<int>(kt::run("rope", xx.dtype(), {xx.v, pp.v}, {yy.v}, ints, floats).code());
  };
  const int kOk = 0, kShape = static_cast<int>(StatusCode::ShapeError), kDType = static_cast<int>(StatusCode::DTypeError);
  const int kValue = static_cast<int>(StatusCode::ValueError), kNoKernel = static_cast<int>(StatusCode::NoKernel);
  const int kInternal = static_cast<int>(StatusCode::Internal);
  KCHECK_EQ(run(x, p, y, {0, 0}, {10000.0}), kOk);
  KCHECK_EQ(run(x, pb, y, {1, 1}, {10000.0}), kOk);
  // odd D
  Tensor x7 = T(F, {2, 3, 5, 7}), y7 = T(F, {2, 3, 5, 7});
  KCHECK_EQ(run(x7, p, y7, {0, 0}, {10000.0}), kShape);
  // positions shape
  Tensor p6 = T(DType::Int32, {6}), pb3 = T(DType::Int32, {3, 5}), p3d = T(DType::Int32, {1, 2, 5}), p0 = T(DType::Int32, {});
  KCHECK_EQ(run(x, p6, y, {0, 0}, {10000.0}), kShape);
  KCHECK_EQ(run(x, pb3, y, {0, 0}, {10000.0}), kShape);
  KCHECK_EQ(run(x, p3d, y, {0, 0}, {10000.0}), kShape);
  KCHECK_EQ(run(x, p0, y, {0, 0}, {10000.0}), kShape);
  // x rank, y shape and dtype, positions dtype
  Tensor x3 = T(F, {3, 5, 8}), yb = T(F, {2, 3, 5, 6}), yh = T(DType::Float16, {2, 3, 5, 8}), pf = T(F, {5});
  KCHECK_EQ(run(x3, p, x3, {0, 0}, {10000.0}), kShape);
  KCHECK_EQ(run(x, p, yb, {0, 0}, {10000.0}), kShape);
  KCHECK_EQ(run(x, p, yh, {0, 0}, {10000.0}), kDType);
  KCHECK_EQ(run(x, pf, y, {0, 0}, {10000.0}), kDType);
  Tensor x8 = T(DType::Float8E5M2, {2, 3, 5, 8});
  KCHECK_EQ(run(x8, p, y, {0, 0}, {10000.0}), kNoKernel);
  // attributes
  KCHECK_EQ(run(x, p, y, {2, 0}, {10000.0}), kValue);
  KCHECK_EQ(run(x, p, y, {0, -1}, {10000.0}), kValue);
  KCHECK_EQ(run(x, p, y, {0, 0}, {0.0}), kValue);
  KCHECK_EQ(run(x, p, y, {0, 0}, {-2.0}), kValue);
  KCHECK_EQ(run(x, p, y, {0, 0}, {std::nan("")}), kValue);
  KCHECK_EQ(run(x, p, y, {0, 0}, {HUGE_VAL}), kValue);
  KCHECK_EQ(run(x, p, y, {0}, {10000.0}), kInternal);
  KCHECK_EQ(run(x, p, y, {0, 0}, {}), kInternal);
  const Status s = kt::run("rope", F, {x7.v, p.v}, {y7.v}, {0, 0}, {10000.0});
  KCHECK(s.message().find("rope") != std::string::npos && s.message().find("float32[2, 3, 5, 7]") != std::string::npos)
      << s.message();
}

}  // namespace
