// kiln.optim.LAMB, LARS and SGD against the float64 references of
// optim-ref.ts (written from ../shared/specs/optim.md), over their options,
// plus optim.md's hand-checkable cases: zero grads in 'update' mode give
// p1 = (1 - lr) p0; an adapted tensor moves by ||dp|| = lr ||p||; p = 0 gives
// r = 1; LAMB(g) clipped == LAMB(g max / G) unclipped; a wd-0 group is not
// adapted ('nonzeroWd').
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { expectClose } from './helpers';
import { hashValues, vals } from './optim-data';
import { lambRef, larsRef, sgdRef, type LambRefOptions, type LarsRefOptions, type RefTensor, type Vec } from './optim-ref';

const STEPS = 5;
const P_TOL = { rtol: 1e-5, atol: 1e-6 };
const STATE_RTOL = 1e-5;

interface Spec {
  name: string;
  size: number;
  scale: number; // of the gradients
}

const SPECS: Spec[] = [
  { name: 'embed.weight', size: 0, scale: 1 },
  { name: 'layer0.bias', size: 1, scale: 1 },
  { name: 'layer0.norm.weight', size: 7, scale: 0.5 },
  { name: 'layer0.weight', size: 4099, scale: 0.25 },
  { name: 'layer1.weight', size: 20000, scale: 2 }, // two norm blocks
];

function initial(seed: number, specs: Spec[]): Float32Array[] {
  return specs.map((s, i) => hashValues(seed * 31 + i, s.size, 1));
}

function grads(seed: number, step: number, specs: Spec[]): Float32Array[] {
  return specs.map((s, i) => hashValues(seed * 977 + step * 13 + i, s.size, s.scale));
}

function named(values: Float32Array[], specs: Spec[]): [string, kiln.Tensor][] {
  return values.map((v, i) => [specs[i].name, kiln.tensor(v, [v.length])]);
}

function setGrads(params: [string, kiln.Tensor][], g: Float32Array[]): void {
  params.forEach(([, p], i) => (p.grad = kiln.tensor(g[i], [g[i].length])));
}

function disposeAll(opt: kiln.optim.Optimizer<never> | { dispose(): void }, params: [string, kiln.Tensor][]): void {
  opt.dispose();
  params.forEach(([, p]) => p.dispose());
}

const maxAbs = (x: Vec): number => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const matches = (name: string, pats: string[]) => pats.some((p) => new RegExp(p).test(name));

// ---- LAMB ---------------------------------------------------------------------------------

interface LambCase extends LambRefOptions {
  weightDecay: number;
  adapt: 'nonzeroWd' | 'always' | 'never';
  excludeFromWeightDecay: string[];
  excludeFromAdaptation: string[];
  gradScale: number;
}

const LAMB_BASE: LambCase = {
  lr: 1e-2,
  betas: [0.9, 0.999],
  eps: 1e-6,
  weightDecay: 0.01,
  biasCorrection: true,
  gradAveraging: true,
  maxGradNorm: 1.0,
  decay: 'update',
  adapt: 'nonzeroWd',
  trustClip: false,
  minCoeff: null,
  maxCoeff: null,
  excludeFromWeightDecay: [],
  excludeFromAdaptation: [],
  gradScale: 1,
};

const LAMB_CASES: [string, Partial<LambCase>][] = [
  ['defaults (clipping active)', {}],
  ['no clipping (maxGradNorm null)', { maxGradNorm: null }],
  ['maxGradNorm 0 disables clipping', { maxGradNorm: 0 }],
  ['maxGradNorm above G', { maxGradNorm: 1e4 }],
  ["decay 'l2'", { decay: 'l2' }],
  ["decay 'decoupled'", { decay: 'decoupled', weightDecay: 0.1 }],
  ["adapt 'always'", { adapt: 'always' }],
  ["adapt 'never'", { adapt: 'never' }],
  ['trustClip', { trustClip: true, weightDecay: 0.5 }],
  ['minCoeff / maxCoeff', { minCoeff: 0.55, maxCoeff: 0.6, adapt: 'always' }],
  ['no bias correction, no grad averaging', { biasCorrection: false, gradAveraging: false }],
  ['betas 0.8 / 0.99, eps 1e-8, lr 3e-3', { betas: [0.8, 0.99], eps: 1e-8, lr: 3e-3 }],
  ['exclusions by name', { excludeFromWeightDecay: ['bias$', 'norm'], excludeFromAdaptation: ['^embed', 'layer1'], adapt: 'always' }],
  ['gradScale 1024', { gradScale: 1024 }],
];

/** The reference tensors of one LAMB group. */
function lambRefGroup(o: LambCase, values: Float32Array[], specs: Spec[]): RefTensor[] {
  return values.map((v, i) => {
    const wd = matches(specs[i].name, o.excludeFromWeightDecay) ? 0 : o.weightDecay;
    const excluded = matches(specs[i].name, o.excludeFromAdaptation);
    const adapt = !excluded && (o.adapt === 'always' || (o.adapt === 'nonzeroWd' && wd !== 0));
    return { p: Float64Array.from(v), wd, adapt };
  });
}

function expectLambState(opt: kiln.optim.LAMB, refs: RefTensor[], offset: number, what: string): void {
  const sd = opt.stateDict();
  refs.forEach((r, i) => {
    const st = sd.state[offset + i];
    expect(st.step, `${what}: step ${i}`).toBe(r.step);
    // m sums gradient terms of both signs: its rounding error scales with the largest |m|, not with m
    expectClose(vals(st.exp_avg as kiln.Tensor), r.m as Vec, STATE_RTOL, STATE_RTOL * maxAbs(r.m as Vec), `${what}: exp_avg ${i}`);
    expectClose(vals(st.exp_avg_sq as kiln.Tensor), r.v as Vec, STATE_RTOL, 1e-14, `${what}: exp_avg_sq ${i}`);
    st.exp_avg?.dispose();
    st.exp_avg_sq?.dispose();
  });
}

describe('LAMB vs the float64 reference', () => {
  const specs2: Spec[] = [
    { name: 'head.weight', size: 33, scale: 1 },
    { name: 'head.bias', size: 300, scale: 0.5 },
  ];
  for (const [title, over] of LAMB_CASES) {
    it(title, () => {
      const o: LambCase = { ...LAMB_BASE, ...over };
      const v1 = initial(1, SPECS);
      const v2 = initial(2, specs2);
      const p1 = named(v1, SPECS);
      const p2 = named(v2, specs2);
      const { gradScale, ...opts } = o;
      // group 1: weight decay 0 and its own lr (not adapted under 'nonzeroWd')
      const opt = new kiln.optim.LAMB([{ params: p1 }, { params: p2, weightDecay: 0, lr: o.lr * 2 }], opts);
      const r1 = lambRefGroup(o, v1, SPECS);
      const r2 = lambRefGroup({ ...o, weightDecay: 0, lr: o.lr * 2 }, v2, specs2);
      for (let k = 1; k <= STEPS; ++k) {
        const g1 = grads(3, k, SPECS).map((g) => g.map((x) => x * gradScale));
        const g2 = grads(4, k, specs2).map((g) => g.map((x) => x * gradScale));
        setGrads(p1, g1);
        setGrads(p2, g2);
        const res = opt.step({ gradScale });
        expect(res.foundInf).toBe(false);
        const clipping = o.maxGradNorm !== null && o.maxGradNorm > 0;
        expect(res.gradNorm === null, 'gradNorm is reported when clipping').toBe(!clipping);
        lambRef(
          [
            { o, t: r1, g: g1.map((g) => Float64Array.from(g)) },
            { o: { ...o, lr: o.lr * 2 }, t: r2, g: g2.map((g) => Float64Array.from(g)) },
          ],
          gradScale,
        );
      }
      [...r1, ...r2].forEach((r, i) => {
        const p = i < r1.length ? p1[i][1] : p2[i - r1.length][1];
        expectClose(vals(p), r.p, P_TOL.rtol, P_TOL.atol, `${title}: p ${i}`);
      });
      expectLambState(opt, r1, 0, title);
      expectLambState(opt, r2, r1.length, title);
      disposeAll(opt, [...p1, ...p2]);
    });
  }

  it('zero gradients, wd > 0, decay update: p1 = (1 - lr) p0', () => {
    const p0 = hashValues(5, 1000, 1);
    const p = kiln.tensor(p0, [1000]);
    p.grad = kiln.zeros([1000]);
    const opt = new kiln.optim.LAMB([p], { lr: 0.05, weightDecay: 0.3 });
    opt.step();
    expectClose(vals(p), Float64Array.from(p0, (x) => (1 - 0.05) * x), 1e-6, 0, 'p1');
    opt.dispose();
    p.dispose();
  });

  it('an adapted tensor without trustClip moves by ||dp|| = lr ||p||', () => {
    for (const decay of ['update', 'l2'] as const) {
      const p0 = Float64Array.from(hashValues(6, 5000, 1));
      const p = kiln.tensor(Float32Array.from(p0), [5000]);
      const opt = new kiln.optim.LAMB([p], { lr: 0.05, weightDecay: 0.01, adapt: 'always', decay, maxGradNorm: null });
      let before: Float64Array = p0;
      for (let k = 1; k <= 3; ++k) {
        p.grad = kiln.tensor(hashValues(60 + k, 5000, 1), [5000]);
        opt.step();
        const after = vals(p);
        const dp = Math.sqrt(after.reduce((s, x, i) => s + (x - before[i]) ** 2, 0));
        const pn = Math.sqrt(before.reduce((s, x) => s + x * x, 0));
        expect(Math.abs(dp - 0.05 * pn) / (0.05 * pn), `${decay} step ${k}: ||dp|| ${dp} vs lr ||p|| ${0.05 * pn}`).toBeLessThan(1e-4);
        before = after;
      }
      opt.dispose();
      p.dispose();
    }
  });

  it('p = 0 gives r = 1: p1 = -lr g / (|g| + eps) at step 1', () => {
    const g = hashValues(7, 100, 0.01);
    const p = kiln.zeros([100]);
    p.grad = kiln.tensor(g, [100]);
    const opt = new kiln.optim.LAMB([p], { lr: 0.1, weightDecay: 0.01, eps: 1e-6, maxGradNorm: null });
    opt.step();
    expectClose(vals(p), Float64Array.from(g, (x) => (-0.1 * x) / (Math.abs(x) + 1e-6)), 1e-5, 1e-9, 'p1');
    opt.dispose();
    p.dispose();
  });

  it('clipping at G > maxGradNorm == the gradients scaled by maxGradNorm / G without clipping', () => {
    const max = 0.5;
    const a0 = named(initial(8, SPECS), SPECS);
    const b0 = named(initial(8, SPECS), SPECS);
    const clipped = new kiln.optim.LAMB(a0, { maxGradNorm: max, lr: 0.01 });
    const plain = new kiln.optim.LAMB(b0, { maxGradNorm: null, lr: 0.01 });
    for (let k = 1; k <= 4; ++k) {
      const g = grads(9, k, SPECS);
      const G = Math.sqrt(g.reduce((s, x) => s + x.reduce((t, y) => t + y * y, 0), 0));
      expect(G).toBeGreaterThan(max);
      setGrads(a0, g);
      setGrads(
        b0,
        g.map((x) => x.map((y) => (y * max) / G)),
      );
      const r = clipped.step();
      expect(r.gradNorm as number).toBeCloseTo(G, 3);
      plain.step();
    }
    a0.forEach(([, p], i) => expectClose(vals(p), vals(b0[i][1]), 1e-5, 1e-7, `p ${i}`));
    disposeAll(clipped, a0);
    disposeAll(plain, b0);
  });

  it("a wd-0 group is not adapted under 'nonzeroWd': p1 = p0 - lr u", () => {
    const p0 = hashValues(10, 50, 1);
    const g = hashValues(11, 50, 1);
    const p = kiln.tensor(p0, [50]);
    p.grad = kiln.tensor(g, [50]);
    const opt = new kiln.optim.LAMB([{ params: [p], weightDecay: 0 }], { lr: 0.01, maxGradNorm: null });
    opt.step();
    // step 1: m_hat = g, v_hat = g^2, u = g / (|g| + eps), r = 1
    expectClose(vals(p), Float64Array.from(p0, (x, i) => x - (0.01 * g[i]) / (Math.abs(g[i]) + 1e-6)), 1e-6, 1e-8, 'p1');
    opt.dispose();
    p.dispose();
  });
});

// ---- LARS ---------------------------------------------------------------------------------

interface LarsCase extends LarsRefOptions {
  weightDecay: number;
  excludeFromWeightDecay: string[];
  excludeFromAdaptation: string[];
}

const LARS_BASE: LarsCase = {
  lr: 0.1,
  momentum: 0.9,
  dampening: 0,
  nesterov: false,
  weightDecay: 0,
  trustCoefficient: 0.001,
  eps: 1e-8,
  trustClip: false,
  momentumStyle: 'sgd',
  norm: 'sum',
  maximize: false,
  excludeFromWeightDecay: [],
  excludeFromAdaptation: [],
};

const LARS_CASES: [string, Partial<LarsCase>][] = [
  ['defaults', {}],
  ['weight decay', { weightDecay: 1e-2 }],
  ['nesterov', { nesterov: true, weightDecay: 1e-3 }],
  ['dampening 0.3', { dampening: 0.3, weightDecay: 1e-3 }],
  ["momentumStyle 'paper'", { momentumStyle: 'paper', weightDecay: 1e-3 }],
  ["momentumStyle 'paper', nesterov", { momentumStyle: 'paper', nesterov: true, weightDecay: 1e-3 }],
  ["norm 'combined'", { norm: 'combined', weightDecay: 5e-2 }],
  ['trustClip (LARC clip)', { trustClip: true, trustCoefficient: 0.02, weightDecay: 1e-3 }],
  ['no momentum', { momentum: 0, weightDecay: 1e-2 }],
  ['maximize', { maximize: true, weightDecay: 1e-2 }],
  ['exclusions by name', { weightDecay: 1e-2, excludeFromWeightDecay: ['bias', 'norm'], excludeFromAdaptation: ['bias', 'norm'] }],
];

function larsRefs(o: LarsCase, values: Float32Array[], specs: Spec[]): RefTensor[] {
  return values.map((v, i) => ({
    p: Float64Array.from(v),
    wd: matches(specs[i].name, o.excludeFromWeightDecay) ? 0 : o.weightDecay,
    adapt: !matches(specs[i].name, o.excludeFromAdaptation),
  }));
}

describe('LARS vs the float64 reference', () => {
  for (const [title, over] of LARS_CASES) {
    it(title, () => {
      const o: LarsCase = { ...LARS_BASE, ...over };
      const values = initial(12, SPECS);
      const params = named(values, SPECS);
      const opt = new kiln.optim.LARS(params, o);
      const refs = larsRefs(o, values, SPECS);
      for (let k = 1; k <= STEPS; ++k) {
        if (k === 4) {
          opt.paramGroups[0].lr = o.lr / 2; // lr changed mid-run (a scheduler)
          o.lr /= 2;
        }
        const g = grads(13, k, SPECS);
        setGrads(params, g);
        expect(opt.step().foundInf).toBe(false);
        larsRef(o, refs, g.map((x) => Float64Array.from(x)));
      }
      const sd = opt.stateDict();
      refs.forEach((r, i) => {
        expectClose(vals(params[i][1]), r.p, P_TOL.rtol, P_TOL.atol, `${title}: p ${i}`);
        const buf = sd.state[i]?.momentum_buffer;
        if (o.momentum > 0) {
          expectClose(vals(buf as kiln.Tensor), r.buf as Vec, STATE_RTOL, STATE_RTOL * maxAbs(r.buf as Vec), `${title}: momentum_buffer ${i}`);
        } else {
          expect(buf).toBeUndefined();
        }
        buf?.dispose();
      });
      disposeAll(opt, params);
    });
  }

  it('p = 0 or g = 0 gives a = 1 (weight decay kept)', () => {
    const g = hashValues(14, 20, 1);
    const p0 = hashValues(15, 20, 1);
    const zeroP = kiln.zeros([20]);
    zeroP.grad = kiln.tensor(g, [20]);
    const zeroG = kiln.tensor(p0, [20]);
    zeroG.grad = kiln.zeros([20]);
    const opt = new kiln.optim.LARS([zeroP, zeroG], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    opt.step();
    // first step, 'sgd' style: buf = d, p -= lr d; d = g + wd p with a = 1
    expectClose(vals(zeroP), Float64Array.from(g, (x) => -0.1 * x), 1e-6, 1e-9, 'p = 0');
    expectClose(vals(zeroG), Float64Array.from(p0, (x) => x - 0.1 * 0.01 * x), 1e-6, 1e-9, 'g = 0');
    opt.dispose();
    zeroP.dispose();
    zeroG.dispose();
  });

  it('the first step without momentum moves by lr eta ||p|| ||g|| / (||g|| + wd ||p|| + eps) when wd = 0', () => {
    const p0 = Float64Array.from(hashValues(16, 3000, 1));
    const g = hashValues(17, 3000, 0.1);
    const p = kiln.tensor(Float32Array.from(p0), [3000]);
    p.grad = kiln.tensor(g, [3000]);
    const opt = new kiln.optim.LARS([p], { lr: 0.5, momentum: 0, trustCoefficient: 0.01 });
    opt.step();
    const after = vals(p);
    const dp = Math.sqrt(after.reduce((s, x, i) => s + (x - p0[i]) ** 2, 0));
    const pn = Math.sqrt(p0.reduce((s, x) => s + x * x, 0));
    expect(Math.abs(dp - 0.5 * 0.01 * pn) / (0.5 * 0.01 * pn)).toBeLessThan(1e-4);
    opt.dispose();
    p.dispose();
  });
});

// ---- SGD ------------------------------------------------------------------------------------

describe('SGD vs torch.optim.SGD semantics (float64 reference)', () => {
  const cases: [string, { lr: number; momentum: number; dampening: number; nesterov: boolean; maximize: boolean; weightDecay: number }][] = [
    ['plain', { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, maximize: false, weightDecay: 0 }],
    ['momentum + weight decay', { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: false, maximize: false, weightDecay: 1e-2 }],
    ['nesterov', { lr: 0.05, momentum: 0.8, dampening: 0, nesterov: true, maximize: false, weightDecay: 1e-3 }],
    ['dampening, maximize', { lr: 0.02, momentum: 0.5, dampening: 0.2, nesterov: false, maximize: true, weightDecay: 1e-2 }],
  ];
  for (const [title, o] of cases) {
    it(title, () => {
      const values = initial(18, SPECS);
      const params = named(values, SPECS);
      const opt = new kiln.optim.SGD(params, o);
      const refs: RefTensor[] = values.map((v) => ({ p: Float64Array.from(v), wd: o.weightDecay, adapt: false }));
      for (let k = 1; k <= STEPS; ++k) {
        const g = grads(19, k, SPECS);
        setGrads(params, g);
        opt.step();
        sgdRef(o, refs, g.map((x) => Float64Array.from(x)));
      }
      refs.forEach((r, i) => expectClose(vals(params[i][1]), r.p, P_TOL.rtol, P_TOL.atol, `${title}: p ${i}`));
      disposeAll(opt, params);
    });
  }
});
