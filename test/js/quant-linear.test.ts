// kiln.quant.QuantizedLinear: an nn.Linear with an INT4 weight. Its forward is
// w4a8Linear over its buffers; its outputs track the float Linear within the
// quantization error; its buffers go through state dicts; nothing leaks.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { maxRelativeError } from './helpers';

describe('QuantizedLinear', () => {
  it('fromLinear: forward equals w4a8Linear, is close to the float layer, and keeps bias and dtype options', () => {
    const before = kiln.memory().tensors;
    const lin = new kiln.nn.Linear(256, 40, { seed: 3 });
    const ql = kiln.quant.QuantizedLinear.fromLinear(lin, { groupSize: 64, outDtype: 'float32' });
    expect([ql.inFeatures, ql.outFeatures, ql.groupSize]).toEqual([256, 40, 64]);
    const x = kiln.randn([2, 5, 256], { seed: 4 });
    const y = ql.forward(x);
    expect(y.shape).toEqual([2, 5, 40]);
    expect(y.dtype).toBe('float32');
    const weight = ql.weight;
    const direct = kiln.quant.w4a8Linear(x, weight, { bias: ql.bias, outDtype: 'float32' });
    expect(Array.from(y.dataSync() as Float32Array)).toEqual(Array.from(direct.dataSync() as Float32Array));
    // INT4 weights (G = 64) and E4M3 activations: a few percent of the output scale
    const ref = kiln.noGrad(() => lin.forward(x));
    const got = y.dataSync() as Float32Array;
    const want = ref.dataSync() as Float32Array;
    const rel = maxRelativeError(got, want);
    expect(rel).toBeLessThan(0.08);
    expect(rel).toBeGreaterThan(0); // it is quantized
    const q16 = new kiln.quant.QuantizedLinear(kiln.quant.quantizeWeightInt4(lin.weight), null);
    const y16 = q16.forward(x);
    expect(y16.dtype).toBe('bfloat16');
    [x, y, direct, ref, y16].forEach((t) => t.dispose());
    q16.dispose();
    ql.dispose();
    lin.dispose();
    expect(kiln.memory().tensors).toBe(before);
  });

  it('round-trips its buffers through a state dict', () => {
    const w = kiln.randn([16, 100], { seed: 1 });
    const a = kiln.quant.QuantizedLinear.fromWeights(w, kiln.randn([16], { seed: 2 }), { outDtype: 'float32' });
    const b = kiln.quant.QuantizedLinear.fromWeights(kiln.zeros([16, 100]), kiln.zeros([16]), { outDtype: 'float32' });
    const sd = a.stateDict();
    expect(Object.keys(sd).sort()).toEqual(['bias', 'exponent', 'packed', 'scales']);
    expect(sd.packed.shape).toEqual([16, 64]);
    b.loadStateDict(sd);
    const x = kiln.randn([3, 100], { seed: 5 });
    const ya = a.forward(x);
    const yb = b.forward(x);
    expect(Array.from(yb.dataSync() as Float32Array)).toEqual(Array.from(ya.dataSync() as Float32Array));
    Object.values(sd).forEach((t) => t.dispose());
    [w, x, ya, yb].forEach((t) => t.dispose());
    a.dispose();
    b.dispose();
  });

  it('rejects bad inputs with typed errors', () => {
    const ql = kiln.quant.QuantizedLinear.fromWeights(kiln.randn([8, 32], { seed: 1 }));
    expect(() => ql.forward(kiln.zeros([2, 31]))).toThrow(kiln.ShapeError);
    expect(() => ql.forward(kiln.zeros([2, 32], { dtype: 'int32' }))).toThrow(kiln.DTypeError);
    expect(() => new kiln.quant.QuantizedLinear(null as unknown as kiln.quant.Int4Weight)).toThrow(kiln.ValueError);
    expect(() => kiln.quant.QuantizedLinear.fromWeights(kiln.zeros([8, 32]), null, { activationScale: 0 })).toThrow(kiln.ValueError);
    ql.dispose();
  });
});
