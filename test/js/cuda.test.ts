// CUDA through the public API, CPU as the reference. Skipped (not faked) when
// CUDA is unavailable; scripts/gpu-check.sh runs the native CUDA suites on a GPU.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { f32FromBits, prng } from './reference';

const cuda = kiln.devices().cuda;

describe.skipIf(!cuda.available)('CUDA backend', () => {
  it('reports devices', () => {
    expect(cuda.devices.length).toBeGreaterThan(0);
    expect(cuda.devices[0].memoryBytes).toBeGreaterThan(0);
    expect(cuda.reason).toBeUndefined();
  });

  it('round-trips every dtype through the device and accounts for its bytes', () => {
    for (const dtype of kiln.DTYPES) {
      kiln.tidy(() => {
        const before = kiln.memory().bytes.cuda;
        const x = kiln.arange(0, 50, 1, { dtype });
        const g = x.to('cuda');
        expect(g.device).toBe('cuda:0');
        expect(kiln.memory().bytes.cuda).toBe(before + 50 * kiln.dtypeSize(dtype));
        expect(g.toArray(), dtype).toEqual(x.toArray());
        expect(g.to('cpu').toArray(), dtype).toEqual(x.toArray());
      });
    }
  });

  it('casts bit for bit like the CPU (float32 patterns, every dtype pair)', () => {
    const rnd = prng(77);
    const n = 1 << 16;
    const bits = new Uint32Array(n).map(() => Math.floor(rnd() * 2 ** 32));
    const src = new Float32Array(bits.buffer);
    src.set([0, -0, Infinity, -Infinity, NaN, 448, 464, 57344, 2 ** -10, f32FromBits(0xffc00001)]);
    kiln.tidy(() => {
      const cpu = kiln.tensor(src);
      const gpu = cpu.to('cuda');
      for (const from of kiln.DTYPES) {
        const c = cpu.cast(from);
        const g = gpu.cast(from);
        for (const to of kiln.DTYPES) {
          const a = c.cast(to).dataSync();
          const b = g.cast(to).dataSync();
          expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer)), `${from} -> ${to}`).toBe(true);
        }
      }
    });
  });

  it('rand/randn give the same bits as the CPU for a seed', () => {
    for (const dtype of ['float32', 'bfloat16', 'float16', 'float8_e4m3'] as const) {
      for (const n of [1, 7, 1000, 65537]) {
        kiln.tidy(() => {
          for (const fn of [kiln.rand, kiln.randn]) {
            const c = fn([n], { seed: 99, dtype }).dataSync();
            const g = fn([n], { seed: 99, dtype, device: 'cuda' }).dataSync();
            expect(Buffer.from(g.buffer).equals(Buffer.from(c.buffer)), `${fn.name} ${dtype} ${n}`).toBe(true);
          }
        });
      }
    }
  });

  it('binary ops with broadcasting and strided inputs match the CPU', () => {
    kiln.tidy(() => {
      for (const dtype of ['float32', 'float16', 'bfloat16', 'int32'] as const) {
        const a = kiln.randn([33, 1, 17], { seed: 1 }).mul(100).cast(dtype);
        const b = kiln.randn([5, 17], { seed: 2 }).mul(100).cast(dtype);
        const ga = a.to('cuda');
        const gb = b.to('cuda');
        for (const op of ['add', 'sub', 'mul', 'maximum', 'minimum'] as const) {
          expect(kiln[op](ga, gb).toArray(), `${op} ${dtype}`).toEqual(kiln[op](a, b).toArray());
        }
        const ta = kiln.internals.asStrided(ga, [17, 33], [1, 17]);
        const tc = kiln.internals.asStrided(a, [17, 33], [1, 17]);
        expect(ta.add(1).toArray()).toEqual(tc.add(1).toArray());
      }
    });
  });

  it('refuses mixed devices with a DeviceError', () => {
    kiln.tidy(() => {
      const c = kiln.ones([2]);
      const g = kiln.ones([2], { device: 'cuda' });
      expect(() => kiln.add(c, g)).toThrow(kiln.DeviceError);
      expect(() => kiln.add(c, g)).toThrow(/different devices: float32\[2\] on cpu and float32\[2\] on cuda:0/);
      expect(() => kiln.zeros([1], { device: `cuda:${cuda.devices.length}` as kiln.Device })).toThrow(/does not exist/);
    });
  });
});

describe.skipIf(cuda.available)('without CUDA', () => {
  it('says why', () => {
    expect(typeof cuda.reason).toBe('string');
    expect(cuda.reason?.length).toBeGreaterThan(20);
    expect(() => kiln.ones([1]).to('cuda')).toThrow(kiln.DeviceError);
  });
});
