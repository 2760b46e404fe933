// PyTorch 1.13's recursive ("chainable") schedulers reproduced operation by
// operation: each get_lr() multiplies the group's current lr, so the closed
// forms drift from PyTorch by many ulp over a long trace (CosineAnnealingLR by
// ~60 ulp in 300 steps). Values equal get_last_lr() after t steps, to the bit
// where JS and C agree on cos/pow (schedules.md: "reproduced exactly in its
// compat form"). lrAt(spec, t) replays the recursion from step 0, keeping the
// last state per spec so a scheduler stepping forward pays O(1) per step.
import { cos } from './cos';
import type {
  Family,
  TorchCosineAnnealingLR,
  TorchExponentialLR,
  TorchLinearLR,
  TorchMultiStepLR,
  TorchPolynomialLR,
  TorchSchedule,
  TorchStepLR,
} from './spec';

/** lr after the initial step (last_epoch = 0) and the step from last_epoch k-1 to k. */
interface Recursion<S> {
  first(s: S): number;
  next(s: S, k: number, lr: number): number;
}

const memo = new WeakMap<object, { k: number; lr: number }>();

function replay<S extends TorchSchedule>(r: Recursion<S>, s: S, t: number): number {
  let m = memo.get(s);
  if (!m || m.k > t) m = { k: 0, lr: r.first(s) };
  let { k, lr } = m;
  while (k < t) lr = r.next(s, ++k, lr);
  memo.set(s, { k, lr });
  return lr;
}

function family<S extends TorchSchedule>(normalize: Family<S>['normalize'], r: Recursion<S>): Family<S> {
  return { normalize, at: (s, t) => replay(r, s, t) };
}

/** Python's a % m for m > 0 (non-negative). */
const pymod = (a: number, m: number): number => ((a % m) + m) % m;

export const torchStepLRFamily = family<TorchStepLR>(
  (f) => ({ kind: 'torch.StepLR', base: f.num('base'), stepSize: f.steps('stepSize', 1), gamma: f.num('gamma', { def: 0.1 }) }),
  // lr * gamma when last_epoch % step_size == 0 (and last_epoch > 0), else lr.
  { first: (s) => s.base, next: (s, k, lr) => (k % s.stepSize === 0 ? lr * s.gamma : lr) },
);

export const torchMultiStepLRFamily = family<TorchMultiStepLR>(
  (f) => {
    const m = f.any('milestones');
    if (!Array.isArray(m) || m.some((x) => typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)) f.fail('milestones', 'an array of integers >= 0', m);
    return { kind: 'torch.MultiStepLR', base: f.num('base'), milestones: (m as number[]).slice().sort((a, b) => a - b), gamma: f.num('gamma', { def: 0.1 }) };
  },
  // lr * gamma ** (times last_epoch appears among the milestones: PyTorch keeps a Counter).
  {
    first: (s) => s.base,
    next: (s, k, lr) => {
      let count = 0;
      for (const x of s.milestones) if (x === k) ++count;
      return count === 0 ? lr : lr * Math.pow(s.gamma, count);
    },
  },
);

export const torchExponentialLRFamily = family<TorchExponentialLR>(
  (f) => ({ kind: 'torch.ExponentialLR', base: f.num('base'), gamma: f.num('gamma') }),
  { first: (s) => s.base, next: (s, _k, lr) => lr * s.gamma },
);

export const torchLinearLRFamily = family<TorchLinearLR>(
  (f) => ({
    kind: 'torch.LinearLR',
    base: f.num('base'),
    startFactor: f.num('startFactor', { def: 1 / 3, min: 0, above: true, max: 1 }),
    endFactor: f.num('endFactor', { def: 1, min: 0, max: 1 }),
    totalIters: f.steps('totalIters', 1, 5),
  }),
  {
    first: (s) => s.base * s.startFactor,
    // lr * (1 + (end - start) / (total * start + (k - 1) * (end - start))) while k <= total_iters.
    next: (s, k, lr) => {
      if (k > s.totalIters) return lr;
      const d = s.endFactor - s.startFactor;
      return lr * (1 + d / (s.totalIters * s.startFactor + (k - 1) * d));
    },
  },
);

export const torchPolynomialLRFamily = family<TorchPolynomialLR>(
  (f) => ({ kind: 'torch.PolynomialLR', base: f.num('base'), totalIters: f.steps('totalIters', 1, 5), power: f.num('power', { def: 1, min: 0 }) }),
  {
    first: (s) => s.base,
    // lr * ((1 - k / T) / (1 - (k - 1) / T)) ** power while k <= T.
    next: (s, k, lr) => (k > s.totalIters ? lr : lr * Math.pow((1.0 - k / s.totalIters) / (1.0 - (k - 1) / s.totalIters), s.power)),
  },
);

export const torchCosineAnnealingLRFamily = family<TorchCosineAnnealingLR>(
  (f) => ({ kind: 'torch.CosineAnnealingLR', base: f.num('base'), tMax: f.steps('tMax', 1), etaMin: f.num('etaMin', { def: 0 }) }),
  {
    first: (s) => s.base,
    next: (s, k, lr) => {
      const T = s.tMax;
      // At the restart points of the periodic closed form: lr + (base - eta_min) (1 - cos(pi / T)) / 2.
      if (pymod(k - 1 - T, 2 * T) === 0) return lr + ((s.base - s.etaMin) * (1 - cos(Math.PI / T))) / 2;
      // Otherwise (1 + cos(pi k / T)) / (1 + cos(pi (k - 1) / T)) * (lr - eta_min) + eta_min.
      return ((1 + cos((Math.PI * k) / T)) / (1 + cos((Math.PI * (k - 1)) / T))) * (lr - s.etaMin) + s.etaMin;
    },
  },
);
