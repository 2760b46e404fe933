// Unary ops, pow, where, clamp and the pointwise backward kernels against
// float64 references (backward: central finite differences of the float64
// forward), for float32, float16 and bfloat16, contiguous and strided inputs.
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { eps, expectClose, isaLevels, makeTensor, randomValues, refOf, stridedFromValues, valuesOf } from './helpers';

/** erf to ~1e-13: Taylor series below 3, Lentz continued fraction for erfc above. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    let term = a;
    let s = a;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(s); ++n) {
      term *= (-a * a) / n;
      s += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * s;
  } else {
    // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...))))
    let f = a;
    let c = a;
    let d = 0;
    for (let n = 1; n < 300; ++n) {
      const an = n / 2;
      d = a + an * d;
      d = 1 / d;
      c = a + an / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

/** erfc without cancellation: the continued fraction for large arguments. */
function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 3) return 1 - erf(x);
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 300; ++n) {
    d = 1 / (x + (n / 2) * d);
    c = x + n / 2 / c;
    f *= c * d;
    if (Math.abs(c * d - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const K = Math.sqrt(2 / Math.PI);

const UNARY: Record<string, { f: (x: number) => number; range: [number, number]; fn: (x: kiln.Tensor) => kiln.Tensor }> = {
  neg: { f: (x) => -x, range: [-10, 10], fn: kiln.neg },
  abs: { f: Math.abs, range: [-10, 10], fn: kiln.abs },
  relu: { f: (x) => (x > 0 ? x : 0), range: [-10, 10], fn: kiln.relu },
  exp: { f: Math.exp, range: [-80, 80], fn: kiln.exp },
  log: { f: Math.log, range: [1e-6, 1e6], fn: kiln.log },
  sqrt: { f: Math.sqrt, range: [0, 1e6], fn: kiln.sqrt },
  rsqrt: { f: (x) => 1 / Math.sqrt(x), range: [1e-6, 1e6], fn: kiln.rsqrt },
  sigmoid: { f: sigmoid, range: [-40, 40], fn: kiln.sigmoid },
  tanh: { f: Math.tanh, range: [-12, 12], fn: kiln.tanh },
  silu: { f: (x) => x * sigmoid(x), range: [-40, 40], fn: kiln.silu },
  // written without cancellation for large negative x: 1 + erf(z) = erfc(-z), 1 + tanh(u) = 2 sigmoid(2u)
  gelu: { f: (x) => 0.5 * x * erfc(-x / Math.SQRT2), range: [-12, 12], fn: (x) => kiln.gelu(x) },
  gelu_tanh: { f: (x) => x * sigmoid(2 * K * (x + 0.044715 * x ** 3)), range: [-12, 12], fn: (x) => kiln.gelu(x, { approximate: 'tanh' }) },
};

const FLOATS = ['float32', 'float16', 'bfloat16'] as const;

function inputs(name: string, n: number, seed: number): Float64Array {
  const [lo, hi] = UNARY[name].range;
  const r = randomValues(n, seed, 1).map((u) => lo + ((u + 1) / 2) * (hi - lo));
  // include small values, zero and the range ends
  const extra = [0, lo, hi, 1e-3, -1e-3, 0.5, -0.5].filter((v) => v >= lo && v <= hi);
  r.set(extra, 0);
  return r;
}

/** Reference: the float64 function of the exactly stored inputs, rounded once to dtype. */
function reference(f: (x: number) => number, x: Float64Array, dtype: kiln.DType): number[] {
  const exact = Float64Array.from(x, f);
  return kiln.tidy(() => valuesOf(kiln.tensor(exact, [exact.length], { dtype })));
}

afterAll(() => kiln.internals.setIsa(isaLevels()[isaLevels().length - 1]));

describe.each(isaLevels())('unary ops at ISA level %s', (level) => {
  for (const name of Object.keys(UNARY)) {
    for (const dtype of FLOATS) {
      it(`${name} ${dtype}`, () => {
        kiln.internals.setIsa(level);
        kiln.tidy(() => {
          const { t, ref } = makeTensor(inputs(name, 2000, name.length * 7 + 1), [40, 50], dtype);
          const want = reference(UNARY[name].f, ref.data, dtype);
          // float32: within 2 ulp; 16-bit: the float32 result rounded once, so within one 16-bit ulp
          const rtol = dtype === 'float32' ? 2.5 * eps('float32') * 2 : 2 * eps(dtype);
          expectClose(valuesOf(UNARY[name].fn(t)), want, rtol, 1e-37, `${name} ${dtype}`);
          const strided = stridedFromValues(ref.data, [40, 50], dtype);
          expectClose(valuesOf(UNARY[name].fn(strided)), want, rtol, 1e-37, `${name} ${dtype} strided`);
        });
      });
    }
  }
});

describe('unary edge cases', () => {
  it('keep NaN, handle infinities and empty tensors', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([NaN, Infinity, -Infinity, 0, -0]);
      expect(valuesOf(kiln.exp(x))).toEqual([NaN, Infinity, 0, 1, 1]);
      expect(valuesOf(kiln.relu(x)).slice(0, 4)).toEqual([NaN, Infinity, 0, 0]);
      expect(valuesOf(kiln.tanh(x))).toEqual([NaN, 1, -1, 0, -0]);
      expect(valuesOf(kiln.sigmoid(x))).toEqual([NaN, 1, 0, 0.5, 0.5]);
      expect(valuesOf(kiln.log(kiln.tensor([0, -1, Infinity])))).toEqual([-Infinity, NaN, Infinity]);
      expect(valuesOf(kiln.sqrt(kiln.tensor([-1, 0, 4])))).toEqual([NaN, 0, 2]);
      expect(kiln.exp(kiln.zeros([0, 3])).shape).toEqual([0, 3]);
    });
  });
  it('neg, abs and relu work on int32; the others refuse it', () => {
    kiln.tidy(() => {
      const i = kiln.tensor([-3, 0, 5, -2147483648], [4], { dtype: 'int32' });
      expect(i.neg().toArray()).toEqual([3, 0, -5, -2147483648]);
      expect(i.abs().toArray()).toEqual([3, 0, 5, -2147483648]);
      expect(i.relu().toArray()).toEqual([0, 0, 5, 0]);
      expect(() => i.exp()).toThrow(kiln.DTypeError);
      expect(() => i.exp()).toThrow("kiln: op 'exp' has no kernel for dtype int32 on device cpu");
      expect(() => kiln.gelu(i, { approximate: 'fast' as 'tanh' })).toThrow(kiln.ValueError);
    });
  });
});

describe('pow, where, clamp', () => {
  it('pow broadcasts and follows C pow', () => {
    kiln.tidy(() => {
      const base = randomValues(60, 5, 3);
      const ex = randomValues(5, 6, 2);
      const a = kiln.tensor(base, [12, 5]);
      const b = kiln.tensor(ex, [5]);
      const ra = refOf(a).data;
      const rb = refOf(b).data;
      const want = Array.from(ra, (v, i) => Math.fround(Math.pow(v, rb[i % 5])));
      expectClose(valuesOf(kiln.pow(a, b)), want, 4 * eps('float32'), 1e-30, 'pow');
      expect(valuesOf(kiln.pow(kiln.tensor([-2, 0, 4, -8]), 2))).toEqual([4, 0, 16, 64]);
      expect(valuesOf(kiln.pow(kiln.tensor([-2, 0, 4]), 0))).toEqual([1, 1, 1]);
      expect(valuesOf(kiln.pow(kiln.tensor([-2]), 0.5))).toEqual([NaN]);
      expect(valuesOf(kiln.pow(2, kiln.tensor([3, -1])))).toEqual([8, 0.5]);
    });
  });
  it('where picks by a broadcast bool condition', () => {
    kiln.tidy(() => {
      const cond = kiln.tensor([[true], [false], [true]]);
      const a = kiln.tensor([1, 2, 3, 4]);
      const out = kiln.where(cond, a, -1);
      expect(out.toArray()).toEqual([[1, 2, 3, 4], [-1, -1, -1, -1], [1, 2, 3, 4]]);
      const i = kiln.where(kiln.tensor([true, false]), kiln.tensor([1, 2], [2], { dtype: 'int32' }), kiln.tensor([7, 8], [2], { dtype: 'int32' }));
      expect(i.dtype).toBe('int32');
      expect(i.toArray()).toEqual([1, 8]);
      expect(() => kiln.where(kiln.ones([2]) as unknown as kiln.Tensor<'bool'>, a, a)).toThrow(/cond must have dtype bool/);
      expect(() => kiln.where(cond, a, kiln.ones([4], { dtype: 'float16' }))).toThrow(kiln.DTypeError);
      expect(() => kiln.where(kiln.tensor([true, false]), a, a)).toThrow(kiln.ShapeError);
    });
  });
  it('clamp bounds either side, keeps NaN, and works on int32', () => {
    kiln.tidy(() => {
      const x = kiln.tensor([-5, -1, 0, 1, 5, NaN]);
      expect(valuesOf(x.clamp(-2, 2))).toEqual([-2, -1, 0, 1, 2, NaN]);
      expect(valuesOf(x.clamp(0))).toEqual([0, 0, 0, 1, 5, NaN]);
      expect(valuesOf(x.clamp(null, 0))).toEqual([-5, -1, 0, 0, 0, NaN]);
      expect(valuesOf(x.clamp(3, 1))).toEqual([1, 1, 1, 1, 1, NaN]);
      expect(kiln.tensor([-5, 5], [2], { dtype: 'int32' }).clamp(-1.5, 2.5).toArray()).toEqual([-1, 2]);
      expect(() => x.clamp(NaN)).toThrow(kiln.ValueError);
    });
  });
});

describe('pointwise backward kernels vs finite differences', () => {
  const cases: [string, (x: kiln.Tensor, gy: kiln.Tensor) => kiln.Tensor, (x: number) => number, boolean][] = [
    ['relu', kiln.backward.reluBackward, UNARY.relu.f, false],
    ['gelu', (x, g) => kiln.backward.geluBackward(x, g), UNARY.gelu.f, false],
    ['gelu_tanh', (x, g) => kiln.backward.geluBackward(x, g, { approximate: 'tanh' }), UNARY.gelu_tanh.f, false],
    ['silu', kiln.backward.siluBackward, UNARY.silu.f, false],
    ['sigmoid', kiln.backward.sigmoidBackward, sigmoid, true],
    ['tanh', kiln.backward.tanhBackward, Math.tanh, true],
  ];
  for (const [name, backward, f, fromOutput] of cases) {
    for (const dtype of FLOATS) {
      it(`${name} ${dtype}`, () => {
        kiln.tidy(() => {
          const xs = randomValues(500, 31, 4).map((v) => (Math.abs(v) < 1e-3 ? v + 0.01 : v)); // keep away from relu's kink
          const { t: x, ref } = makeTensor(xs, [20, 25], dtype);
          const { t: gy, ref: gref } = makeTensor(randomValues(500, 32, 1), [20, 25], dtype);
          const saved = fromOutput ? (name === 'sigmoid' ? kiln.sigmoid(x) : kiln.tanh(x)) : x;
          const got = valuesOf(backward(saved, gy));
          const h = 1e-5;
          const want = Array.from(ref.data, (v, i) => ((f(v + h) - f(v - h)) / (2 * h)) * gref.data[i]);
          // From-output forms start from the rounded y: 1 - y^2 and y (1 - y) then
          // carry an absolute error of about 2 eps |gy| (|gy| <= 1 here).
          const rtol = 4 * eps(dtype) + 1e-6;
          const atol = fromOutput ? 4 * eps(dtype) : eps(dtype);
          expectClose(got, want, rtol, atol, `${name}_backward ${dtype}`);
        });
      });
    }
  }
  it('refuses mismatched shapes and dtypes', () => {
    kiln.tidy(() => {
      expect(() => kiln.backward.reluBackward(kiln.ones([2, 3]), kiln.ones([3, 2]))).toThrow(kiln.ShapeError);
      expect(() => kiln.backward.reluBackward(kiln.ones([2]), kiln.ones([2], { dtype: 'float16' }))).toThrow(kiln.DTypeError);
    });
  });
});
