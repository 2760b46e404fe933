// The float64 attention reference the CPU suite (test_attention.cpp) and the
// CUDA suite (test_cuda_nn.cpp) check their kernels against: forward (o, lse)
// and, given the output gradient, backward (dq, dk, dv), each with an error
// scale per element; and the configurations both suites run.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace attnref {

using vd = std::vector<double>;
const double kNegInf = -std::numeric_limits<double>::infinity();

struct Cfg {
  int64_t B, Hq, Hk, Sq, Sk, D, Dv;
  bool causal;
  double scale;  // 0: 1/sqrt(D)
};

inline std::string cfg_str(const Cfg& c) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "B=%lld Hq=%lld Hk=%lld Sq=%lld Sk=%lld D=%lld Dv=%lld %s scale=%g",
                static_cast<long long>(c.B), static_cast<long long>(c.Hq), static_cast<long long>(c.Hk),
                static_cast<long long>(c.Sq), static_cast<long long>(c.Sk), static_cast<long long>(c.D),
                static_cast<long long>(c.Dv), c.causal ? "causal" : "full", c.scale);
  return buf;
}

// ---- float64 reference ---------------------------------------------------------------------

struct Ref {
  vd o, lse, gq, gk, gv;
  vd o_s, lse_s, gq_s, gk_s, gv_s;  // error scales
};

inline size_t ix4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t B, int64_t C, int64_t D) {
  return static_cast<size_t>(((a * B + b) * C + c) * D + d);
}

inline int64_t last_key(const Cfg& c, int64_t i) {
  const int64_t lim = c.causal ? i + (c.Sk - c.Sq) : c.Sk - 1;
  return std::min(lim, c.Sk - 1);
}

// Forward (and with go, backward) of row-major q, k, v. Scales for the errors:
//   Sabs_i = max_j |scale| sum_d |q_id k_jd| (logit magnitude; relative errors of p ~ u Sabs)
//   o:   sum_j p_ij |v_jd| (1 + Sabs_i)            lse: 1 + Sabs_i + |lse_i|
//   E_ij = p_ij ((1 + Sabs_i) |dP_ij - delta_i| + sum_d |go_id| (|v_jd| + |o_id|))   (error of dS)
//   gq:  |scale| sum_j (E_ij + |dS_ij|) |k_jd|;  gk: |scale| sum_i (E_ij + |dS_ij|) |q_id|
//   gv:  sum_i p_ij (1 + Sabs_i) |go_id|
inline void reference(const Cfg& c, const vd& q, const vd& k, const vd& v, const vd* go, Ref* r) {
  const int64_t G = c.Hk > 0 ? c.Hq / c.Hk : 1;
  const double sc = c.scale;
  r->o.assign(static_cast<size_t>(c.B * c.Hq * c.Sq * c.Dv), 0);
  r->o_s.assign(r->o.size(), 0);
  r->lse.assign(static_cast<size_t>(c.B * c.Hq * c.Sq), kNegInf);
  r->lse_s.assign(r->lse.size(), 1);
  if (go) {
    r->gq.assign(q.size(), 0);
    r->gq_s.assign(q.size(), 0);
    r->gk.assign(k.size(), 0);
    r->gk_s.assign(k.size(), 0);
    r->gv.assign(v.size(), 0);
    r->gv_s.assign(v.size(), 0);
  }
  vd s(static_cast<size_t>(c.Sk)), p(static_cast<size_t>(c.Sk));
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t h = 0; h < c.Hq; ++h) {
      const int64_t hk = h / G;
      for (int64_t i = 0; i < c.Sq; ++i) {
        const int64_t lim = last_key(c, i);
        const size_t row = static_cast<size_t>((b * c.Hq + h) * c.Sq + i);
        if (lim < 0) continue;  // sees no key: o = 0, lse = -inf, no gradient
        double m = kNegInf, sabs = 0;
        for (int64_t j = 0; j <= lim; ++j) {
          double d = 0, da = 0;
          for (int64_t e = 0; e < c.D; ++e) {
            const double qa = q[ix4(b, h, i, e, c.Hq, c.Sq, c.D)], ka = k[ix4(b, hk, j, e, c.Hk, c.Sk, c.D)];
            d += qa * ka;
            da += std::fabs(qa * ka);
          }
          s[static_cast<size_t>(j)] = sc * d;
          m = std::max(m, sc * d);
          sabs = std::max(sabs, std::fabs(sc) * da);
        }
        double l = 0;
        for (int64_t j = 0; j <= lim; ++j) l += std::exp(s[static_cast<size_t>(j)] - m);
        for (int64_t j = 0; j <= lim; ++j) p[static_cast<size_t>(j)] = std::exp(s[static_cast<size_t>(j)] - m) / l;
        const double lse = m + std::log(l);
        r->lse[row] = lse;
        r->lse_s[row] = 1 + sabs + std::fabs(lse);
        for (int64_t e = 0; e < c.Dv; ++e) {
          double acc = 0, mag = 0;
          for (int64_t j = 0; j <= lim; ++j) {
            const double va = v[ix4(b, hk, j, e, c.Hk, c.Sk, c.Dv)];
            acc += p[static_cast<size_t>(j)] * va;
            mag += p[static_cast<size_t>(j)] * std::fabs(va);
          }
          r->o[ix4(b, h, i, e, c.Hq, c.Sq, c.Dv)] = acc;
          r->o_s[ix4(b, h, i, e, c.Hq, c.Sq, c.Dv)] = mag * (1 + sabs) + 1e-30;
        }
        if (!go) continue;
        // backward of this row
        const vd& g = *go;
        double delta = 0, go_o = 0;
        for (int64_t e = 0; e < c.Dv; ++e) {
          const size_t oi = ix4(b, h, i, e, c.Hq, c.Sq, c.Dv);
          delta += g[oi] * r->o[oi];
          go_o += std::fabs(g[oi] * r->o[oi]);
        }
        for (int64_t j = 0; j <= lim; ++j) {
          const double pj = p[static_cast<size_t>(j)];
          double dp = 0, go_v = 0;
          for (int64_t e = 0; e < c.Dv; ++e) {
            const double ga = g[ix4(b, h, i, e, c.Hq, c.Sq, c.Dv)], va = v[ix4(b, hk, j, e, c.Hk, c.Sk, c.Dv)];
            dp += ga * va;
            go_v += std::fabs(ga * va);
          }
          const double ds = pj * (dp - delta);
          const double E = pj * ((1 + sabs) * std::fabs(dp - delta) + go_v + go_o);
          for (int64_t e = 0; e < c.D; ++e) {
            const size_t qi = ix4(b, h, i, e, c.Hq, c.Sq, c.D), ki = ix4(b, hk, j, e, c.Hk, c.Sk, c.D);
            r->gq[qi] += sc * ds * k[ki];
            r->gq_s[qi] += std::fabs(sc) * (E + std::fabs(ds)) * std::fabs(k[ki]);
            r->gk[ki] += sc * ds * q[qi];
            r->gk_s[ki] += std::fabs(sc) * (E + std::fabs(ds)) * std::fabs(q[qi]);
          }
          for (int64_t e = 0; e < c.Dv; ++e) {
            const size_t vi = ix4(b, hk, j, e, c.Hk, c.Sk, c.Dv);
            const double ga = g[ix4(b, h, i, e, c.Hq, c.Sq, c.Dv)];
            r->gv[vi] += pj * ga;
            r->gv_s[vi] += pj * (1 + sabs) * std::fabs(ga);
          }
        }
      }
    }
  }
}

}  // namespace attnref
