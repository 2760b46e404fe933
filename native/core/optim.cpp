// Validation shared by the CPU and CUDA optimizer kernels (kiln/optim.h):
// argument counts, per-tensor dtypes, shapes and contiguity, hyperparameter
// values, and the host scalars (bias corrections, step sizes, decay factors),
// computed in float64 and rounded once to float32 (../shared/specs/optim.md
// "Common rules").
#include "kiln/optim.h"

#include <cmath>
#include <string>

namespace kiln {
namespace optim {
namespace {

Status fail(StatusCode code, const KernelArgs& a, const std::string& what) {
  return Status(code, std::string("kiln: ") + a.op + ": " + what);
}

Status internal(const KernelArgs& a, const std::string& what) { return fail(StatusCode::Internal, a, what); }

bool is_float16plus(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16; }

bool same_shape(const View& a, const View& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.shape[i] != b.shape[i]) return false;
  }
  return true;
}

// Checks one operand of tensor i against its parameter p: contiguous, p's shape, `dtype`.
Status check_role(const KernelArgs& a, int i, const char* role, const View& x, const View& p, DType dtype) {
  if (same_shape(x, p) && x.dtype == dtype && x.is_contiguous()) return Status::Ok();  // the messages cost more than the step
  const std::string who = std::string(role) + " " + std::to_string(i) + " (" + x.describe() + ")";
  if (!same_shape(x, p)) {
    return fail(StatusCode::ShapeError, a, who + " must have the shape of parameter " + std::to_string(i) + " (" + p.describe() + ")");
  }
  if (x.dtype != dtype) {
    return fail(StatusCode::DTypeError, a, who + " must be " + dtype_name(dtype) + " (parameter " + p.describe() + ")");
  }
  if (!x.is_contiguous()) return fail(StatusCode::ShapeError, a, who + " must be contiguous");
  return Status::Ok();
}

Status check_param(const KernelArgs& a, int i, const View& p) {
  if (!is_float16plus(p.dtype)) {
    return fail(StatusCode::DTypeError, a, "parameter " + std::to_string(i) + " (" + p.describe() + ") must be float32, float16 or bfloat16");
  }
  if (!p.is_contiguous()) return fail(StatusCode::ShapeError, a, "parameter " + std::to_string(i) + " (" + p.describe() + ") must be contiguous");
  return Status::Ok();
}

Status check_flag(const KernelArgs& a, int64_t v, const char* name) {
  if (v != 0 && v != 1) return fail(StatusCode::ValueError, a, std::string(name) + " must be 0 or 1, got " + std::to_string(v));
  return Status::Ok();
}

Status check_real(const KernelArgs& a, double v, const char* name, double lo, bool lo_open, double hi, bool hi_open) {
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (!ok) {
    return fail(StatusCode::ValueError, a,
                std::string(name) + " must be finite and in " + (lo_open ? "(" : "[") + std::to_string(lo) + ", " +
                    std::to_string(hi) + (hi_open ? ")" : "]") + ", got " + std::to_string(v));
  }
  return Status::Ok();
}

constexpr double kInf = HUGE_VAL;

// Reads n = ints[0] and checks it against the operand lists.
Status read_n(const KernelArgs& a, int min_ints, int per_tensor_ints, int* n) {
  if (a.n_ints < 1 || a.ints[0] < 1 || a.ints[0] > (1 << 24)) return internal(a, "ints[0] must be the tensor count (>= 1)");
  *n = static_cast<int>(a.ints[0]);
  const int64_t want = min_ints + static_cast<int64_t>(per_tensor_ints) * *n;
  if (a.n_ints != want) {
    return internal(a, "expected " + std::to_string(want) + " int attributes for " + std::to_string(*n) + " tensors, got " +
                           std::to_string(a.n_ints));
  }
  if (a.n_in != *n) {
    return internal(a, "expected " + std::to_string(*n) + " inputs (the gradients), got " + std::to_string(a.n_in));
  }
  return Status::Ok();
}

Status check_step(const KernelArgs& a, int i, double step) {
  if (!(std::isfinite(step) && step >= 1)) {
    return fail(StatusCode::ValueError, a, "step of tensor " + std::to_string(i) + " must be finite and >= 1, got " + std::to_string(step));
  }
  return Status::Ok();
}

// The master weights flagged in `flags` (n entries), taken in order from out[*next].
Status read_masters(const KernelArgs& a, int n, const int64_t* flags, int* next, std::vector<OptimTensor>* t) {
  for (int i = 0; i < n; ++i) {
    KILN_RETURN_IF_ERROR(check_flag(a, flags[i], "has_master"));
    if (flags[i] == 0) continue;
    if ((*t)[i].p->dtype == DType::Float32) {
      return fail(StatusCode::DTypeError, a, "parameter " + std::to_string(i) + " (" + (*t)[i].p->describe() + ") is float32 and takes no master weights");
    }
    if (*next >= a.n_out) return internal(a, "fewer outputs than the master weights flagged");
    const View& mw = a.out[(*next)++];
    KILN_RETURN_IF_ERROR(check_role(a, i, "master weights", mw, *(*t)[i].p, DType::Float32));
    (*t)[i].master = &mw;
  }
  return Status::Ok();
}

// Optional trailing float32 [n] output of the trust ratios.
Status read_ratio(const KernelArgs& a, int n, int next, const View** ratio) {
  if (next == a.n_out) return Status::Ok();
  if (next + 1 != a.n_out) return internal(a, "expected " + std::to_string(next) + " or " + std::to_string(next + 1) + " outputs, got " + std::to_string(a.n_out));
  const View& r = a.out[next];
  if (r.dtype != DType::Float32 || r.numel() != n || !r.is_contiguous()) {
    return fail(StatusCode::ShapeError, a, "the ratio output (" + r.describe() + ") must be contiguous float32 with " + std::to_string(n) + " elements");
  }
  *ratio = &r;
  return Status::Ok();
}

// Params (out[0..n)) and grads (in[0..n)).
Status read_params(const KernelArgs& a, int n, std::vector<OptimTensor>* t) {
  if (a.n_out < n) return internal(a, "fewer outputs than parameters");
  t->assign(n, OptimTensor{});
  for (int i = 0; i < n; ++i) {
    OptimTensor& x = (*t)[i];
    x.p = &a.out[i];
    x.g = &a.in[i];
    KILN_RETURN_IF_ERROR(check_param(a, i, *x.p));
    KILN_RETURN_IF_ERROR(check_role(a, i, "gradient", *x.g, *x.p, x.p->dtype));
    x.n = x.p->numel();
  }
  return Status::Ok();
}

// Float32 state of every tensor from out[*next], *next advancing by n.
Status read_state(const KernelArgs& a, int n, const char* role, int* next, const View* OptimTensor::*field,
                  std::vector<OptimTensor>* t) {
  if (*next + n > a.n_out) return internal(a, std::string("fewer outputs than the ") + role + " tensors");
  for (int i = 0; i < n; ++i) {
    const View& x = a.out[(*next)++];
    KILN_RETURN_IF_ERROR(check_role(a, i, role, x, *(*t)[i].p, DType::Float32));
    (*t)[i].*field = &x;
  }
  return Status::Ok();
}

}  // namespace

bool register_optim_kernel(const char* op, DeviceKind device, KernelFn fn) {
  return register_kernels(op, device, kFloat16Plus, fn);
}

Status prepare_adamw(const KernelArgs& a, AdamwPlan* plan) {
  int n = 0;
  KILN_RETURN_IF_ERROR(read_n(a, 5, 1, &n));
  const int64_t* ints = a.ints;
  KILN_RETURN_IF_ERROR(check_flag(a, ints[1], "amsgrad"));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[2], "maximize"));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[3], "decay (0 decoupled, 1 l2)"));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[4], "bias_correction"));
  if (a.n_floats != 5 + 2 * n) return internal(a, "expected " + std::to_string(5 + 2 * n) + " float attributes, got " + std::to_string(a.n_floats));
  const double lr = a.floats[0], b1 = a.floats[1], b2 = a.floats[2], eps = a.floats[3], gs = a.floats[4];
  KILN_RETURN_IF_ERROR(check_real(a, lr, "lr", 0, false, kInf, true));
  KILN_RETURN_IF_ERROR(check_real(a, b1, "beta1", 0, false, 1, true));
  KILN_RETURN_IF_ERROR(check_real(a, b2, "beta2", 0, false, 1, true));
  KILN_RETURN_IF_ERROR(check_real(a, eps, "eps", 0, false, kInf, true));
  KILN_RETURN_IF_ERROR(check_real(a, gs, "grad_scale", 0, true, kInf, true));
  plan->amsgrad = ints[1] != 0;
  plan->l2 = ints[3] != 0;
  const bool bias_correction = ints[4] != 0;
  plan->c = AdamwGroup{static_cast<float>(b1), static_cast<float>(1.0 - b1), static_cast<float>(b2),
                       static_cast<float>(1.0 - b2), static_cast<float>(eps), static_cast<float>(gs),
                       ints[2] != 0 ? -1.0f : 1.0f};
  KILN_RETURN_IF_ERROR(read_params(a, n, &plan->t));
  int next = n;
  KILN_RETURN_IF_ERROR(read_state(a, n, "exp_avg", &next, &OptimTensor::m, &plan->t));
  KILN_RETURN_IF_ERROR(read_state(a, n, "exp_avg_sq", &next, &OptimTensor::v, &plan->t));
  if (plan->amsgrad) KILN_RETURN_IF_ERROR(read_state(a, n, "max_exp_avg_sq", &next, &OptimTensor::vmax, &plan->t));
  KILN_RETURN_IF_ERROR(read_masters(a, n, ints + 5, &next, &plan->t));
  if (next != a.n_out) return internal(a, "expected " + std::to_string(next) + " outputs, got " + std::to_string(a.n_out));
  plan->s.resize(n);
  for (int i = 0; i < n; ++i) {
    const double step = a.floats[5 + 2 * i], wd = a.floats[6 + 2 * i];
    KILN_RETURN_IF_ERROR(check_step(a, i, step));
    KILN_RETURN_IF_ERROR(check_real(a, wd, "weight_decay", 0, false, kInf, true));
    plan->t[i].step = step;
    plan->t[i].wd = wd;
    const double bc1 = bias_correction ? 1.0 - std::pow(b1, step) : 1.0;
    const double bc2 = bias_correction ? 1.0 - std::pow(b2, step) : 1.0;
    AdamwScalars& s = plan->s[i];
    s.decay = plan->l2 ? 1.0f : static_cast<float>(1.0 - lr * wd);
    s.wd = plan->l2 ? static_cast<float>(wd) : 0.0f;
    s.step_size = static_cast<float>(lr / bc1);
    s.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  }
  return Status::Ok();
}

Status prepare_lamb(const KernelArgs& a, LambPlan* plan) {
  int n = 0;
  KILN_RETURN_IF_ERROR(read_n(a, 5, 2, &n));
  const int64_t* ints = a.ints;
  if (ints[1] < 0 || ints[1] > 2) return fail(StatusCode::ValueError, a, "decay must be 0 (update), 1 (l2) or 2 (decoupled), got " + std::to_string(ints[1]));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[2], "bias_correction"));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[3], "grad_averaging"));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[4], "trust_clip"));
  if (a.n_floats != 7 + 2 * n) return internal(a, "expected " + std::to_string(7 + 2 * n) + " float attributes, got " + std::to_string(a.n_floats));
  const double lr = a.floats[0], b1 = a.floats[1], b2 = a.floats[2], eps = a.floats[3], gdiv = a.floats[4];
  const double lo = a.floats[5], hi = a.floats[6];
  KILN_RETURN_IF_ERROR(check_real(a, lr, "lr", 0, false, kInf, true));
  KILN_RETURN_IF_ERROR(check_real(a, b1, "beta1", 0, false, 1, true));
  KILN_RETURN_IF_ERROR(check_real(a, b2, "beta2", 0, false, 1, true));
  KILN_RETURN_IF_ERROR(check_real(a, eps, "eps", 0, false, kInf, true));
  KILN_RETURN_IF_ERROR(check_real(a, gdiv, "grad_divisor", 0, true, kInf, true));
  if (!(lo >= 0) || !(hi >= lo) || std::isinf(lo)) {
    return fail(StatusCode::ValueError, a, "min_coeff / max_coeff must satisfy 0 <= min_coeff <= max_coeff (max may be inf), got " +
                                               std::to_string(lo) + ", " + std::to_string(hi));
  }
  plan->decay = static_cast<int>(ints[1]);
  const bool bias_correction = ints[2] != 0;
  plan->trust_clip = ints[4] != 0;
  plan->lr = lr;
  plan->min_coeff = lo;
  plan->max_coeff = hi;
  plan->c = LambGroup{static_cast<float>(b1), ints[3] != 0 ? static_cast<float>(1.0 - b1) : 1.0f, static_cast<float>(b2),
                      static_cast<float>(1.0 - b2), static_cast<float>(eps), static_cast<float>(gdiv)};
  KILN_RETURN_IF_ERROR(read_params(a, n, &plan->t));
  int next = n;
  KILN_RETURN_IF_ERROR(read_state(a, n, "exp_avg", &next, &OptimTensor::m, &plan->t));
  KILN_RETURN_IF_ERROR(read_state(a, n, "exp_avg_sq", &next, &OptimTensor::v, &plan->t));
  KILN_RETURN_IF_ERROR(read_masters(a, n, ints + 5 + n, &next, &plan->t));
  KILN_RETURN_IF_ERROR(read_ratio(a, n, next, &plan->ratio));
  plan->s.resize(n);
  for (int i = 0; i < n; ++i) {
    KILN_RETURN_IF_ERROR(check_flag(a, ints[5 + i], "adapt"));
    const double step = a.floats[7 + 2 * i], wd = a.floats[8 + 2 * i];
    KILN_RETURN_IF_ERROR(check_step(a, i, step));
    KILN_RETURN_IF_ERROR(check_real(a, wd, "weight_decay", 0, false, kInf, true));
    OptimTensor& x = plan->t[i];
    x.adapt = ints[5 + i] != 0;
    x.step = step;
    x.wd = wd;
    LambScalars& s = plan->s[i];
    s.bc1 = static_cast<float>(bias_correction ? 1.0 - std::pow(b1, step) : 1.0);
    s.bc2 = static_cast<float>(bias_correction ? 1.0 - std::pow(b2, step) : 1.0);
    s.wd = plan->decay == kLambDecoupled ? 0.0f : static_cast<float>(wd);
    s.decay = plan->decay == kLambDecoupled ? static_cast<float>(1.0 - lr * wd) : 1.0f;
    s.lr_r = static_cast<float>(lr);
  }
  return Status::Ok();
}

Status prepare_lars(const KernelArgs& a, LarsPlan* plan) {
  int n = 0;
  KILN_RETURN_IF_ERROR(read_n(a, 6, 3, &n));
  const int64_t* ints = a.ints;
  if (ints[1] < 0 || ints[1] > 2) return fail(StatusCode::ValueError, a, "style must be 0 (no momentum), 1 (sgd) or 2 (paper), got " + std::to_string(ints[1]));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[2], "nesterov"));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[3], "norm (0 sum, 1 combined)"));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[4], "trust_clip"));
  KILN_RETURN_IF_ERROR(check_flag(a, ints[5], "maximize"));
  if (a.n_floats != 6 + n) return internal(a, "expected " + std::to_string(6 + n) + " float attributes, got " + std::to_string(a.n_floats));
  const double lr = a.floats[0], mu = a.floats[1], damp = a.floats[2], eta = a.floats[3], eps = a.floats[4], gs = a.floats[5];
  KILN_RETURN_IF_ERROR(check_real(a, lr, "lr", 0, false, kInf, true));
  KILN_RETURN_IF_ERROR(check_real(a, mu, "momentum", 0, false, kInf, true));
  KILN_RETURN_IF_ERROR(check_real(a, damp, "dampening", 0, false, 1, false));
  KILN_RETURN_IF_ERROR(check_real(a, eta, "trust_coefficient", 0, false, kInf, true));
  KILN_RETURN_IF_ERROR(check_real(a, eps, "eps", 0, false, kInf, true));
  KILN_RETURN_IF_ERROR(check_real(a, gs, "grad_scale", 0, true, kInf, true));
  plan->style = static_cast<int>(ints[1]);
  plan->nesterov = ints[2] != 0;
  plan->norm = static_cast<int>(ints[3]);
  plan->trust_clip = ints[4] != 0;
  plan->lr = lr;
  plan->eta = eta;
  plan->eps = eps;
  plan->c = LarsGroup{static_cast<float>(gs), ints[5] != 0 ? -1.0f : 1.0f, static_cast<float>(lr), static_cast<float>(mu),
                      static_cast<float>(1.0 - damp)};
  KILN_RETURN_IF_ERROR(read_params(a, n, &plan->t));
  int next = n;
  if (plan->style != kLarsNone) KILN_RETURN_IF_ERROR(read_state(a, n, "momentum_buffer", &next, &OptimTensor::buf, &plan->t));
  KILN_RETURN_IF_ERROR(read_masters(a, n, ints + 6 + 2 * n, &next, &plan->t));
  KILN_RETURN_IF_ERROR(read_ratio(a, n, next, &plan->ratio));
  plan->s.resize(n);
  for (int i = 0; i < n; ++i) {
    KILN_RETURN_IF_ERROR(check_flag(a, ints[6 + i], "adapt"));
    KILN_RETURN_IF_ERROR(check_flag(a, ints[6 + n + i], "first"));
    const double wd = a.floats[6 + i];
    KILN_RETURN_IF_ERROR(check_real(a, wd, "weight_decay", 0, false, kInf, true));
    OptimTensor& x = plan->t[i];
    x.adapt = ints[6 + i] != 0;
    x.first = ints[6 + n + i] != 0;
    x.wd = wd;
    plan->s[i] = LarsScalars{static_cast<float>(wd), 1.0f};
  }
  return Status::Ok();
}

Status prepare_sumsq(const KernelArgs& a, SumsqPlan* plan) {
  if (a.n_in < 1 || a.n_out != 1 || a.n_ints != 0 || a.n_floats != 1) {
    return internal(a, "expected >= 1 inputs (the gradients), 1 output, no int and 1 float attribute (grad_scale)");
  }
  KILN_RETURN_IF_ERROR(check_real(a, a.floats[0], "grad_scale", 0, true, kInf, true));
  plan->gscale = static_cast<float>(a.floats[0]);
  const int n = a.n_in;
  const View& out = a.out[0];
  if (out.dtype != DType::Float32 || out.ndim != 2 || out.shape[0] != 2 || out.shape[1] != n || !out.is_contiguous()) {
    return fail(StatusCode::ShapeError, a, "output (" + out.describe() + ") must be contiguous float32 [2, " + std::to_string(n) + "]");
  }
  plan->out = &out;
  plan->g.resize(n);
  for (int i = 0; i < n; ++i) {
    const View& g = a.in[i];
    if (!is_float16plus(g.dtype)) return fail(StatusCode::DTypeError, a, "gradient " + std::to_string(i) + " (" + g.describe() + ") must be float32, float16 or bfloat16");
    if (!g.is_contiguous()) return fail(StatusCode::ShapeError, a, "gradient " + std::to_string(i) + " (" + g.describe() + ") must be contiguous");
    plan->g[i] = &g;
  }
  return Status::Ok();
}

}  // namespace optim
}  // namespace kiln
