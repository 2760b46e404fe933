// kiln.sched's adaptive controllers: schedule refinement from gradient norms
// (Defazio et al. 2023), the annealing scaling law fit (Tissue et al. 2024),
// the Gaussian process and exponential forecast used by AutoLRS (Jin et al.
// 2021), and AutoLRS itself on a noisy quadratic whose optimal lr is known in
// closed form.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const sched = kiln.sched;

/** mulberry32 (the tests' own generator). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const gauss = (r: () => number): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

describe('fromGradNorms (Defazio et al. 2023, Algorithm 1)', () => {
  const values = (s: kiln.sched.Schedule): number[] => (s as kiln.sched.Table).values.slice();

  it('constant norms give linear decay exactly: peak * (T - 1 - t) / (T - 1)', () => {
    const T = 200;
    for (const optimizer of ['sgd', 'adam'] as const) {
      // G = 2: the weights 1/4 or 1/2 and their sums are exact, so the decay is exact.
      const s = sched.fromGradNorms(new Array(T).fill(2), { peak: 0.01, optimizer, filterFraction: 0.05 });
      expect(values(s)).toEqual(Array.from({ length: T }, (_, t) => 0.01 * ((T - 1 - t) / (T - 1))));
      // G = 0.37: the same to rounding (relative 1e-13).
      const r = values(sched.fromGradNorms(new Array(T).fill(0.37), { peak: 0.01, optimizer }));
      r.forEach((v, t) => expect(Math.abs(v - 0.01 * ((T - 1 - t) / (T - 1)))).toBeLessThanOrEqual(1e-13 * 0.01)); // 200 rounded additions
    }
  });

  it('weights w = G^-2 (SGD) or G^-1 (Adam, l1 norms): eta_t ~ w_t sum_{p>t} w_p, normalized to the peak', () => {
    const r = rng(3);
    const norms = Array.from({ length: 60 }, (_, t) => 1 + 4 * Math.exp(-t / 8) + 0.01 * r()); // large early norms
    for (const [optimizer, w] of [['sgd', (g: number) => 1 / (g * g)], ['adam', (g: number) => 1 / g]] as const) {
      // No filtering (window 1): the formula directly.
      const got = values(sched.fromGradNorms(norms, { peak: 1, optimizer, filterFraction: 0 }));
      const eta = norms.map((g, t) => w(g) * norms.slice(t + 1).reduce((a, x) => a + w(x), 0));
      const top = Math.max(...eta);
      got.forEach((v, t) => expect(v).toBeCloseTo(eta[t] / top, 12));
      // Large early norms make small early steps: the refined schedule warms up.
      expect(got[0]).toBeLessThan(0.5);
      expect(Math.max(...got)).toBe(1);
      expect(got[got.length - 1]).toBe(0);
    }
  });

  it('median filter: window 2 floor(tau T / 2) + 1, edges padded with the nearest value', () => {
    expect(sched.medianFilter([1, 100, 1, 1, 1], 3)).toEqual([1, 1, 1, 1, 1]);
    expect(sched.medianFilter([5, 1, 2], 3)).toEqual([5, 2, 2]); // [5,5,1] [5,1,2] [1,2,2]
    expect(sched.medianFilter([3, 1, 4, 1, 5, 9, 2, 6], 5)).toEqual([3, 3, 3, 4, 4, 5, 6, 6]);
    // A spike in the norms does not reach the schedule once filtered (tau T = 10: window 11).
    const norms = new Array(100).fill(1);
    norms[40] = 50;
    const s = values(sched.fromGradNorms(norms, { peak: 1, filterFraction: 0.1 }));
    expect(s[40]).toBeCloseTo((100 - 1 - 40) / 99, 14);
  });

  it('rejects bad norms and options', () => {
    expect(() => sched.fromGradNorms([1, 0, 1], { peak: 1 })).toThrow(/'norms\[1\]' must be a finite number > 0/);
    expect(() => sched.fromGradNorms([1], { peak: 1 })).toThrow(kiln.ValueError);
    expect(() => sched.fromGradNorms([1, 1], { peak: -1 })).toThrow(/'peak' must be a finite number > 0/);
    expect(() => sched.fromGradNorms([1, 1], { peak: 1, optimizer: 'lion' as 'sgd' })).toThrow(/'optimizer' must be 'sgd' or 'adam'/);
  });
});

describe('fitAnnealingLaw (Tissue et al. 2024)', () => {
  const truth = { L0: 2.1, A: 0.6, alpha: 0.45, C: 0.35 };
  /** L(s) = L0 + A S1^-alpha - C S2, computed here from the paper's definitions. */
  function curve(lrs: number[], p = truth, lambda = 0.999): number[] {
    let s1 = 0, s2 = 0, m = 0;
    return lrs.map((eta, i) => {
      s1 += eta;
      m = lambda * m + ((i === 0 ? eta : lrs[i - 1]) - eta);
      s2 += m;
      return s1 > 0 ? p.L0 + p.A * Math.pow(s1, -p.alpha) - p.C * s2 : NaN; // no loss law before any lr area
    });
  }
  const peak = 1e-3;
  const cosineLrs = Array.from(sched.trace(sched.seq([{ schedule: sched.warmup({ to: peak, steps: 100 }), steps: 100 }, { schedule: sched.cosine({ from: peak, to: 0.1 * peak, steps: 2900 }) }]), 3000));
  const constantLrs = Array.from(sched.trace(sched.seq([{ schedule: sched.warmup({ to: peak, steps: 100 }), steps: 100 }, { schedule: sched.constant(peak) }]), 3000));
  const wsdLrs = Array.from(sched.trace(sched.wsd({ peak, warmup: 100, stable: 2000, decay: 900, decayShape: '1-sqrt', minRatio: 0.05 }), 3000));

  it('S1 and S2 by hand: lrs [1, 1, 0.5, 0.5], lambda 0.5', () => {
    const { s1, s2 } = sched.annealingAreas([1, 1, 0.5, 0.5], 0.5);
    expect(Array.from(s1)).toEqual([1, 2, 2.5, 3]);
    expect(Array.from(s2)).toEqual([0, 0, 0.5, 0.75]); // m = 0, 0, 0.5, 0.25
  });

  it('recovers known parameters from a synthetic cosine curve and predicts a WSD curve within 1%', () => {
    const fit = sched.fitAnnealingLaw(cosineLrs, curve(cosineLrs));
    for (const k of ['L0', 'A', 'alpha', 'C'] as const) expect(Math.abs(fit.params[k] / truth[k] - 1), k).toBeLessThan(1e-4);
    const want = curve(wsdLrs);
    const got = fit.predict(wsdLrs);
    for (let i = 1; i < 3000; ++i) expect(Math.abs(got[i] / want[i] - 1), `step ${i}`).toBeLessThan(0.01);
    // The annealing term matters here: without it (C = 0) the WSD prediction is off by more than 1% at the end.
    const noAnneal = { ...fit.params, C: 0 };
    expect(Math.abs(curve(wsdLrs, noAnneal)[2999] / want[2999] - 1)).toBeGreaterThan(0.01);
  });

  it('fits two noisy curves with outliers (Huber on log loss) and still predicts WSD within 1%', () => {
    const r = rng(11);
    const noisy = (ys: number[]): number[] => ys.map((y, i) => (i % 97 === 13 ? y * 1.5 : y * (1 + 0.004 * (2 * r() - 1))));
    // Losses recorded every 10 steps only (NaN elsewhere).
    const sparse = (ys: number[]): number[] => ys.map((y, i) => (i % 10 === 9 ? y : NaN));
    const fit = sched.fitAnnealingLaw([constantLrs, cosineLrs], [sparse(noisy(curve(constantLrs))), sparse(noisy(curve(cosineLrs)))]);
    const want = curve(wsdLrs);
    const got = fit.predict(wsdLrs);
    for (let i = 100; i < 3000; ++i) expect(Math.abs(got[i] / want[i] - 1), `step ${i}`).toBeLessThan(0.01);
    expect(Math.abs(fit.params.alpha / truth.alpha - 1)).toBeLessThan(0.1);
  });

  it('rejects bad input', () => {
    expect(() => sched.fitAnnealingLaw([1, 2], [1])).toThrow(/same length/);
    expect(() => sched.fitAnnealingLaw([1, 1, 1, 1], [1, 1, -1, 1])).toThrow(/losses\[2\] must be a finite number > 0/);
    expect(() => sched.fitAnnealingLaw([1, 1, 1], [3, 2, 1])).toThrow(/at least 4 recorded losses/);
    expect(() => sched.fitAnnealingLaw(cosineLrs, curve(cosineLrs), { lambda: 1 })).toThrow(/'lambda' must be a number in \[0, 1\)/);
  });
});

describe('GaussianProcess', () => {
  const f = (x: number): number => Math.sin(2 * Math.PI * x) + 0.5 * x;

  it('interpolates a smooth 1-D function; the uncertainty is small at the data and grows away from it', () => {
    const xs = Array.from({ length: 12 }, (_, i) => i / 11);
    const gp = new sched.GaussianProcess().fit(xs, xs.map(f));
    for (const x of xs) {
      expect(Math.abs(gp.predict(x).mean - f(x))).toBeLessThan(1e-3);
      expect(gp.predict(x).std).toBeLessThan(0.02);
    }
    for (let i = 0; i < 11; ++i) {
      const x = (i + 0.5) / 11;
      expect(Math.abs(gp.predict(x).mean - f(x)), `x = ${x}`).toBeLessThan(0.02);
    }
    expect(gp.predict(3).std).toBeGreaterThan(0.5); // far from the data: about the prior's spread
    expect(gp.hyperparameters!.noise).toBeLessThanOrEqual(1e-4);
  });

  it('attributes scatter around a constant to noise', () => {
    const r = rng(5);
    const xs = Array.from({ length: 30 }, () => r());
    const gp = new sched.GaussianProcess().fit(xs, xs.map(() => 2 + 0.3 * gauss(r)));
    expect(gp.hyperparameters!.noise).toBeGreaterThanOrEqual(1e-2);
    expect(Math.abs(gp.predict(0.5).mean - 2)).toBeLessThan(0.2);
  });

  it('LCB Bayesian optimization finds the minimum of a known function in a few evaluations', () => {
    const g = (x: number): number => (x - 0.3) ** 2 + 0.05 * Math.sin(9 * x); // minimum near 0.27
    let xmin = 0;
    for (let i = 0; i <= 100000; ++i) if (g(i / 100000) < g(xmin)) xmin = i / 100000;
    const xs = [0.9, 0.6];
    for (let k = 0; k < 8; ++k) {
      const gp = new sched.GaussianProcess().fit(xs, xs.map(g));
      xs.push(sched.minimizeLCB(gp, 0, 1, 2));
    }
    const best = xs.reduce((a, b) => (g(b) < g(a) ? b : a));
    expect(Math.abs(best - xmin)).toBeLessThan(0.01);
  });
});

describe('exponential loss forecast', () => {
  it('recovers a exp(b t) + c exactly and forecasts it', () => {
    const ys = Array.from({ length: 50 }, (_, i) => 0.8 * Math.exp(-0.07 * (i + 1)) + 1.3);
    const fit = sched.fitExponential(ys);
    expect(fit.a).toBeCloseTo(0.8, 6);
    expect(fit.b).toBeCloseTo(-0.07, 7);
    expect(fit.c).toBeCloseTo(1.3, 6);
    expect(fit.at(500)).toBeCloseTo(1.3, 6);
  });

  it('keeps the asymptote above the floor', () => {
    const ys = Array.from({ length: 20 }, (_, i) => 1 - 0.02 * i); // a straight line: no asymptote in sight
    expect(sched.fitExponential(ys).at(1000)).toBeLessThan(-1);
    expect(sched.fitExponential(ys, { floor: 0 }).at(1000)).toBeGreaterThanOrEqual(0);
  });
});

describe('AutoLRS (Jin et al. 2021)', () => {
  // SGD on f(x) = |x|^2 / (2 d) with gradient noise sigma per coordinate, started from the
  // stationary state of lr0 (mid-training). Per coordinate, E[x^2] after n steps at lr is
  // q^n m0 + lr^2 sigma^2 (1 - q^n) / (1 - q) with q = (1 - lr)^2: the optimum over a stage
  // of tau steps is found by a fine search of that closed form.
  const d = 32, lr0 = 0.5, tau = 1000;
  const m0 = lr0 / (2 - lr0);
  const expected = (lr: number): number => {
    const q = (1 - lr) ** 2;
    return 0.5 * (q ** tau * m0 + (lr * lr * (1 - q ** tau)) / (1 - q));
  };
  let optimum = 1;
  for (let e = -4; e <= 0; e += 0.001) if (expected(10 ** e) < expected(optimum)) optimum = 10 ** e;

  function problem(seed: number): { hooks: kiln.sched.AutoLRSHooks<number[]>; calls: Record<string, number> } {
    const r = rng(seed);
    let x = Array.from({ length: d }, () => Math.sqrt(m0) * gauss(r));
    const calls = { checkpoint: 0, restore: 0, train: 0 };
    return {
      calls,
      hooks: {
        checkpoint: () => (++calls.checkpoint, x.slice()),
        restore: (c) => {
          ++calls.restore;
          x = c.slice();
        },
        train: async (lr, n) => {
          ++calls.train;
          const out: number[] = [];
          for (let t = 0; t < n; ++t) {
            for (let i = 0; i < d; ++i) x[i] -= lr * (x[i] + gauss(r));
            out.push(x.reduce((a, v) => a + v * v, 0) / (2 * d));
          }
          return out;
        },
      },
    };
  }

  it('finds an lr within 2x of the optimum of a noisy quadratic (at least 8 of 10 seeds, and the median)', async () => {
    expect(optimum).toBeGreaterThan(1e-3); // an interior optimum: half and twice it are clearly worse
    expect(expected(optimum / 2)).toBeGreaterThan(1.5 * expected(optimum));
    expect(expected(optimum * 2)).toBeGreaterThan(1.5 * expected(optimum));
    const ratios: number[] = [];
    for (let seed = 1; seed <= 10; ++seed) {
      const { hooks, calls } = problem(seed);
      const a = new sched.AutoLRS({ minLr: 1e-4, maxLr: 1, stageSteps: tau, searchFraction: 0.3, seed });
      const st = await a.stage(hooks);
      ratios.push(st.lr / optimum);
      expect(st.candidates.length).toBe(10);
      expect(st.searchSteps).toBe(300);
      expect(calls).toEqual({ checkpoint: 1, restore: 10, train: 11 });
    }
    const within = ratios.filter((q) => q >= 0.5 && q <= 2).length;
    const median = ratios.slice().sort((a, b) => a - b)[4];
    expect(within, `ratios ${ratios.map((q) => q.toFixed(2)).join(' ')}`).toBeGreaterThanOrEqual(8);
    expect(median).toBeGreaterThanOrEqual(0.5);
    expect(median).toBeLessThanOrEqual(2);
  });

  it('runs stages of growing length up to the step budget and reports its schedule', async () => {
    const { hooks } = problem(1);
    const a = new sched.AutoLRS({ minLr: 1e-3, maxLr: 1, stageSteps: 100, growth: 2, candidates: 4, seed: 3 });
    const stages = await a.run(500, hooks);
    expect(stages.map((s) => s.steps)).toEqual([100, 200, 200]); // the third is cut to the budget
    expect(a.stepsTrained).toBe(500);
    expect(a.stageSteps).toBe(800);
    const s = a.schedule();
    expect(sched.lrAt(s, 0)).toBe(stages[0].lr);
    expect(sched.lrAt(s, 150)).toBe(stages[1].lr);
    expect(sched.lrAt(s, 499)).toBe(stages[2].lr);
    for (const st of stages) for (const c of st.candidates) expect(c.lr).toBeGreaterThanOrEqual(1e-3 * (1 - 1e-12));
  });

  it('picks a finite lr when some candidates diverge, and validates its options', async () => {
    const { hooks } = problem(2);
    const a = new sched.AutoLRS({ minLr: 1e-3, maxLr: 100, stageSteps: 50, candidates: 6, seed: 1 });
    const st = await a.stage(hooks);
    expect(st.lr).toBeLessThan(2); // lr >= 2 diverges here
    expect(() => new sched.AutoLRS({ minLr: 1, maxLr: 0.1 })).toThrow(/'maxLr' \(0.1\) must be > 'minLr' \(1\)/);
    expect(() => new sched.AutoLRS({ minLr: 0, maxLr: 1 })).toThrow(/'minLr' must be a finite number > 0/);
    expect(() => new sched.AutoLRS({ minLr: 0.1, maxLr: 1, candidates: 0 })).toThrow(/'candidates' must be an integer >= 1/);
  });
});
