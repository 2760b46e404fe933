// eq/ne/lt/le/gt/ge and logicalAnd/logicalOr/logicalNot through the public
// API: against float64 references (JS comparisons of the exact stored values:
// NaN unordered, -0 == +0) for every input dtype, with broadcasting, strided
// inputs, number operands, the Tensor methods, every ISA level, error types,
// and CPU vs CUDA when a GPU is present.
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { isaLevels, refOf, stridedFromValues, valuesOf } from './helpers';
import { prng } from './reference';

type CmpOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
const OPS: CmpOp[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];
const REF: Record<CmpOp, (a: number, b: number) => boolean> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
};
const DTYPES = ['float32', 'float16', 'bfloat16', 'int32', 'int8', 'uint8', 'bool'] as const;

afterAll(() => kiln.internals.setIsa(isaLevels()[isaLevels().length - 1]));

/** Values for dtype: half from a small pool (equal values meet often; specials for floats), half spread out. */
function values(dtype: kiln.DType, n: number, seed: number): Float64Array {
  const r = prng(seed);
  const floatPool = [0, -0, 1, -1, 0.5, 1 + 2 ** -10, Infinity, -Infinity, NaN, 1e-40, 6e-8, 65504, 3e38, -3e38];
  const intPool: Record<string, number[]> = {
    int32: [0, 1, -1, 2, 2147483647, -2147483648],
    int8: [0, 1, -1, 127, -128],
    uint8: [0, 1, 2, 255, 128],
    bool: [0, 1],
  };
  return Float64Array.from({ length: n }, () => {
    const u = r();
    if (dtype === 'bool') return u < 0.5 ? 0 : 1;
    const pool = dtype in intPool ? intPool[dtype] : floatPool;
    if (u < 0.5) return pool[Math.floor(r() * pool.length)];
    const v = (r() * 2 - 1) * 4;
    if (dtype === 'int32') return Math.round(v * 1000);
    if (dtype === 'int8') return Math.round(v * 30);
    if (dtype === 'uint8') return Math.round(Math.abs(v) * 60);
    return u < 0.75 ? Math.round(v * 4) / 4 : v; // quarter steps collide often
  });
}

/** Row-major index into a broadcast operand of output element `flat`. */
function broadcastIndex(outShape: readonly number[], shape: readonly number[], flat: number): number {
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

/** The reference result of f over the broadcast of a and b (exact stored values), as 0/1. */
function reference(f: (a: number, b: number) => boolean, a: kiln.Tensor, b: kiln.Tensor, outShape: readonly number[]): number[] {
  const ra = refOf(a).data;
  const rb = refOf(b).data;
  const n = outShape.reduce((x, y) => x * y, 1);
  return Array.from({ length: n }, (_, i) => (f(ra[broadcastIndex(outShape, a.shape, i)], rb[broadcastIndex(outShape, b.shape, i)]) ? 1 : 0));
}

function expectMask(got: kiln.Tensor, want: number[], shape: readonly number[], what: string): void {
  expect(got.dtype, what).toBe('bool');
  expect(got.shape, what).toEqual(shape);
  const g = valuesOf(got);
  const bad = g.findIndex((v, i) => v !== want[i]);
  expect(bad, `${what}: first difference at ${bad}: got ${g[bad]}, want ${want[bad]}`).toBe(-1);
}

describe.each(isaLevels())('comparisons at ISA level %s', (level) => {
  for (const dtype of DTYPES) {
    it(`${dtype}: every op, broadcasting, contiguous and strided`, () => {
      kiln.internals.setIsa(level);
      kiln.tidy(() => {
        const aShape = [40, 1, 7];
        const bShape = [5, 7];
        const outShape = [40, 5, 7];
        const a = kiln.tensor(values(dtype, 280, 1 + dtype.length), aShape, { dtype });
        const b = kiln.tensor(values(dtype, 35, 2 + dtype.length), bShape, { dtype });
        const as = stridedFromValues(refOf(a).data, aShape, dtype);
        const bs = stridedFromValues(refOf(b).data, bShape, dtype);
        for (const op of OPS) {
          const want = reference(REF[op], a, b, outShape);
          expectMask(kiln[op](a, b), want, outShape, `${op} ${dtype}`);
          expectMask(kiln[op](as, bs), want, outShape, `${op} ${dtype} strided`);
          expectMask(a[op](b), want, outShape, `${op} ${dtype} method`);
          // swapped operands broadcast the other way
          const wantSwapped = reference(REF[op], b, a, outShape);
          expectMask(kiln[op](bs, a), wantSwapped, outShape, `${op} ${dtype} swapped`);
        }
      });
    });
  }
});

describe('comparison semantics', () => {
  it('IEEE: NaN compares false except ne; -0 == +0; infinities; 16-bit values compare exactly', () => {
    kiln.tidy(() => {
      for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
        const a = kiln.tensor([NaN, NaN, 0, -0, Infinity, -Infinity, 1, 1], [8], { dtype });
        const b = kiln.tensor([1, NaN, -0, 0, Infinity, Infinity, NaN, 1], [8], { dtype });
        expect(valuesOf(kiln.eq(a, b)), dtype).toEqual([0, 0, 1, 1, 1, 0, 0, 1]);
        expect(valuesOf(kiln.ne(a, b)), dtype).toEqual([1, 1, 0, 0, 0, 1, 1, 0]);
        expect(valuesOf(kiln.lt(a, b)), dtype).toEqual([0, 0, 0, 0, 0, 1, 0, 0]);
        expect(valuesOf(kiln.le(a, b)), dtype).toEqual([0, 0, 1, 1, 1, 1, 0, 1]);
        expect(valuesOf(kiln.gt(a, b)), dtype).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
        expect(valuesOf(kiln.ge(a, b)), dtype).toEqual([0, 0, 1, 1, 1, 0, 0, 1]);
      }
      // neighbouring float16 values are distinct; the smallest subnormal is not 0
      const h = kiln.tensor([1, 1 + 2 ** -10, 2 ** -24, -(2 ** -24)], [4], { dtype: 'float16' });
      expect(valuesOf(kiln.lt(h, kiln.tensor([1 + 2 ** -10, 1, 0, 0], [4], { dtype: 'float16' })))).toEqual([1, 0, 0, 1]);
      expect(valuesOf(kiln.gt(h, 0))).toEqual([1, 1, 1, 0]);
    });
  });

  it('a number operand takes the tensor dtype (either side), like the arithmetic ops', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([-1, 0, 0.5, 2, NaN], [5]);
      expect(valuesOf(kiln.gt(x, 0))).toEqual([0, 0, 1, 1, 0]);
      expect(valuesOf(kiln.lt(0, x))).toEqual([0, 0, 1, 1, 0]);
      expect(valuesOf(x.le(0.5))).toEqual([1, 1, 1, 0, 0]);
      expect(valuesOf(x.ne(NaN))).toEqual([1, 1, 1, 1, 1]);
      // 0.1 becomes float16's 0.1 (0.0999755859375), so it equals itself
      const h = kiln.tensor([0.1, 0.2], [2], { dtype: 'float16' });
      expect(valuesOf(kiln.eq(h, 0.1))).toEqual([1, 0]);
      // int32: the number is cast (truncated toward zero) first
      const i = kiln.tensor([-1, 0, 1], [3], { dtype: 'int32' });
      expect(valuesOf(kiln.lt(i, 0.5))).toEqual([1, 0, 0]);
      expect(kiln.eq(kiln.tensor(3.5), 3.5).item()).toBe(1);
    });
  });

  it('masks compose with where, and empty / 0-d shapes work', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([-2, -0.5, 0, 0.5, 2], [5]);
      const inside = kiln.logicalAnd(kiln.ge(x, -1), kiln.le(x, 1));
      expect(valuesOf(kiln.where(inside, x, 0))).toEqual([0, -0.5, 0, 0.5, 0]);
      expect(valuesOf(kiln.where(inside.logicalNot(), 1, 0))).toEqual([1, 0, 0, 0, 1]);
      const e = kiln.zeros([0, 3]);
      const m = kiln.eq(e, kiln.zeros([3]));
      expect(m.shape).toEqual([0, 3]);
      expect(m.dtype).toBe('bool');
      const s = kiln.lt(kiln.tensor(1), kiln.tensor(2));
      expect(s.shape).toEqual([]);
      expect(s.item()).toBe(1);
    });
  });
});

describe('logical ops', () => {
  it('logicalAnd / logicalOr broadcast, take booleans, and logicalNot inverts (every ISA level)', () => {
    for (const level of isaLevels()) {
      kiln.internals.setIsa(level);
      kiln.tidy(() => {
        const a = kiln.tensor(values('bool', 60, 5), [12, 1, 5], { dtype: 'bool' }) as kiln.Tensor<'bool'>;
        const b = kiln.tensor(values('bool', 15, 6), [3, 5], { dtype: 'bool' }) as kiln.Tensor<'bool'>;
        const outShape = [12, 3, 5];
        const bs = stridedFromValues(refOf(b).data, [3, 5], 'bool') as kiln.Tensor<'bool'>;
        expectMask(kiln.logicalAnd(a, b), reference((x, y) => x !== 0 && y !== 0, a, b, outShape), outShape, `and ${level}`);
        expectMask(kiln.logicalOr(a, bs), reference((x, y) => x !== 0 || y !== 0, a, b, outShape), outShape, `or ${level}`);
        expectMask(a.logicalAnd(bs), reference((x, y) => x !== 0 && y !== 0, a, b, outShape), outShape, `and method ${level}`);
        expectMask(b.logicalOr(a), reference((x, y) => x !== 0 || y !== 0, b, a, outShape), outShape, `or method ${level}`);
        const ra = refOf(a).data;
        expect(valuesOf(kiln.logicalNot(a))).toEqual(Array.from(ra, (v) => (v ? 0 : 1)));
        const at = kiln.transpose(a, [2, 1, 0]) as kiln.Tensor<'bool'>;
        expect(valuesOf(at.logicalNot())).toEqual(valuesOf(kiln.logicalNot(at.contiguous())));
        expect(valuesOf(kiln.logicalAnd(a, true))).toEqual(Array.from(ra));
        expect(valuesOf(kiln.logicalAnd(false, a))).toEqual(Array.from(ra, () => 0));
        expect(valuesOf(kiln.logicalOr(a, true))).toEqual(Array.from(ra, () => 1));
        expect(valuesOf(kiln.logicalOr(false, a))).toEqual(Array.from(ra));
      });
    }
  });
});

describe('errors', () => {
  it('are typed like the other binary ops', () => {
    kiln.tidy(() => {
      const f = kiln.zeros([3, 4]);
      const h = kiln.zeros([3, 4], { dtype: 'float16' });
      const m = kiln.zeros([3, 4], { dtype: 'bool' }) as kiln.Tensor<'bool'>;
      expect(() => kiln.eq(f, h as unknown as kiln.Tensor<'float32'>)).toThrow(kiln.DTypeError);
      expect(() => kiln.lt(f, kiln.zeros([3, 5]))).toThrow(kiln.ShapeError);
      expect(() => kiln.lt(f, kiln.zeros([3, 5]))).toThrow(/lt: shapes \[3, ?4\] and \[3, ?5\] cannot be broadcast/);
      expect(() => kiln.gt(1 as unknown as kiln.Tensor, 2)).toThrow(kiln.ValueError);
      expect(() => kiln.ge(f, 'x' as unknown as number)).toThrow(kiln.ValueError);
      expect(() => kiln.eq(kiln.zeros([2], { dtype: 'float8_e4m3' }), kiln.zeros([2], { dtype: 'float8_e4m3' }))).toThrow(kiln.UnsupportedError);
      expect(() => kiln.logicalAnd(f as unknown as kiln.Tensor<'bool'>, m)).toThrow(kiln.DTypeError);
      expect(() => kiln.logicalAnd(f as unknown as kiln.Tensor<'bool'>, m)).toThrow(/logical_and: first operand must have dtype bool/);
      expect(() => kiln.logicalOr(m, 1 as unknown as boolean)).toThrow(kiln.ValueError);
      expect(() => kiln.logicalOr(true as unknown as kiln.Tensor<'bool'>, false)).toThrow(kiln.ValueError);
      expect(() => kiln.logicalOr(m, kiln.zeros([5], { dtype: 'bool' }) as kiln.Tensor<'bool'>)).toThrow(kiln.ShapeError);
      expect(() => kiln.logicalNot(f as unknown as kiln.Tensor<'bool'>)).toThrow(kiln.DTypeError);
      expect(() => kiln.logicalNot(null as unknown as kiln.Tensor<'bool'>)).toThrow(kiln.ValueError);
      const d = kiln.zeros([2]);
      d.dispose();
      expect(() => kiln.eq(d, 0)).toThrow(kiln.DisposedError);
    });
  });
});

const cuda = kiln.devices().cuda;
describe.skipIf(!cuda.available)('CPU vs CUDA', () => {
  it('every op and dtype gives the same mask', () => {
    kiln.tidy(() => {
      for (const dtype of DTYPES) {
        const a = kiln.tensor(values(dtype, 280, 11), [40, 1, 7], { dtype });
        const b = stridedFromValues(values(dtype, 35, 12), [5, 7], dtype);
        for (const op of OPS) {
          expect(valuesOf(kiln[op](a.to('cuda'), b.to('cuda'))), `${op} ${dtype}`).toEqual(valuesOf(kiln[op](a, b)));
        }
      }
      const m = kiln.tensor(values('bool', 60, 13), [12, 5], { dtype: 'bool' }) as kiln.Tensor<'bool'>;
      const n = kiln.tensor(values('bool', 5, 14), [5], { dtype: 'bool' }) as kiln.Tensor<'bool'>;
      const [mg, ng] = [m.to('cuda') as kiln.Tensor<'bool'>, n.to('cuda') as kiln.Tensor<'bool'>];
      expect(valuesOf(kiln.logicalAnd(mg, ng))).toEqual(valuesOf(kiln.logicalAnd(m, n)));
      expect(valuesOf(kiln.logicalOr(mg, ng))).toEqual(valuesOf(kiln.logicalOr(m, n)));
      expect(valuesOf(kiln.logicalNot(mg))).toEqual(valuesOf(kiln.logicalNot(m)));
    });
  });
});
