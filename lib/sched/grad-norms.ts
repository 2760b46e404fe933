// Schedule refinement from gradient norms (Defazio, Cutkosky, Mehta, Mishchenko
// 2023, "When, Why and How Much? Adaptive Learning Rate Scheduling by
// Refinement", Algorithm 1): median-filter the norms G_1..G_T of a prior run,
// weights w_t = G_t^-2 (SGD; for Adam-type optimizers the paper's l1 variant:
// G_t = ||g_t||_1 and w_t = G_t^-1), eta_t proportional to w_t * sum_{p>t} w_p
// (so eta_T = 0), scaled so the peak is `peak`. Constant norms give linear decay.
import { ValueError } from '../errors';
import { table } from './constructors';
import type { Table } from './spec';

export interface FromGradNormsOptions {
  /** The schedule's maximum lr. */
  peak: number;
  /** Median filter width as a fraction tau of T: window 2 floor(tau T / 2) + 1; default 0.01. */
  filterFraction?: number;
  /** 'sgd' (norms are l2 norms, w = G^-2) or 'adam' (norms are l1 norms, w = G^-1); default 'sgd'. */
  optimizer?: 'sgd' | 'adam';
}

/** Running median over a centred odd window, edges padded with the nearest value. */
export function medianFilter(x: readonly number[], window: number): number[] {
  const h = (window - 1) / 2;
  const n = x.length;
  if (h === 0) return x.slice();
  const at = (i: number): number => x[Math.min(n - 1, Math.max(0, i))];
  // A sorted copy of the window, updated by one removal and one insertion per step.
  const sorted: number[] = [];
  const insert = (v: number): void => {
    let lo = 0, hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    sorted.splice(lo, 0, v);
  };
  const remove = (v: number): void => {
    let lo = 0, hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    sorted.splice(lo, 1);
  };
  for (let i = -h; i <= h; ++i) insert(at(i));
  const out = new Array<number>(n);
  for (let t = 0; t < n; ++t) {
    out[t] = sorted[h];
    if (t + 1 < n) {
      remove(at(t - h));
      insert(at(t + 1 + h));
    }
  }
  return out;
}

/** A refined schedule (a table spec, one lr per step of the recorded run) from per-step gradient norms. */
export function fromGradNorms(norms: readonly number[], options: FromGradNormsOptions): Table {
  const where = 'kiln: sched.fromGradNorms';
  if (!Array.isArray(norms) || norms.length < 2) throw new ValueError(`${where}: 'norms' must be an array of at least 2 gradient norms`);
  const bad = norms.findIndex((g) => typeof g !== 'number' || !Number.isFinite(g) || !(g > 0));
  if (bad >= 0) throw new ValueError(`${where}: 'norms[${bad}]' must be a finite number > 0, got ${norms[bad]}`);
  const { peak, filterFraction = 0.01, optimizer = 'sgd' } = options ?? ({} as FromGradNormsOptions);
  if (typeof peak !== 'number' || !Number.isFinite(peak) || !(peak > 0)) throw new ValueError(`${where}: 'peak' must be a finite number > 0, got ${peak}`);
  if (typeof filterFraction !== 'number' || !(filterFraction >= 0 && filterFraction <= 1)) throw new ValueError(`${where}: 'filterFraction' must be a number in [0, 1], got ${filterFraction}`);
  if (optimizer !== 'sgd' && optimizer !== 'adam') throw new ValueError(`${where}: 'optimizer' must be 'sgd' or 'adam', got ${String(optimizer)}`);
  const T = norms.length;
  const g = medianFilter(norms, 2 * Math.floor((filterFraction * T) / 2) + 1);
  const w = g.map((x) => (optimizer === 'sgd' ? 1 / (x * x) : 1 / x));
  // eta_t = w_t * sum_{p > t} w_p
  const eta = new Array<number>(T);
  let tail = 0;
  for (let t = T - 1; t >= 0; --t) {
    eta[t] = w[t] * tail;
    tail += w[t];
  }
  let top = 0;
  for (const e of eta) top = Math.max(top, e);
  return table(eta.map((e) => peak * (e / top)));
}
