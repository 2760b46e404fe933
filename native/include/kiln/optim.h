// Fused optimizer steps (native/KERNELS.md "Optimizers"; the contract is
// ../shared/specs/optim.md): the argument layout of the kernels adamw_step,
// lamb_step, lars_step (also SGD) and optim_grad_sumsq, the plans the shared
// validation (native/core/optim.cpp) makes of them for every backend, and the
// per-element arithmetic, written once for the CPU and CUDA.
//
// One call updates a list of n tensors. Operands are lists by role:
//   adamw_step  in  = [g_0..g_{n-1}]
//               out = [p_0..p_{n-1}, m_0.., v_0.., (vmax_0.. if amsgrad), master_j (one per flagged tensor)]
//               ints = [n, amsgrad, maximize, decay (0 decoupled, 1 l2), bias_correction, has_master_0..]
//               floats = [lr, beta1, beta2, eps, grad_scale, step_0, wd_0, step_1, wd_1, ...]
//   lamb_step   in  = [g..]   out = [p.., m.., v.., master_j.., (ratio float32 [n], optional)]
//               ints = [n, decay (0 update, 1 l2, 2 decoupled), bias_correction, grad_averaging, trust_clip,
//                       adapt_0.., has_master_0..]
//               floats = [lr, beta1, beta2, eps, grad_divisor, min_coeff, max_coeff, step_0, wd_0, ...]
//   lars_step   in  = [g..]   out = [p.., (buf_0.. unless style is none), master_j.., (ratio [n], optional)]
//               ints = [n, style (0 none, 1 sgd, 2 paper), nesterov, norm (0 sum, 1 combined), trust_clip,
//                       maximize, adapt_0.., first_0.., has_master_0..]
//               floats = [lr, momentum, dampening, trust_coefficient, eps, grad_scale, wd_0, wd_1, ...]
//   optim_grad_sumsq  in = [g..]  out = [r float32 [2, n]: row 0 sum (g/grad_scale)^2, row 1 non-finite flag]
//               floats = [grad_scale]
// p: float32 / float16 / bfloat16 (each tensor its own); g: p's dtype; m, v,
// vmax, buf, master, ratio: float32; every operand contiguous, shapes equal per tensor.
// step_i is the step count *after* this update (t in optim.md, >= 1).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "kiln/numerics.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

// Arithmetic that must give the same bits on the CPU (-ffp-contract=off) and on
// CUDA (whatever -fmad says): each operation rounded on its own.
#if defined(__CUDA_ARCH__)
#define KILN_OPT_MUL(a, b) __fmul_rn((a), (b))
#define KILN_OPT_ADD(a, b) __fadd_rn((a), (b))
#define KILN_OPT_SUB(a, b) __fsub_rn((a), (b))
#define KILN_OPT_DIV(a, b) __fdiv_rn((a), (b))
#define KILN_OPT_SQRT(a) __fsqrt_rn(a)
#define KILN_OPT_DMUL(a, b) __dmul_rn((a), (b))
#define KILN_OPT_DADD(a, b) __dadd_rn((a), (b))
#define KILN_OPT_DDIV(a, b) __ddiv_rn((a), (b))
#else
#define KILN_OPT_MUL(a, b) ((a) * (b))
#define KILN_OPT_ADD(a, b) ((a) + (b))
#define KILN_OPT_SUB(a, b) ((a) - (b))
#define KILN_OPT_DIV(a, b) ((a) / (b))
#define KILN_OPT_SQRT(a) std::sqrt(a)
#define KILN_OPT_DMUL(a, b) ((a) * (b))
#define KILN_OPT_DADD(a, b) ((a) + (b))
#define KILN_OPT_DDIV(a, b) ((a) / (b))
#endif

namespace kiln {
namespace optim {

// Norm reductions on the CPU: float32 partial sums over fixed blocks of this many
// elements of a tensor (16 lanes inside a block, combined pairwise), the block
// partials added in float64 in block order.
constexpr int64_t kCpuBlock = 16384;

enum AdamDecay : int { kAdamDecoupled = 0, kAdamL2 = 1 };
enum LambDecay : int { kLambUpdate = 0, kLambL2 = 1, kLambDecoupled = 2 };
enum LarsStyle : int { kLarsNone = 0, kLarsSgd = 1, kLarsPaper = 2 };
enum LarsNorm : int { kLarsSum = 0, kLarsCombined = 1 };

// ---- scalars (float32, each computed in float64 and rounded once) ----------------------

struct AdamwGroup {
  float b1, om_b1, b2, om_b2, eps, gscale, sign;  // sign: -1 when maximizing
};
struct AdamwScalars {
  float decay;      // 1 - lr*wd (decoupled), else 1
  float wd;         // wd (l2), else 0
  float step_size;  // lr / bc1
  float bc2_sqrt;   // sqrt(bc2)
};

struct LambGroup {
  float b1, gb, b2, om_b2, eps, gdiv;  // gb: 1 - b1, or 1 without grad averaging; gdiv: grad_scale * clip
};
struct LambScalars {
  float bc1, bc2, wd;
  float decay;  // 1 - lr*wd (decoupled), else 1
  float lr_r;   // lr * trust ratio (pass B; from the norms of pass A)
};

struct LarsGroup {
  float gscale, sign, lr, mu, om_damp;  // om_damp: 1 - dampening
};
struct LarsScalars {
  float wd;
  float a;  // the adaptive factor (pass B; 1 when not adapted)
};

// ---- plans (native/core/optim.cpp validates KernelArgs into these) -----------------------

struct OptimTensor {
  const View* p = nullptr;
  const View* g = nullptr;
  const View* m = nullptr;       // exp_avg
  const View* v = nullptr;       // exp_avg_sq
  const View* vmax = nullptr;    // max_exp_avg_sq (amsgrad)
  const View* buf = nullptr;     // momentum buffer (lars)
  const View* master = nullptr;  // float32 master weights of a 16-bit p
  int64_t n = 0;
  bool adapt = false;  // lamb / lars: the trust ratio applies
  bool first = false;  // lars: the momentum buffer is new (not read, set from d)
  double wd = 0;
  double step = 0;
};

struct AdamwPlan {
  bool amsgrad = false, l2 = false;
  AdamwGroup c{};
  std::vector<OptimTensor> t;
  std::vector<AdamwScalars> s;
};

struct LambPlan {
  int decay = kLambUpdate;
  bool trust_clip = false;
  double lr = 0, min_coeff = 0, max_coeff = 0;
  LambGroup c{};
  std::vector<OptimTensor> t;
  std::vector<LambScalars> s;  // lr_r still to be set from the norms
  const View* ratio = nullptr;  // optional float32 [n] output of the trust ratios
};

struct LarsPlan {
  int style = kLarsNone, norm = kLarsSum;
  bool nesterov = false, trust_clip = false;
  double lr = 0, eta = 0, eps = 0;
  LarsGroup c{};
  std::vector<OptimTensor> t;
  std::vector<LarsScalars> s;  // a still to be set from the norms
  const View* ratio = nullptr;
  bool needs_norms() const {
    for (const OptimTensor& x : t) {
      if (x.adapt && x.n > 0) return true;
    }
    return false;
  }
};

struct SumsqPlan {
  float gscale = 1;
  std::vector<const View*> g;
  const View* out = nullptr;
};

Status prepare_adamw(const KernelArgs& a, AdamwPlan* plan);
Status prepare_lamb(const KernelArgs& a, LambPlan* plan);
Status prepare_lars(const KernelArgs& a, LarsPlan* plan);
Status prepare_sumsq(const KernelArgs& a, SumsqPlan* plan);

// Registers fn as op for float32 / float16 / bfloat16 keys on `device`.
bool register_optim_kernel(const char* op, DeviceKind device, KernelFn fn);

namespace {  // internal linkage: compiled once per ISA level and for CUDA

// ---- trust ratios (float64; host and device) -------------------------------------------

// LAMB: r = wn/un when adapted and both norms > 0, else 1; trust_clip: min(r, 1);
// then clamped to [min_coeff, max_coeff] (0 and +inf when unset).
KILN_HDM double lamb_ratio(double wn, double un, bool adapt, bool trust_clip, double min_coeff, double max_coeff) {
  if (!adapt || !(wn > 0) || !(un > 0)) return 1.0;
  double r = KILN_OPT_DDIV(wn, un);
  if (trust_clip && r > 1.0) r = 1.0;
  if (r > max_coeff) r = max_coeff;
  if (r < min_coeff) r = min_coeff;
  return r;
}

// LARS: a = eta wn / (gn + wd wn + eps) ('sum') or eta wn / (gn + eps) ('combined',
// gn = ||g + wd p||) when adapted and both norms > 0, else 1; trust_clip (LARC
// clip mode): min(a / lr, 1).
KILN_HDM double lars_ratio(double wn, double gn, double wd, double eta, double eps, bool combined, bool trust_clip,
                           double lr, bool adapt) {
  if (!adapt || !(wn > 0) || !(gn > 0)) return 1.0;
  const double den = combined ? KILN_OPT_DADD(gn, eps) : KILN_OPT_DADD(KILN_OPT_DADD(gn, KILN_OPT_DMUL(wd, wn)), eps);
  double a = KILN_OPT_DDIV(KILN_OPT_DMUL(eta, wn), den);
  if (trust_clip) {
    a = KILN_OPT_DDIV(a, lr);
    if (!(a < 1.0)) a = 1.0;
  }
  return a;
}

// ---- per-element arithmetic (float32, each operation rounded once) -----------------------

// AdamW (optim.md): returns the new p; updates m, v (and vmax).
template <bool AMS, bool L2>
KILN_HDM float adamw_element(float p, float graw, float& m, float& v, float& vmax, const AdamwGroup& c,
                             const AdamwScalars& s) {
  float g = KILN_OPT_MUL(KILN_OPT_DIV(graw, c.gscale), c.sign);
  if (L2) {
    g = KILN_OPT_ADD(g, KILN_OPT_MUL(s.wd, p));
  } else {
    p = KILN_OPT_MUL(p, s.decay);
  }
  m = KILN_OPT_ADD(KILN_OPT_MUL(c.b1, m), KILN_OPT_MUL(c.om_b1, g));
  v = KILN_OPT_ADD(KILN_OPT_MUL(c.b2, v), KILN_OPT_MUL(KILN_OPT_MUL(c.om_b2, g), g));
  float sv = v;
  if (AMS) {
    vmax = (v > vmax || v != v) ? v : vmax;  // NaN propagates, as torch.maximum
    sv = vmax;
  }
  const float denom = KILN_OPT_ADD(KILN_OPT_DIV(KILN_OPT_SQRT(sv), s.bc2_sqrt), c.eps);
  return KILN_OPT_SUB(p, KILN_OPT_DIV(KILN_OPT_MUL(s.step_size, m), denom));
}

// LAMB pass A: updates m, v.
template <int MODE>
KILN_HDM void lamb_moments(float p, float graw, float& m, float& v, const LambGroup& c, const LambScalars& s) {
  float g = KILN_OPT_DIV(graw, c.gdiv);
  if (MODE == kLambL2) g = KILN_OPT_ADD(g, KILN_OPT_MUL(s.wd, p));
  m = KILN_OPT_ADD(KILN_OPT_MUL(c.b1, m), KILN_OPT_MUL(c.gb, g));
  v = KILN_OPT_ADD(KILN_OPT_MUL(c.b2, v), KILN_OPT_MUL(KILN_OPT_MUL(c.om_b2, g), g));
}

// u = (m / bc1) / (sqrt(v / bc2) + eps) (+ wd p in 'update' mode), from the updated m, v.
template <int MODE>
KILN_HDM float lamb_direction(float p, float m, float v, const LambGroup& c, const LambScalars& s) {
  float u = KILN_OPT_DIV(KILN_OPT_DIV(m, s.bc1), KILN_OPT_ADD(KILN_OPT_SQRT(KILN_OPT_DIV(v, s.bc2)), c.eps));
  if (MODE == kLambUpdate) u = KILN_OPT_ADD(u, KILN_OPT_MUL(s.wd, p));
  return u;
}

// LAMB pass B: the new p.
template <int MODE>
KILN_HDM float lamb_apply(float p, float u, const LambScalars& s) {
  if (MODE == kLambDecoupled) p = KILN_OPT_MUL(p, s.decay);
  return KILN_OPT_SUB(p, KILN_OPT_MUL(s.lr_r, u));
}

// LARS / SGD: g = grad / grad_scale, negated when maximizing.
KILN_HDM float lars_grad(float graw, const LarsGroup& c) { return KILN_OPT_MUL(KILN_OPT_DIV(graw, c.gscale), c.sign); }

// LARS pass B: the new p; updates buf. FIRST: buf is new (not read).
template <int STYLE, bool NESTEROV, bool FIRST>
KILN_HDM float lars_element(float p, float g, float& buf, const LarsGroup& c, const LarsScalars& s) {
  const float d = KILN_OPT_MUL(KILN_OPT_ADD(g, KILN_OPT_MUL(s.wd, p)), s.a);
  if (STYLE == kLarsNone) return KILN_OPT_SUB(p, KILN_OPT_MUL(c.lr, d));
  if (STYLE == kLarsSgd) {
    buf = FIRST ? d : KILN_OPT_ADD(KILN_OPT_MUL(c.mu, buf), KILN_OPT_MUL(c.om_damp, d));
    const float upd = NESTEROV ? KILN_OPT_ADD(d, KILN_OPT_MUL(c.mu, buf)) : buf;
    return KILN_OPT_SUB(p, KILN_OPT_MUL(c.lr, upd));
  }
  const float lrd = KILN_OPT_MUL(c.lr, d);
  buf = FIRST ? lrd : KILN_OPT_ADD(KILN_OPT_MUL(c.mu, buf), lrd);
  return KILN_OPT_SUB(p, NESTEROV ? KILN_OPT_ADD(KILN_OPT_MUL(c.mu, buf), lrd) : buf);
}

}  // namespace
}  // namespace optim
}  // namespace kiln
