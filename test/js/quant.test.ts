// kiln.quant formats and kernels against the references of quant-ref.ts
// (specs/quant.md): INT4 packing, the FireQ weight recipe, FP8 activations,
// the exact W4A8 reference, and the fast product on every ISA level (bit-exact
// on structural inputs, within K 2^-24 A of the exact sums on random ones,
// independent of the thread count).
import { afterEach, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { isaLevels } from './helpers';
import { e4m3Round, e4m3Value, exactSums, nextFloat, paddedK, quantizeRow, recipe, w8Values } from './quant-ref';
import { prng } from './reference';

const q8 = kiln.quant;

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

/** w [N, K]: N(0, 0.02) with outlier input channels, a zero group in row 0 and a tiny row 1. */
function weightValues(n: number, k: number, seed: number, scale = 1): Float32Array {
  const r = prng(seed);
  const w = new Float32Array(n * k);
  for (let i = 0; i < n; ++i) {
    for (let c = 0; c < k; ++c) {
      let v = 0.02 * normal(r) * scale;
      if (c % 37 === 5) v *= 20;
      if (i === 0 && c < 32) v = 0;
      if (i === 1) v *= 1e-6;
      w[i * k + c] = v;
    }
  }
  return w;
}

/** x [M, K]: outlier channels 3 and K-1, row 1 zero, row 2 tiny (s_a = 2^-126). */
function activationValues(m: number, k: number, seed: number): Float32Array {
  const r = prng(seed);
  const x = new Float32Array(m * k);
  for (let i = 0; i < m; ++i) {
    for (let c = 0; c < k; ++c) {
      let v = normal(r);
      if (c === 3 || c === k - 1) v *= 50;
      if (i === 1) v = 0;
      if (i === 2) v *= 1e-37;
      x[i * k + c] = v;
    }
  }
  return x;
}

afterEach(() => {
  const levels = isaLevels();
  kiln.internals.setIsa(levels[levels.length - 1]);
  kiln.setNumThreads(2);
});

describe('INT4 packing', () => {
  it('packs even k into the low nibble, pads K to 128 with zeros, and round-trips', () => {
    const n = 3;
    const k = 100;
    const r = prng(1);
    const q = Int8Array.from({ length: n * k }, () => Math.floor(r() * 16) - 8);
    const qt = kiln.tensor(q, [n, k], { dtype: 'int8' });
    const packed = q8.packInt4(qt);
    expect(packed.shape).toEqual([n, 64]);
    const bytes = packed.dataSync() as Uint8Array;
    for (let i = 0; i < n; ++i) {
      for (let c = 0; c < 128; ++c) {
        const nib = (bytes[i * 64 + (c >> 1)] >> ((c & 1) * 4)) & 15;
        expect(nib >= 8 ? nib - 16 : nib).toBe(c < k ? q[i * k + c] : 0);
      }
    }
    const back = q8.unpackInt4(packed, k);
    expect(Array.from(back.dataSync() as Int8Array)).toEqual(Array.from(q));
    expect(q8.unpackInt4(packed).shape).toEqual([n, 128]);
    expect(q8.paddedK(100)).toBe(128);
    expect(q8.paddedK(256)).toBe(256);
    expect(() => q8.packInt4(kiln.tensor([[8]], { dtype: 'int8' }))).toThrow(kiln.ValueError);
    expect(() => q8.packInt4(kiln.tensor([[1]]) as unknown as kiln.Tensor<'int8'>)).toThrow(kiln.DTypeError);
    expect(() => q8.unpackInt4(packed, 129)).toThrow(kiln.ValueError);
    [qt, packed, back].forEach((t) => t.dispose());
  });
});

describe('quantizeWeightInt4 (the FireQ recipe)', () => {
  const cases: { n: number; k: number; g: number | 'channel'; gEff: number; dtype: 'float32' | 'bfloat16' | 'float16'; scale: number }[] = [
    { n: 5, k: 300, g: 128, gEff: 128, dtype: 'float32', scale: 1 },
    { n: 4, k: 100, g: 32, gEff: 32, dtype: 'bfloat16', scale: 50 },
    { n: 3, k: 100, g: 'channel', gEff: 128, dtype: 'float16', scale: 1 },
    { n: 3, k: 100, g: 100, gEff: 128, dtype: 'float32', scale: 1e-4 },
    { n: 2, k: 512, g: 256, gEff: 256, dtype: 'float32', scale: 1e-30 },
  ];
  for (const c of cases) {
    it(`matches the recipe: N ${c.n}, K ${c.k}, group ${c.g}, ${c.dtype}, scale ${c.scale}`, () => {
      const w = kiln.tensor(weightValues(c.n, c.k, 7, c.scale), [c.n, c.k]).to({ dtype: c.dtype });
      const values = Float32Array.from(w.to({ dtype: 'float32' }).dataSync() as Float32Array);
      const qw = q8.quantizeWeightInt4(w, { groupSize: c.g });
      const ref = recipe(values, c.n, c.k, c.gEff);
      expect(qw.groupSize).toBe(c.gEff);
      expect(qw.e).toBe(ref.e);
      expect(Array.from(qw.scales.dataSync() as Uint8Array)).toEqual(Array.from(ref.scales));
      const q = q8.unpackInt4(qw.packed);
      expect(Array.from(q.dataSync() as Int8Array)).toEqual(Array.from(ref.q));
      // every scale in [2^-9, 64]
      for (const s of qw.scales.dataSync() as Uint8Array) expect(e4m3Value(s) >= 2 ** -9 && e4m3Value(s) <= 64).toBe(true);
      // dequantize: e4m3(q s) / 2^e
      const kp = paddedK(c.k);
      const w8 = w8Values(ref.q, ref.scales, c.n, kp, c.gEff);
      const d = qw.dequantize().dataSync() as Float32Array;
      for (let i = 0; i < c.n; ++i) for (let j = 0; j < c.k; ++j) expect(d[i * c.k + j]).toBe(Math.fround(w8[i * kp + j] / 2 ** ref.e));
      [w, q].forEach((t) => t.dispose());
      qw.dispose();
    });
  }

  it('rejects bad group sizes, non-finite weights and max |w| > 448', () => {
    const w = kiln.tensor(weightValues(2, 100, 3), [2, 100]);
    expect(() => q8.quantizeWeightInt4(w, { groupSize: 48 })).toThrow(kiln.ValueError);
    expect(() => q8.quantizeWeightInt4(w, { groupSize: 96 })).toThrow(/multiple of 32 that divides Kp = 128/);
    const bad = kiln.tensor([[1, Infinity]]);
    expect(() => q8.quantizeWeightInt4(bad)).toThrow(/w\[0, 1\] = inf is not finite/);
    const big = kiln.tensor([[1, -449]]);
    expect(() => q8.quantizeWeightInt4(big)).toThrow(/exceeds 448/);
    expect(() => q8.quantizeWeightInt4(kiln.tensor([1, 2]))).toThrow(kiln.ShapeError);
    expect(() => q8.quantizeWeightInt4(kiln.tensor([[1, 2]], { dtype: 'int32' }))).toThrow(kiln.DTypeError);
    [w, bad, big].forEach((t) => t.dispose());
  });
});

describe('quantizeActivationFp8', () => {
  it('gives s_a = max|x|/448 (1 for zero rows, >= 2^-126) and a = e4m3(x / s_a), per row', () => {
    const m = 6;
    const k = 77;
    const vals = activationValues(m, k, 9);
    vals[4 * k + 5] = NaN;
    for (const dtype of ['float32', 'bfloat16', 'float16'] as const) {
      const x = kiln.tensor(vals, [2, 3, k]).to({ dtype });
      const xs = Float32Array.from(x.to({ dtype: 'float32' }).dataSync() as Float32Array);
      for (const scale of [undefined, 0.25]) {
        for (const level of isaLevels()) {
          kiln.internals.setIsa(level);
          const { values, scales } = q8.quantizeActivationFp8(x, { scale });
          expect(values.shape).toEqual([2, 3, k]);
          expect(scales.shape).toEqual([2, 3]);
          const codes = values.dataSync() as Uint8Array;
          const s = scales.dataSync() as Float32Array;
          for (let i = 0; i < m; ++i) {
            const ref = quantizeRow(xs.subarray(i * k, (i + 1) * k), scale);
            expect(Object.is(s[i], ref.s) || (Number.isNaN(s[i]) && Number.isNaN(ref.s))).toBe(true);
            expect(Array.from(codes.subarray(i * k, (i + 1) * k))).toEqual(ref.codes);
          }
          // a * s_a, exactly
          const back = q8.dequantizeActivationFp8(values, scales).dataSync() as Float32Array;
          for (let i = 0; i < m * k; ++i) {
            const want = Math.fround(e4m3Value(codes[i]) * s[Math.floor(i / k)]);
            expect(Object.is(back[i], want) || (Number.isNaN(back[i]) && Number.isNaN(want))).toBe(true);
          }
          [values, scales].forEach((t) => t.dispose());
        }
      }
      x.dispose();
    }
    const x = kiln.tensor([[1, 2]]);
    expect(() => q8.quantizeActivationFp8(x, { scale: 0 })).toThrow(kiln.ValueError);
    expect(() => q8.quantizeActivationFp8(x, { scale: NaN })).toThrow(kiln.ValueError);
    expect(() => q8.quantizeActivationFp8(kiln.tensor([[1]], { dtype: 'int32' }))).toThrow(kiln.DTypeError);
    x.dispose();
  });
});

/** An Int4Weight from q [N, K] and per-group scale codes, e = exp. */
function weightOf(q: Int8Array, n: number, k: number, scaleCodes: Uint8Array, groups: number, exp: number): kiln.quant.Int4Weight {
  const qt = kiln.tensor(q, [n, k], { dtype: 'int8' });
  const packed = q8.packInt4(qt);
  qt.dispose();
  return new q8.Int4Weight({
    packed,
    scales: kiln.tensor(scaleCodes, [n, groups], { dtype: 'float8_e4m3' }),
    exponent: kiln.tensor([exp], [], { dtype: 'int8' }),
    inFeatures: k,
  });
}

describe('the W4A8 product', () => {
  it('the exact reference equals exact integer sums', () => {
    const [m, n, k, g] = [4, 7, 200, 64];
    const r = prng(4);
    const q = Int8Array.from({ length: n * k }, () => Math.floor(r() * 16) - 8);
    const kp = paddedK(k);
    const scales = Uint8Array.from({ length: (n * kp) / g }, () => 1 + Math.floor(r() * 0x68));
    const w = weightOf(q, n, k, scales, kp / g, 2);
    const codes = Uint8Array.from({ length: m * k }, () => {
      const c = Math.floor(r() * 256);
      return (c & 0x7f) === 0x7f ? 0 : c;
    });
    const a = kiln.tensor(codes, [m, k], { dtype: 'float8_e4m3' });
    const { p, absSum } = q8.w4a8Reference(a, w);
    const qp = q8.unpackInt4(w.packed);
    const w8 = w8Values(qp.dataSync() as Int8Array, scales, n, kp, g);
    const ref = exactSums(codes, m, k, w8, n, kp);
    expect(Array.from(p.dataSync() as Float32Array)).toEqual(Array.from(ref.p, Math.fround));
    expect(Array.from(absSum.dataSync() as Float32Array)).toEqual(Array.from(ref.abs, Math.fround));
    [a, p, absSum, qp].forEach((t) => t.dispose());
    w.dispose();
  });

  it('is bit-exact on structural inputs (a in {0, +-1, +-2}, s = 1, t = 1) on every ISA level and thread count', () => {
    const levels = isaLevels();
    const code = [0x00, 0x38, 0xb8, 0x40, 0xc0];
    for (const [m, n, k, g] of [
      [1, 37, 255, 32],
      [5, 20, 100, 128],
      [67, 9, 200, 64],
    ]) {
      const r = prng(m * 1000 + k);
      const q = Int8Array.from({ length: n * k }, () => Math.floor(r() * 16) - 8);
      const kp = paddedK(k);
      const w = weightOf(q, n, k, new Uint8Array((n * kp) / g).fill(0x38), kp / g, 0);
      const codes = Uint8Array.from({ length: m * k }, () => code[Math.floor(r() * 5)]);
      const a = kiln.tensor(codes, [m, k], { dtype: 'float8_e4m3' });
      const sa = kiln.ones([m]);
      const qp = q8.unpackInt4(w.packed);
      const ref = exactSums(codes, m, k, w8Values(qp.dataSync() as Int8Array, new Uint8Array((n * kp) / g).fill(0x38), n, kp, g), n, kp);
      for (const level of levels) {
        kiln.internals.setIsa(level);
        for (const threads of [1, 2, 3]) {
          kiln.setNumThreads(threads);
          const y = q8.w4a8Matmul(a, sa, w, { outDtype: 'float32' });
          expect(Array.from(y.dataSync() as Float32Array), `${level} threads ${threads} M ${m}`).toEqual(Array.from(ref.p));
          y.dispose();
        }
      }
      [a, sa, qp].forEach((t) => t.dispose());
      w.dispose();
    }
  });

  const cases = [
    { m: 1, n: 48, k: 4096, g: 128 },
    { m: 3, n: 37, k: 300, g: 32 },
    { m: 67, n: 20, k: 100, g: 128 },
    { m: 9, n: 33, k: 640, g: 'channel' as const },
    { m: 65, n: 17, k: 2500, g: 128 },
  ];
  for (const c of cases) {
    it(`is within K 2^-24 A of the exact sums on every ISA level: M ${c.m}, N ${c.n}, K ${c.k}, group ${c.g}`, () => {
      const w = kiln.tensor(weightValues(c.n, c.k, c.m + c.k), [c.n, c.k]);
      const qw = q8.quantizeWeightInt4(w, { groupSize: c.g });
      const x = kiln.tensor(activationValues(c.m, c.k, c.n), [c.m, c.k]);
      const bias = kiln.tensor(Float32Array.from({ length: c.n }, (_, i) => Math.sin(i)));
      const qp = q8.unpackInt4(qw.packed);
      const kp = paddedK(c.k);
      const w8 = w8Values(qp.dataSync() as Int8Array, qw.scales.dataSync() as Uint8Array, c.n, kp, qw.groupSize);
      const e = qw.e;
      for (const level of isaLevels()) {
        kiln.internals.setIsa(level);
        const { values, scales } = q8.quantizeActivationFp8(x);
        const codes = values.dataSync() as Uint8Array;
        const sa = scales.dataSync() as Float32Array;
        const ref = exactSums(codes, c.m, c.k, w8, c.n, kp);
        let first: Float32Array | null = null;
        for (const threads of [1, 2, 3]) {
          kiln.setNumThreads(threads);
          const y = q8.w4a8Linear(x, qw, { bias, outDtype: 'float32' });
          const got = Float32Array.from(y.dataSync() as Float32Array);
          y.dispose();
          if (first === null) {
            first = got;
            const b = bias.dataSync() as Float32Array;
            for (let i = 0; i < c.m; ++i) {
              const alpha = Math.fround(sa[i] * 2 ** -e);
              for (let j = 0; j < c.n; ++j) {
                const tol = c.k * 2 ** -24 * ref.abs[i * c.n + j];
                const plo = nextFloat(Math.fround(ref.p[i * c.n + j] - tol), false);
                const phi = nextFloat(Math.fround(ref.p[i * c.n + j] + tol), true);
                // y = fmaf(P, alpha, b) is monotone in P; one more float32 step covers the double rounding here
                const lo = nextFloat(Math.fround(plo * alpha + b[j]), false);
                const hi = nextFloat(Math.fround(phi * alpha + b[j]), true);
                const v = got[i * c.n + j];
                if (!(v >= lo && v <= hi)) expect.fail(`${level} (${i}, ${j}): ${v} not in [${lo}, ${hi}] (P ${ref.p[i * c.n + j]}, A ${ref.abs[i * c.n + j]})`);
              }
            }
            // the same product from quantize + w4a8Matmul, and in 16-bit outputs: the float32 result rounded once
            const y2 = q8.w4a8Matmul(values, scales, qw, { bias, outDtype: 'float32' });
            expect(Array.from(y2.dataSync() as Float32Array)).toEqual(Array.from(got));
            for (const outDtype of ['bfloat16', 'float16'] as const) {
              const y16 = q8.w4a8Linear(x, qw, { bias, outDtype });
              const want = kiln.tensor(got, [c.m, c.n]).to({ dtype: outDtype });
              expect(Array.from(y16.dataSync() as Uint16Array)).toEqual(Array.from(want.dataSync() as Uint16Array));
              [y16, want].forEach((t) => t.dispose());
            }
            y2.dispose();
          } else {
            expect(Array.from(got), `${level}: threads ${threads} differ from 1 thread`).toEqual(Array.from(first));
          }
        }
        [values, scales].forEach((t) => t.dispose());
      }
      [w, x, bias, qp].forEach((t) => t.dispose());
      qw.dispose();
    });
  }

  it('takes batch dimensions, 1-D inputs, static scales, and rejects bad operands with typed errors', () => {
    const w = kiln.tensor(weightValues(8, 64, 2), [8, 64]);
    const qw = q8.quantizeWeightInt4(w, { groupSize: 32 });
    const x = kiln.tensor(activationValues(6, 64, 1), [2, 3, 64]);
    const y = q8.w4a8Linear(x, qw);
    expect(y.shape).toEqual([2, 3, 8]);
    expect(y.dtype).toBe('bfloat16');
    const flat = q8.w4a8Linear(x.reshape([6, 64]), qw);
    expect(Array.from(flat.dataSync() as Uint16Array)).toEqual(Array.from(y.dataSync() as Uint16Array));
    const x1 = kiln.tensor(activationValues(1, 64, 1));
    expect(q8.w4a8Linear(x1, qw).shape).toEqual([8]);
    // a static scale equal to a row's dynamic one gives the same row
    const { scales } = q8.quantizeActivationFp8(x1);
    const s0 = (scales.dataSync() as Float32Array)[0];
    const ys = q8.w4a8Linear(x1, qw, { activationScale: s0, outDtype: 'float32' });
    const yd = q8.w4a8Linear(x1, qw, { outDtype: 'float32' });
    expect(Array.from(ys.dataSync() as Float32Array)).toEqual(Array.from(yd.dataSync() as Float32Array));

    expect(() => q8.w4a8Linear(kiln.zeros([2, 63]), qw)).toThrow(kiln.ShapeError);
    expect(() => q8.w4a8Linear(kiln.zeros([2, 64], { dtype: 'int32' }), qw)).toThrow(kiln.DTypeError);
    expect(() => q8.w4a8Linear(x, qw, { bias: kiln.zeros([7]) })).toThrow(kiln.ShapeError);
    expect(() => q8.w4a8Linear(x, qw, { outDtype: 'int8' as 'float32' })).toThrow(kiln.DTypeError);
    expect(() => q8.w4a8Linear(x, qw, { activationScale: -1 })).toThrow(kiln.ValueError);
    expect(() => q8.w4a8Linear(x, w as unknown as kiln.quant.Int4Weight)).toThrow(kiln.ValueError);
    const bad = new q8.Int4Weight({ packed: qw.packed, scales: qw.scales, exponent: kiln.tensor([15], [], { dtype: 'int8' }), inFeatures: 64 });
    expect(() => q8.w4a8Linear(x, bad)).toThrow(/exponent e must be in \[0, 14\]/);
    expect(() => new q8.Int4Weight({ packed: qw.packed, scales: kiln.zeros([8, 3], { dtype: 'float8_e4m3' }), exponent: qw.exponent, inFeatures: 64 })).toThrow(kiln.ShapeError);
    if (kiln.devices().cuda.available) {
      expect(() => q8.w4a8Linear(x.to('cuda'), qw)).toThrow(kiln.DeviceError);
    }
    [w, x, y, flat, x1, scales, ys, yd].forEach((t) => t.dispose());
    qw.dispose();
  });
});
