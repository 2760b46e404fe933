// Inputs shared by the optimizer tests: the integer hash that
// test/fixtures/gen_adamw.py also implements (values exact in float32 and in
// bfloat16 when asked), float32 / bfloat16 rounding, and small helpers.
import * as kiln from 'kiln';

/** 32-bit hash of (seed, idx); the same as hash_u32 in test/fixtures/gen_adamw.py. */
export function hashU32(seed: number, idx: number): number {
  let x = (Math.imul(seed, 0x9e3779b1) + Math.imul(idx, 0x85ebca77) + 0x165667b1) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x2c1b3c6d) >>> 0;
  x = (x ^ (x >>> 12)) >>> 0;
  x = Math.imul(x, 0x297a2d39) >>> 0;
  return (x ^ (x >>> 15)) >>> 0;
}

/** n values in [-scale, scale): ((h >> 8) / 2^23 - 1) * scale (exact in float32 for a power-of-two scale). */
export function hashValues(seed: number, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) out[i] = ((hashU32(seed, i) >>> 8) / 2 ** 23 - 1) * scale;
  return out;
}

/** Like hashValues but with 8 significant bits, so every value is exact in bfloat16. */
export function hashValuesBf16(seed: number, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) out[i] = ((hashU32(seed, i) >>> 24) / 2 ** 7 - 1) * scale;
  return out;
}

/** Round to nearest even float32. */
export const f32 = Math.fround;

/** bfloat16 round-to-nearest-even of a float32 value, from the definition (8 significant bits), as a number. */
export function bf16(x: number): number {
  const v = f32(x);
  if (!Number.isFinite(v) || v === 0) return v;
  const e = Math.floor(Math.log2(Math.abs(v)));
  const q = 2 ** (Math.max(e, -126) - 7); // spacing of bfloat16 values around v
  const r = v / q;
  const lo = Math.floor(r);
  const frac = r - lo;
  const k = frac > 0.5 || (frac === 0.5 && lo % 2 !== 0) ? lo + 1 : lo;
  return k * q;
}

/** The values of a tensor as float64. */
export function vals(t: kiln.Tensor): Float64Array {
  if (t.size === 0) return new Float64Array(0);
  if (t.dtype === 'float32') return Float64Array.from(t.dataSync() as Float32Array);
  const c = t.cast('float32');
  const out = Float64Array.from(c.dataSync() as Float32Array);
  c.dispose();
  return out;
}

/** A float32 tensor of the given values (1-D). */
export function f32Tensor(v: ArrayLike<number>, device?: kiln.Device): kiln.Tensor {
  return kiln.tensor(Float32Array.from(v), [v.length], { device });
}

/** Exactly the same bits (float32 views compared as integers). */
export function sameBits(a: kiln.Tensor, b: kiln.Tensor): boolean {
  if (a.size !== b.size || a.dtype !== b.dtype) return false;
  const x = a.dataSync() as ArrayLike<number>;
  const y = b.dataSync() as ArrayLike<number>;
  if (a.dtype === 'float32') {
    const xi = new Uint32Array(Float32Array.from(x).buffer);
    const yi = new Uint32Array(Float32Array.from(y).buffer);
    return xi.every((v, i) => v === yi[i]);
  }
  for (let i = 0; i < x.length; ++i) if (x[i] !== y[i]) return false;
  return true;
}
