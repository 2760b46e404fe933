// kiln.quant.packFireQ / unpackFireQ / FireQWeight: the FireQ fragment layout
// of INT4 weights. The layout is checked element by element against the
// description in native/include/kiln/quant_fireq.h, written again here;
// round trips give back the canonical bytes; q = -8 and the CPU device are
// refused with typed errors; on a CUDA GPU with FP8 tensor cores the FireQ
// kernels agree with the canonical ones (skipped elsewhere).
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { maxRelativeError } from './helpers';

const q8 = kiln.quant;
const cuda = kiln.devices().cuda;

// q of (n, k) from the layout's description: row-tile n/8, chunk k/128, lane
// (n%8)*4 + (k%16)/4, block (k%128)/32; |q| in the nibble 4*half + k%4 of the
// word, the sign in bit 8*(k%4) + (half ? 3 : 7).
function fireqQ(bytes: Uint8Array, n: number, k: number, kp: number): number {
  const lane = (n % 8) * 4 + Math.floor((k % 16) / 4);
  const word = ((Math.floor(n / 8) * (kp / 128) + Math.floor(k / 128)) * 32 + lane) * 4 + Math.floor((k % 128) / 32);
  const half = Math.floor((k % 32) / 16);
  const w = (bytes[4 * word] | (bytes[4 * word + 1] << 8) | (bytes[4 * word + 2] << 16) | (bytes[4 * word + 3] << 24)) >>> 0;
  const mag = (w >>> (4 * (4 * half + (k % 4)))) & 7;
  const sign = (w >>> (8 * (k % 4) + (half ? 3 : 7))) & 1;
  return sign ? -mag : mag;
}

function randomQ(n: number, k: number, seed: number): kiln.Tensor<'int8'> {
  let s = seed;
  const v = new Int8Array(n * k);
  for (let i = 0; i < v.length; ++i) {
    s = (s * 1103515245 + 12345) >>> 0;
    v[i] = ((s >>> 16) % 15) - 7;
  }
  return kiln.tensor(v, [n, k], { dtype: 'int8' });
}

describe('FireQ layout', () => {
  it('packs every weight where the layout says and unpacks to the same bytes', () => {
    const before = kiln.memory().tensors;
    for (const [n, k, g] of [
      [1, 100, 32],
      [37, 300, 128],
      [20, 520, 'channel'],
    ] as const) {
      const w = kiln.randn([n, k], { seed: n });
      const weight = q8.quantizeWeightInt4(w, { groupSize: g });
      const fw = q8.packFireQ(weight);
      const kp = weight.paddedInFeatures;
      expect(fw.fragments.shape).toEqual([q8.fireqRows(n), kp / 2]);
      expect([fw.inFeatures, fw.outFeatures, fw.groupSize]).toEqual([k, n, weight.groupSize]);
      const qt = q8.unpackInt4(weight.packed);
      const q = qt.dataSync() as Int8Array;
      const bytes = fw.fragments.dataSync() as Uint8Array;
      let bad = 0;
      for (let r = 0; r < q8.fireqRows(n); ++r) {
        for (let c = 0; c < kp; ++c) if (fireqQ(bytes, r, c, kp) !== (r < n ? q[r * kp + c] : 0)) ++bad;
      }
      expect(bad).toBe(0);
      const back = q8.unpackFireQ(fw);
      expect(Array.from(back.packed.dataSync() as Uint8Array)).toEqual(Array.from(weight.packed.dataSync() as Uint8Array));
      expect(Array.from(back.scales.dataSync() as Uint8Array)).toEqual(Array.from(weight.scales.dataSync() as Uint8Array));
      expect(back.e).toBe(weight.e);
      for (const t of [w, weight, qt, fw, back]) t.dispose();
    }
    expect(kiln.memory().tensors).toBe(before);
  });

  it('a hand-made weight: q from -7 to 7 in every position', () => {
    const q = randomQ(24, 256, 5);
    const packed = q8.packInt4(q);
    const weight = new q8.Int4Weight({
      packed,
      scales: kiln.tensor(new Uint8Array(24 * 2).fill(0x38), [24, 2], { dtype: 'float8_e4m3' }),
      exponent: kiln.tensor(new Int8Array([0]), [], { dtype: 'int8' }),
      inFeatures: 256,
    });
    const fw = q8.packFireQ(weight);
    const bytes = fw.fragments.dataSync() as Uint8Array;
    const qs = q.dataSync() as Int8Array;
    const got: number[] = [];
    for (let r = 0; r < 24; ++r) for (let c = 0; c < 256; ++c) got.push(fireqQ(bytes, r, c, 256));
    expect(got).toEqual(Array.from(qs));
    for (const t of [q, weight, fw]) t.dispose();
  });

  it('refuses q = -8, a CPU FireQWeight in w4a8Linear, and non-weights, with typed errors', () => {
    const q = randomQ(3, 128, 9);
    const v = q.dataSync() as Int8Array;
    v[1 * 128 + 77] = -8;
    const q2 = kiln.tensor(v, [3, 128], { dtype: 'int8' });
    const weight = new q8.Int4Weight({
      packed: q8.packInt4(q2),
      scales: kiln.tensor(new Uint8Array(3).fill(0x38), [3, 1], { dtype: 'float8_e4m3' }),
      exponent: kiln.tensor(new Int8Array([0]), [], { dtype: 'int8' }),
      inFeatures: 128,
    });
    expect(() => q8.packFireQ(weight)).toThrow(kiln.ValueError);
    expect(() => q8.packFireQ(weight)).toThrow(/q\[1, 77\] = -8/);
    const ok = q8.quantizeWeightInt4(kiln.randn([8, 64], { seed: 2 }));
    const fw = q8.packFireQ(ok);
    const x = kiln.randn([2, 64], { seed: 3 });
    expect(() => q8.w4a8Linear(x, fw)).toThrow(kiln.DeviceError);
    expect(() => q8.w4a8Linear(x, fw)).toThrow(/FP8 tensor cores/);
    expect(() => q8.packFireQ(fw as unknown as kiln.quant.Int4Weight)).toThrow(kiln.ValueError);
    expect(() => q8.unpackFireQ(ok as unknown as kiln.quant.FireQWeight)).toThrow(kiln.ValueError);
    for (const t of [q, q2, weight, ok, fw, x]) t.dispose();
  });
});

describe.skipIf(!cuda.available)('FireQ kernels on CUDA', () => {
  it('w4a8Linear with a FireQWeight is within the CUDA tolerance of the canonical CPU result (or a DeviceError below sm_89)', () => {
    for (const [m, n, k] of [
      [1, 4096, 4096],
      [13, 300, 1000],
      [200, 256, 512],
    ]) {
      const w = kiln.randn([n, k], { seed: k });
      const weight = q8.quantizeWeightInt4(w);
      const x = kiln.randn([m, k], { seed: m });
      const ref = q8.w4a8Linear(x, weight, { outDtype: 'float32' });
      const wGpu = new q8.Int4Weight({ packed: weight.packed.to('cuda'), scales: weight.scales.to('cuda'), exponent: weight.exponent.to('cuda'), inFeatures: k });
      const fwGpu = q8.packFireQ(wGpu);
      expect(fwGpu.device).not.toBe('cpu');
      const xGpu = x.to('cuda');
      let y: kiln.Tensor;
      try {
        y = q8.w4a8Linear(xGpu, fwGpu, { outDtype: 'float32' });
      } catch (e) {
        expect(e).toBeInstanceOf(kiln.DeviceError);
        return;
      }
      const got = y.to('cpu').dataSync() as Float32Array;
      const want = ref.dataSync() as Float32Array;
      // FP8 tensor cores keep ~13 bits while adding (specs/quant.md): far below 2% of the output
      // scale, while a slip in the layout gives errors of the order of the outputs
      expect(maxRelativeError(got, want)).toBeLessThan(0.02);
      for (const t of [w, weight, x, ref, wGpu, fwGpu, xGpu, y]) t.dispose();
    }
  });
});
