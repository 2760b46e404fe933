// LRScheduler: binds schedule specs to an optimizer's parameter groups
// (schedules.md principles 2, 3, 5). The lr for update k is lrAt(spec, k): the
// constructor sets step 0's lr, each step() advances the clock by one update.
// state() / LRScheduler.restore() round-trip exactly: the lr after a restore is
// the one the uninterrupted run would have had, because a schedule depends only
// on (spec, step, tokens), never on the optimizer's current lr.
import { ValueError } from '../errors';
import { canonicalJSON, checkContext, checkStep, lrAt, normalize } from './evaluate';
import { fmt, type LrContext, type Schedule } from './spec';

/** What LRScheduler needs of a parameter group: `lr`, and `momentum` or `betas` for a momentum schedule. */
export interface SchedulableGroup {
  lr: number;
  momentum?: number;
  betas?: readonly [number, number];
}

/** What LRScheduler needs of an optimizer (kiln.optim's AdamW, LAMB, LARS and SGD have it). */
export interface Schedulable {
  readonly paramGroups: readonly SchedulableGroup[];
}

export interface LRSchedulerOptions {
  /**
   * A momentum schedule (e.g. oneCycleMomentum), one for all groups or one per
   * group: sets `momentum` (SGD, LARS) or `betas[0]` (AdamW, LAMB).
   */
  momentum?: Schedule | readonly Schedule[];
}

export interface RestoreOptions extends LRSchedulerOptions {
  /** Resume with a spec different from the saved one (at the saved step) instead of throwing. */
  allowSpecChange?: boolean;
}

/** A scheduler's state: plain JSON data. */
export interface SchedulerState {
  format: 'kiln.LRScheduler';
  version: 1;
  /** updates applied so far */
  step: number;
  /** tokens seen so far, when step() was told */
  tokens: number | null;
  /** each group's base lr (its lr when the scheduler was made; multiplies `relative` specs) */
  bases: number[];
  specs: Schedule[];
  momentum: Schedule[] | null;
}

function perGroup(where: string, what: string, spec: Schedule | readonly Schedule[], n: number): Schedule[] {
  if (Array.isArray(spec)) {
    if (spec.length !== n) throw new ValueError(`kiln: ${where}: got ${spec.length} ${what} specs for ${n} parameter groups (give one, or one per group)`);
    return spec.map((s) => normalize(s));
  }
  return Array.from({ length: n }, () => normalize(spec as Schedule));
}

function groupsOf(where: string, optimizer: Schedulable): readonly SchedulableGroup[] {
  const groups = (optimizer as { paramGroups?: unknown } | null)?.paramGroups;
  if (!Array.isArray(groups) || groups.length === 0) throw new ValueError(`kiln: ${where}: the optimizer must have a non-empty 'paramGroups' array`);
  groups.forEach((g, i) => {
    if (g === null || typeof g !== 'object' || typeof g.lr !== 'number' || !Number.isFinite(g.lr)) {
      throw new ValueError(`kiln: ${where}: paramGroups[${i}].lr must be a finite number, got ${fmt(g?.lr)}`);
    }
  });
  return groups;
}

/** Set by restore() for the constructor call it makes. */
let resuming: { bases: readonly number[]; step: number; tokens: number | null } | null = null;

export class LRScheduler {
  /** The normalized spec of each parameter group. */
  readonly specs: readonly Schedule[];
  /** The momentum spec of each group, or null. */
  readonly momentumSpecs: readonly Schedule[] | null;
  /** Each group's base lr (its lr when the scheduler was made). */
  readonly bases: readonly number[];
  private readonly groups: readonly SchedulableGroup[];
  private count = 0;
  private seen: number | null = null;

  constructor(optimizer: Schedulable, spec: Schedule | readonly Schedule[], options: LRSchedulerOptions = {}) {
    const where = 'sched.LRScheduler';
    const r = resuming;
    resuming = null;
    this.groups = groupsOf(where, optimizer);
    this.specs = Object.freeze(perGroup(where, 'schedule', spec, this.groups.length));
    this.momentumSpecs = options.momentum === undefined ? null : Object.freeze(perGroup(where, 'momentum', options.momentum, this.groups.length));
    if (this.momentumSpecs) this.groups.forEach((g, i) => this.checkMomentumGroup(where, g, i));
    // The base lrs: the groups' lrs now, or the saved ones on restore (the groups then hold scheduled values).
    this.bases = Object.freeze(r ? r.bases.slice() : this.groups.map((g) => g.lr));
    if (r) {
      this.count = r.step;
      this.seen = r.tokens;
    }
    this.apply();
  }

  /** Resumes from state(): the optimizer's groups get the lr (and momentum) of the saved step. Throws when `spec` differs from the saved one unless allowSpecChange. */
  static restore(optimizer: Schedulable, spec: Schedule | readonly Schedule[], state: SchedulerState, options: RestoreOptions = {}): LRScheduler {
    const where = 'sched.LRScheduler.restore';
    const groups = groupsOf(where, optimizer);
    if (state === null || typeof state !== 'object' || state.format !== 'kiln.LRScheduler' || state.version !== 1) {
      throw new ValueError(`kiln: ${where}: 'state' is not an LRScheduler state (format 'kiln.LRScheduler', version 1)`);
    }
    checkStep(where, state.step);
    if (!Array.isArray(state.bases) || state.bases.length !== groups.length || state.bases.some((b) => typeof b !== 'number' || !Number.isFinite(b))) {
      throw new ValueError(`kiln: ${where}: the state has ${Array.isArray(state.bases) ? state.bases.length : 'no'} base lrs for ${groups.length} parameter groups`);
    }
    if (!Array.isArray(state.specs) || state.specs.length !== groups.length) throw new ValueError(`kiln: ${where}: the state has no spec per parameter group`);
    const saved = state.specs.map((s) => canonicalJSON(normalize(s)));
    const specs = perGroup(where, 'schedule', spec, groups.length);
    specs.forEach((s, i) => {
      if (!options.allowSpecChange && canonicalJSON(s) !== saved[i]) {
        throw new ValueError(`kiln: ${where}: the schedule of parameter group ${i} (${s.kind}) differs from the saved one (${state.specs[i].kind}); pass { allowSpecChange: true } to resume with a new schedule`);
      }
    });
    let momentum: readonly Schedule[] | undefined = options.momentum === undefined ? undefined : perGroup(where, 'momentum', options.momentum, groups.length);
    if (momentum === undefined && state.momentum) momentum = state.momentum;
    if (momentum && state.momentum && !options.allowSpecChange) {
      momentum.forEach((m, i) => {
        if (canonicalJSON(normalize(m)) !== canonicalJSON(normalize(state.momentum![i]))) throw new ValueError(`kiln: ${where}: the momentum schedule of parameter group ${i} differs from the saved one; pass { allowSpecChange: true } to change it`);
      });
    }
    const tokens = state.tokens === null || state.tokens === undefined ? null : (checkContext(where, { tokens: state.tokens }).tokens as number);
    resuming = { bases: state.bases, step: state.step, tokens };
    try {
      return new LRScheduler(optimizer, specs, momentum ? { momentum } : {});
    } finally {
      resuming = null;
    }
  }

  /** Updates applied so far (the step whose lr the optimizer holds now). */
  get stepCount(): number {
    return this.count;
  }

  /** Tokens seen so far, when step() was told them; else null. */
  get tokens(): number | null {
    return this.seen;
  }

  /**
   * Call after each optimizer update: advances the clock by one and sets every
   * group's lr to lrAt(spec, updates applied, { tokens }). `ctx.tokens` is the
   * total number of tokens seen so far (once given, every step must give it).
   * Returns the new lrs.
   */
  step(ctx?: { tokens?: number }): number[] {
    const where = 'sched.LRScheduler.step';
    const c = checkContext(where, ctx);
    if (c.tokens !== undefined) {
      if (this.seen !== null && c.tokens < this.seen) throw new ValueError(`kiln: ${where}: 'ctx.tokens' must not decrease (${c.tokens} after ${this.seen})`);
      this.seen = c.tokens;
    } else if (this.seen !== null) {
      throw new ValueError(`kiln: ${where}: 'ctx.tokens' was given before; give the total tokens seen at every step`);
    }
    this.count += 1;
    return this.apply();
  }

  /** The current lr of each group (the lr of the next update). */
  lr(): number[] {
    return this.specs.map((s, i) => this.valueAt(s, i, this.count));
  }

  /** The current momentum of each group, or null without a momentum schedule. */
  momentum(): number[] | null {
    return this.momentumSpecs ? this.momentumSpecs.map((s) => lrAt(s, this.count, this.context(undefined))) : null;
  }

  /** The state to save with a checkpoint (JSON data). */
  state(): SchedulerState {
    const copy = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
    return {
      format: 'kiln.LRScheduler',
      version: 1,
      step: this.count,
      tokens: this.seen,
      bases: this.bases.slice(),
      specs: copy(this.specs as Schedule[]),
      momentum: this.momentumSpecs ? copy(this.momentumSpecs as Schedule[]) : null,
    };
  }

  private context(base: number | undefined): LrContext {
    const c: LrContext = {};
    if (this.seen !== null) c.tokens = this.seen;
    if (base !== undefined) c.base = base;
    return c;
  }

  private valueAt(s: Schedule, i: number, step: number): number {
    return lrAt(s, step, this.context(this.bases[i]));
  }

  private checkMomentumGroup(where: string, g: SchedulableGroup, i: number): void {
    if (typeof g.momentum !== 'number' && !(Array.isArray(g.betas) && g.betas.length === 2)) {
      throw new ValueError(`kiln: ${where}: a momentum schedule needs paramGroups[${i}] to have 'momentum' or 'betas'`);
    }
  }

  private apply(): number[] {
    const lrs = this.lr();
    const mom = this.momentum();
    this.groups.forEach((g, i) => {
      g.lr = lrs[i];
      if (mom) {
        if (typeof g.momentum === 'number') g.momentum = mom[i];
        else g.betas = [mom[i], (g.betas as readonly [number, number])[1]];
      }
    });
    return lrs;
  }
}
