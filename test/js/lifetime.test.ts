// dispose, tidy, keep, memory() accounting and the FinalizationRegistry net.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const gc = (globalThis as { gc?: () => void }).gc;

describe('dispose', () => {
  it('is idempotent and frees the storage; use after dispose throws DisposedError', () => {
    const before = kiln.memory();
    const t = kiln.zeros([10, 10]);
    expect(kiln.memory().tensors).toBe(before.tensors + 1);
    expect(kiln.memory().bytes.cpu).toBe(before.bytes.cpu + 400);
    t.dispose();
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(kiln.memory()).toEqual(before);
    expect(() => t.dataSync()).toThrow(kiln.DisposedError);
    expect(() => t.add(1)).toThrow(/kiln: add: tensor float32\[10, 10\] on cpu has been disposed/);
    expect(() => t.reshape([100])).toThrow(kiln.DisposedError);
    expect(() => t.cast('float16')).toThrow(kiln.DisposedError);
    expect(() => t.item()).toThrow(kiln.DisposedError);
    expect(t.shape).toEqual([10, 10]); // metadata stays readable
    expect(String(t)).toBe('Tensor(float32[10, 10] on cpu, disposed)');
  });
  it('supports Symbol.dispose (the `using` protocol)', () => {
    const before = kiln.memory().tensors;
    const t = kiln.ones([3]);
    t[Symbol.dispose]();
    expect(t.isDisposed).toBe(true);
    expect(kiln.memory().tensors).toBe(before);
  });
  it('views share storage: bytes are freed with the last view', () => {
    const before = kiln.memory();
    const t = kiln.zeros([4, 4]);
    const v = t.reshape([16]);
    expect(kiln.memory().tensors).toBe(before.tensors + 2);
    expect(kiln.memory().bytes.cpu).toBe(before.bytes.cpu + 64);
    t.dispose();
    expect(kiln.memory().bytes.cpu).toBe(before.bytes.cpu + 64);
    v.dispose();
    expect(kiln.memory()).toEqual(before);
  });
  it('data() rejects after dispose instead of throwing synchronously', async () => {
    const t = kiln.ones([1]);
    t.dispose();
    await expect(t.data()).rejects.toThrow(kiln.DisposedError);
  });
});

describe('tidy', () => {
  it('disposes what fn created except what it returns (nested in arrays and objects)', () => {
    const before = kiln.memory();
    const outside = kiln.ones([2]);
    const result = kiln.tidy(() => {
      const a = kiln.ones([2]);
      const b = a.add(outside);
      const c = b.mul(2);
      return { c, list: [a] };
    });
    expect(result.c.isDisposed).toBe(false);
    expect(result.list[0].isDisposed).toBe(false);
    expect(outside.isDisposed).toBe(false);
    expect(kiln.memory().tensors).toBe(before.tensors + 3);
    expect(result.c.toArray()).toEqual([4, 4]);
    result.c.dispose();
    result.list[0].dispose();
    outside.dispose();
    expect(kiln.memory()).toEqual(before);
  });
  it('nests: returned tensors belong to the outer scope', () => {
    const before = kiln.memory();
    let inner: kiln.Tensor | undefined;
    kiln.tidy(() => {
      inner = kiln.tidy(() => kiln.ones([3]).add(1));
      expect(inner.isDisposed).toBe(false);
    });
    expect(inner?.isDisposed).toBe(true);
    expect(kiln.memory()).toEqual(before);
  });
  it('keep() exempts a tensor; disposal on throw; Promises are refused', () => {
    const before = kiln.memory();
    let kept: kiln.Tensor | undefined;
    kiln.tidy(() => {
      kept = kiln.keep(kiln.zeros([1]));
      kiln.zeros([5]);
    });
    expect(kept?.isDisposed).toBe(false);
    kept?.dispose();
    expect(() =>
      kiln.tidy(() => {
        kiln.zeros([100]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(kiln.memory()).toEqual(before);
    expect(() => kiln.tidy(() => Promise.resolve(kiln.zeros([1])) as unknown as number)).toThrow(/synchronous/);
    expect(kiln.memory()).toEqual(before);
  });
  it('leaves memory() unchanged over many op-heavy iterations', () => {
    const before = kiln.memory();
    const w = kiln.randn([64, 64], { seed: 1 });
    for (let i = 0; i < 200; ++i) {
      kiln.tidy(() => {
        w.mul(0.5).add(w).cast('bfloat16').cast('float32').reshape([-1]).sub(1);
      });
    }
    w.dispose();
    expect(kiln.memory()).toEqual(before);
  });
});

describe('garbage collection safety net', () => {
  const settle = async (done: () => boolean): Promise<void> => {
    for (let round = 0; round < 50 && !done(); ++round) {
      gc?.();
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  it.skipIf(gc === undefined)('frees tensors dropped without dispose()', async () => {
    let last = -1;
    await settle(() => {
      const now = kiln.memory().tensors;
      const stable = now === last;
      last = now;
      return stable;
    });
    const before = kiln.memory();
    (() => {
      for (let i = 0; i < 50; ++i) kiln.zeros([1000]);
    })();
    expect(kiln.memory().tensors).toBe(before.tensors + 50);
    await settle(() => kiln.memory().tensors === before.tensors);
    expect(kiln.memory()).toEqual(before);
  });
});
