// Bad input gets a typed error naming the op, shapes, dtypes and device.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

describe('error classes', () => {
  it('are KilnError subclasses with their own names', () => {
    for (const Cls of [kiln.ShapeError, kiln.DTypeError, kiln.DeviceError, kiln.DisposedError, kiln.ValueError, kiln.UnsupportedError, kiln.OutOfMemoryError]) {
      const e = new Cls('kiln: x: y');
      expect(e).toBeInstanceOf(kiln.KilnError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(Cls.name);
    }
  });
});

describe('typed errors from ops', () => {
  const a = kiln.ones([2, 3]);
  it('shape mismatch names both shapes, dtypes and the device', () => {
    const b = kiln.ones([4]);
    expect(() => kiln.add(a, b)).toThrow(kiln.ShapeError);
    expect(() => kiln.add(a, b)).toThrow('kiln: add: shapes [2, 3] and [4] cannot be broadcast (float32[2, 3] on cpu, float32[4] on cpu)');
  });
  it('dtype mismatch names both operands', () => {
    const i = kiln.ones([3], { dtype: 'int32' });
    expect(() => kiln.mul(a, i)).toThrow(kiln.DTypeError);
    expect(() => kiln.mul(a, i)).toThrow(/kiln: mul: dtypes differ: float32\[2, 3\] on cpu and int32\[3\] on cpu/);
  });
  it('unknown dtype, unknown device, bad options and operands', () => {
    expect(() => kiln.zeros([1], { dtype: 'float128' as kiln.DType })).toThrow(kiln.DTypeError);
    expect(() => a.cast('int64' as kiln.DType)).toThrow(/kiln: cast: unknown dtype "int64"/);
    expect(() => kiln.zeros([1], { device: 'tpu' as kiln.Device })).toThrow(kiln.DeviceError);
    expect(() => kiln.zeros([1], 'float32' as unknown as kiln.CreateOptions)).toThrow(kiln.ValueError);
    expect(() => kiln.add(1 as unknown as kiln.Tensor, 2)).toThrow(kiln.ValueError);
    expect(() => kiln.add(a, null as unknown as number)).toThrow(kiln.ValueError);
    expect(() => kiln.rand([2], { dtype: 'int32' })).toThrow(/kiln: rand: dtype must be a floating type/);
    expect(() => kiln.rand([2], { seed: -1 })).toThrow(kiln.ValueError);
    expect(() => kiln.rand([2], { seed: 1.5 })).toThrow(kiln.ValueError);
    expect(() => kiln.setNumThreads(0)).toThrow(kiln.ValueError);
    expect(() => kiln.full([1], 'x' as unknown as number)).toThrow(kiln.ValueError);
  });
  it('CUDA requested without CUDA: a DeviceError with the reason', () => {
    const info = kiln.devices().cuda;
    if (info.available) return; // covered by the CUDA suite on a GPU machine
    expect(() => kiln.zeros([1], { device: 'cuda' })).toThrow(kiln.DeviceError);
    expect(() => kiln.zeros([1], { device: 'cuda' })).toThrow(`kiln: zeros: device 'cuda' requested but CUDA is unavailable: ${info.reason}`);
    expect(() => a.to('cuda:1')).toThrow(kiln.DeviceError);
  });
  it('the native layer validates again: a bad view never reaches memory', () => {
    // A view that claims more than its storage is refused in TS ...
    expect(() => kiln.internals.asStrided(a, [3, 3], [3, 1])).toThrow(kiln.ShapeError);
  });
});
