// lrAt(spec, step, ctx): validates a spec once (normalizing it: defaults filled
// in, children normalized), then evaluates it in float64. Also the canonical
// JSON used to compare specs (LRScheduler.restore).
import { ValueError } from '../errors';
import { constantFamily, cosineFamily, inverseSqrtFamily, linearFamily, polynomialFamily, rexFamily, tableFamily, warmupFamily } from './basic';
import { maxFamily, minFamily, mulFamily, relativeFamily, seqFamily } from './combinators';
import { infiniteFamily, rewarmFamily } from './infinite';
import { cosineWarmRestartsFamily, oneCycleFamily, oneCycleMomentumFamily } from './onecycle';
import { powerFamily } from './power';
import { deepFreeze, Fields, fmt, type Family, type Kind, type LrContext, type Schedule } from './spec';
import {
  torchCosineAnnealingLRFamily,
  torchExponentialLRFamily,
  torchLinearLRFamily,
  torchMultiStepLRFamily,
  torchPolynomialLRFamily,
  torchStepLRFamily,
} from './torch-chainable';
import { wsdFamily } from './wsd';

const FAMILIES: Record<Kind, Family<any>> = {
  constant: constantFamily,
  linear: linearFamily,
  polynomial: polynomialFamily,
  warmup: warmupFamily,
  cosine: cosineFamily,
  inverseSqrt: inverseSqrtFamily,
  rex: rexFamily,
  table: tableFamily,
  cosineWarmRestarts: cosineWarmRestartsFamily,
  oneCycle: oneCycleFamily,
  oneCycleMomentum: oneCycleMomentumFamily,
  wsd: wsdFamily,
  power: powerFamily,
  infinite: infiniteFamily,
  rewarm: rewarmFamily,
  seq: seqFamily,
  mul: mulFamily,
  min: minFamily,
  max: maxFamily,
  relative: relativeFamily,
  'torch.StepLR': torchStepLRFamily,
  'torch.MultiStepLR': torchMultiStepLRFamily,
  'torch.ExponentialLR': torchExponentialLRFamily,
  'torch.LinearLR': torchLinearLRFamily,
  'torch.PolynomialLR': torchPolynomialLRFamily,
  'torch.CosineAnnealingLR': torchCosineAnnealingLRFamily,
};

/** The schedule kinds lrAt knows. */
export const KINDS = Object.keys(FAMILIES) as Kind[];

/** Normalized specs by the object they were made from (specs are values: do not mutate one after use). */
const normalizedOf = new WeakMap<object, Schedule>();

function normalizeAt(raw: unknown, path: string): Schedule {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ValueError(`kiln: sched: a schedule must be an object with a 'kind', got ${fmt(raw)}${path ? ` (at ${path})` : ''}`);
  }
  const hit = normalizedOf.get(raw);
  if (hit) return hit;
  const kind = (raw as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !Object.prototype.hasOwnProperty.call(FAMILIES, kind)) {
    throw new ValueError(`kiln: sched: unknown schedule kind ${fmt(kind)}${path ? ` at ${path}` : ''}; known: ${KINDS.join(', ')}`);
  }
  const f = new Fields(kind, raw as Record<string, unknown>, path);
  const s = deepFreeze(FAMILIES[kind as Kind].normalize(f, normalizeAt));
  f.done();
  normalizedOf.set(raw, s);
  normalizedOf.set(s, s);
  return s;
}

/** Validates a spec (throwing a ValueError that names the schedule and the field) and returns it normalized and frozen. */
export function normalize(spec: unknown): Schedule {
  return normalizeAt(spec, '');
}

/** Builds a spec of `kind` from constructor options (the public constructors). */
export function make<S extends Schedule>(kind: S['kind'], options: object): S {
  if (options === null || typeof options !== 'object') throw new ValueError(`kiln: sched.${kind}: expected an options object, got ${fmt(options)}`);
  return normalize({ ...options, kind }) as S;
}

const evaluate = (s: Schedule, step: number, ctx: LrContext): number => FAMILIES[s.kind].at(s, step, ctx, evaluate);

/** Checks an explicit clock value: an integer >= 0. */
export function checkStep(where: string, step: unknown): number {
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) {
    throw new ValueError(`kiln: ${where}: 'step' must be an integer >= 0 (updates already applied), got ${fmt(step)}`);
  }
  return step;
}

export function checkContext(where: string, ctx: LrContext | undefined): LrContext {
  if (ctx === undefined) return {};
  if (ctx === null || typeof ctx !== 'object') throw new ValueError(`kiln: ${where}: 'ctx' must be an object { tokens?, base? }, got ${fmt(ctx)}`);
  for (const k of ['tokens', 'base'] as const) {
    const v = ctx[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new ValueError(`kiln: ${where}: 'ctx.${k}' must be a finite number >= 0, got ${fmt(v)}`);
  }
  return ctx;
}

/**
 * The learning rate for update `step` (the number of updates already applied),
 * in float64: equal to PyTorch's get_last_lr() after `step` scheduler steps.
 * `ctx.tokens` feeds token-based schedules; `ctx.base` multiplies `relative` ones.
 */
export function lrAt(spec: Schedule, step: number, ctx?: LrContext): number {
  checkStep('sched.lrAt', step);
  return evaluate(normalize(spec), step, checkContext('sched.lrAt', ctx));
}

/** lr for steps 0 .. n-1 (token-based schedules use step * tokensPerStep). */
export function trace(spec: Schedule, n: number, ctx?: { base?: number }): Float64Array {
  checkStep('sched.trace', n);
  const s = normalize(spec);
  const c = checkContext('sched.trace', ctx);
  const out = new Float64Array(n);
  for (let t = 0; t < n; ++t) out[t] = evaluate(s, t, c);
  return out;
}

/** JSON with sorted keys: equal for equal normalized specs, whatever the key order. */
export function canonicalJSON(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x !== null && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]])) : x,
  );
}

/** Whether two specs are the same schedule (after defaults are filled in). */
export function sameSchedule(a: Schedule, b: Schedule): boolean {
  return canonicalJSON(normalize(a)) === canonicalJSON(normalize(b));
}
