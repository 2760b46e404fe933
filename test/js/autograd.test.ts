// Autograd: the gradient of every differentiable op (through the public API,
// recorded and run backward) against central finite differences of a float64
// reference; and the semantics of grad, backward, noGrad, detach and memory.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { dot, expectClose, numericGradient, randomValues, size, stridesOf } from './helpers';

interface Input {
  shape: number[];
  /** values (default: random in [-1, 1)) */
  values?: Float64Array;
}

/**
 * Checks d/dx_i of L = sum(w * f(x)) for every input: autograd (float32) vs
 * central differences of the float64 reference `ref`.
 */
function checkGrad(name: string, inputs: Input[], f: (xs: kiln.Tensor[]) => kiln.Tensor, ref: (xs: Float64Array[]) => ArrayLike<number>, tol = 2e-4): void {
  kiln.tidy(() => {
    const xs = inputs.map((inp, i) => kiln.tensor(inp.values ?? randomValues(size(inp.shape), 100 + i), inp.shape, { requiresGrad: true }));
    const exact = xs.map((x) => Float64Array.from(x.size === 0 ? [] : (x.reshape([-1]).toArray() as number[])));
    const out = f(xs);
    const w = randomValues(out.size, 7);
    const loss = kiln.sum(kiln.mul(out, kiln.tensor(w, out.shape)));
    loss.backward();
    const yRef = ref(exact);
    expectClose(out.size === 0 ? [] : (out.reshape([-1]).toArray() as number[]), Array.from(yRef), 1e-4, 1e-5, `${name}: forward`);
    xs.forEach((x, i) => {
      const want = numericGradient((v) => dot(ref(exact.map((e, j) => (j === i ? v : e))), w), exact[i]);
      expect(x.grad, `${name}: input ${i} has a gradient`).not.toBeNull();
      expect(x.grad?.shape).toEqual(x.shape);
      expectClose(x.grad!.reshape([-1]).toArray() as number[], Array.from(want), tol, tol * 0.1, `${name}: d/dx${i}`);
    });
    xs.forEach((x) => x.dispose());
  });
}

/** Elementwise reference with NumPy broadcasting of row-major float64 arrays. */
function bcast(shapes: number[][], f: (...v: number[]) => number): (xs: Float64Array[]) => Float64Array {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out = Array.from({ length: nd }, (_, i) => Math.max(...shapes.map((s) => (i < nd - s.length ? 1 : s[i - (nd - s.length)]))));
  const os = stridesOf(out);
  return (xs) =>
    Float64Array.from({ length: size(out) }, (_, flat) => {
      const idx = out.map((_, d) => Math.floor(flat / os[d]) % out[d]);
      const args = shapes.map((s, k) => {
        const ss = stridesOf(s);
        let off = 0;
        for (let d = 0; d < s.length; ++d) off += (s[d] === 1 ? 0 : idx[d + (nd - s.length)]) * ss[d];
        return xs[k][off];
      });
      return f(...args);
    });
}

const sig = (x: number): number => 1 / (1 + Math.exp(-x));

describe('gradients of elementwise ops', () => {
  it('binary ops with broadcasting', () => {
    const sa = [3, 1, 4];
    const sb = [2, 1];
    checkGrad('add', [{ shape: sa }, { shape: sb }], ([a, b]) => kiln.add(a, b), bcast([sa, sb], (x, y) => x + y));
    checkGrad('sub', [{ shape: sa }, { shape: sb }], ([a, b]) => kiln.sub(a, b), bcast([sa, sb], (x, y) => x - y));
    checkGrad('mul', [{ shape: sa }, { shape: sb }], ([a, b]) => kiln.mul(a, b), bcast([sa, sb], (x, y) => x * y));
    const pos = randomValues(2, 9).map((v) => 1.5 + v);
    checkGrad('div', [{ shape: sa }, { shape: sb, values: pos }], ([a, b]) => kiln.div(a, b), bcast([sa, sb], (x, y) => x / y));
    const base = randomValues(12, 10).map((v) => 1.2 + v * 0.5);
    checkGrad('pow', [{ shape: [3, 4], values: base }, { shape: [4] }], ([a, b]) => kiln.pow(a, b), bcast([[3, 4], [4]], (x, y) => Math.pow(x, y)));
  });
  it('with JS number operands', () => {
    checkGrad('x * 3 - 1', [{ shape: [5] }], ([a]) => kiln.sub(kiln.mul(a, 3), 1), (xs) => xs[0].map((v) => v * 3 - 1));
    checkGrad('2 / x', [{ shape: [5], values: Float64Array.from([1, 2, 3, -1.5, 0.7]) }], ([a]) => kiln.div(2, a), (xs) => xs[0].map((v) => 2 / v));
    checkGrad('x ** 3', [{ shape: [5] }], ([a]) => kiln.pow(a, 3), (xs) => xs[0].map((v) => v ** 3));
    checkGrad('2 ** x', [{ shape: [5] }], ([a]) => kiln.pow(2, a), (xs) => xs[0].map((v) => 2 ** v));
  });
  it('unary ops', () => {
    const shape = [4, 6];
    const positive = randomValues(24, 11).map((v) => 1.1 + v);
    const cases: [string, (x: kiln.Tensor) => kiln.Tensor, (v: number) => number, Float64Array?][] = [
      ['neg', kiln.neg, (v) => -v],
      ['exp', kiln.exp, Math.exp],
      ['log', kiln.log, Math.log, positive],
      ['sqrt', kiln.sqrt, Math.sqrt, positive],
      ['rsqrt', kiln.rsqrt, (v) => 1 / Math.sqrt(v), positive],
      ['relu', kiln.relu, (v) => Math.max(v, 0)],
      ['silu', kiln.silu, (v) => v * sig(v)],
      ['sigmoid', kiln.sigmoid, sig],
      ['tanh', kiln.tanh, Math.tanh],
      ['gelu tanh', (x) => kiln.gelu(x, { approximate: 'tanh' }), (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))],
    ];
    for (const [name, fn, f, values] of cases) checkGrad(name, [{ shape, values }], ([x]) => fn(x), (xs) => xs[0].map(f));
  });
  it('where routes the gradient by the condition', () => {
    const cond = [true, false, true, true, false];
    checkGrad('where', [{ shape: [5] }, { shape: [1] }], ([a, b]) => kiln.where(kiln.tensor(cond), a, b), (xs) => Float64Array.from(cond, (c, i) => (c ? xs[0][i] : xs[1][0])));
  });
});

describe('gradients of selecting ops (maximum, minimum, abs, clamp, max, min)', () => {
  it('away from ties and kinks: finite differences', () => {
    const sa = [3, 1, 4];
    const sb = [2, 1];
    checkGrad('maximum', [{ shape: sa }, { shape: sb }], ([a, b]) => kiln.maximum(a, b), bcast([sa, sb], Math.max));
    checkGrad('minimum', [{ shape: sa }, { shape: sb }], ([a, b]) => kiln.minimum(a, b), bcast([sa, sb], Math.min));
    checkGrad('maximum with a number', [{ shape: [6] }], ([a]) => kiln.maximum(a, 0.1), (xs) => xs[0].map((v) => Math.max(v, 0.1)));
    const awayFromZero = randomValues(12, 21).map((v) => (v < 0 ? v - 0.05 : v + 0.05));
    checkGrad('abs', [{ shape: [3, 4], values: awayFromZero }], ([x]) => kiln.abs(x), (xs) => xs[0].map(Math.abs));
    const spread = Float64Array.from([-0.9, -0.45, -0.2, 0.05, 0.25, 0.55, 0.8, -0.7]);
    checkGrad('clamp', [{ shape: [8], values: spread }], ([x]) => kiln.clamp(x, -0.5, 0.5), (xs) => xs[0].map((v) => Math.min(Math.max(v, -0.5), 0.5)));
    checkGrad('clamp min only', [{ shape: [8], values: spread }], ([x]) => x.clamp(0), (xs) => xs[0].map((v) => Math.max(v, 0)));
    const rows = (xs: Float64Array[], pick: (a: number, b: number) => number): Float64Array => Float64Array.from({ length: 3 }, (_, r) => xs[0].slice(r * 4, r * 4 + 4).reduce((p, q) => pick(p, q)));
    checkGrad('max over axis 1', [{ shape: [3, 4] }], ([x]) => kiln.max(x, 1), (xs) => rows(xs, Math.max));
    checkGrad('min over axis 1, keepDims', [{ shape: [3, 4] }], ([x]) => x.min(1, true), (xs) => rows(xs, Math.min));
    checkGrad('max of everything', [{ shape: [2, 3] }], ([x]) => kiln.max(x), (xs) => [Math.max(...xs[0])]);
  });
  it('ties share the gradient; kinks take the documented side', () => {
    kiln.tidy(() => {
      const a = kiln.tensor([1, 2, 3], [3], { requiresGrad: true });
      const b = kiln.tensor([1, 0, 5], [3], { requiresGrad: true });
      kiln.sum(kiln.maximum(a, b)).backward();
      expect(a.grad!.toArray()).toEqual([0.5, 1, 0]);
      expect(b.grad!.toArray()).toEqual([0.5, 0, 1]);
      const x = kiln.tensor([2, 5, 5, 1], [4], { requiresGrad: true });
      kiln.max(x).backward();
      expect(x.grad!.toArray()).toEqual([0, 0.5, 0.5, 0]);
      const z = kiln.tensor([-1, 0, 2], [3], { requiresGrad: true });
      kiln.sum(kiln.abs(z)).backward();
      expect(z.grad!.toArray()).toEqual([-1, 0, 1]);
      const c = kiln.tensor([-1, -0.5, 0.5, 1], [4], { requiresGrad: true });
      kiln.sum(kiln.clamp(c, -0.5, 0.5)).backward();
      expect(c.grad!.toArray()).toEqual([0, 1, 1, 0]);
    });
  });
});

describe('gradients of reductions, matmul and views', () => {
  it('sum and mean over axes', () => {
    const shape = [3, 4, 5];
    const refSum = (axes: number[], div: boolean) => (xs: Float64Array[]) => {
      const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const out = new Float64Array(size(outShape));
      const s = stridesOf(shape);
      const os = stridesOf(outShape);
      const count = axes.reduce((p, a) => p * shape[a], 1);
      for (let i = 0; i < xs[0].length; ++i) {
        let o = 0;
        for (let d = 0; d < 3; ++d) if (!axes.includes(d)) o += (Math.floor(i / s[d]) % shape[d]) * os[d];
        out[o] += xs[0][i] / (div ? count : 1);
      }
      return out;
    };
    checkGrad('sum all', [{ shape }], ([x]) => kiln.sum(x), refSum([0, 1, 2], false));
    checkGrad('sum [0, 2]', [{ shape }], ([x]) => kiln.sum(x, [0, 2]), refSum([0, 2], false));
    checkGrad('mean 1 keepDims', [{ shape }], ([x]) => kiln.mean(x, 1, true), refSum([1], true));
  });
  it('matmul with 1-D operands and broadcast batches', () => {
    const mm = (as: number[], bs: number[]) => (xs: Float64Array[]) => {
      const [m, k] = as.length === 1 ? [1, as[0]] : as.slice(-2);
      const n = bs.length === 1 ? 1 : bs[bs.length - 1];
      const batchA = as.length > 2 ? size(as.slice(0, -2)) : 1;
      const batchB = bs.length > 2 ? size(bs.slice(0, -2)) : 1;
      const batch = Math.max(batchA, batchB);
      const out = new Float64Array(batch * m * n);
      for (let bi = 0; bi < batch; ++bi) {
        for (let i = 0; i < m; ++i) {
          for (let j = 0; j < n; ++j) {
            let s = 0;
            for (let p = 0; p < k; ++p) s += xs[0][(batchA === 1 ? 0 : bi) * m * k + i * k + p] * xs[1][(batchB === 1 ? 0 : bi) * k * n + p * n + j];
            out[(bi * m + i) * n + j] = s;
          }
        }
      }
      return out;
    };
    checkGrad('matmul 2-D', [{ shape: [3, 4] }, { shape: [4, 5] }], ([a, b]) => kiln.matmul(a, b), mm([3, 4], [4, 5]));
    checkGrad('matmul batch broadcast', [{ shape: [2, 3, 4] }, { shape: [4, 2] }], ([a, b]) => kiln.matmul(a, b), mm([2, 3, 4], [4, 2]));
    checkGrad('matmul 1-D @ 2-D', [{ shape: [4] }, { shape: [4, 3] }], ([a, b]) => kiln.matmul(a, b), mm([4], [4, 3]));
    checkGrad('matmul 2-D @ 1-D', [{ shape: [3, 4] }, { shape: [4] }], ([a, b]) => kiln.matmul(a, b), mm([3, 4], [4]));
    checkGrad('matmul x @ W^T', [{ shape: [3, 4] }, { shape: [5, 4] }], ([a, w]) => kiln.matmul(a, w.transpose()), (xs) => {
      const wt = Float64Array.from({ length: 20 }, (_, i) => xs[1][(i % 5) * 4 + Math.floor(i / 5)]);
      return mm([3, 4], [4, 5])([xs[0], wt]);
    });
  });
  it('views and copies', () => {
    const shape = [2, 3, 4];
    const n = size(shape);
    const idx = (f: (i: number, j: number, k: number) => number, outShape: number[]) => (xs: Float64Array[]) =>
      Float64Array.from({ length: size(outShape) }, (_, o) => {
        const os = stridesOf(outShape);
        const c = outShape.map((_, d) => Math.floor(o / os[d]) % outShape[d]);
        return xs[0][f(c[0] ?? 0, c[1] ?? 0, c[2] ?? 0)];
      });
    checkGrad('transpose', [{ shape }], ([x]) => kiln.transpose(x, [2, 0, 1]), idx((a, b, c) => b * 12 + c * 4 + a, [4, 2, 3]));
    checkGrad('slice', [{ shape }], ([x]) => kiln.slice(x, [1, 0, 1], [2, 3, 4], [1, 2, 2]), idx((a, b, c) => (1 + a) * 12 + 2 * b * 4 + 1 + 2 * c, [1, 2, 2]));
    checkGrad('reshape+contiguous', [{ shape }], ([x]) => x.transpose().contiguous().reshape([6, 4]), (xs) => {
      const t = idx((a, b, c) => c * 12 + b * 4 + a, [4, 3, 2])(xs);
      return t;
    });
    checkGrad('broadcastTo', [{ shape: [3, 1] }], ([x]) => kiln.broadcastTo(x, [2, 3, 4]), (xs) => Float64Array.from({ length: 24 }, (_, o) => xs[0][Math.floor(o / 4) % 3]));
    checkGrad('split + concat (reversed)', [{ shape }], ([x]) => {
      const [p, q] = kiln.split(x, [1, 2], 1);
      return kiln.concat([q, p], 1);
    }, idx((a, b, c) => a * 12 + ((b + 1) % 3) * 4 + c, shape));
    checkGrad('stack + squeeze/unsqueeze/flatten', [{ shape: [3] }, { shape: [3] }], ([a, b]) => kiln.flatten(kiln.squeeze(kiln.unsqueeze(kiln.stack([a, b], 1), 0))), (xs) =>
      Float64Array.from({ length: 6 }, (_, i) => xs[i % 2][Math.floor(i / 2)]),
    );
    checkGrad('clone + cast round trip', [{ shape: [5] }], ([x]) => x.clone().cast('float32'), (xs) => xs[0]);
    void n;
  });
});

describe('gradients of nn ops', () => {
  const softmaxRef = (rows: number, n: number, log: boolean) => (xs: Float64Array[]) => {
    const y = new Float64Array(rows * n);
    for (let r = 0; r < rows; ++r) {
      const row = xs[0].slice(r * n, (r + 1) * n);
      const m = Math.max(...row);
      const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
      for (let j = 0; j < n; ++j) y[r * n + j] = log ? row[j] - m - Math.log(z) : Math.exp(row[j] - m) / z;
    }
    return y;
  };
  it('softmax, logSoftmax, crossEntropy', () => {
    checkGrad('softmax', [{ shape: [3, 5] }], ([x]) => kiln.softmax(x), softmaxRef(3, 5, false));
    checkGrad('logSoftmax', [{ shape: [3, 5] }], ([x]) => kiln.logSoftmax(x), softmaxRef(3, 5, true));
    const targets = [4, 0, -100];
    checkGrad('crossEntropy', [{ shape: [3, 5] }], ([x]) => kiln.crossEntropy(x, kiln.tensor(targets, [3], { dtype: 'int32' }), { labelSmoothing: 0.1 }), (xs) => {
      const lp = softmaxRef(3, 5, true)(xs);
      let total = 0;
      let count = 0;
      targets.forEach((t, r) => {
        if (t === -100) return;
        let all = 0;
        for (let j = 0; j < 5; ++j) all += -lp[r * 5 + j];
        total += 0.9 * -lp[r * 5 + t] + (0.1 / 5) * all;
        count += 1;
      });
      return [total / count];
    });
  });
  it('embedding, rmsNorm, layerNorm', () => {
    const ids = [2, 0, 2, 3];
    checkGrad('embedding', [{ shape: [4, 3] }], ([w]) => kiln.embedding(w, kiln.tensor(ids, [2, 2], { dtype: 'int32' })), (xs) => Float64Array.from({ length: 12 }, (_, o) => xs[0][ids[Math.floor(o / 3)] * 3 + (o % 3)]));
    const norm = (layer: boolean) => (xs: Float64Array[]) => {
      const d = 6;
      const y = new Float64Array(xs[0].length);
      for (let r = 0; r < xs[0].length / d; ++r) {
        const row = xs[0].slice(r * d, (r + 1) * d);
        const mean = layer ? row.reduce((a, b) => a + b, 0) / d : 0;
        const v = row.reduce((a, b) => a + (b - mean) ** 2, 0) / d;
        const rstd = 1 / Math.sqrt(v + 1e-5);
        for (let j = 0; j < d; ++j) y[r * d + j] = (row[j] - mean) * rstd * xs[1][j] + (layer ? xs[2][j] : 0);
      }
      return y;
    };
    checkGrad('rmsNorm', [{ shape: [2, 2, 6] }, { shape: [6] }], ([x, w]) => kiln.rmsNorm(x, w, 1e-5), norm(false));
    checkGrad('layerNorm', [{ shape: [4, 6] }, { shape: [6] }, { shape: [6] }], ([x, w, b]) => kiln.layerNorm(x, w, b, 1e-5), norm(true));
  });
  it('rope and attention (causal, grouped-query)', () => {
    const pos = [0, 3, 7];
    checkGrad('rope', [{ shape: [1, 2, 3, 4] }], ([x]) => kiln.rope(x, kiln.tensor(pos, [3], { dtype: 'int32' }), { theta: 100 }), (xs) => {
      const y = new Float64Array(24);
      for (let h = 0; h < 2; ++h) {
        for (let s = 0; s < 3; ++s) {
          const base = (h * 3 + s) * 4;
          for (let i = 0; i < 2; ++i) {
            const ang = pos[s] * Math.pow(100, -2 * i / 4);
            const [x1, x2] = [xs[0][base + i], xs[0][base + i + 2]];
            y[base + i] = x1 * Math.cos(ang) - x2 * Math.sin(ang);
            y[base + i + 2] = x1 * Math.sin(ang) + x2 * Math.cos(ang);
          }
        }
      }
      return y;
    });
    const [hq, hk, sq, sk, d] = [2, 1, 3, 4, 4];
    checkGrad('attention', [{ shape: [1, hq, sq, d] }, { shape: [1, hk, sk, d] }, { shape: [1, hk, sk, d] }], ([q, k, v]) => kiln.attention(q, k, v, { causal: true }), (xs) => {
      const o = new Float64Array(hq * sq * d);
      for (let h = 0; h < hq; ++h) {
        for (let i = 0; i < sq; ++i) {
          const sc: number[] = [];
          for (let j = 0; j <= i + sk - sq; ++j) {
            let s = 0;
            for (let t = 0; t < d; ++t) s += xs[0][(h * sq + i) * d + t] * xs[1][j * d + t];
            sc.push(s / Math.sqrt(d));
          }
          const m = Math.max(...sc);
          const p = sc.map((s) => Math.exp(s - m));
          const z = p.reduce((a, b) => a + b, 0);
          for (let t = 0; t < d; ++t) o[(h * sq + i) * d + t] = p.reduce((acc, pj, j) => acc + (pj / z) * xs[2][j * d + t], 0);
        }
      }
      return o;
    });
  });
});

describe('autograd semantics', () => {
  it('grads accumulate until set to null; backward of a leaf; non-scalar needs a gradient', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([1, 2, 3], [3], { requiresGrad: true });
      kiln.sum(kiln.mul(x, x)).backward();
      expect(x.grad?.toArray()).toEqual([2, 4, 6]);
      kiln.sum(kiln.mul(x, 2)).backward();
      expect(x.grad?.toArray()).toEqual([4, 6, 8]);
      x.grad = null;
      expect(x.grad).toBeNull();
      const y = kiln.mul(x, 3);
      expect(() => y.backward()).toThrow(/is not a scalar/);
      y.backward(kiln.tensor([1, 0, 2]));
      expect((x.grad as kiln.Tensor | null)?.toArray()).toEqual([3, 0, 6]); // (TS narrowed x.grad to null above)
      expect(() => y.backward(kiln.tensor([1, 0, 2]))).toThrow(/already used by a backward pass/);
    });
  });
  it('noGrad, detach and requiresGrad_ rules', () => {
    kiln.tidy(() => {
      const x = kiln.ones([2], { requiresGrad: true });
      const y = kiln.noGrad(() => kiln.mul(x, 2));
      expect(y.requiresGrad).toBe(false);
      expect(kiln.isGradEnabled()).toBe(true);
      const z = kiln.mul(x, 2);
      expect(z.requiresGrad).toBe(true);
      expect(z.isLeaf).toBe(false);
      expect(z.detach().requiresGrad).toBe(false);
      expect(() => z.requiresGrad_()).toThrow(/only leaf tensors/);
      expect(() => kiln.ones([2], { dtype: 'int32', requiresGrad: true })).toThrow(kiln.DTypeError);
      expect(() => kiln.sum(kiln.ones([2])).backward()).toThrow(/does not require grad/);
      const c = kiln.mul(x, 1).cast('int32');
      expect(c.requiresGrad).toBe(false);
    });
  });
  it('grad setter checks shape, dtype and device, and owns the tensor', () => {
    kiln.tidy(() => {
      const x = kiln.ones([2, 2], { requiresGrad: true });
      expect(() => {
        x.grad = kiln.ones([4]);
      }).toThrow(kiln.ShapeError);
      expect(() => {
        x.grad = kiln.ones([2, 2], { dtype: 'float16' }) as unknown as kiln.Tensor<'float32'>;
      }).toThrow(kiln.DTypeError);
      const g = kiln.tidy(() => {
        const gg = kiln.full([2, 2], 5);
        x.grad = gg;
        return null;
      });
      expect(g).toBeNull();
      const kept = x.grad as kiln.Tensor | null;
      expect(kept?.isDisposed).toBe(false); // kept out of the tidy scope
      expect(kept?.toArray()).toEqual([[5, 5], [5, 5]]);
    });
  });
  it('a training step in tidy leaves memory unchanged apart from grads; the graph is freed without backward too', () => {
    const w = kiln.randn([8, 8], { seed: 1 }).requiresGrad_();
    const b = kiln.zeros([8], { requiresGrad: true });
    const x = kiln.randn([16, 8], { seed: 2 });
    const step = () =>
      kiln.tidy(() => {
        const h = kiln.tanh(kiln.add(kiln.matmul(x, w.transpose()), b));
        const loss = kiln.mean(kiln.mul(h, h));
        loss.backward();
      });
    step();
    const after = kiln.memory();
    for (let i = 0; i < 20; ++i) step();
    expect(kiln.memory()).toEqual(after);
    w.grad = null;
    b.grad = null;
    const base = kiln.memory();
    kiln.tidy(() => {
      kiln.softmax(kiln.matmul(x, w)); // recorded, never backpropagated
    });
    expect(kiln.memory()).toEqual(base);
    [w, b, x].forEach((t) => t.dispose());
  });
});
