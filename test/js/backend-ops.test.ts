// Backend-vs-backend: every op through the public API on the CPU and on CUDA
// with the same inputs, compared (bit for bit where both backends compute the
// same function in the same order, within tolerance elsewhere). Skipped, not
// faked, without a GPU; the native suites cuda, cuda_matmul, cuda_ops and
// cuda_nn test the kernels directly.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { eps, expectClose, randomValues, valuesOf } from './helpers';

const cuda = kiln.devices().cuda;
const FLOATS = ['float32', 'float16', 'bfloat16'] as const;

/** Runs fn with CPU inputs and with the same inputs moved to CUDA; returns both results' values. */
function both(inputs: kiln.Tensor[], fn: (...xs: kiln.Tensor[]) => kiln.Tensor | kiln.Tensor[]): [number[], number[]] {
  return kiln.tidy(() => {
    const flat = (r: kiln.Tensor | kiln.Tensor[]): number[] => (Array.isArray(r) ? r.flatMap(valuesOf) : valuesOf(r));
    const onCpu = flat(fn(...inputs));
    const onGpu = flat(fn(...inputs.map((t) => t.to('cuda'))));
    return [onCpu, onGpu];
  });
}

function expectSame(a: number[], b: number[], what: string): void {
  expect(b.length, what).toBe(a.length);
  const bad = a.findIndex((v, i) => !(Object.is(v, b[i]) || (Number.isNaN(v) && Number.isNaN(b[i]))));
  expect(bad, `${what}: first difference at ${bad}: cpu ${a[bad]}, cuda ${b[bad]}`).toBe(-1);
}

describe.skipIf(!cuda.available)('backend ops: CPU vs CUDA', () => {
  const rand = (shape: number[], seed: number, dtype: kiln.DType = 'float32', scale = 2): kiln.Tensor =>
    kiln.tensor(randomValues(shape.reduce((a, b) => a * b, 1), seed, scale), shape, { dtype });

  it('elementwise and unary ops are bit-identical', () => {
    for (const dtype of FLOATS) {
      kiln.tidy(() => {
        const a = rand([33, 1, 17], 1, dtype);
        const b = rand([5, 17], 2, dtype);
        for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'pow'] as const) {
          const [c, g] = both([a, b], (x, y) => kiln[op](x, y));
          expectSame(c, g, `${op} ${dtype}`);
        }
        for (const op of ['neg', 'abs', 'relu', 'exp', 'log', 'sqrt', 'rsqrt', 'sigmoid', 'tanh', 'silu', 'gelu'] as const) {
          const [c, g] = both([a], (x) => kiln[op](x));
          expectSame(c, g, `${op} ${dtype}`);
        }
        const [c1, g1] = both([a], (x) => kiln.gelu(x, { approximate: 'tanh' }));
        expectSame(c1, g1, `gelu tanh ${dtype}`);
        const [c2, g2] = both([a], (x) => kiln.clamp(x, -0.5, 0.25));
        expectSame(c2, g2, `clamp ${dtype}`);
        const cond = kiln.tensor(Array.from({ length: 17 }, (_, i) => i % 3 === 0));
        const [c3, g3] = both([cond, a, b], (k, x, y) => kiln.where(k as kiln.Tensor<'bool'>, x, y));
        expectSame(c3, g3, `where ${dtype}`);
        const gy = rand([33, 5, 17], 3, dtype);
        const full = kiln.broadcastTo(a, [33, 5, 17]).contiguous();
        for (const [name, f] of [
          ['relu', kiln.backward.reluBackward],
          ['gelu', kiln.backward.geluBackward],
          ['silu', kiln.backward.siluBackward],
          ['sigmoid', kiln.backward.sigmoidBackward],
          ['tanh', kiln.backward.tanhBackward],
        ] as const) {
          const [c, g] = both([full, gy], (x, y) => f(x, y));
          expectSame(c, g, `${name}_backward ${dtype}`);
        }
      });
    }
  });

  it('reductions: max/min/argmax exact, sum/mean within tolerance', () => {
    for (const dtype of FLOATS) {
      kiln.tidy(() => {
        const x = rand([37, 129, 5], 4, dtype, 3);
        for (const axes of [[0], [1], [2], [0, 2], [0, 1, 2]]) {
          for (const op of ['max', 'min'] as const) {
            const [c, g] = both([x], (t) => kiln[op](t, axes));
            expectSame(c, g, `${op} ${dtype} ${axes}`);
          }
          for (const op of ['sum', 'mean'] as const) {
            const [c, g] = both([x], (t) => kiln[op](t, axes));
            expectClose(g, c, 4 * eps(dtype), 1e-5, `${op} ${dtype} ${axes}`);
          }
        }
        for (const axis of [0, 1, 2]) {
          const [c, g] = both([x], (t) => kiln.argmax(t, axis));
          expectSame(c, g, `argmax ${dtype} ${axis}`);
        }
      });
    }
  });

  it('matmul (cuBLASLt or kiln kernels) within the dot-product bound', () => {
    for (const dtype of FLOATS) {
      kiln.tidy(() => {
        for (const [as, bs] of [[[1, 4096], [4096, 300]], [[64, 65], [65, 130]], [[3, 33, 17], [17, 9]], [[2, 1, 8, 16], [3, 16, 4]]]) {
          const a = rand(as, 5, dtype, 1);
          const b = rand(bs, 6, dtype, 1);
          const k = as[as.length - 1];
          const [c, g] = both([a, b], (x, y) => kiln.matmul(x, y));
          expectClose(g, c, 2 * eps(dtype), (k + 2) * eps('float32') * k, `matmul ${dtype} ${JSON.stringify([as, bs])}`);
        }
      });
    }
  });

  it('softmax family, cross entropy, embedding', () => {
    for (const dtype of FLOATS) {
      kiln.tidy(() => {
        const x = rand([9, 300], 7, dtype, 8);
        for (const op of ['softmax', 'logSoftmax'] as const) {
          const [c, g] = both([x], (t) => kiln[op](t));
          expectClose(g, c, 8 * eps(dtype), 1e-6, `${op} ${dtype}`);
        }
        const targets = kiln.tensor([0, 5, -100, 299, 7, 7, 1, 2, 3], [9], { dtype: 'int32' });
        const [c, g] = both([x, targets], (l, t) => kiln.crossEntropy(l, t as kiln.Tensor<'int32'>, { labelSmoothing: 0.1 }));
        expectClose(g, c, 1e-5, 1e-6, `crossEntropy ${dtype}`);
        const [cb, gb] = both([x, targets], (l, t) => {
          const { loss, lse } = kiln.backward.crossEntropyForward(l, t as kiln.Tensor<'int32'>);
          return kiln.backward.crossEntropyBackward(l, t as kiln.Tensor<'int32'>, lse, kiln.onesLike(loss));
        });
        expectClose(gb, cb, 8 * eps(dtype), 1e-7, `crossEntropyBackward ${dtype}`);
        const w = rand([50, 16], 8, dtype);
        const ids = kiln.tensor([[1, 49, 0], [7, 7, 1]], undefined, { dtype: 'int32' });
        const [ce, ge] = both([w, ids], (ww, ii) => kiln.embedding(ww, ii as kiln.Tensor<'int32'>));
        expectSame(ce, ge, `embedding ${dtype}`);
        const gout = rand([2, 3, 16], 9, dtype);
        const [cg, gg] = both([ids, gout], (ii, go) => kiln.backward.embeddingBackward(ii as kiln.Tensor<'int32'>, go, 50));
        expectClose(gg, cg, 4 * eps(dtype), 1e-7, `embeddingBackward ${dtype}`);
      });
    }
  });

  it('norms, rope, attention and their backward', () => {
    for (const dtype of FLOATS) {
      kiln.tidy(() => {
        const x = rand([4, 7, 96], 10, dtype);
        const w = rand([96], 11, dtype);
        const b = rand([96], 12, dtype);
        const gy = rand([4, 7, 96], 13, dtype);
        const t = 8 * eps(dtype);
        const [c1, g1] = both([x, w], (xx, ww) => kiln.rmsNorm(xx, ww));
        expectClose(g1, c1, t, 1e-6, `rmsNorm ${dtype}`);
        const [c2, g2] = both([x, w, b], (xx, ww, bb) => kiln.layerNorm(xx, ww, bb));
        expectClose(g2, c2, t, 1e-6, `layerNorm ${dtype}`);
        const [c3, g3] = both([x, w, gy], (xx, ww, gg) => {
          const { rstd } = kiln.backward.rmsNormForward(xx, ww);
          const r = kiln.backward.rmsNormBackward(xx, ww, rstd, gg);
          return [r.gx, r.gw];
        });
        expectClose(g3, c3, 4 * t, 1e-4, `rmsNormBackward ${dtype}`);
        const q = rand([2, 8, 70, 64], 14, dtype, 1);
        const k = rand([2, 2, 90, 64], 15, dtype, 1);
        const v = rand([2, 2, 90, 64], 16, dtype, 1);
        const pos = kiln.arange(70, { dtype: 'int32' });
        const [c4, g4] = both([q, pos], (qq, pp) => kiln.rope(qq, pp as kiln.Tensor<'int32'>));
        expectClose(g4, c4, t, 1e-6, `rope ${dtype}`);
        for (const causal of [false, true]) {
          const [c5, g5] = both([q, k, v], (qq, kk, vv) => kiln.attention(qq, kk, vv, { causal }));
          expectClose(g5, c5, 4 * t, 4 * t, `attention ${dtype} causal=${causal}`);
          const go = rand([2, 8, 70, 64], 17, dtype, 1);
          const [c6, g6] = both([q, k, v, go], (qq, kk, vv, gg) => {
            const { out, lse } = kiln.backward.attentionForward(qq, kk, vv, { causal });
            const r = kiln.backward.attentionBackward(qq, kk, vv, out, lse, gg, { causal });
            return [r.gq, r.gk, r.gv];
          });
          expectClose(g6, c6, 16 * t, 16 * t, `attentionBackward ${dtype} causal=${causal}`);
        }
      });
    }
  });
});
