// References for the kiln.quant tests, written from specs/quant.md with the
// format tables of reference.ts (no kiln code): E4M3 values and rounding, the
// FireQ weight recipe and the activation rule in float32 (Math.fround: double
// then float32 is the correctly rounded float32 result for one + - * /), and
// exact W4A8 sums (integer multiples of 2^-18, exact in doubles below 2^53).
import { decodeRef, encodeRef, FORMATS } from './reference';

const E4M3 = FORMATS.float8_e4m3;
export const e4m3Value = (code: number): number => decodeRef(E4M3, code);
export const e4m3Round = (v: number): number => encodeRef(E4M3, v);
/** w8 = e4m3(q * s), the product exact. */
export const w8 = (q: number, sCode: number): number => e4m3Value(e4m3Round(q * e4m3Value(sCode)));

export const paddedK = (k: number): number => Math.ceil(k / 128) * 128;

/** Round half to even to an integer. */
export function rne(v: number): number {
  let f = Math.floor(v);
  const d = v - f;
  if (d > 0.5 || (d === 0.5 && f % 2 !== 0)) f += 1;
  return f;
}

export interface RecipeResult {
  e: number;
  /** [N][Kp/G] codes */
  scales: Uint8Array;
  /** [N][Kp] */
  q: Int8Array;
}

/** The FireQ recipe (specs/quant.md "INT4 weights") on float32 values w [N, K]. */
export function recipe(w: ArrayLike<number>, n: number, k: number, g: number): RecipeResult {
  const kp = paddedK(k);
  const ng = kp / g;
  let amax = 0;
  for (let i = 0; i < n * k; ++i) amax = Math.max(amax, Math.abs(w[i]));
  let e = 0;
  if (amax > 0) while (e < 14 && amax * 2 ** (e + 1) <= 448) ++e;
  const t = 2 ** e;
  const scales = new Uint8Array(n * ng);
  const q = new Int8Array(n * kp);
  for (let r = 0; r < n; ++r) {
    for (let gi = 0; gi < ng; ++gi) {
      let ag = 0;
      for (let c = gi * g; c < Math.min(k, (gi + 1) * g); ++c) ag = Math.max(ag, Math.abs(w[r * k + c]));
      let s = e4m3Round(Math.fround(Math.fround(ag * t) / 7));
      if (e4m3Value(s) < 2 ** -9) s = 0x01;
      scales[r * ng + gi] = s;
      const sv = e4m3Value(s);
      for (let c = gi * g; c < Math.min(k, (gi + 1) * g); ++c) {
        q[r * kp + c] = Math.min(7, Math.max(-8, rne(Math.fround(Math.fround(w[r * k + c] * t) / sv))));
      }
    }
  }
  return { e, scales, q };
}

/** s_a for a row of float32 values (dynamic), and the codes a = e4m3(x / s_a). */
export function quantizeRow(x: ArrayLike<number>, staticScale?: number): { s: number; codes: number[] } {
  let s: number;
  if (staticScale !== undefined) {
    s = Math.fround(staticScale);
  } else {
    let amax = 0;
    let nan = false;
    for (let i = 0; i < x.length; ++i) {
      nan ||= Number.isNaN(x[i]);
      amax = Math.max(amax, Math.abs(x[i]));
    }
    s = nan ? NaN : amax === 0 ? 1 : Math.max(Math.fround(amax / 448), 2 ** -126);
  }
  const codes = Array.from(x, (v) => e4m3Round(Math.fround(v / s)));
  return { s, codes };
}

/** Exact P and A = sum |a w8| for activation codes a [M, K] and w8 values w [N, Kp] (row-major). */
export function exactSums(a: ArrayLike<number>, m: number, k: number, w: Float64Array, n: number, kp: number): { p: Float64Array; abs: Float64Array } {
  const p = new Float64Array(m * n);
  const abs = new Float64Array(m * n);
  const av = Float64Array.from(a, (c) => e4m3Value(c) * 512);
  for (let i = 0; i < m; ++i) {
    for (let j = 0; j < n; ++j) {
      let s = 0;
      let sa = 0;
      for (let c = 0; c < k; ++c) {
        const prod = av[i * k + c] * (w[j * kp + c] * 512);
        s += prod;
        sa += Math.abs(prod);
      }
      p[i * n + j] = s * 2 ** -18;
      abs[i * n + j] = sa * 2 ** -18;
    }
  }
  return { p, abs };
}

/** w8 values [N, Kp] of a weight from its q [N, Kp] and scale codes [N, Kp/G]. */
export function w8Values(q: ArrayLike<number>, scales: ArrayLike<number>, n: number, kp: number, g: number): Float64Array {
  const out = new Float64Array(n * kp);
  for (let r = 0; r < n; ++r) for (let c = 0; c < kp; ++c) out[r * kp + c] = w8(q[r * kp + c], scales[r * (kp / g) + Math.floor(c / g)]);
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The next float32 toward +inf (up) or -inf. */
export function nextFloat(v: number, up: boolean): number {
  f32[0] = v;
  if (v === 0) {
    u32[0] = 1;
    return up ? f32[0] : -f32[0];
  }
  u32[0] += (v > 0) === up ? 1 : -1;
  return f32[0];
}
