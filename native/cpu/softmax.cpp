// CPU kernels softmax, log_softmax, softmax_backward, log_softmax_backward,
// cross_entropy, cross_entropy_backward over the last dimension of [R, N]
// views (native/KERNELS.md). Validation: native/core/softmax.cpp; row loops
// per ISA: reduce_impl.inc.
//
// Rows are independent and split over threads. A row that is not contiguous
// float32 is converted into a float32 buffer first (and the result converted
// back, rounding once). Within a row: m = max (NaN if any NaN), e^(x - m) with
// x - m taken exactly, sums over 16 double lanes in a fixed order, and every
// output rounded once from double. The cross-entropy loss sums the per-row
// losses in row order (double), so it is the same for any thread count.
#include <cmath>
#include <limits>
#include <vector>

#include "elementwise_table.h"
#include "kiln/fastmath.h"
#include "kiln/registry.h"
#include "kiln/softmax.h"
#include "kiln/threadpool.h"
#include "reduce_table.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kRowWork = 16384;  // elements per parallel chunk of rows

// One row of a [R, N] view as contiguous float32: the view's memory when it
// already is, else a converted copy in buf.
const float* load_row(const View& v, int64_t r, std::vector<float>& buf) {
  const int64_t n = v.shape[1];
  const char* p = v.data() + r * v.strides[0] * static_cast<int64_t>(dtype_size(v.dtype));
  if (v.dtype == DType::Float32 && (v.strides[1] == 1 || n <= 1)) return reinterpret_cast<const float*>(p);
  buf.resize(static_cast<size_t>(n));
  elementwise_table().cast[static_cast<int>(v.dtype)][static_cast<int>(DType::Float32)](p, v.strides[1],
                                                                                        reinterpret_cast<char*>(buf.data()), 1, n);
  return buf.data();
}

// Where to write row r of an output: the view's memory when it is contiguous float32, else buf.
float* out_row(const View& v, int64_t r, std::vector<float>& buf) {
  const int64_t n = v.shape[1];
  char* p = v.data() + r * v.strides[0] * static_cast<int64_t>(dtype_size(v.dtype));
  if (v.dtype == DType::Float32 && (v.strides[1] == 1 || n <= 1)) return reinterpret_cast<float*>(p);
  buf.resize(static_cast<size_t>(n));
  return buf.data();
}

// Writes buf back to row r when out_row handed out the buffer.
void store_row(const View& v, int64_t r, const float* row, const std::vector<float>& buf) {
  if (buf.empty() || row != buf.data()) return;
  const int64_t n = v.shape[1];
  char* p = v.data() + r * v.strides[0] * static_cast<int64_t>(dtype_size(v.dtype));
  elementwise_table().cast[static_cast<int>(DType::Float32)][static_cast<int>(v.dtype)](
      reinterpret_cast<const char*>(row), 1, p, v.strides[1], n);
}

// log(s) for s = sum e^(x - m) of a row (s >= 1 when its max m is finite; 0 for an empty row).
double log_of_sum(double s) {
  if (s > 0.0 && s < std::numeric_limits<double>::infinity()) return fm::log_d(s);
  return s == 0.0 ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
}

Status softmax_kernel(const KernelArgs& args) {
  SoftmaxPlan plan;
  KILN_RETURN_IF_ERROR(prepare_softmax(args, &plan));
  const int64_t R = plan.rows, N = plan.cols;
  if (R == 0 || N == 0) return Status::Ok();
  const ReduceTable& t = reduce_table();
  const View& out = args.out[0];
  parallel_for(R, std::max<int64_t>(1, kRowWork / N), [&](int64_t lo, int64_t hi) {
    std::vector<float> b0, b1, bo;
    for (int64_t r = lo; r < hi; ++r) {
      const float* x = load_row(args.in[0], r, b0);
      float* y = out_row(out, r, bo);
      switch (plan.op) {
        case SoftmaxOp::Softmax: {
          const float m = t.row_max(x, N);
          const double s = t.row_sum_exp(x, N, m);
          t.row_exp_scale(y, x, N, m, 1.0 / s);
          break;
        }
        case SoftmaxOp::LogSoftmax: {
          const float m = t.row_max(x, N);
          t.row_log_softmax(y, x, N, m, log_of_sum(t.row_sum_exp(x, N, m)));
          break;
        }
        case SoftmaxOp::SoftmaxBackward: {
          const float* gy = load_row(args.in[1], r, b1);
          t.row_softmax_bwd(y, x, gy, N, t.row_dot(gy, x, N));
          break;
        }
        case SoftmaxOp::LogSoftmaxBackward: {
          const float* gy = load_row(args.in[1], r, b1);
          t.row_log_softmax_bwd(y, x, gy, N, t.row_sum(gy, N));
          break;
        }
      }
      store_row(out, r, y, bo);
    }
  });
  return Status::Ok();
}

// Checks every target; returns the number of rows that are not ignored.
Status check_targets(const char* op, const View& targets, const CrossEntropyPlan& plan, int64_t* count) {
  const int32_t* tp = reinterpret_cast<const int32_t*>(targets.data());
  const int64_t ts = targets.strides[0];
  *count = 0;
  for (int64_t r = 0; r < plan.rows; ++r) {
    const int64_t v = tp[r * ts];
    if (v == plan.ignore_index) continue;
    if (v < 0 || v >= plan.classes) return cross_entropy_target_error(op, r, v, plan);
    ++*count;
  }
  return Status::Ok();
}

Status cross_entropy_kernel(const KernelArgs& args) {
  CrossEntropyPlan plan;
  KILN_RETURN_IF_ERROR(prepare_cross_entropy(args, &plan));
  const View &logits = args.in[0], &targets = args.in[1];
  int64_t count = 0;
  KILN_RETURN_IF_ERROR(check_targets(args.op, targets, plan, &count));
  const int64_t R = plan.rows, C = plan.classes;
  const int32_t* tp = reinterpret_cast<const int32_t*>(targets.data());
  const int64_t ts = targets.strides[0];
  const double ls = plan.label_smoothing;
  const ReduceTable& t = reduce_table();
  const int64_t grain = std::max<int64_t>(1, kRowWork / std::max<int64_t>(1, C));

  if (!plan.backward) {
    const View &loss = args.out[0], &lse = args.out[1];
    float* lse_p = reinterpret_cast<float*>(lse.data());
    const int64_t ls_stride = lse.strides[0];
    std::vector<double> row_loss(static_cast<size_t>(R), 0.0);
    parallel_for(R, grain, [&](int64_t lo, int64_t hi) {
      std::vector<float> b0;
      for (int64_t r = lo; r < hi; ++r) {
        const float* x = load_row(logits, r, b0);
        const float m = t.row_max(x, C);
        const double md = static_cast<double>(m), log_s = log_of_sum(t.row_sum_exp(x, C, m));
        const double lse = md + log_s;
        lse_p[r * ls_stride] = lse != lse ? fm::kNanF : static_cast<float>(lse);
        const int64_t target = tp[r * ts];
        if (target == plan.ignore_index) continue;
        // log p[c] = (x[c] - m) - log s, with x[c] - m exact in double.
        double v = -(1.0 - ls) * ((static_cast<double>(x[target]) - md) - log_s);
        if (ls > 0.0) {
          const double cd = static_cast<double>(C);
          v -= ls / cd * ((t.row_sum(x, C) - cd * md) - cd * log_s);
        }
        row_loss[static_cast<size_t>(r)] = v;
      }
    });
    double total = 0.0;
    for (int64_t r = 0; r < R; ++r) total += row_loss[static_cast<size_t>(r)];
    const double mean = total / static_cast<double>(count);  // NaN when every row is ignored
    *reinterpret_cast<float*>(loss.data()) = mean != mean ? fm::kNanF : static_cast<float>(mean);
    return Status::Ok();
  }

  const View &lse = args.in[2], &gloss = args.in[3], &g = args.out[0];
  if (C == 0) return Status::Ok();
  const float* lse_p = reinterpret_cast<const float*>(lse.data());
  const int64_t ls_stride = lse.strides[0];
  const double scale = count == 0 ? 0.0 : static_cast<double>(*reinterpret_cast<const float*>(gloss.data())) / static_cast<double>(count);
  const double sub = ls / static_cast<double>(C);
  parallel_for(R, grain, [&](int64_t lo, int64_t hi) {
    std::vector<float> b0, bo;
    for (int64_t r = lo; r < hi; ++r) {
      float* gr = out_row(g, r, bo);
      const int64_t target = tp[r * ts];
      if (target == plan.ignore_index) {
        for (int64_t c = 0; c < C; ++c) gr[c] = 0.0f;
      } else {
        const float* x = load_row(logits, r, b0);
        const float l = lse_p[r * ls_stride];
        t.row_ce_grad(gr, x, C, l, scale, sub);
        float err;
        const float d = fm::two_diff(x[target], l, &err);
        const double gt = scale * ((fm::exp_sum_d(d, err) - sub) - (1.0 - ls));
        gr[target] = gt != gt ? fm::kNanF : static_cast<float>(gt);
      }
      store_row(g, r, gr, bo);
    }
  });
  return Status::Ok();
}

const bool kRegistered = register_softmax_kernels(DeviceKind::CPU, softmax_kernel, cross_entropy_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
