// Independent float64 references for the narrow float formats, written from
// the format definitions (value tables + nearest-value search), not from the
// bit tricks in native/include/kiln/numerics.h.

export interface FormatDef {
  name: string;
  expBits: number;
  mantBits: number;
  /** 'ieee': all-ones exponent is inf/NaN, overflow -> inf. 'fn': E4M3 (only S.1111.111 is NaN), satfinite. 'sat': E5M2 layout but satfinite. */
  kind: 'ieee' | 'fn' | 'sat';
  /** Code returned for NaN input (sign added for 'ieee'). */
  nanCode: number;
}

export const FORMATS: Record<'float16' | 'bfloat16' | 'float8_e4m3' | 'float8_e5m2', FormatDef> = {
  float16: { name: 'float16', expBits: 5, mantBits: 10, kind: 'ieee', nanCode: 0x7e00 },
  bfloat16: { name: 'bfloat16', expBits: 8, mantBits: 7, kind: 'ieee', nanCode: 0x7fc0 },
  float8_e4m3: { name: 'float8_e4m3', expBits: 4, mantBits: 3, kind: 'fn', nanCode: 0x7f },
  float8_e5m2: { name: 'float8_e5m2', expBits: 5, mantBits: 2, kind: 'sat', nanCode: 0x7f },
};

/** The value of a code, from the definition: (-1)^s * 2^(e-bias) * (1 + m/2^M), subnormal when e = 0. */
export function decodeRef(f: FormatDef, code: number): number {
  const bits = 1 + f.expBits + f.mantBits;
  const sign = (code >> (bits - 1)) & 1 ? -1 : 1;
  const e = (code >> f.mantBits) & ((1 << f.expBits) - 1);
  const m = code & ((1 << f.mantBits) - 1);
  const bias = (1 << (f.expBits - 1)) - 1;
  const eMax = (1 << f.expBits) - 1;
  if (f.kind !== 'fn' && e === eMax) return m === 0 ? sign * Infinity : NaN;
  if (f.kind === 'fn' && e === eMax && m === (1 << f.mantBits) - 1) return NaN;
  if (e === 0) return sign * m * 2 ** (1 - bias - f.mantBits);
  return sign * (1 + m / 2 ** f.mantBits) * 2 ** (e - bias);
}

interface Table {
  values: number[]; // finite non-negative values, ascending; index = magnitude code
  max: number;
}
const tables = new Map<string, Table>();

function table(f: FormatDef): Table {
  let t = tables.get(f.name);
  if (!t) {
    const values: number[] = [];
    for (let c = 0; c < 1 << (f.expBits + f.mantBits); ++c) {
      const v = decodeRef(f, c);
      if (!Number.isFinite(v)) break;
      values.push(v);
    }
    t = { values, max: values[values.length - 1] };
    tables.set(f.name, t);
  }
  return t;
}

/** Round-to-nearest-even encoding of a float64 value, per the format's overflow rule. */
export function encodeRef(f: FormatDef, v: number): number {
  const bits = 1 + f.expBits + f.mantBits;
  const signBit = 1 << (bits - 1);
  const negative = v < 0 || Object.is(v, -0);
  if (Number.isNaN(v)) return f.kind === 'ieee' ? f.nanCode | (negative ? signBit : 0) : f.nanCode;
  const { values, max } = table(f);
  const a = Math.abs(v);
  const sign = negative ? signBit : 0;
  const infCode = ((1 << f.expBits) - 1) << f.mantBits;
  if (a > max) {
    if (f.kind !== 'ieee') return sign | (values.length - 1); // satfinite
    // IEEE: above max + ulp/2 -> inf; exactly half way ties to even (inf has an even mantissa).
    const ulp = max - values[values.length - 2];
    return a >= max + ulp / 2 ? sign | infCode : sign | (values.length - 1);
  }
  // largest index with values[i] <= a
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (values[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  if (values[lo] === a || lo === values.length - 1) return sign | lo;
  const dLo = a - values[lo];
  const dHi = values[lo + 1] - a;
  const pick = dLo < dHi ? lo : dHi < dLo ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
  return sign | pick;
}

/** float32 value of a bit pattern. */
export function f32FromBits(bits: number): number {
  const b = new Uint32Array([bits >>> 0]);
  return new Float32Array(b.buffer)[0];
}

/** A small deterministic PRNG (mulberry32) for test inputs. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
