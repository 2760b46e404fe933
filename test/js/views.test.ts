// View ops (transpose/permute, slice, narrow, split, broadcastTo, squeeze,
// unsqueeze, flatten) and the copying ones (concat, stack), checked against
// index arithmetic on float64 arrays.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { randomValues, size, stridedFromValues, stridesOf } from './helpers';

/** Value of a row-major array at multi-index idx. */
function at(data: Float64Array, shape: number[], idx: number[]): number {
  const s = stridesOf(shape);
  return data[idx.reduce((p, v, i) => p + v * s[i], 0)];
}

/** All multi-indices of a shape in row-major order. */
function* indices(shape: number[]): Generator<number[]> {
  const n = size(shape);
  const s = stridesOf(shape);
  for (let i = 0; i < n; ++i) yield shape.map((_, d) => Math.floor(i / s[d]) % shape[d]);
}

const flat = (t: kiln.Tensor): number[] => (t.size === 0 ? [] : (t.reshape([-1]).toArray() as number[]));

describe('transpose and permute', () => {
  it('reorders dimensions as views, matching index arithmetic', () => {
    const shape = [2, 3, 4, 5];
    const data = randomValues(size(shape), 1);
    kiln.tidy(() => {
      const x = kiln.tensor(data, shape);
      for (const perm of [[3, 2, 1, 0], [0, 2, 1, 3], [1, 0, 3, 2], [2, 3, 0, 1]]) {
        const t = kiln.transpose(x, perm);
        const outShape = perm.map((p) => shape[p]);
        expect(t.shape).toEqual(outShape);
        const want = [...indices(outShape)].map((idx) => at(data, shape, perm.map((_, i) => idx[perm.indexOf(i)])));
        expect(flat(t)).toEqual(want.map(Math.fround));
      }
      expect(x.transpose().shape).toEqual([5, 4, 3, 2]);
      expect(kiln.permute(x, 0, 2, 1, 3).shape).toEqual([2, 4, 3, 5]);
      expect(x.permute([0, 2, 1, 3]).shape).toEqual([2, 4, 3, 5]);
      expect(kiln.swapAxes(x, 0, -1).shape).toEqual([5, 3, 4, 2]);
      expect(() => kiln.transpose(x, [0, 1, 2])).toThrow(kiln.ShapeError);
      expect(() => kiln.transpose(x, [0, 1, 2, 2])).toThrow(/not a permutation/);
      expect(() => kiln.transpose(x, [0, 1, 2, 4])).toThrow(/out of range/);
    });
  });
});

describe('slice, narrow, split', () => {
  it('slices with negative indices, clamping and steps', () => {
    const shape = [6, 7];
    const data = Float64Array.from({ length: 42 }, (_, i) => i);
    kiln.tidy(() => {
      const x = kiln.tensor(data, shape);
      const s = kiln.slice(x, [1, -5], [5, 100], [2, 3]);
      expect(s.shape).toEqual([2, 2]);
      expect(s.toArray()).toEqual([[9, 12], [23, 26]]);
      expect(x.slice([4]).shape).toEqual([2, 7]);
      expect(x.slice([10]).shape).toEqual([0, 7]);
      expect(x.slice([3], [1]).shape).toEqual([0, 7]);
      expect(kiln.narrow(x, 1, 2, 3).toArray()).toEqual(Array.from({ length: 6 }, (_, r) => [2, 3, 4].map((c) => r * 7 + c)));
      expect(() => kiln.narrow(x, 1, 5, 3)).toThrow(kiln.ShapeError);
      expect(() => kiln.slice(x, [0], [1], [0])).toThrow(kiln.ValueError);
      expect(() => kiln.slice(x, [0, 0, 0])).toThrow(kiln.ShapeError);
    });
  });
  it('splits into equal parts or given sizes, as views of the same storage', () => {
    kiln.tidy(() => {
      const x = kiln.arange(24, { dtype: 'float32' }).reshape([4, 6]);
      const parts = kiln.split(x, 3, 1);
      expect(parts.map((p) => p.shape)).toEqual([[4, 2], [4, 2], [4, 2]]);
      expect(parts[1].toArray()).toEqual([[2, 3], [8, 9], [14, 15], [20, 21]]);
      const sized = x.split([1, 0, 3]);
      expect(sized.map((p) => p.shape)).toEqual([[1, 6], [0, 6], [3, 6]]);
      expect(flat(sized[2])).toEqual(Array.from({ length: 18 }, (_, i) => i + 6));
      expect(() => kiln.split(x, 5, 1)).toThrow(/does not split into 5 equal parts/);
      expect(() => kiln.split(x, [1, 2], 0)).toThrow(/do not add up/);
      const before = kiln.memory().bytes.cpu;
      kiln.split(x, 2, 0);
      expect(kiln.memory().bytes.cpu).toBe(before); // views: no new storage
    });
  });
});

describe('concat and stack', () => {
  it('joins along any axis, including strided inputs and empty parts', () => {
    const a = randomValues(2 * 3 * 4, 2);
    const b = randomValues(2 * 5 * 4, 3);
    kiln.tidy(() => {
      const ta = kiln.tensor(a, [2, 3, 4]);
      const tb = stridedFromValues(b, [2, 5, 4], 'float32');
      expect(tb.isContiguous).toBe(false);
      const empty = kiln.zeros([2, 0, 4]);
      const c = kiln.concat([ta, empty, tb], 1);
      expect(c.shape).toEqual([2, 8, 4]);
      const want: number[] = [];
      for (let i = 0; i < 2; ++i) {
        for (let j = 0; j < 8; ++j) {
          for (let k = 0; k < 4; ++k) want.push(j < 3 ? at(a, [2, 3, 4], [i, j, k]) : at(b, [2, 5, 4], [i, j - 3, k]));
        }
      }
      expect(flat(c)).toEqual(want.map(Math.fround));
      const s = kiln.stack([ta, ta], 2);
      expect(s.shape).toEqual([2, 3, 2, 4]);
      expect(flat(kiln.narrow(s, 2, 1, 1))).toEqual(flat(ta));
      expect(() => kiln.concat([ta, tb], 0)).toThrow(/differ outside axis 0/);
      expect(() => kiln.concat([ta, ta.cast('float16')], 0)).toThrow(kiln.DTypeError);
      expect(() => kiln.concat([], 0)).toThrow(kiln.ValueError);
    });
  });
});

describe('broadcastTo, squeeze, unsqueeze, flatten', () => {
  it('reshape dimensions without copying', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([[1], [2], [3]]);
      const b = kiln.broadcastTo(x, [2, 3, 4]);
      expect(b.strides).toEqual([0, 1, 0]);
      expect(b.toArray()).toEqual([[[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]], [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]]);
      expect(() => kiln.broadcastTo(x, [2, 4])).toThrow(kiln.ShapeError);
      expect(() => kiln.broadcastTo(x, [3])).toThrow(/lower-rank/);
      expect(x.squeeze().shape).toEqual([3]);
      expect(x.squeeze(1).shape).toEqual([3]);
      expect(() => x.squeeze(0)).toThrow(/has size 3, not 1/);
      expect(x.unsqueeze(0).shape).toEqual([1, 3, 1]);
      expect(x.unsqueeze(-1).shape).toEqual([3, 1, 1]);
      expect(x.unsqueeze(2).toArray()).toEqual([[[1]], [[2]], [[3]]]);
      expect(kiln.flatten(b).size).toBe(24);
      expect(flat(kiln.flatten(b)).slice(0, 5)).toEqual([1, 1, 1, 1, 2]);
    });
  });
});
