// A small Gaussian process regressor for Bayesian optimization (AutoLRS):
// squared-exponential kernel k(x, x') = s^2 exp(-|x - x'|^2 / (2 l^2)) plus
// observation noise, targets standardized, hyperparameters (l, noise) chosen by
// maximizing the log marginal likelihood over a grid (Rasmussen & Williams,
// "Gaussian Processes for Machine Learning", Algorithm 2.1).
import { ValueError } from '../errors';
import { backward, cholesky, forward } from './linalg';

export interface GPOptions {
  /** length scale(s) to choose from (inputs are best scaled to [0, 1]); default a grid 0.03 .. 1 */
  lengthScales?: readonly number[];
  /** noise variances (of the standardized targets) to choose from; default 1e-6 .. 1e-1 */
  noises?: readonly number[];
}

export interface GPPrediction {
  mean: number;
  /** posterior standard deviation of f (without the observation noise) */
  std: number;
}

const DEFAULT_LENGTHS = [0.03, 0.05, 0.08, 0.12, 0.18, 0.27, 0.4, 0.6, 1];
const DEFAULT_NOISES = [1e-6, 1e-4, 1e-3, 1e-2, 1e-1];

interface Fit {
  l: number;
  noise: number;
  chol: number[][];
  alpha: number[];
  logml: number;
}

export class GaussianProcess {
  private xs: number[][] = [];
  private mu = 0;
  private sd = 1;
  private fitted: Fit | null = null;
  private readonly lengths: readonly number[];
  private readonly noises: readonly number[];

  constructor(options: GPOptions = {}) {
    this.lengths = options.lengthScales ?? DEFAULT_LENGTHS;
    this.noises = options.noises ?? DEFAULT_NOISES;
    for (const [name, v] of [['lengthScales', this.lengths], ['noises', this.noises]] as const) {
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => !(typeof x === 'number' && Number.isFinite(x) && x > 0))) {
        throw new ValueError(`kiln: sched.GaussianProcess: '${name}' must be a non-empty array of numbers > 0`);
      }
    }
  }

  /** The chosen hyperparameters (after fit). */
  get hyperparameters(): { lengthScale: number; noise: number; logMarginalLikelihood: number } | null {
    return this.fitted ? { lengthScale: this.fitted.l, noise: this.fitted.noise, logMarginalLikelihood: this.fitted.logml } : null;
  }

  /** Fits to observations (x: numbers or vectors, y: finite numbers). */
  fit(xs: readonly (number | readonly number[])[], ys: readonly number[]): this {
    if (xs.length !== ys.length || xs.length === 0) throw new ValueError(`kiln: sched.GaussianProcess.fit: need as many x as y (>= 1), got ${xs.length} and ${ys.length}`);
    if (ys.some((y) => !Number.isFinite(y))) throw new ValueError('kiln: sched.GaussianProcess.fit: every y must be finite');
    this.xs = xs.map((x) => (typeof x === 'number' ? [x] : x.slice()));
    const n = ys.length;
    this.mu = ys.reduce((a, b) => a + b, 0) / n;
    const v = ys.reduce((a, b) => a + (b - this.mu) ** 2, 0) / n;
    this.sd = v > 0 ? Math.sqrt(v) : 1;
    const z = ys.map((y) => (y - this.mu) / this.sd);
    let best: Fit | null = null;
    for (const l of this.lengths) {
      for (const noise of this.noises) {
        const k = this.xs.map((a, i) => this.xs.map((b, j) => this.kernel(a, b, l) + (i === j ? noise : 0)));
        const chol = cholesky(k);
        if (!chol) continue;
        const alpha = backward(chol, forward(chol, z));
        // log p(z) = -z^T alpha / 2 - sum log L_ii - n/2 log(2 pi)
        let logml = -0.5 * z.reduce((a, zi, i) => a + zi * alpha[i], 0) - 0.5 * n * Math.log(2 * Math.PI);
        for (let i = 0; i < n; ++i) logml -= Math.log(chol[i][i]);
        if (!best || logml > best.logml) best = { l, noise, chol, alpha, logml };
      }
    }
    if (!best) throw new ValueError('kiln: sched.GaussianProcess.fit: the kernel matrix is singular for every hyperparameter (duplicate inputs with no noise?)');
    this.fitted = best;
    return this;
  }

  /** Posterior mean and standard deviation of f at x (in the targets' units). */
  predict(x: number | readonly number[]): GPPrediction {
    const f = this.fitted;
    if (!f) throw new ValueError('kiln: sched.GaussianProcess.predict: call fit() first');
    const p = typeof x === 'number' ? [x] : x;
    const ks = this.xs.map((a) => this.kernel(a, p, f.l));
    const mean = ks.reduce((a, k, i) => a + k * f.alpha[i], 0);
    const v = forward(f.chol, ks);
    const variance = Math.max(0, 1 - v.reduce((a, b) => a + b * b, 0));
    return { mean: this.mu + this.sd * mean, std: this.sd * Math.sqrt(variance) };
  }

  /** Lower confidence bound mean - kappa * std (to minimize). */
  lcb(x: number | readonly number[], kappa: number): number {
    const { mean, std } = this.predict(x);
    return mean - kappa * std;
  }

  private kernel(a: readonly number[], b: readonly number[], l: number): number {
    let d2 = 0;
    for (let i = 0; i < a.length; ++i) d2 += (a[i] - b[i]) ** 2;
    return Math.exp(-d2 / (2 * l * l));
  }
}

/** argmin over [lo, hi] of the GP's LCB, on an even grid of `points` (1-D). */
export function minimizeLCB(gp: GaussianProcess, lo: number, hi: number, kappa: number, points = 501): number {
  let best = lo;
  let bestV = Infinity;
  for (let i = 0; i < points; ++i) {
    const x = lo + ((hi - lo) * i) / (points - 1);
    const v = gp.lcb(x, kappa);
    if (v < bestV) {
      bestV = v;
      best = x;
    }
  }
  return best;
}
