// Tensor creation, shapes, dtypes, views and readback.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

describe('tensor()', () => {
  it('infers shape and dtype from nested arrays', () => {
    const t = kiln.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe('cpu');
    expect(t.size).toBe(6);
    expect(t.ndim).toBe(2);
    expect(t.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(Array.from(t.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.dataSync()).toBeInstanceOf(Float32Array);
    t.dispose();
  });
  it('takes a flat array with a shape, and options in place of the shape', () => {
    expect(kiln.tensor([1, 2, 3, 4], [2, 2]).toArray()).toEqual([[1, 2], [3, 4]]);
    const i = kiln.tensor([1, 2], { dtype: 'int32' });
    expect(i.dtype).toBe('int32');
    expect(i.dataSync()).toBeInstanceOf(Int32Array);
  });
  it('makes 0-d tensors from a scalar and bool tensors from booleans', () => {
    const s = kiln.tensor(3.5);
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(3.5);
    expect(s.toArray()).toBe(3.5);
    const b = kiln.tensor([true, false, true]);
    expect(b.dtype).toBe('bool');
    expect(Array.from(b.dataSync())).toEqual([1, 0, 1]);
  });
  it('keeps TypedArray types and takes raw bits for float16/bfloat16/fp8', () => {
    expect(kiln.tensor(new Int32Array([1, -2])).dtype).toBe('int32');
    expect(kiln.tensor(new Int8Array([1, -2])).dtype).toBe('int8');
    expect(kiln.tensor(new Uint8Array([1, 2])).dtype).toBe('uint8');
    expect(kiln.tensor(new Float64Array([0.1])).dataSync()[0]).toBe(Math.fround(0.1));
    const h = kiln.tensor(new Uint16Array([0x3c00, 0xc000]), [2], { dtype: 'float16' });
    expect(h.toArray()).toEqual([1, -2]);
    const bf = kiln.tensor(new Uint16Array([0x3f80]), [1], { dtype: 'bfloat16' });
    expect(bf.item()).toBe(1);
    const f8 = kiln.tensor(new Uint8Array([0x38, 0x7e]), [2], { dtype: 'float8_e4m3' });
    expect(f8.toArray()).toEqual([1, 448]);
    expect(() => kiln.tensor(new Uint16Array([1]))).toThrow(kiln.DTypeError);
  });
  it('rounds numbers once to the dtype (float64 -> bfloat16 directly)', () => {
    // 1 + 2^-8 + 2^-30 is just above the bfloat16 midpoint 1 + 2^-8; through float32 it would be a tie -> 1.
    expect(kiln.tensor([1 + 2 ** -8 + 2 ** -30], [1], { dtype: 'bfloat16' }).item()).toBe(1 + 2 ** -7);
    expect(kiln.tensor([70000], [1], { dtype: 'float16' }).item()).toBe(Infinity);
    expect(kiln.tensor([2.9, -2.9], [2], { dtype: 'int32' }).toArray()).toEqual([2, -2]);
  });
  it('rejects ragged arrays, bad elements and size mismatches', () => {
    expect(() => kiln.tensor([[1, 2], [3]])).toThrow(/ragged nested array at \[1\]/);
    expect(() => kiln.tensor([[1, 2], [3]])).toThrow(kiln.ShapeError);
    expect(() => kiln.tensor([1, 'a' as unknown as number])).toThrow(kiln.ValueError);
    expect(() => kiln.tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2, 2\]/);
    expect(() => kiln.tensor([1], [1], { dtype: 'float64' as kiln.DType })).toThrow(/unknown dtype "float64"/);
  });
  it('handles empty tensors', () => {
    const e = kiln.tensor([]);
    expect(e.shape).toEqual([0]);
    expect(e.dataSync().length).toBe(0);
    const z = kiln.zeros([3, 0, 2]);
    expect(z.size).toBe(0);
    expect(z.toArray()).toEqual([[], [], []]);
    expect(z.add(1).shape).toEqual([3, 0, 2]);
  });
});

describe('zeros, ones, full', () => {
  it('fills every dtype', () => {
    for (const dtype of kiln.DTYPES) {
      kiln.tidy(() => {
        expect(kiln.zeros([2, 3], { dtype }).toArray(), dtype).toEqual([[0, 0, 0], [0, 0, 0]]);
        expect(kiln.ones([4], { dtype }).toArray(), dtype).toEqual([1, 1, 1, 1]);
        const v = dtype === 'bool' ? 1 : dtype === 'uint8' ? 200 : -3;
        expect(kiln.full([2], v, { dtype }).toArray(), dtype).toEqual([v, v]);
      });
    }
    expect(kiln.full([2], 0.1).toArray()).toEqual([Math.fround(0.1), Math.fround(0.1)]);
    expect(kiln.full([1], true).dtype).toBe('bool');
    expect(kiln.full([1], 1e6, { dtype: 'float8_e4m3' }).item()).toBe(448);
  });
  it('validates shapes', () => {
    expect(() => kiln.zeros([2, NaN])).toThrow(/invalid dimension NaN/);
    expect(() => kiln.zeros([2, -1])).toThrow(kiln.ShapeError);
    expect(() => kiln.zeros([1.5])).toThrow(kiln.ShapeError);
    expect(() => kiln.zeros([Infinity])).toThrow(kiln.ShapeError);
    expect(() => kiln.zeros('3' as unknown as number[])).toThrow(kiln.ShapeError);
    expect(() => kiln.zeros(new Array(17).fill(1))).toThrow(/at most 16/);
    expect(() => kiln.zeros([2 ** 40, 2 ** 40])).toThrow(kiln.ShapeError);
  });
});

describe('zerosLike, onesLike, fullLike', () => {
  it('copy shape, dtype and device unless overridden', () => {
    kiln.tidy(() => {
      const t = kiln.ones([2, 3], { dtype: 'bfloat16' });
      const z = kiln.zerosLike(t);
      expect([z.shape, z.dtype, z.device]).toEqual([[2, 3], 'bfloat16', 'cpu']);
      expect(z.toArray()).toEqual([[0, 0, 0], [0, 0, 0]]);
      expect(kiln.onesLike(t, { dtype: 'int32' }).dtype).toBe('int32');
      expect(kiln.fullLike(t, 2.5).toArray()).toEqual([[2.5, 2.5, 2.5], [2.5, 2.5, 2.5]]);
      expect(() => kiln.zerosLike([1, 2] as unknown as kiln.Tensor)).toThrow(kiln.ValueError);
    });
  });
});

describe('arange', () => {
  it('matches the float64 definition', () => {
    expect(kiln.arange(5).toArray()).toEqual([0, 1, 2, 3, 4]);
    expect(kiln.arange(5).dtype).toBe('int32');
    expect(kiln.arange(2, 11, 3).toArray()).toEqual([2, 5, 8]);
    expect(kiln.arange(5, 0, -2).toArray()).toEqual([5, 3, 1]);
    const f = kiln.arange(0, 1, 0.1);
    expect(f.dtype).toBe('float32');
    expect(f.size).toBe(10);
    expect(Array.from(f.dataSync())).toEqual(Array.from({ length: 10 }, (_, i) => Math.fround(i * 0.1)));
    expect(kiln.arange(3, { dtype: 'bfloat16' }).toArray()).toEqual([0, 1, 2]);
    expect(kiln.arange(0).size).toBe(0);
  });
  it('rejects a zero or wrong-way step', () => {
    expect(() => kiln.arange(0, 5, 0)).toThrow(kiln.ValueError);
    expect(() => kiln.arange(0, 5, -1)).toThrow(/moves away from end/);
    expect(() => kiln.arange(NaN)).toThrow(kiln.ValueError);
    expect(() => kiln.arange(2 ** 31 - 2, 2 ** 31 + 2)).toThrow(/do not fit int32/);
  });
});

describe('views and copies', () => {
  it('reshape is a view of contiguous data (with -1 inference)', () => {
    const t = kiln.arange(6);
    const r = t.reshape([2, -1]);
    expect(r.shape).toEqual([2, 3]);
    expect(r.toArray()).toEqual([[0, 1, 2], [3, 4, 5]]);
    t.dispose();
    expect(r.toArray()).toEqual([[0, 1, 2], [3, 4, 5]]); // the view keeps the storage alive
    expect(() => r.reshape([4, -1])).toThrow(/cannot reshape int32\[2, 3\]/);
    expect(() => r.reshape([-1, -1])).toThrow(/more than one -1/);
    expect(() => r.reshape([7])).toThrow(kiln.ShapeError);
  });
  it('contiguous() packs a strided view; clone() always copies', () => {
    const t = kiln.arange(12).reshape([3, 4]);
    const tr = kiln.internals.asStrided(t, [4, 3], [1, 4]); // transpose
    expect(tr.isContiguous).toBe(false);
    expect(tr.toArray()).toEqual([[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]);
    const c = tr.contiguous();
    expect(c.isContiguous).toBe(true);
    expect(Array.from(c.dataSync())).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(tr.reshape([12]).toArray()).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    const cl = t.clone();
    t.dispose();
    expect(cl.toArray()).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
    const col = kiln.internals.asStrided(cl, [3], [4], 1); // column 1
    expect(col.cast('float32').toArray()).toEqual([1, 5, 9]);
    expect(() => kiln.internals.asStrided(cl, [3], [6], 1)).toThrow(/reaches element 13, beyond the 12 elements/);
  });
  it('to() with the same device and dtype is a new view; cast to the same dtype too', () => {
    const t = kiln.ones([2]);
    const v = t.to('cpu');
    expect(v).not.toBe(t);
    t.dispose();
    expect(v.toArray()).toEqual([1, 1]);
    const w = v.to({ dtype: 'float16' });
    expect(w.dtype).toBe('float16');
    expect(v.cast('float32')).not.toBe(v);
  });
  it('item() needs one element; data() resolves to the same copy as dataSync()', async () => {
    const t = kiln.tensor([1, 2]);
    expect(() => t.item()).toThrow(/has 2 elements/);
    expect(Array.from(await t.data())).toEqual([1, 2]);
    expect(kiln.tensor([[7]]).item()).toBe(7);
  });
});
