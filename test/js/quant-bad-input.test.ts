// Randomized bad input for kiln.quant: every function is called many times
// with random (often wrong) tensors, weights and options. Each call must
// succeed or throw a KilnError whose message starts with "kiln: " (never
// another error, a hang or a crash of the native code), and nothing leaks.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { prng } from './reference';

type Arg = unknown;

describe('kiln.quant randomized bad input', () => {
  it('every quant function either works or throws a KilnError', () => {
    const rnd = prng(88);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const before = kiln.memory().tensors;
    const dims = [0, 1, 2, 3, 32, 64, 100, 128];
    const randomShape = (): number[] => Array.from({ length: Math.floor(rnd() * 4) }, () => pick(dims));
    const w = kiln.randn([8, 100], { seed: 1 });
    const qw = kiln.quant.quantizeWeightInt4(w, { groupSize: 32 });
    w.dispose();
    const randomTensor = (): kiln.Tensor => {
      const t = kiln.randn(randomShape(), { seed: 2 }).cast(pick(kiln.DTYPES));
      return rnd() < 0.2 && t.ndim >= 2 ? t.transpose() : t;
    };
    const randomWeight = (): Arg => {
      if (rnd() < 0.5) return qw;
      try {
        return new kiln.quant.Int4Weight({
          packed: pick([qw.packed, randomTensor()]) as kiln.Tensor<'uint8'>,
          scales: pick([qw.scales, randomTensor()]) as kiln.Tensor<'float8_e4m3'>,
          exponent: pick([qw.exponent, kiln.tensor([pick([0, 3, 14, 15, -1])], [], { dtype: 'int8' })]),
          inFeatures: pick([100, 128, 0, 1.5]),
        });
      } catch (e) {
        if (!(e instanceof kiln.KilnError)) throw e;
        return pick([null, undefined, {}, 3]);
      }
    };
    const randomArg = (): Arg =>
      pick<() => Arg>([
        randomTensor,
        randomTensor,
        () => kiln.randn([pick([1, 2, 5]), pick([100, 99, 128])], { seed: 3 }),
        randomWeight,
        () => pick([0, -1, 1.5, NaN, Infinity, 32, 48, 'channel']),
        () => pick([null, undefined, true, 'x', [1, 2]]),
        () => pick([{}, { groupSize: pick([32, 48, 0, 'channel', 100]) }, { scale: pick([0, -1, 0.5, NaN]) }, { outDtype: pick(['float32', 'int8', 'bfloat16']) }, { activationScale: pick([1, 0, -2]) }, { bias: randomTensor() }]),
      ])();
    const q = kiln.quant;
    const fw = q.packFireQ(qw);
    const slotOpts = (): kiln.quant.Int4KVSlotOptions => ({ batch: 1, kvHeads: 2, headDim: 8, capacity: 8, groupSize: pick([4, 8]), kExponents: [0, 2], vExponents: [1, 0] });
    const slot = new q.Int4KVSlot({ ...slotOpts(), groupSize: 4 });
    kiln.tidy(() => slot.append(0, kiln.randn([1, 2, 4, 8], { seed: 6 }), kiln.randn([1, 2, 4, 8], { seed: 7 })));
    const ops: [string, (a: Arg[]) => unknown][] = [
      ['packInt4', (a) => q.packInt4(a[0] as kiln.Tensor<'int8'>)],
      ['unpackInt4', (a) => q.unpackInt4(a[0] as kiln.Tensor<'uint8'>, a[1] as number)],
      ['quantizeWeightInt4', (a) => q.quantizeWeightInt4(a[0] as kiln.Tensor, a[1] as kiln.quant.QuantizeWeightOptions)],
      ['dequantizeWeightInt4', (a) => q.dequantizeWeightInt4(a[0] as kiln.quant.Int4Weight, a[1] as { dtype?: 'float32' })],
      ['quantizeActivationFp8', (a) => q.quantizeActivationFp8(a[0] as kiln.Tensor, a[1] as kiln.quant.QuantizeActivationOptions)],
      ['dequantizeActivationFp8', (a) => q.dequantizeActivationFp8(a[0] as kiln.Tensor<'float8_e4m3'>, a[1] as kiln.Tensor<'float32'>)],
      ['w4a8Linear', (a) => q.w4a8Linear(a[0] as kiln.Tensor, a[1] as kiln.quant.Int4Weight, a[2] as kiln.quant.W4A8LinearOptions)],
      ['w4a8Matmul', (a) => q.w4a8Matmul(a[0] as kiln.Tensor<'float8_e4m3'>, a[1] as kiln.Tensor<'float32'>, a[2] as kiln.quant.Int4Weight, a[3] as kiln.quant.W4A8Options)],
      ['w4a8Reference', (a) => q.w4a8Reference(a[0] as kiln.Tensor<'float8_e4m3'>, a[1] as kiln.quant.Int4Weight)],
      ['QuantizedLinear.fromWeights', (a) => q.QuantizedLinear.fromWeights(a[0] as kiln.Tensor, a[1] as kiln.Tensor, a[2] as kiln.quant.QuantizedLinearOptions)],
      ['packFireQ', (a) => q.packFireQ(a[0] as kiln.quant.Int4Weight)],
      ['unpackFireQ', (a) => q.unpackFireQ((a[0] instanceof q.Int4Weight ? fw : a[0]) as kiln.quant.FireQWeight)],
      ['w4a8Linear (FireQ)', (a) => q.w4a8Linear(a[0] as kiln.Tensor, fw, a[1] as kiln.quant.W4A8LinearOptions)],
      ['Int4KVSlot', (a) => new q.Int4KVSlot(pick([a[0], slotOpts(), { ...slotOpts(), headDim: pick([3, 0, 100]) }, { ...slotOpts(), kExponents: [15, 0] }]) as kiln.quant.Int4KVSlotOptions)],
      ['Int4KVSlot.append', (a) => slot.append(pick([0, 3, -1, 1.5, 7]), a[0] as kiln.Tensor, pick([a[1], kiln.randn([1, 2, 2, 8], { seed: 4 })]) as kiln.Tensor)],
      ['Int4KVSlot.attend', (a) => slot.attend(pick([a[0], kiln.randn([1, 4, 1, 8], { seed: 5 })]) as kiln.Tensor, pick([0, 1, 4, 9, 2.5]), pick([undefined, 0, -1, 0.25, NaN]))],
    ];
    const failures: string[] = [];
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < 1500; ++i) {
      const [name, fn] = pick(ops);
      kiln.tidy(() => {
        const args = Array.from({ length: 4 }, randomArg);
        try {
          const r = fn(args);
          if (r instanceof q.QuantizedLinear || r instanceof q.Int4Weight || r instanceof q.FireQWeight || r instanceof q.Int4KVSlot || r instanceof kiln.Tensor) r.dispose();
          ok += 1;
        } catch (e) {
          if (e instanceof kiln.KilnError && e.message.startsWith('kiln: ')) {
            refused += 1;
          } else if (failures.length < 10) {
            failures.push(`${name}(${args.map((x) => (x instanceof kiln.Tensor ? x.toString() : x instanceof q.Int4Weight ? 'Int4Weight' : JSON.stringify(x))).join(', ')}): ${String(e)}`);
          }
        }
      });
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(500);
    qw.dispose();
    fw.dispose();
    slot.dispose();
    // Int4Weights built above from tidy-scoped tensors were disposed with their scopes
    expect(kiln.memory().tensors).toBe(before);
  });
});
