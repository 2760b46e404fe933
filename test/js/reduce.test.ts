// sum, mean, max, min, argmax over axes against float64 references.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { eps, expectClose, makeTensor, randomValues, size, stridedFromValues, stridesOf, valuesOf } from './helpers';

type Red = 'sum' | 'mean' | 'max' | 'min';

/** Reference reduction of a row-major float64 array over `axes` (keepDims layout, row-major). */
function reduceRef(op: Red, data: ArrayLike<number>, shape: number[], axes: number[]): number[] {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = size(outShape);
  const acc: number[][] = Array.from({ length: n }, () => []);
  const s = stridesOf(shape);
  const os = stridesOf(outShape);
  for (let i = 0; i < data.length; ++i) {
    let o = 0;
    for (let d = 0; d < shape.length; ++d) {
      const idx = Math.floor(i / s[d]) % shape[d];
      if (!axes.includes(d)) o += idx * os[d];
    }
    acc[o].push(data[i]);
  }
  return acc.map((v) => {
    if (op === 'sum') return v.reduce((p, q) => p + q, 0);
    if (op === 'mean') return v.length === 0 ? NaN : v.reduce((p, q) => p + q, 0) / v.length;
    if (v.some(Number.isNaN)) return NaN;
    return op === 'max' ? Math.max(...v) : Math.min(...v);
  });
}

function round(values: number[], dtype: kiln.DType): number[] {
  return kiln.tidy(() => valuesOf(kiln.tensor(values, [values.length], { dtype })));
}

const SHAPES: [number[], number[]][] = [
  [[7], [0]],
  [[5, 6], [0]],
  [[5, 6], [1]],
  [[5, 6], [0, 1]],
  [[3, 4, 5], [1]],
  [[3, 4, 5], [0, 2]],
  [[2, 1, 3, 4], [1, 3]],
  [[1000, 33], [0]],
  [[33, 1000], [1]],
  [[4, 0, 3], [2]],
];

describe('sum, mean, max, min', () => {
  for (const op of ['sum', 'mean', 'max', 'min'] as Red[]) {
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
      it(`${op} ${dtype} over various axes, contiguous and strided`, () => {
        SHAPES.forEach(([shape, axes], k) => {
          if ((op === 'max' || op === 'min') && size(shape) === 0) return;
          kiln.tidy(() => {
            const { t, ref } = makeTensor(randomValues(size(shape), 100 + k, 5), shape, dtype);
            const want = round(reduceRef(op, ref.data, shape, axes), dtype);
            // float64 accumulation then one rounding: exact to the output's rounding
            const rtol = dtype === 'float32' ? 4 * eps('float32') : 2 * eps(dtype);
            const out = kiln[op](t, axes, true);
            expect(out.shape).toEqual(shape.map((d, i) => (axes.includes(i) ? 1 : d)));
            expectClose(valuesOf(out), want, rtol, 1e-6 * (op === 'sum' ? Math.sqrt(size(shape)) : 1), `${op} ${dtype} ${JSON.stringify(shape)} axes ${axes}`);
            const strided = stridedFromValues(ref.data, shape, dtype);
            expectClose(valuesOf(kiln[op](strided, axes, true)), want, rtol, 1e-5, `${op} strided ${JSON.stringify(shape)}`);
            const dropped = kiln[op](t, axes);
            expect(dropped.shape).toEqual(shape.filter((_, i) => !axes.includes(i)));
          });
        });
      });
    }
  }
  it('reduces every axis by default, negative axes, options form', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([[1, 2, 3], [4, 5, 6]]);
      expect(kiln.sum(x).item()).toBe(21);
      expect(kiln.sum(x).shape).toEqual([]);
      expect(x.sum(-1).toArray()).toEqual([6, 15]);
      expect(x.mean({ axis: 0, keepDims: true }).toArray()).toEqual([[2.5, 3.5, 4.5]]);
      expect(x.max(1).toArray()).toEqual([3, 6]);
      expect(x.min([0, 1]).item()).toBe(1);
      expect(() => x.sum([0, 0])).toThrow(/repeats an axis/);
      expect(() => x.sum(2)).toThrow(kiln.ShapeError);
    });
  });
  it('NaN propagates through max/min; empty sums are 0 and empty means NaN', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([[1, NaN, 3], [4, 5, 6]]);
      expect(valuesOf(x.max(1))).toEqual([NaN, 6]);
      expect(valuesOf(x.min(1))).toEqual([NaN, 4]);
      const e = kiln.zeros([3, 0]);
      expect(valuesOf(e.sum(1))).toEqual([0, 0, 0]);
      expect(valuesOf(e.mean(1))).toEqual([NaN, NaN, NaN]);
      expect(() => e.max(1)).toThrow(/cannot reduce the empty axis/);
    });
  });
  it('int32 sums wrap; max/min work on int32; mean refuses it', () => {
    kiln.tidy(() => {
      const i = kiln.tensor([2147483647, 10, 20, -5], [4], { dtype: 'int32' });
      expect(i.sum().item()).toBe(2147483672 - 2 ** 32); // 2147483672 wraps modulo 2^32
      expect(i.max().item()).toBe(2147483647);
      expect(i.min().item()).toBe(-5);
      expect(() => i.mean()).toThrow(kiln.DTypeError);
    });
  });
  it('does not depend on the thread count', () => {
    const before = kiln.getNumThreads();
    const x = kiln.randn([3001, 517], { seed: 8 });
    const results = [1, 2, 3].map((n) => {
      kiln.setNumThreads(n);
      return kiln.tidy(() => [valuesOf(x.sum()), valuesOf(x.sum(0)), valuesOf(x.mean(1)), valuesOf(x.max(0))].flat());
    });
    kiln.setNumThreads(before);
    x.dispose();
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });
});

describe('argmax', () => {
  it('returns the first index of the maximum (or of the first NaN) as int32', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([[1, 5, 5, 2], [NaN, 1, NaN, 9], [-1, -1, -1, -1]]);
      const a = kiln.argmax(x, 1);
      expect(a.dtype).toBe('int32');
      expect(a.toArray()).toEqual([1, 0, 0]);
      expect(kiln.argmax(x, 0, true).toArray()).toEqual([[1, 0, 1, 1]]);
      expect(kiln.argmax(kiln.tensor([[3, 9], [9, 1]])).item()).toBe(1);
      expect(kiln.argmax(kiln.tensor([[3, 9], [9, 1]]), null, true).shape).toEqual([1, 1]);
      expect(kiln.argmax(kiln.tensor([4, 7, 7], [3], { dtype: 'int32' })).item()).toBe(1);
      expect(() => kiln.argmax(kiln.zeros([2, 0]), 1)).toThrow(kiln.ShapeError);
    });
  });
  it('matches a float64 reference on random strided data', () => {
    kiln.tidy(() => {
      const shape = [17, 23, 5];
      const data = randomValues(size(shape), 77, 10);
      const t = stridedFromValues(data, shape, 'float32');
      const ref = Float64Array.from(valuesOf(kiln.tensor(data, shape)));
      for (let axis = 0; axis < 3; ++axis) {
        const got = valuesOf(kiln.argmax(t, axis, true));
        const outShape = shape.map((d, i) => (i === axis ? 1 : d));
        const os = stridesOf(outShape);
        const s = stridesOf(shape);
        const want = Array.from({ length: size(outShape) }, (_, o) => {
          const idx = outShape.map((_, d) => Math.floor(o / os[d]) % outShape[d]);
          let best = -1;
          let bestV = -Infinity;
          for (let j = 0; j < shape[axis]; ++j) {
            idx[axis] = j;
            const v = ref[idx.reduce((p, q, d) => p + q * s[d], 0)];
            if (v > bestV) {
              bestV = v;
              best = j;
            }
          }
          return best;
        });
        expect(got, `axis ${axis}`).toEqual(want);
      }
    });
  });
});
