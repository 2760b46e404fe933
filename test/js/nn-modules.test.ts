// nn.Module and the basic layers: registration and dotted names, state dicts,
// train/eval, device moves, disposal; Linear, Embedding, norms, Dropout and
// SwiGLU against float64 references.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { expectClose, valuesOf } from './helpers';

class Tiny extends kiln.nn.Module {
  readonly fc: kiln.nn.Linear;
  readonly norm: kiln.nn.RMSNorm;
  readonly scale: kiln.Tensor;
  constructor() {
    super();
    this.fc = this.registerModule('fc', new kiln.nn.Linear(3, 2, { seed: 1 }));
    this.norm = this.registerModule('norm', new kiln.nn.RMSNorm(2));
    this.scale = this.registerParameter('scale', kiln.ones([2]));
    this.registerBuffer('steps', kiln.zeros([1], { dtype: 'int32' }));
  }
  forward(x: kiln.Tensor): kiln.Tensor {
    return kiln.tidy(() => kiln.mul(this.norm.forward(this.fc.forward(x)), this.scale));
  }
}

describe('Module', () => {
  it('names parameters with dots, separates buffers, and counts', () => {
    const m = new Tiny();
    expect(m.namedParameters().map(([n]) => n)).toEqual(['scale', 'fc.weight', 'fc.bias', 'norm.weight']);
    expect(m.namedBuffers().map(([n]) => n)).toEqual(['steps']);
    expect(m.numParameters()).toBe(2 + 6 + 2 + 2);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(m.namedModules().map(([n]) => n)).toEqual(['', 'fc', 'norm']);
    m.dispose();
  });
  it('round-trips state dicts in place and checks keys, shapes and dtypes', () => {
    const a = new Tiny();
    const b = new Tiny();
    kiln.tidy(() => {
      kiln.noGrad(() => a.fc.weight.copy_(kiln.full([2, 3], 0.25)));
      const sd = a.stateDict();
      const weightBefore = b.fc.weight;
      b.loadStateDict(sd);
      expect(b.fc.weight).toBe(weightBefore); // same tensor object, new values
      expect(valuesOf(b.fc.weight)).toEqual(new Array(6).fill(0.25));
      const x = kiln.randn([4, 3], { seed: 2 });
      expect(valuesOf(b.forward(x))).toEqual(valuesOf(a.forward(x)));
      const { scale, ...missing } = sd;
      void scale;
      expect(() => b.loadStateDict(missing)).toThrow(/missing: scale/);
      expect(() => b.loadStateDict({ ...sd, extra: kiln.ones([1]) })).toThrow(/unexpected: extra/);
      b.loadStateDict(missing, { strict: false });
      expect(() => b.loadStateDict({ ...sd, scale: kiln.ones([3]) })).toThrow(kiln.ShapeError);
      expect(() => b.loadStateDict({ ...sd, scale: kiln.ones([2], { dtype: 'float16' }) })).toThrow(kiln.DTypeError);
    });
    a.dispose();
    b.dispose();
  });
  it('train/eval propagate; zeroGrad clears; modules survive tidy; dispose frees everything', () => {
    const before = kiln.memory();
    const m = kiln.tidy(() => new Tiny()); // parameters are kept out of tidy scopes
    expect(m.fc.weight.isDisposed).toBe(false);
    m.eval();
    expect(m.namedModules().every(([, x]) => !x.training)).toBe(true);
    m.train();
    kiln.tidy(() => kiln.sum(m.forward(kiln.ones([1, 3]))).backward());
    expect(m.fc.weight.grad).not.toBeNull();
    m.zeroGrad();
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
    m.dispose();
    expect(kiln.memory()).toEqual(before);
  });
  it('to(device) refuses an unavailable device with a DeviceError', () => {
    const m = new Tiny();
    if (!kiln.devices().cuda.available) expect(() => m.to('cuda')).toThrow(kiln.DeviceError);
    m.dispose();
  });
});

describe('layers', () => {
  it('Linear: y = x W^T + b; PyTorch-style uniform init bound', () => {
    kiln.tidy(() => {
      const l = new kiln.nn.Linear(4, 3, { seed: 7 });
      const w = valuesOf(l.weight);
      const b = valuesOf(l.bias!);
      expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(0.5);
      const x = kiln.randn([2, 4], { seed: 1 });
      const xv = valuesOf(x);
      const want = [0, 1].flatMap((i) => [0, 1, 2].map((j) => b[j] + [0, 1, 2, 3].reduce((s, k) => s + xv[i * 4 + k] * w[j * 4 + k], 0)));
      expectClose(valuesOf(l.forward(x)), want, 1e-6, 1e-6, 'linear');
      const nb = new kiln.nn.Linear(4, 3, { bias: false, std: 0.02, seed: 7 });
      expect(nb.bias).toBeNull();
      expect(nb.namedParameters().map(([n]) => n)).toEqual(['weight']);
      l.dispose();
      nb.dispose();
    });
  });
  it('Embedding and norms', () => {
    kiln.tidy(() => {
      const e = new kiln.nn.Embedding(5, 3, { seed: 1 });
      const out = e.forward(kiln.tensor([4, 0], [2], { dtype: 'int32' }));
      const w = valuesOf(e.weight);
      expect(valuesOf(out)).toEqual([...w.slice(12, 15), ...w.slice(0, 3)]);
      const ln = new kiln.nn.LayerNorm(4);
      const y = valuesOf(ln.forward(kiln.tensor([[1, 2, 3, 4]])));
      const mean = 2.5;
      const std = Math.sqrt(1.25 + 1e-5);
      expectClose(y, [1, 2, 3, 4].map((v) => (v - mean) / std), 1e-6, 1e-6, 'layerNorm');
      e.dispose();
      ln.dispose();
    });
  });
  it('Dropout: seeded, scaled, resumable, identity in eval', () => {
    kiln.tidy(() => {
      const x = kiln.ones([10000]);
      const d = new kiln.nn.Dropout(0.25, 9);
      const y1 = valuesOf(d.forward(x));
      const kept = y1.filter((v) => v !== 0);
      expect(kept.every((v) => Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
      expect(Math.abs(kept.length / 10000 - 0.75)).toBeLessThan(0.02);
      const state = d.state();
      const y2 = valuesOf(d.forward(x));
      expect(y2).not.toEqual(y1); // the stream advances
      const d2 = new kiln.nn.Dropout(0.25, 9);
      d2.loadState(state);
      expect(valuesOf(d2.forward(x))).toEqual(y2);
      d.eval();
      expect(valuesOf(d.forward(x))).toEqual(valuesOf(x));
      expect(() => new kiln.nn.Dropout(1)).toThrow(kiln.ValueError);
      // gradients flow through the kept elements only
      const xg = kiln.ones([8], { requiresGrad: true });
      const d3 = new kiln.nn.Dropout(0.5, 3);
      const y = d3.forward(xg);
      kiln.sum(y).backward();
      expect(valuesOf(xg.grad!)).toEqual(valuesOf(y));
    });
  });
  it('SwiGLU: w2(silu(w1 x) * w3 x)', () => {
    kiln.tidy(() => {
      const f = new kiln.nn.SwiGLU(3, 5, { seed: 4, std: 0.5 });
      const x = kiln.randn([2, 3], { seed: 5 });
      const want = kiln.matmul(kiln.mul(kiln.silu(kiln.matmul(x, f.w1.weight.transpose())), kiln.matmul(x, f.w3.weight.transpose())), f.w2.weight.transpose());
      expectClose(valuesOf(f.forward(x)), valuesOf(want), 1e-6, 1e-7, 'swiglu');
      f.dispose();
    });
  });
});
