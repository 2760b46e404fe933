// Casts through the real kernels (Tensor.cast), checked bit for bit against the
// independent float64 reference in reference.ts. The dense sweep over float32
// patterns runs natively (test/native/test_numerics.cpp); here every code of
// every narrow format plus a large sample of float32 patterns goes through the
// kernels at every ISA level the CPU has.
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { FORMATS, decodeRef, encodeRef, f32FromBits, prng, type FormatDef } from './reference';

const NARROW = ['float16', 'bfloat16', 'float8_e4m3', 'float8_e5m2'] as const;
const LEVELS = (['portable', 'avx2', 'avx512'] as const).slice(
  0,
  ['portable', 'avx2', 'avx512'].indexOf(kiln.devices().cpu.isaLevel) + 1,
);

afterAll(() => kiln.internals.setIsa(LEVELS[LEVELS.length - 1]));

function rawArray(f: FormatDef, n: number): Uint8Array | Uint16Array {
  return f.mantBits + f.expBits + 1 === 16 ? new Uint16Array(n) : new Uint8Array(n);
}

/** float32 inputs covering every region: a sample of all patterns plus each format's codes and midpoints. */
function float32Inputs(count: number, seed: number): { values: Float32Array; bits: Uint32Array } {
  const rnd = prng(seed);
  const bits = new Uint32Array(count);
  for (let i = 0; i < count; ++i) {
    if (i % 2 === 0) {
      bits[i] = Math.floor(rnd() * 2 ** 32);
    } else {
      // exponent field in [107, 147] (|v| in [2^-20, 2^21)), where all four formats round or saturate
      const e = 107 + Math.floor(rnd() * 41);
      bits[i] = ((rnd() < 0.5 ? 0x80000000 : 0) | (e << 23) | Math.floor(rnd() * 2 ** 23)) >>> 0;
    }
  }
  const out = new Float32Array(bits.buffer);
  // specials
  const specials = [0, -0, Infinity, -Infinity, NaN, 448, 464, 465, 480, -480, 57344, 61440, 65504, 65520, 2 ** -9, 2 ** -10, 2 ** -16, 2 ** -17, 1.5 * 2 ** -10, 3.4e38, 1e-45];
  out.set(specials.map(Math.fround), 0);
  return { values: out, bits };
}

describe('narrow float formats: every code', () => {
  for (const name of NARROW) {
    const f = FORMATS[name];
    const n = 2 ** (1 + f.expBits + f.mantBits);
    it(`${name}: all ${n} codes decode exactly and re-encode to themselves`, () => {
      const codes = rawArray(f, n);
      for (let c = 0; c < n; ++c) codes[c] = c;
      const t = kiln.tensor(codes, [n], { dtype: name });
      const back = t.cast('float32');
      const values = back.dataSync();
      for (let c = 0; c < n; ++c) {
        const ref = decodeRef(f, c);
        if (Number.isNaN(ref)) expect(values[c], `code ${c}`).toBeNaN();
        else expect(Object.is(values[c], ref) || values[c] === ref, `code 0x${c.toString(16)}: ${values[c]} vs ${ref}`).toBe(true);
      }
      const again = back.cast(name).dataSync();
      for (let c = 0; c < n; ++c) {
        const ref = decodeRef(f, c);
        const signBit = c & (1 << (f.expBits + f.mantBits));
        // NaN codes come back canonical (IEEE formats keep the sign); a
        // satfinite format's inf codes (E5M2 0x7C/0xFC) come back as +-max.
        const expected = Number.isNaN(ref)
          ? encodeRef(f, NaN) | (f.kind === 'ieee' ? signBit : 0)
          : !Number.isFinite(ref) && f.kind !== 'ieee'
            ? encodeRef(f, ref)
            : c;
        if (again[c] !== expected) expect(`0x${again[c].toString(16)}`, `code 0x${c.toString(16)}`).toBe(`0x${expected.toString(16)}`);
      }
      expect(back.toArray()).toHaveLength(n);
      t.dispose();
      back.dispose();
    });
  }
});

describe('float32 -> narrow formats (round to nearest even, satfinite for fp8)', () => {
  const { values: inputs, bits } = float32Inputs(1 << 19, 12345);
  for (const level of LEVELS) {
    for (const name of NARROW) {
      it(`${name} at ISA level ${level}`, () => {
        kiln.internals.setIsa(level);
        const f = FORMATS[name];
        kiln.tidy(() => {
          const got = kiln.tensor(inputs).cast(name).dataSync();
          let bad = 0;
          for (let i = 0; i < inputs.length; ++i) {
            // JS cannot see a NaN's sign: take it from the input's bits.
            const nanSign = Number.isNaN(inputs[i]) && f.kind === 'ieee' && bits[i] >= 0x80000000 ? 1 << (f.expBits + f.mantBits) : 0;
            const want = encodeRef(f, inputs[i]) | nanSign;
            if (got[i] !== want && bad++ < 5) {
              expect.soft(`0x${got[i].toString(16)}`, `${name}(${inputs[i]})`).toBe(`0x${want.toString(16)}`);
            }
          }
          expect(bad).toBe(0);
        });
      });
    }
  }
});

describe('spec examples (specs/quant.md FP8)', () => {
  const e4m3 = (v: number) => kiln.tidy(() => kiln.tensor([v]).cast('float8_e4m3').dataSync()[0]);
  const e5m2 = (v: number) => kiln.tidy(() => kiln.tensor([v]).cast('float8_e5m2').dataSync()[0]);
  it('saturates, keeps -0, maps NaN to 0x7F and keeps subnormals', () => {
    expect(e4m3(448)).toBe(0x7e);
    expect(e4m3(1e9)).toBe(0x7e);
    expect(e4m3(-1e9)).toBe(0xfe);
    expect(e4m3(Infinity)).toBe(0x7e);
    expect(e4m3(-Infinity)).toBe(0xfe);
    expect(e4m3(NaN)).toBe(0x7f);
    expect(e4m3(-0)).toBe(0x80);
    expect(e4m3(2 ** -9)).toBe(0x01);
    expect(e4m3(2 ** -10)).toBe(0x00); // tie -> even (zero)
    expect(e4m3(1.5 * 2 ** -9)).toBe(0x02); // tie -> even
    expect(e5m2(57344)).toBe(0x7b);
    expect(e5m2(1e9)).toBe(0x7b);
    expect(e5m2(NaN)).toBe(0x7f);
    expect(e5m2(2 ** -16)).toBe(0x01);
  });
});

describe('integer and bool casts', () => {
  it('float -> int truncates toward zero, saturates, NaN -> 0', () => {
    const x = kiln.tensor([2.7, -2.7, 1e10, -1e10, NaN, Infinity, -Infinity, 127.9, -128.9, 255.5, -0.5]);
    expect(x.cast('int32').toArray()).toEqual([2, -2, 2147483647, -2147483648, 0, 2147483647, -2147483648, 127, -128, 255, 0]);
    expect(x.cast('int8').toArray()).toEqual([2, -2, 127, -128, 0, 127, -128, 127, -128, 127, 0]);
    expect(x.cast('uint8').toArray()).toEqual([2, 0, 255, 0, 0, 255, 0, 127, 0, 255, 0]);
    expect(x.cast('bool').toArray()).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    x.dispose();
  });
  it('int -> int wraps modulo 2^bits; anything -> bool is x != 0', () => {
    const x = kiln.tensor([300, -1, 127, 128, -129, 0], [6], { dtype: 'int32' });
    expect(x.cast('int8').toArray()).toEqual([44, -1, 127, -128, 127, 0]);
    expect(x.cast('uint8').toArray()).toEqual([44, 255, 127, 128, 127, 0]);
    expect(x.cast('bool').toArray()).toEqual([1, 1, 1, 1, 1, 0]);
    expect(kiln.tensor([0, -0, 0.5]).cast('bool').toArray()).toEqual([0, 0, 1]);
  });
  it('int32 -> 16-bit floats rounds once from the exact value (no double rounding through float32)', () => {
    // 2^24 + 2^16 + 1: float32 first would round to 2^24 + 2^16 (a tie for bfloat16 -> 2^24).
    const v = 2 ** 24 + 2 ** 16 + 1;
    const x = kiln.tensor([v, -v, 2147483647], [3], { dtype: 'int32' });
    const bf = x.cast('bfloat16').toArray() as number[];
    expect(bf[0]).toBe(2 ** 24 + 2 ** 17);
    expect(bf[1]).toBe(-(2 ** 24 + 2 ** 17));
    expect(bf[2]).toBe(2 ** 31);
    expect(x.cast('float16').toArray()).toEqual([Infinity, -Infinity, Infinity]);
    expect(x.cast('float32').toArray()).toEqual([Math.fround(v), Math.fround(-v), 2 ** 31]);
  });
  it('every dtype pair casts (values exact where representable)', () => {
    const values = [0, 1, -1, 2, 3, -4, 5, 7];
    for (const from of kiln.DTYPES) {
      for (const to of kiln.DTYPES) {
        kiln.tidy(() => {
          const src = kiln.tensor(values, [8], { dtype: from });
          const expected = src.toArray() as number[];
          const got = src.cast(to).toArray() as number[];
          // int -> uint8 wraps modulo 256; float -> uint8 saturates at 0.
          const intSource = from === 'int8' || from === 'uint8' || from === 'int32' || from === 'bool';
          const ref = expected.map((v) =>
            to === 'bool' ? (v !== 0 ? 1 : 0) : to === 'uint8' ? (intSource ? ((v % 256) + 256) % 256 : Math.max(0, v)) : v,
          );
          expect(got, `${from} -> ${to}`).toEqual(ref);
        });
      }
    }
  });
});
