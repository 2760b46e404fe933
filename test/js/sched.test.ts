// kiln.sched schedules against float64 formulas written here from
// ../shared/specs/schedules.md and the papers / libraries it cites (HF
// transformers' WSD and linear/cosine-with-warmup lambdas, REX, IBM Power,
// infinite schedules), hand-checkable values, composition, JSON round trips and
// typed errors for bad specs. PyTorch's schedulers: sched-torch.test.ts.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const sched = kiln.sched;
type Schedule = kiln.sched.Schedule;

/** One unit in the last place of x (float64). */
function ulp(x: number): number {
  const a = Math.abs(x);
  if (a === 0) return Number.MIN_VALUE;
  const e = Math.floor(Math.log2(a));
  return Math.max(2 ** (e - 52), Number.MIN_VALUE) * (a >= 2 ** (e + 1) ? 2 : 1);
}

/**
 * |got - want| <= 4 ulp(want) + cosSlack. cosSlack: where a formula holds cos(pi p),
 * the reference's Math.cos may differ by one ulp from kiln's correctly rounded
 * cos; that ulp (2^-53 at most for |cos| <= 1) is carried by (peak - floor) / 2.
 */
function expectTrace(spec: Schedule, ref: (t: number) => number, n: number, what: string, cosSlack = 0, ctx?: (t: number) => kiln.sched.LrContext): void {
  let worst = 0;
  let at = -1;
  for (let t = 0; t < n; ++t) {
    const got = sched.lrAt(spec, t, ctx?.(t));
    const want = ref(t);
    const err = Math.abs(got - want) / (4 * ulp(want) + cosSlack);
    if (!(err <= worst)) [worst, at] = [err, t];
    if (Number.isNaN(got) || Number.isNaN(want)) [worst, at] = [Infinity, t];
  }
  expect(worst, `${what}: worst at step ${at}: kiln ${at >= 0 ? sched.lrAt(spec, at, ctx?.(at)) : ''}, reference ${at >= 0 ? ref(at) : ''}`).toBeLessThanOrEqual(1);
}

const COS = 2 ** -53; // one ulp of a cos value in [0.5, 1]

// ---- HF transformers lambdas (transformers/optimization.py), written from their definitions ----

/** _get_wsd_scheduler_lambda: factor of the initial lr. */
function hfWsd(t: number, W: number, S: number, D: number, warm: string, decay: string, r: number): number {
  if (t < W) {
    const p = t / Math.max(1, W);
    let f = p;
    if (warm === 'cosine') f = 0.5 * (1.0 - Math.cos(Math.PI * p));
    if (warm === '1-sqrt') f = 1.0 - Math.sqrt(1.0 - p);
    return Math.max(0.0, f * (1.0 - r) + r);
  }
  if (t < W + S) return 1.0;
  if (t < W + S + D) {
    const p = (t - W - S) / Math.max(1, D);
    let f = 1.0 - p;
    if (decay === 'cosine') f = 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * p));
    if (decay === '1-sqrt') f = 1.0 - Math.sqrt(p);
    return Math.max(0.0, f * (1.0 - r) + r);
  }
  return r;
}

describe('WSD (HF get_wsd_schedule; MiniCPM)', () => {
  for (const warmupShape of ['linear', 'cosine', '1-sqrt'] as const) {
    for (const decayShape of ['linear', 'cosine', '1-sqrt'] as const) {
      for (const minRatio of [0, 0.1]) {
        it(`${warmupShape} warmup, ${decayShape} decay, min ratio ${minRatio}: peak * HF lambda`, () => {
          const [peak, W, S, D] = [3e-4, 20, 50, 30];
          const spec = sched.wsd({ peak, warmup: W, stable: S, decay: D, warmupShape, decayShape, minRatio });
          expectTrace(spec, (t) => peak * hfWsd(t, W, S, D, warmupShape, decayShape, minRatio), W + S + D + 15, spec.kind, warmupShape === 'cosine' || decayShape === 'cosine' ? peak * COS : 0);
        });
      }
    }
  }

  it('1-square decay (1 - p^2) and MiniCPM exponential decay (0.5^(s / halfLife), held after the decay)', () => {
    const [peak, W, S, D] = [1e-3, 10, 10, 40];
    const sq = sched.wsd({ peak, warmup: W, stable: S, decay: D, decayShape: '1-square', minRatio: 0.05 });
    expectTrace(sq, (t) => (t < W ? peak * (t / W) * 0.95 + peak * 0.05 : t < W + S ? peak : peak * ((1 - Math.min(1, (t - W - S) / D) ** 2) * 0.95 + 0.05)), 70, '1-square');
    const ex = sched.wsd({ peak, warmup: W, stable: S, decay: D, decayShape: 'exp', halfLife: 8 });
    const f = (s: number): number => Math.pow(0.5, Math.min(s, D) / 8);
    expectTrace(ex, (t) => (t < W ? peak * (t / W) : t < W + S ? peak : peak * f(t - W - S)), 80, 'exp');
    // Hand check: one half-life into the decay the lr has halved.
    expect(sched.lrAt(ex, W + S + 8)).toBe(peak / 2);
  });

  it('starts at minRatio * peak (HF rescales the warmup too) and ends at minRatio * peak', () => {
    const s = sched.wsd({ peak: 1, warmup: 4, stable: 2, decay: 4, minRatio: 0.25 });
    expect(sched.lrAt(s, 0)).toBe(0.25);
    expect(sched.lrAt(s, 2)).toBe(0.5 * 0.75 + 0.25);
    expect(sched.lrAt(s, 4)).toBe(1);
    expect(sched.lrAt(s, 10)).toBe(0.25);
    expect(sched.lrAt(s, 1e9)).toBe(0.25);
  });
});

describe('HF linear and cosine schedules with warmup, as compositions', () => {
  const [peak, W, N] = [5e-4, 13, 101];
  it('seq(warmup, linear to 0) == peak * (t < W ? t / max(1, W) : max(0, (N - t) / max(1, N - W)))', () => {
    const spec = sched.seq([{ schedule: sched.warmup({ to: peak, steps: W }), steps: W }, { schedule: sched.linear({ from: peak, to: 0, steps: N - W }) }]);
    expectTrace(spec, (t) => peak * (t < W ? t / Math.max(1, W) : Math.max(0, (N - t) / Math.max(1, N - W))), N + 10, 'linear with warmup');
    // These two are the same arithmetic: exactly equal.
    for (let t = 0; t <= N; ++t) expect(sched.lrAt(spec, t)).toBe(peak * (t < W ? t / W : (N - t) / (N - W)));
  });

  it('seq(warmup, cosine to 0) == HF get_cosine_schedule_with_warmup (num_cycles 0.5)', () => {
    const spec = sched.seq([{ schedule: sched.warmup({ to: peak, steps: W }), steps: W }, { schedule: sched.cosine({ from: peak, steps: N - W }) }]);
    const hf = (t: number): number => {
      if (t < W) return t / Math.max(1, W);
      const p = (t - W) / Math.max(1, N - W);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * p)));
    };
    // pi * (t / T) (HF) and (pi * t) / T (kiln, PyTorch) round differently: allow one ulp of the angle too.
    // (Past N, HF's cosine swings back up; kiln holds `to`.)
    expectTrace(spec, (t) => peak * hf(t), N + 1, 'cosine with warmup', peak * 4 * COS);
    expect(sched.lrAt(spec, N + 5)).toBe(0);
  });
});

describe('REX, inverse sqrt, Power, infinite, rewarm', () => {
  it('REX: paper form (beta 1) and reference-code form (beta 0.9)', () => {
    const [peak, N] = [0.1, 200];
    const paper = sched.rex({ peak, steps: N });
    expectTrace(paper, (t) => {
      const z = Math.min(t, N) / N;
      return (peak * (1 - z)) / (0.5 + 0.5 * (1 - z));
    }, N + 10, 'rex paper');
    // Hand check: z = 1/2 gives (1/2) / (3/4) = 2/3 of the peak.
    expect(sched.lrAt(paper, N / 2)).toBeCloseTo((peak * 2) / 3, 15);
    const code = sched.rex({ peak, steps: N, beta: 0.9 });
    expectTrace(code, (t) => {
      const z = Math.min(t, N) / N;
      return (peak * (1 - z)) / (0.5 * (1 - 0.9 * z) + 0.5);
    }, N + 10, 'rex beta 0.9');
    expect(sched.lrAt(code, N)).toBe(0);
  });

  it('inverse sqrt: peak * sqrt(W / max(t, W))', () => {
    const s = sched.inverseSqrt({ peak: 0.01, warmup: 100 });
    expectTrace(s, (t) => 0.01 * Math.sqrt(100 / Math.max(t, 100)), 1000, 'inverseSqrt');
    expect(sched.lrAt(s, 400)).toBe(0.005); // sqrt(1/4) = 1/2 exactly
    // The usual ramp is a composition: min(warmup, inverseSqrt).
    const ramp = sched.min([sched.warmup({ to: 0.01, steps: 100 }), s]);
    expect(sched.lrAt(ramp, 50)).toBe(0.005);
    expect(sched.lrAt(ramp, 400)).toBe(0.005);
  });

  it('Power (IBM): min(max, a n^b) on tokens, linear warmup to the value at the end of warmup, pluggable decay', () => {
    const [a, b, max, W, tps] = [40, -0.51, 0.02, 50, 4096];
    const P = (n: number): number => Math.min(max, a * Math.pow(n, b));
    const plain = sched.power({ a, b, max, warmup: W, tokensPerStep: tps });
    expectTrace(plain, (t) => (t < W ? ((t * tps) / (W * tps)) * P(W * tps) : P(t * tps)), 3000, 'power');
    // Tokens from the context (variable batch sizes) instead of step * tokensPerStep.
    const tokens = (t: number): number => t * 3000 + (t % 7) * 500;
    expectTrace(plain, (t) => {
      const n = tokens(t);
      return n < W * tps ? (n / (W * tps)) * P(W * tps) : P(n);
    }, 3000, 'power (ctx.tokens)', 0, (t) => ({ tokens: tokens(t) }));
    // Exponential decay (halving every 100 steps) over the last 400 of 2000 steps.
    const ex = sched.power({ a, b, max, warmup: W, tokensPerStep: tps, decay: { start: 1600, steps: 400, shape: 'exp', halfLife: 100 } });
    expectTrace(ex, (t) => (t < W ? (t / W) * P(W * tps) : t < 1600 ? P(t * tps) : P(1600 * tps) * Math.pow(0.5, Math.min(t - 1600, 400) / 100)), 2100, 'power exp decay');
    const lin = sched.power({ a, b, max, warmup: W, tokensPerStep: tps, decay: { start: 1600, steps: 400 } });
    expect(sched.lrAt(lin, 1800)).toBeCloseTo(P(1600 * tps) / 2, 17);
    expect(sched.lrAt(lin, 2000)).toBe(0);
    // The max clips the early steps here (a n^b > max at the end of warmup), not the late ones.
    expect(P(W * tps)).toBe(max);
    expect(sched.lrAt(plain, W)).toBe(max);
    expect(sched.lrAt(plain, 2999)).toBeLessThan(max / 2);
  });

  it('infinite: warmup, cosine or inverse-sqrt cooldown to a constant, constant, exponential anneal', () => {
    const [peak, W, C, c] = [3e-4, 100, 400, 1e-4];
    const cosCd = sched.infinite({ peak, warmup: W, cooldown: C, constant: c, anneal: { start: 2000, steps: 200, min: 1e-6 } });
    expectTrace(cosCd, (t) => {
      if (t < W) return (peak * t) / W;
      if (t < W + C) return c + ((peak - c) / 2) * (1 + Math.cos((Math.PI * (t - W)) / C));
      if (t < 2000) return c;
      return c * Math.pow(1e-6 / c, Math.min(t - 2000, 200) / 200);
    }, 2400, 'infinite (cosine)', peak * COS);
    expect(sched.lrAt(cosCd, W + C)).toBe(c);
    expect(sched.lrAt(cosCd, 2100)).toBeCloseTo(Math.sqrt(c * 1e-6), 18); // halfway in log space
    expect(sched.lrAt(cosCd, 2200)).toBe(1e-6);
    const alpha = 8;
    const inv = sched.infinite({ peak, warmup: W, cooldown: C, constant: c, cooldownShape: 'inverseSqrt', alpha });
    const h = (x: number): number => 1 / Math.sqrt(1 + alpha * x) - 1;
    expectTrace(inv, (t) => (t < W ? (peak * t) / W : t < W + C ? peak + ((c - peak) * h((t - W) / C)) / h(1) : c), 1000, 'infinite (inverse sqrt)');
    expect(sched.lrAt(inv, 1e7)).toBe(c); // open-ended
  });

  it('rewarm: linear from `from` to the new peak, then the given decay on its local clock', () => {
    const s = sched.rewarm({ from: 1e-5, peak: 1e-4, warmup: 10, then: sched.cosine({ from: 1e-4, to: 1e-5, steps: 90 }) });
    expect(sched.lrAt(s, 0)).toBe(1e-5);
    expect(sched.lrAt(s, 5)).toBeCloseTo(5.5e-5, 18);
    expect(sched.lrAt(s, 10)).toBe(1e-4);
    expect(sched.lrAt(s, 55)).toBeCloseTo(5.5e-5, 18); // cosine midpoint
    expect(sched.lrAt(s, 100)).toBe(1e-5);
  });
});

describe('elementary schedules', () => {
  it('constant, linear (exact at both ends, held after), warmup shapes, polynomial', () => {
    expect(sched.lrAt(sched.constant(0.3), 12345)).toBe(0.3);
    const lin = sched.linear({ from: 0.1, to: 0.003, steps: 10 });
    expect(sched.lrAt(lin, 0)).toBe(0.1);
    expect(sched.lrAt(lin, 10)).toBe(0.003);
    expect(sched.lrAt(lin, 99)).toBe(0.003);
    // Dyadic values: exact.
    expect(Array.from(sched.trace(sched.linear({ from: 1, to: 0.5, steps: 4 }), 6))).toEqual([1, 0.875, 0.75, 0.625, 0.5, 0.5]);
    expect(Array.from(sched.trace(sched.linear({ from: 0.5, to: 1, steps: 4 }), 6))).toEqual([0.5, 0.625, 0.75, 0.875, 1, 1]);
    const up = sched.warmup({ to: 2, steps: 8, shape: 'cosine' });
    expect(sched.lrAt(up, 4)).toBeCloseTo(1, 15); // (1 - cos(pi/2)) / 2 = 1/2
    const sq = sched.warmup({ to: 1, steps: 4, shape: '1-sqrt' });
    expect(sched.lrAt(sq, 3)).toBe(0.5); // 1 - sqrt(1/4)
    expect(sched.lrAt(sched.warmup({ to: 1, steps: 4, from: 0.5 }), 2)).toBe(0.75);
    const poly = sched.polynomial({ from: 1, to: 0.1, steps: 10, power: 2 });
    expectTrace(poly, (t) => 0.1 + 0.9 * (1 - Math.min(t, 10) / 10) ** 2, 15, 'polynomial');
  });

  it('cosine: endpoints, exponent and hard-restart cycles', () => {
    const c = sched.cosine({ from: 1, to: 0.1, steps: 100 });
    expect(sched.lrAt(c, 0)).toBe(1);
    expect(sched.lrAt(c, 50)).toBeCloseTo(0.55, 15);
    expect(sched.lrAt(c, 100)).toBe(0.1);
    expect(sched.lrAt(c, 1000)).toBe(0.1);
    const e = sched.cosine({ from: 1, steps: 100, exponent: 2 });
    expect(sched.lrAt(e, 50)).toBeCloseTo(0.25, 15); // (1/2)^2
    const cy = sched.cosine({ from: 1, steps: 100, cycles: 4 });
    expect(sched.lrAt(cy, 25)).toBe(1); // each cycle restarts at the peak
    expect(sched.lrAt(cy, 37)).toBeCloseTo((1 + Math.cos((Math.PI * 12) / 25)) / 2, 14);
  });

  it('table holds its last value; cosineWarmRestarts restarts at the peak', () => {
    const t = sched.table([3, 2, 1]);
    expect([0, 1, 2, 3, 100].map((k) => sched.lrAt(t, k))).toEqual([3, 2, 1, 1, 1]);
    const r = sched.cosineWarmRestarts({ base: 1, t0: 10, tMult: 2 });
    expect([0, 10, 30, 70].map((k) => sched.lrAt(r, k))).toEqual([1, 1, 1, 1]);
    expect(sched.lrAt(r, 5)).toBeCloseTo(0.5, 15);
    expect(sched.lrAt(r, 20)).toBeCloseTo(0.5, 15); // halfway through the second period (20 steps)
  });

  it('oneCycle starts at maxLr / divFactor, peaks at pctStart, ends at the minimum; past totalSteps it holds the minimum', () => {
    const s = sched.oneCycle({ maxLr: 1, totalSteps: 101, pctStart: 0.2, divFactor: 10, finalDivFactor: 100, anneal: 'linear' });
    expect(sched.lrAt(s, 0)).toBe(0.1);
    expect(sched.lrAt(s, 100)).toBeCloseTo(0.001, 15);
    expect(sched.lrAt(s, 500)).toBe(0.001);
  });
});

describe('composition', () => {
  it('seq gives each part its local step; the last part runs on', () => {
    const s = sched.seq([
      { schedule: sched.table([10, 11, 12]), steps: 2 },
      { schedule: sched.table([20, 21, 22, 23]), steps: 3 },
      { schedule: sched.linear({ from: 1, to: 0, steps: 4 }) },
    ]);
    expect(Array.from(sched.trace(s, 10))).toEqual([10, 11, 20, 21, 22, 1, 0.75, 0.5, 0.25, 0]);
  });

  it('mul, min, max pointwise (numbers are constants); relative scales by the base', () => {
    const a = sched.linear({ from: 0, to: 1, steps: 10 });
    const b = sched.linear({ from: 1, to: 0, steps: 10 });
    for (let t = 0; t <= 12; ++t) {
      const [x, y] = [sched.lrAt(a, t), sched.lrAt(b, t)];
      expect(sched.lrAt(sched.mul([a, b, 2]), t)).toBe(x * y * 2);
      expect(sched.lrAt(sched.min([a, b]), t)).toBe(Math.min(x, y));
      expect(sched.lrAt(sched.max([a, b]), t)).toBe(Math.max(x, y));
    }
    const rel = sched.relative(sched.cosine({ from: 1, to: 0.1, steps: 10 }));
    expect(sched.lrAt(rel, 10, { base: 3e-4 })).toBe(3e-4 * 0.1);
    expect(sched.lrAt(rel, 10)).toBe(0.1);
  });
});

describe('specs are data', () => {
  const all: Schedule[] = [
    sched.constant(0.1),
    sched.linear({ from: 0, to: 1, steps: 5 }),
    sched.polynomial({ from: 1, steps: 9, power: 3 }),
    sched.warmup({ to: 1, steps: 5, shape: '1-sqrt' }),
    sched.cosine({ from: 1, to: 0.01, steps: 30, exponent: 1.5, cycles: 2 }),
    sched.inverseSqrt({ peak: 1, warmup: 4 }),
    sched.rex({ peak: 1, steps: 40, beta: 0.9 }),
    sched.table([1, 0.5]),
    sched.cosineWarmRestarts({ base: 1, t0: 3, tMult: 2, etaMin: 0.01 }),
    sched.oneCycle({ maxLr: 1, totalSteps: 30, threePhase: true }),
    sched.oneCycleMomentum({ totalSteps: 30 }),
    sched.wsd({ peak: 1, warmup: 3, stable: 5, decay: 10, decayShape: 'exp', halfLife: 3, minRatio: 0.1 }),
    sched.power({ a: 1, b: -0.5, max: 0.1, warmup: 3, tokensPerStep: 10, decay: { start: 20, steps: 5, shape: '1-sqrt' } }),
    sched.infinite({ peak: 1, warmup: 2, cooldown: 5, constant: 0.3, anneal: { start: 20, steps: 5, min: 0.01 } }),
    sched.rewarm({ peak: 1, warmup: 3, then: sched.rex({ peak: 1, steps: 10 }) }),
    sched.seq([{ schedule: sched.warmup({ to: 1, steps: 3 }), steps: 3 }, { schedule: sched.constant(1) }]),
    sched.mul([sched.constant(2), 0.5]),
    sched.min([sched.constant(2), 0.5]),
    sched.max([sched.constant(2), 0.5]),
    sched.relative(sched.constant(0.5)),
    sched.torch.stepLR({ base: 1, stepSize: 3 }),
    sched.torch.multiStepLR({ base: 1, milestones: [5, 2] }),
    sched.torch.exponentialLR({ base: 1, gamma: 0.9 }),
    sched.torch.linearLR({ base: 1 }),
    sched.torch.polynomialLR({ base: 1, totalIters: 10, power: 2 }),
    sched.torch.cosineAnnealingLR({ base: 1, tMax: 7, etaMin: 0.1 }),
  ];

  it('every kind has a constructor here, and survives JSON with the same values', () => {
    expect(new Set(all.map((s) => s.kind))).toEqual(new Set(sched.KINDS));
    for (const s of all) {
      expect(Object.isFrozen(s), s.kind).toBe(true);
      const back = JSON.parse(JSON.stringify(s)) as Schedule;
      expect(back).toEqual(s);
      expect(Array.from(sched.trace(back, 40)), s.kind).toEqual(Array.from(sched.trace(s, 40)));
      expect(sched.trace(s, 40).every(Number.isFinite), s.kind).toBe(true);
    }
  });

  it('defaults are filled in; sameSchedule ignores key order and spelled-out defaults', () => {
    const s = sched.wsd({ peak: 1, warmup: 1, stable: 1, decay: 1 });
    expect(s).toEqual({ kind: 'wsd', peak: 1, warmup: 1, stable: 1, decay: 1, warmupShape: 'linear', decayShape: 'cosine', minRatio: 0 });
    expect(sched.sameSchedule(s, { decay: 1, kind: 'wsd', stable: 1, peak: 1, warmup: 1 } as Schedule)).toBe(true);
    expect(sched.sameSchedule(s, sched.wsd({ peak: 1, warmup: 1, stable: 1, decay: 2 }))).toBe(false);
  });
});

describe('bad specs throw ValueError naming the schedule and the field', () => {
  const bad: [() => unknown, RegExp][] = [
    [() => sched.wsd({ peak: 1, warmup: -1, stable: 1, decay: 1 }), /sched\.wsd: 'warmup' must be an integer >= 0, got -1/],
    [() => sched.cosine({ from: NaN, steps: 10 }), /sched\.cosine: 'from' must be a finite number, got NaN/],
    [() => sched.linear({ from: 1, to: 0, steps: 2.5 }), /sched\.linear: 'steps' must be an integer >= 0, got 2.5/],
    [() => sched.rex({ peak: 1, steps: 0 }), /sched\.rex: 'steps' must be an integer >= 1, got 0/],
    [() => sched.rex({ peak: 1, steps: 10, beta: 2 }), /'beta' must be a finite number >= 0 and <= 1, got 2/],
    [() => sched.wsd({ peak: 1, warmup: 1, stable: 1, decay: 1, decayShape: 'exp' }), /sched\.wsd: 'halfLife' must be a finite number > 0, got nothing/],
    [() => sched.wsd({ peak: 1, warmup: 1, stable: 1, decay: 1, halfLife: 3 }), /'halfLife' is only used with decayShape 'exp'/],
    [() => sched.wsd({ peak: 1, warmup: 1, stable: 1, decay: 1, decayShape: 'sqrt' as 'linear' }), /'decayShape' must be one of 'linear', 'cosine', '1-sqrt', '1-square', 'exp', got 'sqrt'/],
    [() => sched.power({ a: 1, b: 0.5, max: 1, warmup: 1, tokensPerStep: 1 }), /sched\.power: 'b' must be a finite number <= 0, got 0.5/],
    [() => sched.power({ a: 1, b: -0.5, max: 1, warmup: 10, tokensPerStep: 1, decay: { start: 5, steps: 3 } }), /sched\.power: 'start' must be an integer >= 10, got 5 \(at decay\)/],
    [() => sched.table([1, Infinity]), /sched\.table: 'values\[1\]' must be a finite number, got Infinity/],
    [() => sched.seq([{ schedule: sched.constant(1) }, { schedule: sched.constant(2) }]), /sched\.seq: 'parts\[0\]\.steps' must be an integer >= 0/],
    [() => sched.seq([{ schedule: sched.constant(1), steps: 3 }, { schedule: { kind: 'cosine', from: 1, steps: -4 } as Schedule }]), /sched\.cosine: 'steps' must be an integer >= 1, got -4 \(at parts\[1\]\.schedule\)/],
    [() => sched.mul([sched.constant(1), { kind: 'nope' } as unknown as Schedule]), /unknown schedule kind 'nope' at of\[1\]/],
    [() => sched.lrAt({ kind: 'wsd', peak: 1, warmup: 1, stable: 1, decay: 1, decayType: 'linear' } as unknown as Schedule, 0), /sched\.wsd: unknown field 'decayType'/],
    [() => sched.lrAt(sched.constant(1), -1), /sched\.lrAt: 'step' must be an integer >= 0/],
    [() => sched.lrAt(sched.constant(1), NaN), /'step' must be an integer >= 0 \(updates already applied\), got NaN/],
    [() => sched.lrAt(sched.constant(1), 0.5), /'step' must be an integer/],
    [() => sched.lrAt(sched.power({ a: 1, b: -0.5, max: 1, warmup: 1, tokensPerStep: 1 }), 3, { tokens: -5 }), /'ctx\.tokens' must be a finite number >= 0, got -5/],
    [() => sched.lrAt(null as unknown as Schedule, 0), /a schedule must be an object with a 'kind', got null/],
    [() => sched.constant(Infinity), /sched\.constant: 'value' must be a finite number, got Infinity/],
    [() => sched.oneCycle({ maxLr: 1, totalSteps: 0 }), /sched\.oneCycle: 'totalSteps' must be an integer >= 1, got 0/],
  ];
  bad.forEach(([f, re], i) => {
    it(`case ${i}: ${re.source.slice(0, 60)}`, () => {
      expect(f).toThrow(kiln.ValueError);
      expect(f).toThrow(re);
    });
  });
});
