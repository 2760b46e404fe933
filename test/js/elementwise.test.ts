// add/sub/mul/div/maximum/minimum with broadcasting, against a float64
// reference rounded once to the dtype (exact for float32, float16, bfloat16:
// float32 arithmetic then one rounding is correctly rounded for them).
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { prng } from './reference';

type Op = 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum';
const OPS: Op[] = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'];
const REF: Record<Op, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
};
const LEVELS = (['portable', 'avx2', 'avx512'] as const).slice(0, ['portable', 'avx2', 'avx512'].indexOf(kiln.devices().cpu.isaLevel) + 1);
afterAll(() => kiln.internals.setIsa(LEVELS[LEVELS.length - 1]));

/** Row-major index of `out` position in a broadcast operand. */
function broadcastIndex(outShape: number[], shape: number[], flat: number): number {
  let idx = 0;
  let stride = 1;
  let rest = flat;
  const lead = outShape.length - shape.length;
  const coords = new Array<number>(outShape.length);
  for (let d = outShape.length - 1; d >= 0; --d) {
    coords[d] = rest % outShape[d];
    rest = Math.floor(rest / outShape[d]);
  }
  for (let d = shape.length - 1; d >= 0; --d) {
    idx += (shape[d] === 1 ? 0 : coords[d + lead]) * stride;
    stride *= shape[d];
  }
  return idx;
}

/** Rounds a float64 to the dtype through the kernels' own encoder (checked in cast.test.ts). */
function roundTo(dtype: kiln.DType, values: number[]): number[] {
  return kiln.tidy(() => kiln.tensor(values, [values.length], { dtype }).toArray() as number[]);
}

function check(op: Op, dtype: kiln.DType, aShape: number[], bShape: number[], seed: number): void {
  const rnd = prng(seed);
  const gen = (n: number) =>
    Array.from({ length: n }, () => (dtype === 'int32' ? Math.floor((rnd() - 0.5) * 2000) : (rnd() - 0.5) * 8));
  kiln.tidy(() => {
    const a = kiln.tensor(gen(aShape.reduce((x, y) => x * y, 1)), aShape, { dtype });
    const b = kiln.tensor(gen(bShape.reduce((x, y) => x * y, 1)), bShape, { dtype });
    const out = kiln[op](a, b);
    const av = a.toArray() as number[] | number;
    const flatA = (a.reshape([-1]).toArray() as number[]);
    const flatB = (b.reshape([-1]).toArray() as number[]);
    void av;
    const outShape = out.shape.slice();
    const n = out.size;
    const exact = Array.from({ length: n }, (_, i) =>
      REF[op](flatA[broadcastIndex(outShape, aShape, i)], flatB[broadcastIndex(outShape, bShape, i)]),
    );
    const want = dtype === 'int32' ? exact.map((v) => v | 0) : dtype === 'float32' ? exact.map(Math.fround) : roundTo(dtype, exact);
    const got = out.reshape([-1]).toArray() as number[];
    expect(got.length).toBe(want.length);
    for (let i = 0; i < n; ++i) {
      if (!(Object.is(got[i], want[i]) || got[i] === want[i] || (Number.isNaN(got[i]) && Number.isNaN(want[i])))) {
        expect(got[i], `${op} ${dtype} ${JSON.stringify(aShape)} ${JSON.stringify(bShape)} at ${i}`).toBe(want[i]);
      }
    }
  });
}

const SHAPES: [number[], number[]][] = [
  [[5], [5]],
  [[3, 1, 5], [4, 1]],
  [[], [2, 3]],
  [[2, 3], []],
  [[1], [7]],
  [[4, 1, 3], [1, 5, 1]],
  [[1, 1, 1], [2, 1, 2]],
  [[70000], [70000]],
  [[300, 257], [257]],
  [[0, 3], [3]],
];

describe.each(LEVELS)('binary ops at ISA level %s', (level) => {
  for (const dtype of ['float32', 'float16', 'bfloat16', 'int32'] as const) {
    for (const op of OPS) {
      if (dtype === 'int32' && op === 'div') continue;
      it(`${op} ${dtype}`, () => {
        kiln.internals.setIsa(level);
        SHAPES.forEach(([a, b], k) => check(op, dtype, a, b, 1000 * k + OPS.indexOf(op)));
      });
    }
  }
});

describe('binary op semantics', () => {
  it('accepts JS numbers on either side and keeps the tensor dtype', () => {
    const t = kiln.tensor([1, 2, 3], [3], { dtype: 'int32' });
    expect(kiln.add(t, 10).toArray()).toEqual([11, 12, 13]);
    expect(kiln.sub(10, t).toArray()).toEqual([9, 8, 7]);
    expect(t.mul(2).dtype).toBe('int32');
    expect(kiln.tensor([1, 2]).div(4).toArray()).toEqual([0.25, 0.5]);
  });
  it('wraps int32 overflow and propagates NaN in maximum/minimum', () => {
    const big = kiln.tensor([2147483647, -2147483648], [2], { dtype: 'int32' });
    expect(big.add(1).toArray()).toEqual([-2147483648, -2147483647]);
    expect(big.mul(2).toArray()).toEqual([-2, 0]);
    const x = kiln.tensor([NaN, 1, 2]);
    const y = kiln.tensor([0, NaN, 1]);
    const mx = kiln.maximum(x, y).toArray() as number[];
    expect(Number.isNaN(mx[0]) && Number.isNaN(mx[1])).toBe(true);
    expect(mx[2]).toBe(2);
    expect(kiln.div(kiln.tensor([1, -1, 0]), 0).toArray()).toEqual([Infinity, -Infinity, NaN]);
  });
  it('reads strided and offset inputs', () => {
    const base = kiln.arange(0, 24, 1, { dtype: 'float32' }).reshape([4, 6]);
    const tr = kiln.internals.asStrided(base, [6, 4], [1, 6]); // transpose
    const col = kiln.internals.asStrided(base, [4, 1], [6, 0], 2); // column 2 as [4, 1]
    const sum = kiln.add(tr, kiln.tensor([100, 200, 300, 400]));
    expect(sum.toArray()).toEqual(Array.from({ length: 6 }, (_, i) => [0, 1, 2, 3].map((j) => j * 6 + i + (j + 1) * 100)));
    expect(kiln.mul(col, kiln.tensor([1, 10])).toArray()).toEqual([[2, 20], [8, 80], [14, 140], [20, 200]]);
  });
  it('has no int32 div and no fp8 arithmetic: a registry error names op, dtype and device', () => {
    const i = kiln.tensor([4, 2], [2], { dtype: 'int32' });
    expect(() => i.div(i)).toThrow(kiln.UnsupportedError);
    expect(() => i.div(i)).toThrow("kiln: op 'div' has no kernel for dtype int32 on device cpu");
    const f8 = kiln.zeros([2], { dtype: 'float8_e4m3' });
    expect(() => f8.add(f8)).toThrow("kiln: op 'add' has no kernel for dtype float8_e4m3 on device cpu");
  });
  it('results do not depend on the thread count', () => {
    const a = kiln.randn([513, 257], { seed: 3 });
    const b = kiln.randn([257], { seed: 4 });
    const before = kiln.getNumThreads();
    const results = [1, 2, 3].map((n) => {
      kiln.setNumThreads(n);
      return kiln.tidy(() => Array.from(kiln.mul(a, b).add(a).dataSync()));
    });
    kiln.setNumThreads(before);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });
});
