// Differentiable elementwise ops: the kernels of lib/ops/elementwise.ts plus
// their backward rules (broadcast operands get their gradient summed back).
import type { DType } from '../dtype';
import * as ew from '../ops/elementwise';
import { backward as kernels } from '../ops/nn';
import { Tensor } from '../tensor';
import { tidy } from '../lifetime';
import { differentiable } from './record';
import { reduceTo, tmp, unbroadcast } from './util';

type Operand<D extends DType> = Tensor<D> | number;
type T<D extends DType> = Tensor<D>;

/** The gradient of operand x from g() (null for a number operand), summed over broadcast dims. */
const gradFor = <D extends DType>(x: Operand<D>, g: () => T<D>): T<D> | null => (x instanceof Tensor ? reduceTo(g(), x.shape) : null);
const tensorsOf = <D extends DType>(...xs: Operand<D>[]): T<D>[] => xs.filter((x): x is T<D> => x instanceof Tensor);
/** The saved operands back in argument order (numbers stay numbers). */
function operands<D extends DType>(args: Operand<D>[], saved: readonly Tensor[]): Operand<D>[] {
  let i = 0;
  return args.map((x) => (x instanceof Tensor ? (saved[i++] as T<D>) : x));
}

export function add<D extends DType>(a: Operand<D>, b: Operand<D>): T<D> {
  return differentiable('add', [a, b], () => ew.add(a, b), () => ({
    saved: [],
    rule: (g) => [a instanceof Tensor ? unbroadcast(g, a.shape) : null, b instanceof Tensor ? unbroadcast(g, b.shape) : null],
  }));
}

export function sub<D extends DType>(a: Operand<D>, b: Operand<D>): T<D> {
  return differentiable('sub', [a, b], () => ew.sub(a, b), () => ({
    saved: [],
    rule: (g) => [a instanceof Tensor ? unbroadcast(g, a.shape) : null, gradFor(b, () => ew.neg(g))],
  }));
}

export function mul<D extends DType>(a: Operand<D>, b: Operand<D>): T<D> {
  return differentiable('mul', [a, b], () => ew.mul(a, b), () => ({
    saved: tensorsOf(a, b),
    rule: (g, saved) => {
      const [ta, tb] = operands([a, b], saved);
      return [gradFor(a, () => ew.mul(g, tb)), gradFor(b, () => ew.mul(g, ta))];
    },
  }));
}

export function div<D extends DType>(a: Operand<D>, b: Operand<D>): T<D> {
  return differentiable('div', [a, b], () => ew.div(a, b), (out) => ({
    saved: [...tensorsOf(b), out],
    rule: (g, saved) => {
      const [tb] = operands([b], saved);
      const y = saved[saved.length - 1] as T<D>;
      // d(a/b)/da = 1/b; d(a/b)/db = -(a/b)/b
      return [gradFor(a, () => ew.div(g, tb)), gradFor(b, () => tmp(ew.div(y, tb), (q) => tmp(ew.mul(g, q as T<D>), (t) => ew.neg(t as T<D>))))];
    },
  }));
}

export function pow<D extends DType>(a: Operand<D>, b: Operand<D>): T<D> {
  return differentiable('pow', [a, b], () => ew.pow(a, b), (out) => ({
    saved: [...tensorsOf(a, b), out],
    rule: (g, saved) => {
      const [ta, tb] = operands([a, b], saved);
      const y = saved[saved.length - 1] as T<D>;
      // d/da = b a^(b-1); d/db = a^b log a (NaN where a < 0, as C's pow)
      const ga = gradFor(a, () => {
        const p = typeof tb === 'number' ? ew.pow(ta, tb - 1) : tmp(ew.sub(tb, 1), (bm1) => ew.pow(ta, bm1 as T<D>));
        return tmp(p, (pp) => tmp(ew.mul(pp as T<D>, tb), (d) => ew.mul(g, d as T<D>)));
      });
      const gb = gradFor(b, () => {
        const la = typeof ta === 'number' ? Math.log(ta) : ew.log(ta);
        const d = ew.mul(y, la);
        if (la instanceof Tensor) la.dispose();
        return tmp(d, (dd) => ew.mul(g, dd as T<D>));
      });
      return [ga, gb];
    },
  }));
}

export function neg<D extends DType>(x: T<D>): T<D> {
  return differentiable('neg', [x], () => ew.neg(x), () => ({ saved: [], rule: (g) => [ew.neg(g)] }));
}

export function exp<D extends DType>(x: T<D>): T<D> {
  return differentiable('exp', [x], () => ew.exp(x), (out) => ({ saved: [out], rule: (g, [y]) => [ew.mul(g, y as T<D>)] }));
}

export function log<D extends DType>(x: T<D>): T<D> {
  return differentiable('log', [x], () => ew.log(x), () => ({ saved: [x], rule: (g, [t]) => [ew.div(g, t as T<D>)] }));
}

export function sqrt<D extends DType>(x: T<D>): T<D> {
  // d sqrt(x) = 1 / (2 y)
  return differentiable('sqrt', [x], () => ew.sqrt(x), (out) => ({ saved: [out], rule: (g, [y]) => [tmp(ew.div(g, y as T<D>), (t) => ew.mul(t as T<D>, 0.5))] }));
}

export function rsqrt<D extends DType>(x: T<D>): T<D> {
  // d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
  return differentiable('rsqrt', [x], () => ew.rsqrt(x), (out) => ({
    saved: [out],
    rule: (g, [y]) => [tmp(ew.pow(y as T<D>, 3), (c) => tmp(ew.mul(c as T<D>, -0.5), (d) => ew.mul(g, d as T<D>)))],
  }));
}

export function relu<D extends DType>(x: T<D>): T<D> {
  return differentiable('relu', [x], () => ew.relu(x), () => ({ saved: [x], rule: (g, [t]) => [kernels.reluBackward(t as T<D>, g)] }));
}

export function gelu<D extends DType>(x: T<D>, opts?: ew.GeluOptions): T<D> {
  return differentiable('gelu', [x], () => ew.gelu(x, opts), () => ({ saved: [x], rule: (g, [t]) => [kernels.geluBackward(t as T<D>, g, opts)] }));
}

export function silu<D extends DType>(x: T<D>): T<D> {
  return differentiable('silu', [x], () => ew.silu(x), () => ({ saved: [x], rule: (g, [t]) => [kernels.siluBackward(t as T<D>, g)] }));
}

export function sigmoid<D extends DType>(x: T<D>): T<D> {
  return differentiable('sigmoid', [x], () => ew.sigmoid(x), (out) => ({ saved: [out], rule: (g, [y]) => [kernels.sigmoidBackward(y as T<D>, g)] }));
}

export function tanh<D extends DType>(x: T<D>): T<D> {
  return differentiable('tanh', [x], () => ew.tanh(x), (out) => ({ saved: [out], rule: (g, [y]) => [kernels.tanhBackward(y as T<D>, g)] }));
}

export function where<D extends DType>(cond: Tensor<'bool'>, a: Operand<D>, b: Operand<D>): T<D> {
  return differentiable('where', [cond, a, b], () => ew.where(cond, a, b), () => ({
    saved: [cond],
    rule: (g, [c]) => [null, gradFor(a, () => ew.where(c as Tensor<'bool'>, g, 0)), gradFor(b, () => ew.where(c as Tensor<'bool'>, 0, g))],
  }));
}

/**
 * g routed to whichever of a, b was picked: where(pick, g, where(tie, g/2, 0)).
 * Ties split the gradient in half between a and b, as PyTorch's maximum/minimum.
 */
function pickGrad<D extends DType>(g: T<D>, pick: Tensor<'bool'>, tie: Tensor<'bool'>): T<D> {
  return tidy(() => ew.where(pick, g, ew.where(tie, ew.mul(g, 0.5), 0)));
}

function selectBinary<D extends DType>(op: 'maximum' | 'minimum', a: Operand<D>, b: Operand<D>): T<D> {
  const forward = op === 'maximum' ? ew.maximum : ew.minimum;
  const beats = op === 'maximum' ? ew.gt : ew.lt;
  return differentiable(op, [a, b], () => forward(a, b), () => ({
    saved: tensorsOf(a, b),
    rule: (g, saved) => {
      const [ta, tb] = operands([a, b], saved);
      return tidy(() => {
        const tie = ew.eq(ta, tb);
        return [gradFor(a, () => pickGrad(g, beats(ta, tb), tie)), gradFor(b, () => pickGrad(g, beats(tb, ta), tie))];
      });
    },
  }));
}

/** Elementwise maximum; NaN if either is NaN. Gradient: to the larger operand, halved on ties. */
export function maximum<D extends DType>(a: Operand<D>, b: Operand<D>): T<D> {
  return selectBinary('maximum', a, b);
}

/** Elementwise minimum; NaN if either is NaN. Gradient: to the smaller operand, halved on ties. */
export function minimum<D extends DType>(a: Operand<D>, b: Operand<D>): T<D> {
  return selectBinary('minimum', a, b);
}

/** |x|. Gradient: g * sign(x), 0 at x = 0 (PyTorch's choice). */
export function abs<D extends DType>(x: T<D>): T<D> {
  return differentiable('abs', [x], () => ew.abs(x), () => ({
    saved: [x],
    rule: (g, [t]) => [tidy(() => ew.where(ew.gt(t as T<D>, 0), g, ew.where(ew.lt(t as T<D>, 0), ew.neg(g), 0)))],
  }));
}

/** x clamped to [min, max] (a null bound is none). Gradient: g where min <= x <= max, else 0. */
export function clamp<D extends DType>(x: T<D>, min?: number | null, max?: number | null): T<D> {
  return differentiable('clamp', [x], () => ew.clamp(x, min, max), () => ({
    saved: [x],
    rule: (g, [t]) => [
      tidy(() => {
        let inside: Tensor<'bool'> | null = null;
        if (min !== undefined && min !== null) inside = ew.ge(t as T<D>, min);
        if (max !== undefined && max !== null) {
          const below = ew.le(t as T<D>, max);
          inside = inside === null ? below : ew.logicalAnd(inside, below);
        }
        return inside === null ? g.detach() : ew.where(inside, g, 0);
      }),
    ],
  }));
}
