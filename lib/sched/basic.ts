// The elementary schedules of schedules.md: constant, linear (optax
// `linear_schedule`), polynomial (optax `polynomial_schedule`), warmup (linear /
// cosine / 1-sqrt), cosine (SGDR / PyTorch closed form, with exponent and hard
// restarts), inverse sqrt, REX and explicit tables.
import { cos } from './cos';
import { lerp, warmupFactor, WARMUP_SHAPES } from './shapes';
import type { Constant, Cosine, Family, InverseSqrt, Linear, Polynomial, Rex, Table, Warmup } from './spec';

export const constantFamily: Family<Constant> = {
  normalize: (f) => ({ kind: 'constant', value: f.num('value') }),
  at: (s) => s.value,
};

export const linearFamily: Family<Linear> = {
  normalize: (f) => ({ kind: 'linear', from: f.num('from'), to: f.num('to'), steps: f.steps('steps') }),
  // from + (to - from) * min(t, N) / N, held at `to` after N steps.
  at: (s, t) => lerp(s.from, s.to, t, s.steps),
};

export const polynomialFamily: Family<Polynomial> = {
  normalize: (f) => ({ kind: 'polynomial', from: f.num('from'), to: f.num('to', { def: 0 }), steps: f.steps('steps', 1), power: f.num('power', { def: 1, min: 0, above: true }) }),
  // optax polynomial_schedule: (from - to) * (1 - min(t, N)/N)^power + to.
  at: (s, t) => (t <= 0 ? s.from : t >= s.steps ? s.to : s.to + (s.from - s.to) * Math.pow((s.steps - t) / s.steps, s.power)),
};

export const warmupFamily: Family<Warmup> = {
  normalize: (f) => ({ kind: 'warmup', from: f.num('from', { def: 0 }), to: f.num('to'), steps: f.steps('steps'), shape: f.oneOf('shape', WARMUP_SHAPES, 'linear') }),
  // from -> to over W steps; linear is HF's lr * t / W (0 at t = 0), then `to`.
  at: (s, t) => {
    if (t >= s.steps) return s.to;
    if (s.shape === 'linear') return lerp(s.from, s.to, t, s.steps);
    return s.from + (s.to - s.from) * warmupFactor(s.shape, t / s.steps);
  },
};

export const cosineFamily: Family<Cosine> = {
  normalize: (f) => ({
    kind: 'cosine',
    from: f.num('from'),
    to: f.num('to', { def: 0 }),
    steps: f.steps('steps', 1),
    exponent: f.num('exponent', { def: 1, min: 0, above: true }),
    cycles: f.steps('cycles', 1, 1),
  }),
  // to + (from - to) * ((1 + cos(pi q)) / 2)^exponent, q = t / T (Loshchilov & Hutter, SGDR;
  // the arithmetic of PyTorch's closed form); with `cycles` hard restarts q = (cycles t / T) mod 1
  // (HF get_cosine_with_hard_restarts_schedule_with_warmup). Held at `to` after T steps.
  at: (s, t) => {
    if (t >= s.steps) return s.to;
    const c = s.cycles === 1 ? cos((Math.PI * t) / s.steps) : cos(Math.PI * ((s.cycles * (t / s.steps)) % 1));
    if (s.exponent === 1) return s.to + ((s.from - s.to) * (1 + c)) / 2;
    return s.to + (s.from - s.to) * Math.pow((1 + c) / 2, s.exponent);
  },
};

export const inverseSqrtFamily: Family<InverseSqrt> = {
  normalize: (f) => ({ kind: 'inverseSqrt', peak: f.num('peak'), warmup: f.steps('warmup', 1) }),
  // eta * sqrt(W / max(t, W)) (schedules.md; Vaswani et al. without the ramp: compose with warmup for one).
  at: (s, t) => s.peak * Math.sqrt(s.warmup / Math.max(t, s.warmup)),
};

export const rexFamily: Family<Rex> = {
  normalize: (f) => ({ kind: 'rex', peak: f.num('peak'), steps: f.steps('steps', 1), beta: f.num('beta', { def: 1, min: 0, max: 1 }) }),
  // Chen et al. 2022 (REX): eta * (1 - z) / (0.5 + 0.5 * (1 - beta z)), z = min(t, N) / N;
  // beta = 1 is the paper's form, beta = 0.9 the reference code's.
  at: (s, t) => {
    const z = Math.min(t, s.steps) / s.steps;
    return s.peak * ((1 - z) / (0.5 + 0.5 * (1 - s.beta * z)));
  },
};

export const tableFamily: Family<Table> = {
  normalize: (f) => {
    const raw = f.any('values');
    if (!Array.isArray(raw) || raw.length === 0) f.fail('values', 'a non-empty array of finite numbers', raw);
    const v = raw as unknown[];
    const bad = v.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
    if (bad >= 0) f.fail(`values[${bad}]`, 'a finite number', v[bad]);
    return { kind: 'table', values: v.slice() as number[] };
  },
  // Explicit per-step values; the last one is held.
  at: (s, t) => s.values[Math.min(t, s.values.length - 1)],
};
