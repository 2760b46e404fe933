// matmul against a float64 reference: NumPy shape rules (1-D operands,
// broadcast batches), transposed and strided operands, 16-bit dtypes, and
// thread-count invariance.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { eps, expectClose, makeTensor, randomValues, size, stridedFromValues, stridesOf, valuesOf } from './helpers';

/** Reference matmul of float64 row-major arrays with NumPy semantics; returns values and shape. */
function matmulRef(a: Float64Array, as: number[], b: Float64Array, bs: number[]): { out: number[]; abs: number[]; shape: number[] } {
  const a2 = as.length === 1 ? [1, as[0]] : as;
  const b2 = bs.length === 1 ? [bs[0], 1] : bs;
  const [m, k] = a2.slice(-2);
  const n = b2[b2.length - 1];
  const ab = a2.slice(0, -2);
  const bb = b2.slice(0, -2);
  const nb = Math.max(ab.length, bb.length);
  const batch = Array.from({ length: nb }, (_, i) => {
    const x = i < nb - ab.length ? 1 : ab[i - (nb - ab.length)];
    const y = i < nb - bb.length ? 1 : bb[i - (nb - bb.length)];
    return x === 1 ? y : x;
  });
  const bsz = size(batch);
  const out: number[] = [];
  const absSum: number[] = [];
  const bstr = stridesOf(batch);
  const offsetIn = (shape: number[], bi: number): number => {
    let off = 0;
    let mult = 1;
    for (let d = shape.length - 1; d >= 0; --d) {
      const coord = Math.floor(bi / bstr[d + (nb - shape.length)]) % batch[d + (nb - shape.length)];
      off += (shape[d] === 1 ? 0 : coord) * mult;
      mult *= shape[d];
    }
    return off;
  };
  for (let bi = 0; bi < bsz; ++bi) {
    const ao = offsetIn(ab, bi) * m * k;
    const bo = offsetIn(bb, bi) * k * n;
    for (let i = 0; i < m; ++i) {
      for (let j = 0; j < n; ++j) {
        let s = 0;
        let sa = 0;
        for (let p = 0; p < k; ++p) {
          const prod = a[ao + i * k + p] * b[bo + p * n + j];
          s += prod;
          sa += Math.abs(prod);
        }
        out.push(s);
        absSum.push(sa);
      }
    }
  }
  const shape = [...batch, ...(as.length > 1 ? [m] : []), ...(bs.length > 1 ? [n] : [])];
  return { out, abs: absSum, shape };
}

/** |got - want| <= K * u * sum|a b| + output rounding, per element. */
function expectMatmul(got: number[], ref: { out: number[]; abs: number[] }, k: number, dtype: kiln.DType, what: string): void {
  expect(got.length, what).toBe(ref.out.length);
  const u = eps('float32');
  let bad = 0;
  let first = '';
  for (let i = 0; i < got.length; ++i) {
    const tol = (k + 2) * u * ref.abs[i] + (dtype === 'float32' ? 0 : 2 * eps(dtype) * Math.abs(ref.out[i])) + 1e-30;
    if (!(Math.abs(got[i] - ref.out[i]) <= tol)) {
      if (bad++ === 0) first = `at ${i}: ${got[i]} vs ${ref.out[i]} (tol ${tol})`;
    }
  }
  expect(bad, `${what}: ${bad} mismatches, first ${first}`).toBe(0);
}

const CASES: [number[], number[]][] = [
  [[1, 1], [1, 1]],
  [[7, 13], [13, 5]],
  [[64, 64], [64, 64]],
  [[65, 129], [129, 33]],
  [[1, 300], [300, 257]],
  [[300, 1], [1, 7]],
  [[13], [13, 4]],
  [[5, 13], [13]],
  [[13], [13]],
  [[3, 1, 6, 8], [4, 8, 5]],
  [[2, 3, 4], [4, 2]],
  [[4, 0], [0, 3]],
  [[0, 4], [4, 3]],
];

describe('matmul', () => {
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    it(`${dtype}: shapes, 1-D operands, broadcast batches`, () => {
      CASES.forEach(([as, bs], c) => {
        kiln.tidy(() => {
          const { t: a, ref: ra } = makeTensor(randomValues(size(as), 10 + c), as, dtype);
          const { t: b, ref: rb } = makeTensor(randomValues(size(bs), 20 + c), bs, dtype);
          const ref = matmulRef(ra.data, as, rb.data, bs);
          const out = kiln.matmul(a, b);
          expect(out.shape, JSON.stringify([as, bs])).toEqual(ref.shape);
          expect(out.dtype).toBe(dtype);
          expectMatmul(valuesOf(out), ref, as[as.length - 1], dtype, `${dtype} ${JSON.stringify([as, bs])}`);
        });
      });
    });
  }
  it('takes transposed and strided operands (views) without copying them first', () => {
    kiln.tidy(() => {
      const m = 37;
      const k = 53;
      const n = 29;
      const { t: at, ref: rat } = makeTensor(randomValues(k * m, 1), [k, m]); // A^T stored
      const { t: bt, ref: rbt } = makeTensor(randomValues(n * k, 2), [n, k]); // B^T stored
      const a = at.transpose();
      const b = bt.transpose();
      // row-major A and B from the stored transposes
      const A = Float64Array.from({ length: m * k }, (_, i) => rat.data[(i % k) * m + Math.floor(i / k)]);
      const B = Float64Array.from({ length: k * n }, (_, i) => rbt.data[(i % n) * k + Math.floor(i / n)]);
      const ref = matmulRef(A, [m, k], B, [k, n]);
      expectMatmul(valuesOf(kiln.matmul(a, b)), ref, k, 'float32', 'A^T^T @ B^T^T');
      const sa = stridedFromValues(A, [m, k], 'float32');
      const sb = stridedFromValues(B, [k, n], 'float32');
      expectMatmul(valuesOf(sa.matmul(sb)), ref, k, 'float32', 'strided');
    });
  });
  it('is bit-identical for 1, 2 and 3 threads', () => {
    const before = kiln.getNumThreads();
    const a = kiln.randn([301, 257], { seed: 1 });
    const b = kiln.randn([257, 189], { seed: 2 });
    const runs = [1, 2, 3].map((t) => {
      kiln.setNumThreads(t);
      return kiln.tidy(() => Array.from(kiln.matmul(a, b).dataSync()));
    });
    kiln.setNumThreads(before);
    a.dispose();
    b.dispose();
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
  });
  it('refuses mismatched shapes, dtypes and 0-d operands', () => {
    kiln.tidy(() => {
      const a = kiln.ones([2, 3]);
      expect(() => kiln.matmul(a, kiln.ones([4, 2]))).toThrow('kiln: matmul: inner dimensions differ: [2, 3] @ [4, 2] (float32[2, 3] on cpu, float32[4, 2] on cpu)');
      expect(() => kiln.matmul(kiln.ones([2, 2, 3]), kiln.ones([3, 3, 1]))).toThrow(/batch dimensions/);
      expect(() => kiln.matmul(a, kiln.ones([3, 2], { dtype: 'float16' }))).toThrow(kiln.DTypeError);
      expect(() => kiln.matmul(kiln.tensor(1), a)).toThrow(kiln.ShapeError);
      const i = kiln.ones([2, 2], { dtype: 'int32' });
      expect(() => kiln.matmul(i, i)).toThrow("kiln: op 'matmul' has no kernel for dtype int32 on device cpu");
    });
  });
});
