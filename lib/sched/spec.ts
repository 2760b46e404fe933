// Schedule specs: plain, JSON-serializable data (../shared/specs/schedules.md,
// principle 1). Every spec is an object with a `kind`; the constructors in this
// folder fill in the defaults, validate, and return a frozen spec. lrAt() takes
// the same objects back from JSON (missing optional fields get their defaults).
import { ValueError } from '../errors';

/** What lrAt may be told besides the step. */
export interface LrContext {
  /** Tokens seen before this update (token-based schedules: power); default step * tokensPerStep. */
  tokens?: number;
  /** The parameter group's base lr, multiplied into `relative` schedules; default 1. */
  base?: number;
}

export type WarmupShape = 'linear' | 'cosine' | '1-sqrt';
export type DecayShape = 'linear' | 'cosine' | '1-sqrt' | '1-square' | 'exp';
export type Anneal = 'cos' | 'linear';

export interface Constant { kind: 'constant'; value: number }
export interface Linear { kind: 'linear'; from: number; to: number; steps: number }
export interface Polynomial { kind: 'polynomial'; from: number; to: number; steps: number; power: number }
export interface Warmup { kind: 'warmup'; from: number; to: number; steps: number; shape: WarmupShape }
export interface Cosine { kind: 'cosine'; from: number; to: number; steps: number; exponent: number; cycles: number }
export interface InverseSqrt { kind: 'inverseSqrt'; peak: number; warmup: number }
export interface Rex { kind: 'rex'; peak: number; steps: number; beta: number }
export interface Table { kind: 'table'; values: readonly number[] }
export interface CosineWarmRestarts { kind: 'cosineWarmRestarts'; base: number; t0: number; tMult: number; etaMin: number }
export interface OneCycle {
  kind: 'oneCycle';
  maxLr: number;
  totalSteps: number;
  pctStart: number;
  divFactor: number;
  finalDivFactor: number;
  threePhase: boolean;
  anneal: Anneal;
}
export interface OneCycleMomentum {
  kind: 'oneCycleMomentum';
  totalSteps: number;
  pctStart: number;
  threePhase: boolean;
  anneal: Anneal;
  baseMomentum: number;
  maxMomentum: number;
}
export interface Wsd {
  kind: 'wsd';
  peak: number;
  warmup: number;
  stable: number;
  decay: number;
  warmupShape: WarmupShape;
  decayShape: DecayShape;
  minRatio: number;
  /** Steps over which the 'exp' decay halves (MiniCPM); only with decayShape 'exp'. */
  halfLife?: number;
}
/** A decay phase (power): from the value at `start` down over `steps` with a shape, rescaled f*(1-r)+r. */
export interface DecayPhase { start: number; steps: number; shape: DecayShape; minRatio: number; halfLife?: number }
export interface Power { kind: 'power'; a: number; b: number; max: number; warmup: number; tokensPerStep: number; decay?: DecayPhase }
export interface InfiniteAnneal { start: number; steps: number; min: number }
export interface Infinite {
  kind: 'infinite';
  peak: number;
  warmup: number;
  cooldown: number;
  constant: number;
  cooldownShape: 'cosine' | 'inverseSqrt';
  /** Time scale of the inverse-sqrt cooldown, h(x) = 1/sqrt(1 + alpha x) - 1. */
  alpha: number;
  anneal?: InfiniteAnneal;
}
export interface Rewarm { kind: 'rewarm'; from: number; peak: number; warmup: number; then: Schedule }
export interface SeqPart { schedule: Schedule; steps?: number }
export interface Seq { kind: 'seq'; parts: readonly SeqPart[] }
export interface Combine { kind: 'mul' | 'min' | 'max'; of: readonly Schedule[] }
export interface Relative { kind: 'relative'; schedule: Schedule }
// PyTorch's recursive ("chainable") schedulers, reproduced operation by operation.
export interface TorchStepLR { kind: 'torch.StepLR'; base: number; stepSize: number; gamma: number }
export interface TorchMultiStepLR { kind: 'torch.MultiStepLR'; base: number; milestones: readonly number[]; gamma: number }
export interface TorchExponentialLR { kind: 'torch.ExponentialLR'; base: number; gamma: number }
export interface TorchLinearLR { kind: 'torch.LinearLR'; base: number; startFactor: number; endFactor: number; totalIters: number }
export interface TorchPolynomialLR { kind: 'torch.PolynomialLR'; base: number; totalIters: number; power: number }
export interface TorchCosineAnnealingLR { kind: 'torch.CosineAnnealingLR'; base: number; tMax: number; etaMin: number }

export type TorchSchedule = TorchStepLR | TorchMultiStepLR | TorchExponentialLR | TorchLinearLR | TorchPolynomialLR | TorchCosineAnnealingLR;

/** A learning-rate schedule: pure data, evaluated by lrAt(spec, step, ctx). */
export type Schedule =
  | Constant
  | Linear
  | Polynomial
  | Warmup
  | Cosine
  | InverseSqrt
  | Rex
  | Table
  | CosineWarmRestarts
  | OneCycle
  | OneCycleMomentum
  | Wsd
  | Power
  | Infinite
  | Rewarm
  | Seq
  | Combine
  | Relative
  | TorchSchedule;

export type Kind = Schedule['kind'];

// ---- validation --------------------------------------------------------------------------------

export function fmt(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return `'${v}'`;
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v;
}

interface NumOptions {
  /** The default when the field is absent (undefined). Without it the field is required. */
  def?: number;
  min?: number;
  /** min is exclusive. */
  above?: boolean;
  max?: number;
  int?: boolean;
}

/**
 * Reads and checks the fields of one raw spec, so that every error names the
 * schedule, the field and (inside combinators) where the spec sits.
 */
export class Fields {
  private readonly seen = new Set<string>(['kind']);

  constructor(
    readonly kind: string,
    readonly raw: Record<string, unknown>,
    readonly path: string,
  ) {}

  fail(field: string, expected: string, got: unknown): never {
    throw new ValueError(`kiln: sched.${this.kind}: '${field}' must be ${expected}, got ${fmt(got)}${this.where()}`);
  }

  error(message: string): never {
    throw new ValueError(`kiln: sched.${this.kind}: ${message}${this.where()}`);
  }

  where(): string {
    return this.path ? ` (at ${this.path})` : '';
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined;
  }

  num(field: string, o: NumOptions = {}): number {
    this.seen.add(field);
    const v = this.raw[field];
    if (v === undefined && o.def !== undefined) return o.def;
    let expected = o.int ? 'an integer' : 'a finite number';
    if (o.min !== undefined) expected += ` ${o.above ? '>' : '>='} ${o.min}`;
    if (o.max !== undefined) expected += `${o.min !== undefined ? ' and' : ''} <= ${o.max}`;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, expected, v);
    if (o.int && !Number.isSafeInteger(v)) this.fail(field, expected, v);
    if (o.min !== undefined && (o.above ? !(v > o.min) : !(v >= o.min))) this.fail(field, expected, v);
    if (o.max !== undefined && !(v <= o.max)) this.fail(field, expected, v);
    return v;
  }

  /** A step count: an integer >= min (default 0). */
  steps(field: string, min = 0, def?: number): number {
    return this.num(field, { int: true, min, def });
  }

  oneOf<T extends string>(field: string, values: readonly T[], def?: T): T {
    this.seen.add(field);
    const v = this.raw[field];
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(field, `one of ${values.map((x) => `'${x}'`).join(', ')}`, v);
    return v as T;
  }

  bool(field: string, def?: boolean): boolean {
    this.seen.add(field);
    const v = this.raw[field];
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== 'boolean') this.fail(field, 'true or false', v);
    return v;
  }

  /** A nested plain object (e.g. a decay phase), or undefined when absent. */
  object(field: string): Record<string, unknown> | undefined {
    this.seen.add(field);
    const v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, 'an object', v);
    return v as Record<string, unknown>;
  }

  /** The raw value (children are validated by the caller). */
  any(field: string): unknown {
    this.seen.add(field);
    return this.raw[field];
  }

  /** Rejects fields this schedule does not know (catches typos such as 'decayType'). */
  done(): void {
    for (const k of Object.keys(this.raw)) {
      if (!this.seen.has(k) && this.raw[k] !== undefined) this.error(`unknown field '${k}'`);
    }
  }
}

/** Normalizes a child spec found at `path` (recursion through combinators). */
export type Normalizer = (raw: unknown, path: string) => Schedule;
/** Evaluates a normalized child spec. */
export type Evaluator = (s: Schedule, step: number, ctx: LrContext) => number;

/** One family of schedules: how to validate a raw spec and how to evaluate a normalized one. */
export interface Family<S extends Schedule = Schedule> {
  normalize(f: Fields, sub: Normalizer): S;
  at(s: S, step: number, ctx: LrContext, sub: Evaluator): number;
}

/** Deeply freezes a normalized spec (specs are values; caches key on them). */
export function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/** Drops keys whose value is undefined (so JSON and deep-equality see the same object). */
export function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o)) if ((o as Record<string, unknown>)[k] === undefined) delete (o as Record<string, unknown>)[k];
  return o;
}
