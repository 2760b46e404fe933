// Shared helpers for the op tests: float64 reference arrays, random inputs,
// tolerant comparison, and central finite differences.
import { expect } from 'vitest';
import * as kiln from 'kiln';
import { prng } from './reference';

/** A float64 reference array: row-major values and a shape. */
export interface Ref {
  data: Float64Array;
  shape: number[];
}

export const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** max |got - want| / max |want|: an error measured against the output's scale. */
export function maxRelativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; ++i) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / scale;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Random values in [-scale, scale). */
export function randomValues(n: number, seed: number, scale = 1): Float64Array {
  const r = prng(seed);
  return Float64Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** The exact values of a tensor as a float64 reference (any dtype). */
export function refOf(t: kiln.Tensor): Ref {
  const flat = t.size === 0 ? [] : (t.reshape([-1]).toArray() as number[]);
  return { data: Float64Array.from(flat), shape: t.shape.slice() };
}

/** A tensor of `dtype` from float64 values (rounded once), and its exact values. */
export function makeTensor(values: Float64Array, shape: number[], dtype: kiln.DType = 'float32', device?: kiln.Device): { t: kiln.Tensor; ref: Ref } {
  const t = kiln.tensor(values, shape, { dtype, device });
  return { t, ref: refOf(t) };
}

/** A non-contiguous tensor holding `values` (shape `shape`), built through a transposed buffer. */
export function stridedFromValues(values: Float64Array, shape: number[], dtype: kiln.DType, device?: kiln.Device): kiln.Tensor {
  const n = shape.length;
  if (n === 0) return kiln.tensor(values, shape, { dtype, device });
  // Lay the values out in a buffer with reversed axes and one extra row per axis.
  const padded = shape.map((d) => d + 1).reverse();
  const bufStrides = stridesOf(padded);
  const data = new Float64Array(size(padded));
  const outStrides = stridesOf(shape);
  for (let i = 0; i < values.length; ++i) {
    let rest = i;
    let pos = 0;
    for (let d = 0; d < n; ++d) {
      const idx = Math.floor(rest / outStrides[d]);
      rest -= idx * outStrides[d];
      pos += idx * bufStrides[n - 1 - d];
    }
    data[pos] = values[i];
  }
  const buf = kiln.tensor(data, padded, { dtype, device });
  const view = kiln.internals.asStrided(buf, shape, shape.map((_, d) => bufStrides[n - 1 - d]), 0);
  buf.dispose();
  return view;
}

/** Unit roundoff of a dtype's significand (2^-p). */
export function eps(dtype: kiln.DType): number {
  return dtype === 'float16' ? 2 ** -11 : dtype === 'bfloat16' ? 2 ** -8 : 2 ** -24;
}

/**
 * Expects |got - want| <= atol + rtol |want| elementwise (NaN must match NaN,
 * infinities must match), reporting the first failures with their index.
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let bad = 0;
  let first = '';
  for (let i = 0; i < want.length; ++i) {
    const g = got[i];
    const w = want[i];
    const ok = Number.isNaN(w) ? Number.isNaN(g) : !Number.isFinite(w) ? g === w : Math.abs(g - w) <= atol + rtol * Math.abs(w);
    if (!ok) {
      if (bad === 0) first = `at ${i}: got ${g}, want ${w} (diff ${Math.abs(g - w)})`;
      bad += 1;
    }
  }
  expect(bad, `${what}: ${bad} of ${want.length} outside tolerance; first ${first}`).toBe(0);
}

/** The values of a tensor as numbers (any dtype). */
export function valuesOf(t: kiln.Tensor): number[] {
  return t.size === 0 ? [] : (t.reshape([-1]).toArray() as number[]);
}

/** Central finite differences of a scalar float64 function f at x: df/dx_i for every i. */
export function numericGradient(f: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; ++i) {
    const v = x[i];
    xp[i] = v + h;
    const fp = f(xp);
    xp[i] = v - h;
    const fm = f(xp);
    xp[i] = v;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** sum_i w_i y_i: turns a vector function into a scalar one with a fixed random cotangent. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; ++i) s += a[i] * b[i];
  return s;
}

/** The ISA levels this CPU supports, lowest first. */
export function isaLevels(): ('portable' | 'avx2' | 'avx512')[] {
  const all = ['portable', 'avx2', 'avx512'] as const;
  return all.slice(0, all.indexOf(kiln.devices().cpu.isaLevel as (typeof all)[number]) + 1);
}
