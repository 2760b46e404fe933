// Option handling shared by kiln's optimizers: the options every optimizer
// takes, how an option is checked and named in state dicts (PyTorch's
// snake_case names), the checks, and parameter-name patterns (TF-Addons style
// exclusions from weight decay and adaptation).
import { Tensor } from '../tensor';

/** A name pattern: a RegExp, or a string read as a regular expression and searched in the name (TF-Addons style). */
export type NamePattern = string | RegExp;

/** Options every optimizer takes. */
export interface CommonOptions {
  lr: number;
  weightDecay: number;
  /** Parameters whose name matches one of these get no weight decay. */
  excludeFromWeightDecay: readonly NamePattern[];
  /** Keep float32 master weights for float16/bfloat16 parameters (update the master, write the parameter rounded to nearest even). */
  masterWeights: boolean;
}

/** How an option is checked and named in state dicts. */
export interface OptionSpec {
  /** snake_case name in state dicts (PyTorch's where it has one). */
  key: string;
  check: (v: unknown) => string | null; // null when valid, else what is expected
}

// ---- option checks ---------------------------------------------------------------------------

export const check = {
  nonNegative: (v: unknown): string | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'a finite number >= 0'),
  positive: (v: unknown): string | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : 'a finite number > 0'),
  unit: (v: unknown): string | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1 ? null : 'a number in [0, 1]'),
  bool: (v: unknown): string | null => (typeof v === 'boolean' ? null : 'true or false'),
  betas: (v: unknown): string | null =>
    Array.isArray(v) && v.length === 2 && v.every((b) => typeof b === 'number' && Number.isFinite(b) && b >= 0 && b < 1)
      ? null
      : 'two numbers in [0, 1)',
  oneOf:
    (...names: string[]) =>
    (v: unknown): string | null =>
      typeof v === 'string' && names.includes(v) ? null : `one of ${names.map((n) => `'${n}'`).join(', ')}`,
  optionalNonNegative: (v: unknown): string | null =>
    v === null || (typeof v === 'number' && (Number.isFinite(v) || v === Infinity) && v >= 0) ? null : 'null or a number >= 0',
  patterns: (v: unknown): string | null =>
    Array.isArray(v) && v.every((p) => typeof p === 'string' || p instanceof RegExp) ? null : 'an array of strings or RegExps',
};

export const COMMON_SPECS: Record<keyof CommonOptions, OptionSpec> = {
  lr: { key: 'lr', check: check.nonNegative },
  weightDecay: { key: 'weight_decay', check: check.nonNegative },
  excludeFromWeightDecay: { key: 'exclude_from_weight_decay', check: check.patterns },
  masterWeights: { key: 'master_weights', check: check.bool },
};

function toRegExp(p: NamePattern): RegExp {
  return p instanceof RegExp ? p : new RegExp(p);
}

/** Whether `name` matches one of the patterns (a RegExp test, as re.search). */
export function matchesAny(name: string | null, patterns: readonly NamePattern[]): boolean {
  if (name === null) return false;
  return patterns.some((p) => {
    const re = toRegExp(p);
    re.lastIndex = 0;
    return re.test(name);
  });
}

/** A value as messages show it. */
export function formatValue(v: unknown): string {
  if (v instanceof RegExp) return String(v);
  if (v instanceof Tensor) return v.toString();
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
