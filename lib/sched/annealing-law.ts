// Loss-curve prediction with LR annealing (Tissue et al. 2024, "Scaling Law
// with Learning Rate Annealing"): L(s) = L0 + A * S1^-alpha - C * S2, with the
// forward area S1 = sum_{i<=s} eta_i and the annealing area S2 = sum_{i<=s} m_i,
// m_i = lambda * m_{i-1} + (eta_{i-1} - eta_i). The parameters are fitted to
// one or more recorded (lr, loss) curves by minimizing the Huber loss of
// log L_pred - log L (Levenberg-Marquardt on iteratively reweighted least
// squares, from several starting points), then predict any other schedule.
import { ValueError } from '../errors';
import { leastSquares, solve } from './linalg';

export interface AnnealingLawParams {
  L0: number;
  A: number;
  alpha: number;
  C: number;
}

export interface FitAnnealingLawOptions {
  /** Decay of the annealing momentum m; default 0.999. */
  lambda?: number;
  /** Huber threshold on log-loss residuals; default 1e-3. */
  delta?: number;
}

export interface AnnealingLawFit {
  params: AnnealingLawParams;
  lambda: number;
  /** Mean Huber loss of the fit (log space). */
  loss: number;
  /** The predicted loss after each update of a schedule given as per-step lrs. */
  predict(lrs: readonly number[]): number[];
}

/** S1 and S2 after each update i (0-based: the loss recorded after update i). */
export function annealingAreas(lrs: readonly number[], lambda: number): { s1: Float64Array; s2: Float64Array } {
  const n = lrs.length;
  const s1 = new Float64Array(n);
  const s2 = new Float64Array(n);
  let a1 = 0, a2 = 0, m = 0;
  for (let i = 0; i < n; ++i) {
    const prev = i === 0 ? lrs[0] : lrs[i - 1];
    a1 += lrs[i];
    m = lambda * m + (prev - lrs[i]);
    a2 += m;
    s1[i] = a1;
    s2[i] = a2;
  }
  return { s1, s2 };
}

const model = (p: AnnealingLawParams, s1: number, s2: number): number => p.L0 + p.A * Math.pow(s1, -p.alpha) - p.C * s2;
const modelAt = (p: AnnealingLawParams, q: Point): number => p.L0 + p.A * Math.exp(-p.alpha * q.logS1) - p.C * q.s2;

function huber(r: number, delta: number): number {
  const a = Math.abs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

interface Point {
  s1: number;
  logS1: number;
  s2: number;
  logY: number;
}

function objective(p: AnnealingLawParams, pts: readonly Point[], delta: number): number {
  if (!(p.alpha > 0)) return Infinity;
  let sum = 0;
  for (const q of pts) {
    const L = modelAt(p, q);
    if (!(L > 0)) return Infinity;
    sum += huber(Math.log(L) - q.logY, delta);
  }
  return sum / pts.length;
}

const toVec = (p: AnnealingLawParams): number[] => [p.L0, p.A, p.alpha, p.C];
const fromVec = (v: readonly number[]): AnnealingLawParams => ({ L0: v[0], A: v[1], alpha: v[2], C: v[3] });

/** Levenberg-Marquardt on the IRLS form of the Huber objective. */
function refine(start: AnnealingLawParams, pts: readonly Point[], delta: number): { p: AnnealingLawParams; f: number } {
  let p = start;
  let f = objective(p, pts, delta);
  let mu = 1e-3;
  for (let iter = 0; iter < 500 && Number.isFinite(f) && f > 1e-30; ++iter) {
    const jtj = Array.from({ length: 4 }, () => [0, 0, 0, 0]);
    const jtr = [0, 0, 0, 0];
    const j = [0, 0, 0, 0];
    for (const q of pts) {
      const pw = Math.exp(-p.alpha * q.logS1);
      const L = p.L0 + p.A * pw - p.C * q.s2;
      const r = Math.log(L) - q.logY;
      const w = Math.abs(r) <= delta ? 1 : delta / Math.abs(r); // Huber IRLS weight
      // d log L / d (L0, A, alpha, C)
      j[0] = 1 / L;
      j[1] = pw / L;
      j[2] = (-p.A * pw * q.logS1) / L;
      j[3] = -q.s2 / L;
      for (let a = 0; a < 4; ++a) {
        const wa = w * j[a];
        jtr[a] += wa * r;
        for (let b = a; b < 4; ++b) jtj[a][b] += wa * j[b];
      }
    }
    for (let a = 0; a < 4; ++a) for (let b = 0; b < a; ++b) jtj[a][b] = jtj[b][a];
    let improved = false;
    for (let tries = 0; tries < 16; ++tries) {
      const m = jtj.map((row, a) => row.map((v, b) => (a === b ? v + mu * Math.max(v, 1e-300) : v)));
      const step = solve(m, jtr.map((v) => -v));
      if (!step) {
        mu *= 10;
        continue;
      }
      const cand = fromVec(toVec(p).map((v, i) => v + step[i]));
      const fc = objective(cand, pts, delta);
      if (fc < f) {
        const rel = (f - fc) / Math.max(f, 1e-300);
        p = cand;
        f = fc;
        mu = Math.max(mu / 3, 1e-12);
        improved = true;
        if (rel < 1e-10) return { p, f };
        break;
      }
      mu *= 4;
    }
    if (!improved) break;
  }
  return { p, f };
}

/**
 * Fits L0, A, alpha, C to recorded curves: `lrs` and `losses` are one curve
 * (arrays of the same length: the lr of update i and the loss after it) or
 * several (arrays of such arrays). NaN losses are skipped (not recorded).
 */
export function fitAnnealingLaw(lrs: readonly number[] | readonly (readonly number[])[], losses: readonly number[] | readonly (readonly number[])[], options: FitAnnealingLawOptions = {}): AnnealingLawFit {
  const where = 'kiln: sched.fitAnnealingLaw';
  const lambda = options.lambda ?? 0.999;
  const delta = options.delta ?? 1e-3;
  if (typeof lambda !== 'number' || !(lambda >= 0 && lambda < 1)) throw new ValueError(`${where}: 'lambda' must be a number in [0, 1), got ${lambda}`);
  if (typeof delta !== 'number' || !(delta > 0 && Number.isFinite(delta))) throw new ValueError(`${where}: 'delta' must be a finite number > 0, got ${delta}`);
  const many = Array.isArray(lrs[0]);
  const curves = (many ? lrs : [lrs]) as readonly (readonly number[])[];
  const ys = (many ? losses : [losses]) as readonly (readonly number[])[];
  if (!Array.isArray(ys) || curves.length !== ys.length) throw new ValueError(`${where}: 'lrs' and 'losses' must hold the same number of curves`);
  const pts: Point[] = [];
  curves.forEach((c, k) => {
    if (!Array.isArray(c) || !Array.isArray(ys[k]) || c.length !== ys[k].length || c.length === 0) {
      throw new ValueError(`${where}: curve ${k}: 'lrs' and 'losses' must be non-empty arrays of the same length`);
    }
    const badLr = c.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x) || x < 0);
    if (badLr >= 0) throw new ValueError(`${where}: curve ${k}: lrs[${badLr}] must be a finite number >= 0, got ${c[badLr]}`);
    const { s1, s2 } = annealingAreas(c, lambda);
    ys[k].forEach((y, i) => {
      if (Number.isNaN(y)) return;
      if (typeof y !== 'number' || !(y > 0) || !Number.isFinite(y)) throw new ValueError(`${where}: curve ${k}: losses[${i}] must be a finite number > 0 (or NaN: not recorded), got ${y}`);
      if (s1[i] > 0) pts.push({ s1: s1[i], logS1: Math.log(s1[i]), s2: s2[i], logY: Math.log(y) });
    });
  });
  if (pts.length < 4) throw new ValueError(`${where}: need at least 4 recorded losses after a non-zero lr, got ${pts.length}`);

  // Starting points: for each alpha on a grid, the linear least-squares fit of
  // L = L0 + A S1^-alpha - C S2 (in loss space), weighted by 1/L^2 (relative errors).
  const yv = pts.map((q) => Math.exp(q.logY));
  const wts = yv.map((y) => 1 / (y * y));
  let minY = Infinity;
  for (const y of yv) minY = Math.min(minY, y);
  const starts: { p: AnnealingLawParams; f: number }[] = [];
  for (const alpha of [0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.5]) {
    const beta = leastSquares(pts.map((q) => [1, Math.exp(-alpha * q.logS1), -q.s2]), yv, wts);
    const cands: AnnealingLawParams[] = [{ L0: 0.5 * minY, A: 0.5 * minY, alpha, C: 0 }];
    if (beta) cands.push({ L0: beta[0], A: beta[1], alpha, C: beta[2] });
    for (const p of cands) {
      const f = objective(p, pts, delta);
      if (Number.isFinite(f)) starts.push({ p, f });
    }
  }
  // Refine the most promising starts.
  starts.sort((a, b) => a.f - b.f);
  let best: { p: AnnealingLawParams; f: number } | null = null;
  for (const s of starts.slice(0, 4)) {
    const r = refine(s.p, pts, delta);
    if (!best || r.f < best.f) best = r;
  }
  if (!best) throw new ValueError(`${where}: no fit found (are the losses decreasing with the lr area?)`);
  const params = best.p;
  return {
    params,
    lambda,
    loss: best.f,
    predict(lrsOther: readonly number[]): number[] {
      const { s1, s2 } = annealingAreas(lrsOther, lambda);
      return Array.from(s1, (a, i) => model(params, a, s2[i]));
    },
  };
}
