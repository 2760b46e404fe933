// The float64 RMSNorm / LayerNorm reference (forward and backward, with error
// scales) shared by the CPU suite (test_norm.cpp) and the CUDA suite
// (test_cuda_nn.cpp).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace normref {

using vd = std::vector<double>;

// ---- float64 references ---------------------------------------------------------------

struct NormRef {
  vd y, mean, rstd;      // forward
  vd gx, gw, gb;         // backward
  vd y_scale, gx_scale;  // magnitudes bounding rounding errors
  vd gw_scale, gb_scale;
};

inline void ref_forward(bool layer, int64_t R, int64_t D, const vd& x, const vd& w, const vd& b, double eps, NormRef* r) {
  r->y.assign(static_cast<size_t>(R * D), 0);
  r->y_scale.assign(static_cast<size_t>(R * D), 0);
  r->mean.assign(static_cast<size_t>(R), 0);
  r->rstd.assign(static_cast<size_t>(R), 0);
  for (int64_t i = 0; i < R; ++i) {
    const double* xr = &x[static_cast<size_t>(i * D)];
    double mu = 0, ss = 0;
    if (layer) {
      for (int64_t j = 0; j < D; ++j) mu += xr[j];
      mu = D > 0 ? mu / static_cast<double>(D) : 0;
    }
    for (int64_t j = 0; j < D; ++j) ss += (xr[j] - mu) * (xr[j] - mu);
    const double var = D > 0 ? ss / static_cast<double>(D) : 0;
    const double rs = 1.0 / std::sqrt(var + eps);
    r->mean[static_cast<size_t>(i)] = mu;
    r->rstd[static_cast<size_t>(i)] = rs;
    for (int64_t j = 0; j < D; ++j) {
      const size_t k = static_cast<size_t>(i * D + j);
      const double xh = (xr[j] - mu) * rs;
      r->y[k] = xh * w[static_cast<size_t>(j)] + (layer ? b[static_cast<size_t>(j)] : 0.0);
      r->y_scale[k] = std::fabs(xh * w[static_cast<size_t>(j)]) + (layer ? std::fabs(b[static_cast<size_t>(j)]) : 0.0) +
                      std::fabs(mu * rs * w[static_cast<size_t>(j)]) + 1e-30;
    }
  }
}

// Analytic gradients of L = sum(gy * y).
inline void ref_backward(bool layer, int64_t R, int64_t D, const vd& x, const vd& w, const vd& gy, double eps, NormRef* r) {
  NormRef f;
  ref_forward(layer, R, D, x, w, vd(static_cast<size_t>(D), 0.0), eps, &f);
  r->gx.assign(static_cast<size_t>(R * D), 0);
  r->gx_scale.assign(static_cast<size_t>(R * D), 0);
  r->gw.assign(static_cast<size_t>(D), 0);
  r->gb.assign(static_cast<size_t>(D), 0);
  r->gw_scale.assign(static_cast<size_t>(D), 1e-30);
  r->gb_scale.assign(static_cast<size_t>(D), 1e-30);
  for (int64_t i = 0; i < R; ++i) {
    const double mu = f.mean[static_cast<size_t>(i)], rs = f.rstd[static_cast<size_t>(i)];
    double sg = 0, sgx = 0, sga = 0, sgxa = 0;
    for (int64_t j = 0; j < D; ++j) {
      const size_t k = static_cast<size_t>(i * D + j);
      // xm bounds |xhat| and the error of the kernel's xhat (from the float32 mean)
      const double g = gy[k] * w[static_cast<size_t>(j)], xh = (x[k] - mu) * rs, xm = std::fabs(xh) + std::fabs(mu * rs);
      sg += g;
      sgx += g * xh;
      sga += std::fabs(g);
      sgxa += std::fabs(g) * xm;
    }
    const double invD = D > 0 ? 1.0 / static_cast<double>(D) : 0;
    for (int64_t j = 0; j < D; ++j) {
      const size_t k = static_cast<size_t>(i * D + j);
      const double g = gy[k] * w[static_cast<size_t>(j)], xh = (x[k] - mu) * rs, xm = std::fabs(xh) + std::fabs(mu * rs);
      if (layer) {
        r->gx[k] = rs * (g - sg * invD - xh * sgx * invD);
        r->gx_scale[k] = rs * (std::fabs(g) + sga * invD + xm * sgxa * invD) + 1e-30;
      } else {
        r->gx[k] = rs * g - xh * sgx * invD * rs;  // = rs g - x rs^3 sum(g x) / D
        r->gx_scale[k] = rs * (std::fabs(g) + xm * sgxa * invD) + 1e-30;
      }
      r->gw[static_cast<size_t>(j)] += gy[k] * xh;
      r->gw_scale[static_cast<size_t>(j)] += std::fabs(gy[k]) * xm;
      r->gb[static_cast<size_t>(j)] += gy[k];
      r->gb_scale[static_cast<size_t>(j)] += std::fabs(gy[k]);
    }
  }
}

}  // namespace normref
