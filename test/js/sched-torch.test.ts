// kiln.sched against PyTorch 1.13: lr traces (get_last_lr() after k steps) of
// OneCycleLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, LinearLR,
// PolynomialLR, StepLR, MultiStepLR and ExponentialLR recorded by
// test/fixtures/gen_schedules.py must equal lrAt(spec, k) within 4 ulp over the
// whole trace (../shared/specs/schedules.md, "Reference values").
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const sched = kiln.sched;

interface Case {
  name: string;
  cls: string;
  kwargs: Record<string, unknown>;
  optimizer: 'sgd' | 'adam';
  lr: number;
  steps: number;
  lrs: number[];
  momentum?: number[];
}

const fixture = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/schedules_torch113.json'), 'utf8')) as { torch: string; cases: Case[] };

/** Distance in units in the last place: how many float64 values lie between a and b. */
function ulps(a: number, b: number): number {
  if (a === b) return 0;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
  const bits = (x: number): bigint => {
    const v = new BigInt64Array(new Float64Array([x]).buffer)[0];
    return v < 0n ? -(v & 0x7fffffffffffffffn) : v; // monotone integer order across signs
  };
  const d = bits(a) - bits(b);
  return Number(d < 0n ? -d : d);
}

function expectUlps(got: ArrayLike<number>, want: readonly number[], maxUlps: number, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let k = 0; k < want.length; ++k) {
    const u = ulps(got[k], want[k]);
    if (u > worst) [worst, at] = [u, k];
  }
  expect(worst, `${what}: ${worst} ulp at step ${at} (kiln ${got[at]}, torch ${want[at]})`).toBeLessThanOrEqual(maxUlps);
}

const num = (kw: Record<string, unknown>, k: string, def: number): number => (kw[k] === undefined ? def : (kw[k] as number));

/** The kiln spec equivalent to a fixture case (PyTorch's parameter names mapped by hand). */
function specOf(c: Case): kiln.sched.Schedule {
  const kw = c.kwargs;
  switch (c.cls) {
    case 'OneCycleLR':
      return sched.oneCycle({
        maxLr: kw.max_lr as number,
        totalSteps: kw.total_steps as number,
        pctStart: num(kw, 'pct_start', 0.3),
        divFactor: num(kw, 'div_factor', 25),
        finalDivFactor: num(kw, 'final_div_factor', 1e4),
        threePhase: (kw.three_phase as boolean | undefined) ?? false,
        anneal: (kw.anneal_strategy as 'cos' | 'linear' | undefined) ?? 'cos',
      });
    case 'CosineAnnealingLR':
      return sched.torch.cosineAnnealingLR({ base: c.lr, tMax: kw.T_max as number, etaMin: num(kw, 'eta_min', 0) });
    case 'CosineAnnealingWarmRestarts':
      return sched.cosineWarmRestarts({ base: c.lr, t0: kw.T_0 as number, tMult: num(kw, 'T_mult', 1), etaMin: num(kw, 'eta_min', 0) });
    case 'LinearLR':
      return sched.torch.linearLR({ base: c.lr, startFactor: kw.start_factor as number, endFactor: kw.end_factor as number, totalIters: kw.total_iters as number });
    case 'PolynomialLR':
      return sched.torch.polynomialLR({ base: c.lr, totalIters: kw.total_iters as number, power: kw.power as number });
    case 'StepLR':
      return sched.torch.stepLR({ base: c.lr, stepSize: kw.step_size as number, gamma: kw.gamma as number });
    case 'MultiStepLR':
      return sched.torch.multiStepLR({ base: c.lr, milestones: kw.milestones as number[], gamma: kw.gamma as number });
    case 'ExponentialLR':
      return sched.torch.exponentialLR({ base: c.lr, gamma: kw.gamma as number });
  }
  throw new Error(`no mapping for ${c.cls}`);
}

function momentumOf(c: Case): kiln.sched.Schedule {
  const kw = c.kwargs;
  return sched.oneCycleMomentum({
    totalSteps: kw.total_steps as number,
    pctStart: num(kw, 'pct_start', 0.3),
    threePhase: (kw.three_phase as boolean | undefined) ?? false,
    anneal: (kw.anneal_strategy as 'cos' | 'linear' | undefined) ?? 'cos',
    baseMomentum: num(kw, 'base_momentum', 0.85),
    maxMomentum: num(kw, 'max_momentum', 0.95),
  });
}

describe('PyTorch 1.13 traces (test/fixtures/gen_schedules.py)', () => {
  it('the fixture covers every scheduler the issue names', () => {
    expect(fixture.torch.startsWith('1.13')).toBe(true);
    const classes = new Set(fixture.cases.map((c) => c.cls));
    for (const c of ['OneCycleLR', 'CosineAnnealingLR', 'CosineAnnealingWarmRestarts', 'LinearLR', 'PolynomialLR', 'StepLR', 'MultiStepLR', 'ExponentialLR']) expect(classes.has(c), c).toBe(true);
    const oc = fixture.cases.filter((c) => c.cls === 'OneCycleLR');
    expect(new Set(oc.map((c) => `${c.kwargs.anneal_strategy ?? 'cos'}/${c.kwargs.three_phase ?? false}`)).size).toBe(4);
  });

  for (const c of fixture.cases) {
    it(`${c.name}: lrAt(spec, k) == get_last_lr() after k steps, k = 0..${c.steps}`, () => {
      const spec = specOf(c);
      // Through JSON too: a spec is data.
      const fromJson = JSON.parse(JSON.stringify(spec)) as kiln.sched.Schedule;
      const got = c.lrs.map((_, k) => sched.lrAt(spec, k));
      expectUlps(got, c.lrs, 4, c.name);
      // Random access (no step-by-step replay cache warm) gives the same values.
      const order = c.lrs.map((_, k) => k).reverse();
      const back = new Array<number>(c.lrs.length);
      for (const k of order) back[k] = sched.lrAt(fromJson, k);
      expectUlps(back, c.lrs, 4, `${c.name} (from JSON, backwards)`);
      if (c.momentum) {
        const m = momentumOf(c);
        expectUlps(c.momentum.map((_, k) => sched.lrAt(m, k)), c.momentum, 4, `${c.name} momentum`);
      }
    });
  }

  it('LRScheduler driving a plain optimizer object reproduces OneCycleLR lr and momentum / beta1', () => {
    for (const c of fixture.cases.filter((x) => x.cls === 'OneCycleLR')) {
      const group = c.optimizer === 'sgd' ? { lr: c.lr, momentum: 0.9 } : { lr: c.lr, betas: [0.9, 0.999] as [number, number] };
      const opt = { paramGroups: [group] };
      const s = new sched.LRScheduler(opt, specOf(c), { momentum: momentumOf(c) });
      const lrs = [opt.paramGroups[0].lr];
      const mom = [c.optimizer === 'sgd' ? (group as { momentum: number }).momentum : (group as { betas: [number, number] }).betas[0]];
      for (let k = 0; k < c.steps; ++k) {
        s.step();
        lrs.push(opt.paramGroups[0].lr);
        mom.push(c.optimizer === 'sgd' ? (group as { momentum: number }).momentum : (group as { betas: [number, number] }).betas[0]);
      }
      expectUlps(lrs, c.lrs, 4, `${c.name} via LRScheduler`);
      expectUlps(mom, c.momentum!, 4, `${c.name} momentum via LRScheduler`);
      if (c.optimizer === 'adam') expect((group as { betas: [number, number] }).betas[1]).toBe(0.999);
    }
  });

  it("kiln's closed forms agree with PyTorch's recursions to rounding (the recursions drift by a few ulp, so 1e-12 relative)", () => {
    const close = (got: number[], want: number[], what: string): void => {
      got.forEach((g, k) => expect(Math.abs(g - want[k]), `${what} at ${k}`).toBeLessThanOrEqual(1e-12 * Math.abs(want[k]) + 1e-300));
    };
    for (const c of fixture.cases) {
      const kw = c.kwargs;
      if (c.cls === 'CosineAnnealingLR') {
        const T = kw.T_max as number;
        const s = sched.cosine({ from: c.lr, to: num(kw, 'eta_min', 0), steps: T });
        // The recursion ends at eta_min + rounding: compare where the value is not a difference of nearly equal numbers.
        close(c.lrs.slice(0, T).map((_, k) => sched.lrAt(s, k)), c.lrs.slice(0, T), c.name);
      } else if (c.cls === 'LinearLR') {
        const s = sched.linear({ from: c.lr * (kw.start_factor as number), to: c.lr * (kw.end_factor as number), steps: kw.total_iters as number });
        close(c.lrs.map((_, k) => sched.lrAt(s, k)), c.lrs, c.name);
      } else if (c.cls === 'ExponentialLR') {
        // base * gamma^k: PyTorch's _get_closed_form_lr.
        close(c.lrs.map((_, k) => c.lr * Math.pow(kw.gamma as number, k)), c.lrs, 'ExponentialLR closed form (reference)');
      }
    }
  });
});
