// The public constructors: each validates its options, fills in the defaults
// and returns a frozen, JSON-serializable spec for lrAt / LRScheduler.
// Formulas and sources: the family files beside this one (../shared/specs/schedules.md).
import { make } from './evaluate';
import type {
  Anneal,
  Combine,
  Constant,
  Cosine,
  CosineWarmRestarts,
  DecayShape,
  Infinite,
  InverseSqrt,
  Linear,
  OneCycle,
  OneCycleMomentum,
  Polynomial,
  Power,
  Relative,
  Rewarm,
  Rex,
  Schedule,
  Seq,
  Table,
  TorchCosineAnnealingLR,
  TorchExponentialLR,
  TorchLinearLR,
  TorchMultiStepLR,
  TorchPolynomialLR,
  TorchStepLR,
  Warmup,
  WarmupShape,
  Wsd,
} from './spec';

/** lr = value at every step. */
export const constant = (value: number): Constant => make('constant', { value });

/** from -> to linearly over `steps`, then `to` (optax linear_schedule; HF linear decay with from = peak, to = 0). */
export const linear = (o: { from: number; to: number; steps: number }): Linear => make('linear', o);

/** (from - to) * (1 - t/steps)^power + to, then `to` (optax polynomial_schedule). */
export const polynomial = (o: { from: number; to?: number; steps: number; power?: number }): Polynomial => make('polynomial', o);

/** from (default 0) -> to over `steps` with a linear, cosine or 1-sqrt shape, then `to`; linear is HF's lr * t / W. */
export const warmup = (o: { to: number; steps: number; shape?: WarmupShape; from?: number }): Warmup => make('warmup', o);

/** to + (from - to) * ((1 + cos(pi t / steps)) / 2)^exponent, `cycles` hard restarts, then `to`. */
export const cosine = (o: { from: number; to?: number; steps: number; exponent?: number; cycles?: number }): Cosine => make('cosine', o);

/** peak * sqrt(warmup / max(t, warmup)). */
export const inverseSqrt = (o: { peak: number; warmup: number }): InverseSqrt => make('inverseSqrt', o);

/** REX: peak * (1 - z) / (0.5 + 0.5 (1 - beta z)), z = t / steps; beta 1 (default) is the paper's form. */
export const rex = (o: { peak: number; steps: number; beta?: number }): Rex => make('rex', o);

/** Explicit per-step values; the last is held. */
export const table = (values: readonly number[]): Table => make('table', { values });

/** PyTorch CosineAnnealingWarmRestarts(T_0 = t0, T_mult = tMult, eta_min = etaMin) with base lr `base`. */
export const cosineWarmRestarts = (o: { base: number; t0: number; tMult?: number; etaMin?: number }): CosineWarmRestarts => make('cosineWarmRestarts', o);

export interface OneCycleOptions {
  maxLr: number;
  totalSteps: number;
  pctStart?: number;
  divFactor?: number;
  finalDivFactor?: number;
  threePhase?: boolean;
  anneal?: Anneal;
}
/** PyTorch OneCycleLR's lr (defaults as PyTorch: pctStart 0.3, divFactor 25, finalDivFactor 1e4, cos). */
export const oneCycle = (o: OneCycleOptions): OneCycle => make('oneCycle', o);

/** PyTorch OneCycleLR's momentum (SGD) / beta1 (Adam) cycle: pass it to LRScheduler's `momentum` option. */
export const oneCycleMomentum = (o: { totalSteps: number; pctStart?: number; threePhase?: boolean; anneal?: Anneal; baseMomentum?: number; maxMomentum?: number }): OneCycleMomentum =>
  make('oneCycleMomentum', o);

export interface WsdOptions {
  peak: number;
  warmup: number;
  stable: number;
  decay: number;
  warmupShape?: WarmupShape;
  /** default 'cosine' (as HF) */
  decayShape?: DecayShape;
  minRatio?: number;
  /** with decayShape 'exp': the decay halves every halfLife steps (MiniCPM) */
  halfLife?: number;
}
/** Warmup-stable-decay (HF get_wsd_schedule's arithmetic, plus 1-square and MiniCPM's exp decay). */
export const wsd = (o: WsdOptions): Wsd => make('wsd', o);

export interface PowerOptions {
  a: number;
  b: number;
  max: number;
  warmup: number;
  tokensPerStep: number;
  /** final decay phase: from step `start` over `steps` with a shape (default linear), floor minRatio */
  decay?: { start: number; steps: number; shape?: DecayShape; minRatio?: number; halfLife?: number };
}
/** IBM's Power scheduler: min(max, a * tokens^b) after a linear warmup, optional final decay. */
export const power = (o: PowerOptions): Power => make('power', o);

export interface InfiniteOptions {
  peak: number;
  warmup: number;
  cooldown: number;
  constant: number;
  cooldownShape?: 'cosine' | 'inverseSqrt';
  alpha?: number;
  /** exponential anneal from `constant` to `min` over `steps`, starting at step `start` */
  anneal?: { start: number; steps: number; min: number };
}
/** Infinite schedule: warmup -> cooldown to a constant -> constant -> optional anneal. */
export const infinite = (o: InfiniteOptions): Infinite => make('infinite', o);

/** Continual pre-training: linear re-warm from `from` (default 0) to `peak` over `warmup` steps, then `then`. */
export const rewarm = (o: { from?: number; peak: number; warmup: number; then: Schedule }): Rewarm => make('rewarm', o);

/** Parts one after another; each sees its local step t - (start of the part). Only the last may omit `steps`. */
export const seq = (parts: readonly { schedule: Schedule; steps?: number }[]): Seq => make('seq', { parts });

/** Pointwise product (numbers are constants). */
export const mul = (of: readonly (Schedule | number)[]): Combine => make('mul', { of });
/** Pointwise minimum. */
export const min = (of: readonly (Schedule | number)[]): Combine => make('min', { of });
/** Pointwise maximum. */
export const max = (of: readonly (Schedule | number)[]): Combine => make('max', { of });

/** The schedule's values are factors of each parameter group's base lr (its lr when the LRScheduler was made). */
export const relative = (schedule: Schedule): Relative => make('relative', { schedule });

/**
 * PyTorch's recursive schedulers, reproduced step by step (their closed forms
 * drift from PyTorch by several ulp): StepLR, MultiStepLR, ExponentialLR,
 * LinearLR, PolynomialLR, CosineAnnealingLR. `base` is the optimizer's initial lr.
 */
export const torch = {
  stepLR: (o: { base: number; stepSize: number; gamma?: number }): TorchStepLR => make('torch.StepLR', o),
  multiStepLR: (o: { base: number; milestones: readonly number[]; gamma?: number }): TorchMultiStepLR => make('torch.MultiStepLR', o),
  exponentialLR: (o: { base: number; gamma: number }): TorchExponentialLR => make('torch.ExponentialLR', o),
  linearLR: (o: { base: number; startFactor?: number; endFactor?: number; totalIters?: number }): TorchLinearLR => make('torch.LinearLR', o),
  polynomialLR: (o: { base: number; totalIters?: number; power?: number }): TorchPolynomialLR => make('torch.PolynomialLR', o),
  cosineAnnealingLR: (o: { base: number; tMax: number; etaMin?: number }): TorchCosineAnnealingLR => make('torch.CosineAnnealingLR', o),
};
