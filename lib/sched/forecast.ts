// Short-horizon loss forecasting for AutoLRS (Jin et al. 2021, section 4.2):
// fit L(t) = a * exp(b * t) + c with b < 0 to a loss series (t = 1..n, the
// loss after update t) and extrapolate. For a fixed b the model is linear in
// (a, c), so b is found by a 1-D search (a log grid, then golden section) over
// the least-squares residual. An optional floor keeps the asymptote c >= floor
// (losses that cannot go below 0): without it a short noisy series that looks
// linear extrapolates to nonsense (a huge a, a tiny b, c far below zero).

export interface ExpFit {
  a: number;
  b: number;
  c: number;
  /** mean squared residual */
  mse: number;
  at(t: number): number;
}

function linearFit(ts: readonly number[], ys: readonly number[], b: number, floor: number): { a: number; c: number; sse: number } {
  // Least squares of y = a e + c with e = exp(b t).
  let se = 0, see = 0, sy = 0, sey = 0;
  const n = ts.length;
  const es = ts.map((t) => Math.exp(b * t));
  for (let i = 0; i < n; ++i) {
    se += es[i];
    see += es[i] * es[i];
    sy += ys[i];
    sey += es[i] * ys[i];
  }
  const det = n * see - se * se;
  let a = 0, c = sy / n;
  if (Math.abs(det) > 1e-300 * Math.max(1, n * see)) {
    a = (n * sey - se * sy) / det;
    c = (sy - a * se) / n;
  }
  if (c < floor) {
    // The constrained optimum has c on the bound: y - floor = a e.
    c = floor;
    a = see > 0 ? (sey - floor * se) / see : 0;
  }
  let sse = 0;
  for (let i = 0; i < n; ++i) sse += (a * es[i] + c - ys[i]) ** 2;
  return { a, c, sse };
}

/** Fits a * exp(b t) + c (b < 0, c >= floor) to losses[i] at t = i + 1; non-finite losses are skipped. */
export function fitExponential(losses: readonly number[], options: { floor?: number } = {}): ExpFit {
  const floor = options.floor ?? -Infinity;
  const ts: number[] = [];
  const ys: number[] = [];
  losses.forEach((y, i) => {
    if (Number.isFinite(y)) {
      ts.push(i + 1);
      ys.push(y);
    }
  });
  const n = ts.length;
  const make = (a: number, b: number, c: number, sse: number): ExpFit => ({ a, b, c, mse: n ? sse / n : NaN, at: (t: number) => a * Math.exp(b * t) + c });
  if (n === 0) return make(0, -1, NaN, NaN);
  if (n < 3) return make(0, -1, Math.max(floor, ys[n - 1]), 0);
  // b = -exp(u): rates from a thousandth of the window to ten per step.
  const span = ts[n - 1];
  const lo = Math.log(1e-3 / span), hi = Math.log(10);
  const G = 60;
  let bestU = lo;
  let bestE = Infinity;
  for (let i = 0; i <= G; ++i) {
    const u = lo + ((hi - lo) * i) / G;
    const e = linearFit(ts, ys, -Math.exp(u), floor).sse;
    if (e < bestE) {
      bestE = e;
      bestU = u;
    }
  }
  // Golden-section refinement around the best grid point.
  const h = (hi - lo) / G;
  let x0 = Math.max(lo, bestU - h), x1 = Math.min(hi, bestU + h);
  const phi = (Math.sqrt(5) - 1) / 2;
  let xa = x1 - phi * (x1 - x0), xb = x0 + phi * (x1 - x0);
  let fa = linearFit(ts, ys, -Math.exp(xa), floor).sse, fb = linearFit(ts, ys, -Math.exp(xb), floor).sse;
  for (let k = 0; k < 60; ++k) {
    if (fa < fb) {
      x1 = xb;
      xb = xa;
      fb = fa;
      xa = x1 - phi * (x1 - x0);
      fa = linearFit(ts, ys, -Math.exp(xa), floor).sse;
    } else {
      x0 = xa;
      xa = xb;
      fa = fb;
      xb = x0 + phi * (x1 - x0);
      fb = linearFit(ts, ys, -Math.exp(xb), floor).sse;
    }
  }
  let u = bestU, e = bestE;
  if (fa < e) [u, e] = [xa, fa];
  if (fb < e) [u, e] = [xb, fb];
  const b = -Math.exp(u);
  const { a, c, sse } = linearFit(ts, ys, b, floor);
  return make(a, b, c, sse);
}
