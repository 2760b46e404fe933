// softmax, logSoftmax, crossEntropy, embedding, rmsNorm, layerNorm, rope and
// attention against float64 references; their backward kernels against
// central finite differences of those float64 references.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { dot, eps, expectClose, makeTensor, numericGradient, randomValues, size, stridedFromValues, valuesOf } from './helpers';

const FLOATS = ['float32', 'float16', 'bfloat16'] as const;
/** Tolerance of an op computed in float32 and rounded once to dtype. */
const tol = (dtype: kiln.DType, k = 8): number => (dtype === 'float32' ? k * eps('float32') : 2 * eps(dtype));

// ---- float64 references ------------------------------------------------------------

function softmaxRows(x: ArrayLike<number>, rows: number, n: number, log: boolean): Float64Array {
  const y = new Float64Array(rows * n);
  for (let r = 0; r < rows; ++r) {
    let m = -Infinity;
    for (let j = 0; j < n; ++j) m = Math.max(m, x[r * n + j]);
    let s = 0;
    for (let j = 0; j < n; ++j) s += Math.exp(x[r * n + j] - m);
    for (let j = 0; j < n; ++j) y[r * n + j] = log ? x[r * n + j] - m - Math.log(s) : Math.exp(x[r * n + j] - m) / s;
  }
  return y;
}

function crossEntropyRef(logits: ArrayLike<number>, targets: ArrayLike<number>, rows: number, c: number, ignore: number, ls: number): number {
  const lp = softmaxRows(logits, rows, c, true);
  let total = 0;
  let count = 0;
  for (let r = 0; r < rows; ++r) {
    if (targets[r] === ignore) continue;
    let all = 0;
    for (let j = 0; j < c; ++j) all += -lp[r * c + j];
    total += (1 - ls) * -lp[r * c + targets[r]] + (ls / c) * all;
    count += 1;
  }
  return count === 0 ? NaN : total / count;
}

function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, d: number, e: number): Float64Array {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; ++r) {
    let ss = 0;
    for (let j = 0; j < d; ++j) ss += x[r * d + j] ** 2;
    const rstd = 1 / Math.sqrt(ss / d + e);
    for (let j = 0; j < d; ++j) y[r * d + j] = x[r * d + j] * rstd * w[j];
  }
  return y;
}

function layerNormRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, rows: number, d: number, e: number): Float64Array {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; ++r) {
    let mean = 0;
    for (let j = 0; j < d; ++j) mean += x[r * d + j];
    mean /= d;
    let v = 0;
    for (let j = 0; j < d; ++j) v += (x[r * d + j] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / d + e);
    for (let j = 0; j < d; ++j) y[r * d + j] = (x[r * d + j] - mean) * rstd * w[j] + b[j];
  }
  return y;
}

function ropeRef(x: ArrayLike<number>, shape: number[], pos: ArrayLike<number>, posBatched: boolean, theta: number, interleaved: boolean, inverse: boolean): Float64Array {
  const [b, h, s, d] = shape;
  const y = new Float64Array(x.length);
  for (let bi = 0; bi < b; ++bi) {
    for (let hi = 0; hi < h; ++hi) {
      for (let si = 0; si < s; ++si) {
        const p = posBatched ? pos[bi * s + si] : pos[si];
        const base = ((bi * h + hi) * s + si) * d;
        for (let i = 0; i < d / 2; ++i) {
          const angle = (inverse ? -1 : 1) * p * Math.pow(theta, (-2 * i) / d);
          const [i1, i2] = interleaved ? [2 * i, 2 * i + 1] : [i, i + d / 2];
          const x1 = x[base + i1];
          const x2 = x[base + i2];
          y[base + i1] = x1 * Math.cos(angle) - x2 * Math.sin(angle);
          y[base + i2] = x1 * Math.sin(angle) + x2 * Math.cos(angle);
        }
      }
    }
  }
  return y;
}

interface AttnShape {
  b: number;
  hq: number;
  hk: number;
  sq: number;
  sk: number;
  d: number;
  dv: number;
}

function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, sh: AttnShape, causal: boolean, scale: number): Float64Array {
  const { b, hq, hk, sq, sk, d, dv } = sh;
  const o = new Float64Array(b * hq * sq * dv);
  const group = hq / hk;
  for (let bi = 0; bi < b; ++bi) {
    for (let h = 0; h < hq; ++h) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < sq; ++i) {
        const scores: number[] = [];
        for (let j = 0; j < sk; ++j) {
          if (causal && j > i + (sk - sq)) {
            scores.push(-Infinity);
            continue;
          }
          let s = 0;
          for (let t = 0; t < d; ++t) s += q[((bi * hq + h) * sq + i) * d + t] * k[((bi * hk + kh) * sk + j) * d + t];
          scores.push(s * scale);
        }
        const m = Math.max(...scores);
        if (m === -Infinity) continue; // sees no key: o = 0
        const p = scores.map((s) => Math.exp(s - m));
        const z = p.reduce((a, c) => a + c, 0);
        for (let t = 0; t < dv; ++t) {
          let acc = 0;
          for (let j = 0; j < sk; ++j) acc += (p[j] / z) * v[((bi * hk + kh) * sk + j) * dv + t];
          o[((bi * hq + h) * sq + i) * dv + t] = acc;
        }
      }
    }
  }
  return o;
}

// ---- tests ---------------------------------------------------------------------------

describe('softmax and logSoftmax', () => {
  for (const dtype of FLOATS) {
    it(`${dtype}: last and other axes, strided, large logits`, () => {
      kiln.tidy(() => {
        const shape = [3, 5, 7];
        const { t, ref } = makeTensor(randomValues(size(shape), 3, 20), shape, dtype);
        for (const log of [false, true]) {
          const fn = log ? kiln.logSoftmax : kiln.softmax;
          const want = Array.from(softmaxRows(ref.data, 15, 7, log));
          expectClose(valuesOf(fn(t)), want, tol(dtype), log ? 1e-6 : 1e-7, `${log ? 'log' : ''}softmax ${dtype}`);
          expectClose(valuesOf(fn(stridedFromValues(ref.data, shape, dtype), -1)), want, tol(dtype), 1e-6, 'strided');
          // axis 1: move it last in the reference
          const moved = Float64Array.from({ length: size(shape) }, (_, i) => {
            const a = Math.floor(i / 35);
            const c = Math.floor(i / 5) % 7;
            const bb = i % 5;
            return ref.data[a * 35 + bb * 7 + c];
          });
          const wantMoved = softmaxRows(moved, 21, 5, log);
          const back = Array.from({ length: size(shape) }, (_, i) => {
            const a = Math.floor(i / 35);
            const bb = Math.floor(i / 7) % 5;
            const c = i % 7;
            return wantMoved[a * 35 + c * 5 + bb];
          });
          const y1 = fn(t, 1);
          expect(y1.shape).toEqual(shape);
          expectClose(valuesOf(y1), back, tol(dtype), 1e-6, `axis 1 ${dtype}`);
        }
        expect(valuesOf(kiln.softmax(kiln.tensor([1000, 0, -1000])))).toEqual([1, 0, 0]);
      });
    });
  }
  it('backward kernels match finite differences of the float64 forward', () => {
    kiln.tidy(() => {
      const rows = 4;
      const n = 6;
      const xs = randomValues(rows * n, 5, 3);
      const gs = randomValues(rows * n, 6, 1);
      for (const log of [false, true]) {
        const x = kiln.tensor(xs, [rows, n]);
        const y = log ? kiln.logSoftmax(x) : kiln.softmax(x);
        const gy = kiln.tensor(gs, [rows, n]);
        const gx = log ? kiln.backward.logSoftmaxBackward(y, gy) : kiln.backward.softmaxBackward(y, gy);
        const xr = Float64Array.from(valuesOf(x));
        const want = numericGradient((v) => dot(softmaxRows(v, rows, n, log), Float64Array.from(valuesOf(gy))), xr);
        expectClose(valuesOf(gx), Array.from(want), 1e-4, 1e-6, `${log ? 'log' : ''}softmax backward`);
      }
    });
  });
});

describe('crossEntropy', () => {
  for (const dtype of FLOATS) {
    it(`${dtype}: mean over non-ignored rows, label smoothing, and its backward`, () => {
      kiln.tidy(() => {
        const rows = 6;
        const c = 9;
        const { t: logits, ref } = makeTensor(randomValues(rows * c, 7, 4), [2, 3, c], dtype);
        const targets = [3, -100, 0, 8, 2, -100];
        const tt = kiln.tensor(targets, [2, 3], { dtype: 'int32' });
        for (const ls of [0, 0.1]) {
          const loss = kiln.crossEntropy(logits, tt, { labelSmoothing: ls });
          expect(loss.shape).toEqual([]);
          expect(loss.dtype).toBe('float32');
          const want = crossEntropyRef(ref.data, targets, rows, c, -100, ls);
          expectClose([loss.item()], [want], 1e-5, 1e-6, `loss ls=${ls}`);
          const { loss: l2, lse } = kiln.backward.crossEntropyForward(logits, tt, { labelSmoothing: ls });
          const g = kiln.tensor(1.5, [], { dtype: 'float32' });
          const glogits = kiln.backward.crossEntropyBackward(logits, tt, lse, g, { labelSmoothing: ls });
          expect(glogits.shape).toEqual([2, 3, c]);
          const num = numericGradient((v) => 1.5 * crossEntropyRef(v, targets, rows, c, -100, ls), ref.data);
          expectClose(valuesOf(glogits), Array.from(num), dtype === 'float32' ? 1e-4 : 4 * eps(dtype), 1e-6, `glogits ls=${ls}`);
          l2.dispose();
        }
        const t3 = targets.map((v) => (v === -100 ? 0 : v));
        const ign = kiln.crossEntropy(logits, kiln.tensor(t3, [2, 3], { dtype: 'int32' }), { ignoreIndex: 3 });
        expectClose([ign.item()], [crossEntropyRef(ref.data, t3, rows, c, 3, 0)], 1e-5, 1e-6, 'ignoreIndex 3');
      });
    });
  }
  it('is NaN when every row is ignored; refuses out-of-range targets and bad shapes', () => {
    kiln.tidy(() => {
      const logits = kiln.randn([3, 4], { seed: 1 });
      expect(kiln.crossEntropy(logits, kiln.tensor([-100, -100, -100], [3], { dtype: 'int32' })).item()).toBeNaN();
      expect(() => kiln.crossEntropy(logits, kiln.tensor([0, 4, 1], [3], { dtype: 'int32' }))).toThrow(kiln.ValueError);
      expect(() => kiln.crossEntropy(logits, kiln.tensor([0, 1], [2], { dtype: 'int32' }))).toThrow(kiln.ShapeError);
      expect(() => kiln.crossEntropy(logits, kiln.tensor([0, 1, 2]) as unknown as kiln.Tensor<'int32'>)).toThrow(kiln.DTypeError);
      expect(() => kiln.crossEntropy(logits, kiln.tensor([0, 1, 2], [3], { dtype: 'int32' }), { labelSmoothing: 2 })).toThrow(kiln.ValueError);
    });
  });
});

describe('embedding', () => {
  it('gathers rows and scatters gradients back (sums for repeated ids)', () => {
    for (const dtype of FLOATS) {
      kiln.tidy(() => {
        const v = 11;
        const d = 5;
        const { t: w, ref } = makeTensor(randomValues(v * d, 9), [v, d], dtype);
        const ids = [[3, 0, 10], [3, 3, 7]];
        const tid = kiln.tensor(ids, undefined, { dtype: 'int32' });
        const out = kiln.embedding(w, tid);
        expect(out.shape).toEqual([2, 3, d]);
        expect(valuesOf(out)).toEqual(ids.flat().flatMap((i) => Array.from(ref.data.slice(i * d, (i + 1) * d))));
        const { t: g, ref: gr } = makeTensor(randomValues(6 * d, 10), [2, 3, d], dtype);
        const gw = kiln.backward.embeddingBackward(tid, g, v);
        const want = new Float64Array(v * d);
        ids.flat().forEach((id, p) => {
          for (let j = 0; j < d; ++j) want[id * d + j] += gr.data[p * d + j];
        });
        expectClose(valuesOf(gw), Array.from(want), tol(dtype), 1e-7, `embedding backward ${dtype}`);
        expect(() => kiln.embedding(w, kiln.tensor([11], [1], { dtype: 'int32' }))).toThrow(kiln.ValueError);
        expect(() => kiln.embedding(w, kiln.tensor([-1], [1], { dtype: 'int32' }))).toThrow(kiln.ValueError);
      });
    }
  });
});

describe('rmsNorm and layerNorm', () => {
  for (const dtype of FLOATS) {
    it(`${dtype}: forward and backward`, () => {
      kiln.tidy(() => {
        const rows = 6;
        const d = 10;
        const shape = [2, 3, d];
        const { t: x, ref: xr } = makeTensor(randomValues(rows * d, 11, 2), shape, dtype);
        const { t: w, ref: wr } = makeTensor(randomValues(d, 12, 1), [d], dtype);
        const { t: b, ref: br } = makeTensor(randomValues(d, 13, 1), [d], dtype);
        const { t: gy, ref: gr } = makeTensor(randomValues(rows * d, 14, 1), shape, dtype);
        const e = 1e-5;
        // rmsNorm
        const { y, rstd } = kiln.backward.rmsNormForward(x, w, e);
        expectClose(valuesOf(y), Array.from(rmsNormRef(xr.data, wr.data, rows, d, e)), tol(dtype), 1e-6, 'rmsNorm');
        expectClose(valuesOf(kiln.rmsNorm(stridedFromValues(xr.data, shape, dtype), w, e)), Array.from(rmsNormRef(xr.data, wr.data, rows, d, e)), tol(dtype), 1e-6, 'rmsNorm strided');
        const rg = kiln.backward.rmsNormBackward(x, w, rstd, gy);
        const loss = (xv: Float64Array, wv: Float64Array) => dot(rmsNormRef(xv, wv, rows, d, e), gr.data);
        const tolB = dtype === 'float32' ? 1e-4 : 6 * eps(dtype);
        expectClose(valuesOf(rg.gx), Array.from(numericGradient((v) => loss(v, wr.data), xr.data)), tolB, 1e-5, 'rmsNorm gx');
        expectClose(valuesOf(rg.gw), Array.from(numericGradient((v) => loss(xr.data, v), wr.data)), tolB, 1e-5, 'rmsNorm gw');
        expect(rg.gw.dtype).toBe('float32');
        // layerNorm
        const ln = kiln.backward.layerNormForward(x, w, b, e);
        expectClose(valuesOf(ln.y), Array.from(layerNormRef(xr.data, wr.data, br.data, rows, d, e)), tol(dtype), 1e-6, 'layerNorm');
        const lg = kiln.backward.layerNormBackward(x, w, ln.mean, ln.rstd, gy);
        const lloss = (xv: Float64Array, wv: Float64Array, bv: Float64Array) => dot(layerNormRef(xv, wv, bv, rows, d, e), gr.data);
        expectClose(valuesOf(lg.gx), Array.from(numericGradient((v) => lloss(v, wr.data, br.data), xr.data)), tolB, 1e-5, 'layerNorm gx');
        expectClose(valuesOf(lg.gw), Array.from(numericGradient((v) => lloss(xr.data, v, br.data), wr.data)), tolB, 1e-5, 'layerNorm gw');
        expectClose(valuesOf(lg.gb), Array.from(numericGradient((v) => lloss(xr.data, wr.data, v), br.data)), tolB, 1e-5, 'layerNorm gb');
        expect(() => kiln.rmsNorm(x, kiln.ones([d + 1], { dtype }))).toThrow(kiln.ShapeError);
        expect(() => kiln.layerNorm(x, w, b, -1)).toThrow(kiln.ValueError);
      });
    });
  }
});

describe('rope', () => {
  for (const dtype of FLOATS) {
    it(`${dtype}: rotate-half and interleaved layouts, batched positions, inverse = backward`, () => {
      kiln.tidy(() => {
        const shape = [2, 3, 5, 8];
        const { t: x, ref } = makeTensor(randomValues(size(shape), 15, 2), shape, dtype);
        const pos = [0, 1, 2, 7, 100];
        const tp = kiln.tensor(pos, [5], { dtype: 'int32' });
        for (const interleaved of [false, true]) {
          const y = kiln.rope(x, tp, { theta: 10000, interleaved });
          expectClose(valuesOf(y), Array.from(ropeRef(ref.data, shape, pos, false, 10000, interleaved, false)), tol(dtype), 1e-6, `rope interleaved=${interleaved}`);
          const back = kiln.backward.ropeBackward(y, tp, { interleaved });
          // y was rounded to dtype: each element of a rotated pair carries about eps * |pair| (|x| <= 2)
          expectClose(valuesOf(back), Array.from(ref.data), dtype === 'float32' ? 1e-5 : 4 * eps(dtype), dtype === 'float32' ? 1e-5 : 8 * eps(dtype), 'inverse(rope(x)) == x');
        }
        const pb = [0, 1, 2, 3, 4, 10, 11, 12, 13, 14];
        const yb = kiln.rope(x, kiln.tensor(pb, [2, 5], { dtype: 'int32' }), { theta: 500 });
        expectClose(valuesOf(yb), Array.from(ropeRef(ref.data, shape, pb, true, 500, false, false)), tol(dtype), 1e-6, 'batched positions');
        expect(() => kiln.rope(kiln.ones([1, 1, 5, 7], { dtype }), tp)).toThrow(/even/);
        expect(() => kiln.rope(x, kiln.tensor([0, 1], [2], { dtype: 'int32' }))).toThrow(kiln.ShapeError);
      });
    });
  }
});

describe('attention', () => {
  const SHAPES: AttnShape[] = [
    { b: 1, hq: 1, hk: 1, sq: 1, sk: 1, d: 4, dv: 4 },
    { b: 2, hq: 4, hk: 2, sq: 7, sk: 7, d: 8, dv: 8 },
    { b: 1, hq: 4, hk: 1, sq: 3, sk: 11, d: 16, dv: 5 },
    { b: 1, hq: 2, hk: 2, sq: 70, sk: 130, d: 32, dv: 32 },
    { b: 1, hq: 2, hk: 2, sq: 9, sk: 4, d: 8, dv: 8 },
  ];
  for (const dtype of FLOATS) {
    it(`${dtype}: causal and not, grouped-query, Sq != Sk`, () => {
      SHAPES.forEach((sh, c) => {
        kiln.tidy(() => {
          const { t: q, ref: qr } = makeTensor(randomValues(sh.b * sh.hq * sh.sq * sh.d, 40 + c), [sh.b, sh.hq, sh.sq, sh.d], dtype);
          const { t: k, ref: kr } = makeTensor(randomValues(sh.b * sh.hk * sh.sk * sh.d, 50 + c), [sh.b, sh.hk, sh.sk, sh.d], dtype);
          const { t: v, ref: vr } = makeTensor(randomValues(sh.b * sh.hk * sh.sk * sh.dv, 60 + c), [sh.b, sh.hk, sh.sk, sh.dv], dtype);
          for (const causal of [false, true]) {
            const scale = 1 / Math.sqrt(sh.d);
            const want = Array.from(attentionRef(qr.data, kr.data, vr.data, sh, causal, scale));
            const out = kiln.attention(q, k, v, { causal });
            expect(out.shape).toEqual([sh.b, sh.hq, sh.sq, sh.dv]);
            expectClose(valuesOf(out), want, dtype === 'float32' ? 1e-5 : 4 * eps(dtype), dtype === 'float32' ? 1e-6 : 4 * eps(dtype), `attention ${JSON.stringify(sh)} causal=${causal}`);
          }
          const sq = stridedFromValues(qr.data, [sh.b, sh.hq, sh.sq, sh.d], dtype);
          const want = Array.from(attentionRef(qr.data, kr.data, vr.data, sh, false, 0.3));
          expectClose(valuesOf(kiln.attention(sq, k, v, { scale: 0.3 })), want, dtype === 'float32' ? 1e-5 : 4 * eps(dtype), dtype === 'float32' ? 1e-6 : 4 * eps(dtype), 'strided q, scale 0.3');
        });
      });
    });
  }
  it('backward matches finite differences (causal, grouped-query, Sq != Sk)', () => {
    kiln.tidy(() => {
      const sh: AttnShape = { b: 1, hq: 4, hk: 2, sq: 3, sk: 5, d: 4, dv: 3 };
      const qv = randomValues(sh.b * sh.hq * sh.sq * sh.d, 70);
      const kv = randomValues(sh.b * sh.hk * sh.sk * sh.d, 71);
      const vv = randomValues(sh.b * sh.hk * sh.sk * sh.dv, 72);
      const gv = randomValues(sh.b * sh.hq * sh.sq * sh.dv, 73);
      const q = kiln.tensor(qv, [sh.b, sh.hq, sh.sq, sh.d]);
      const k = kiln.tensor(kv, [sh.b, sh.hk, sh.sk, sh.d]);
      const v = kiln.tensor(vv, [sh.b, sh.hk, sh.sk, sh.dv]);
      const go = kiln.tensor(gv, [sh.b, sh.hq, sh.sq, sh.dv]);
      const [qr, kr, vr, gr] = [q, k, v, go].map((t) => Float64Array.from(valuesOf(t)));
      for (const causal of [false, true]) {
        const scale = 0.5;
        const { out, lse } = kiln.backward.attentionForward(q, k, v, { causal, scale });
        const g = kiln.backward.attentionBackward(q, k, v, out, lse, go, { causal, scale });
        const L = (qq: Float64Array, kk: Float64Array, vv2: Float64Array) => dot(attentionRef(qq, kk, vv2, sh, causal, scale), gr);
        expectClose(valuesOf(g.gq), Array.from(numericGradient((x) => L(x, kr, vr), qr)), 1e-4, 1e-6, `gq causal=${causal}`);
        expectClose(valuesOf(g.gk), Array.from(numericGradient((x) => L(qr, x, vr), kr)), 1e-4, 1e-6, `gk causal=${causal}`);
        expectClose(valuesOf(g.gv), Array.from(numericGradient((x) => L(qr, kr, x), vr)), 1e-4, 1e-6, `gv causal=${causal}`);
      }
    });
  });
  it('refuses bad head counts and mismatched shapes', () => {
    kiln.tidy(() => {
      const q = kiln.ones([1, 3, 4, 8]);
      expect(() => kiln.attention(q, kiln.ones([1, 2, 4, 8]), kiln.ones([1, 2, 4, 8]))).toThrow(/multiple of key\/value heads/);
      expect(() => kiln.attention(q, kiln.ones([1, 3, 4, 6]), kiln.ones([1, 3, 4, 8]))).toThrow(kiln.ShapeError);
      expect(() => kiln.attention(kiln.ones([3, 4, 8]), q, q)).toThrow(kiln.ShapeError);
    });
  });
});
