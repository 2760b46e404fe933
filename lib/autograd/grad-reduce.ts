// Differentiable reductions and matmul.
import type { DType } from '../dtype';
import * as ew from '../ops/elementwise';
import * as mm from '../ops/matmul';
import * as red from '../ops/reduce';
import { broadcastShapes } from '../shape';
import type { Tensor } from '../tensor';
import * as views from '../ops/views';
import { tidy } from '../lifetime';
import { differentiable } from './record';
import { reduceTo, tmp } from './util';

type T<D extends DType> = Tensor<D>;

/** keepDims shape of a reduction of `shape` over `axes` (every axis when undefined). */
function keptShape(op: string, shape: readonly number[], axis: red.Axes | red.ReduceOptions | null | undefined): number[] {
  const ax = axis !== null && typeof axis === 'object' && !Array.isArray(axis) ? (axis as red.ReduceOptions).axis : (axis ?? undefined);
  const axes = red.normAxes(op, ax as red.Axes | undefined, shape.length);
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** g (reduced, with or without kept dims) spread back over x's shape, times `scale`. */
function spread<D extends DType>(g: T<D>, kept: readonly number[], shape: readonly number[], scale: number): T<D> {
  return tmp(g.reshape(kept), (k) => {
    const b = views.broadcastTo(k as T<D>, shape);
    if (scale === 1) return b;
    return tmp(b, (bb) => ew.mul(bb as T<D>, scale));
  });
}

export function sum<D extends DType>(x: T<D>, axis?: red.Axes | red.ReduceOptions | null, keepDims?: boolean): T<D> {
  return differentiable('sum', [x], () => red.sum(x, axis, keepDims), () => {
    const kept = keptShape('sum', x.shape, axis);
    return { saved: [], rule: (g) => [spread(g as T<D>, kept, x.shape, 1)] };
  });
}

export function mean<D extends DType>(x: T<D>, axis?: red.Axes | red.ReduceOptions | null, keepDims?: boolean): T<D> {
  return differentiable('mean', [x], () => red.mean(x, axis, keepDims), () => {
    const kept = keptShape('mean', x.shape, axis);
    const count = x.size / Math.max(1, kept.reduce((a, b) => a * b, 1));
    return { saved: [], rule: (g) => [spread(g as T<D>, kept, x.shape, 1 / count)] };
  });
}

/** a @ b; gradients g @ b^T and a^T @ g, summed over broadcast batch dims. */
export function matmul<D extends DType>(a: T<D>, b: T<D>): T<D> {
  return differentiable('matmul', [a, b], () => mm.matmul(a, b), () => ({
    saved: [a, b],
    rule: (g, [sa, sb]) => {
      // work with the 2+-D forms: a [..., M, K], b [..., K, N], g [..., M, N]
      const a2 = a.ndim === 1 ? views.unsqueeze(sa as T<D>, 0) : (sa as T<D>).detach();
      const b2 = b.ndim === 1 ? views.unsqueeze(sb as T<D>, -1) : (sb as T<D>).detach();
      const batch = broadcastShapes(a2.shape.slice(0, -2), b2.shape.slice(0, -2)) ?? [];
      const [m] = a2.shape.slice(-2);
      const n = b2.shape[b2.ndim - 1];
      const g3 = g.reshape([...batch, m, n]);
      try {
        const ga = tmp(views.swapAxes(b2, -1, -2), (bt) => tmp(mm.matmul(g3, bt as T<D>), (full) => tmp(reduceTo(full as T<D>, a2.shape), (r) => r.reshape(a.shape))));
        const gb = tmp(views.swapAxes(a2, -1, -2), (at) => tmp(mm.matmul(at as T<D>, g3), (full) => tmp(reduceTo(full as T<D>, b2.shape), (r) => r.reshape(b.shape))));
        return [ga, gb];
      } finally {
        [a2, b2, g3].forEach((t) => t.dispose());
      }
    },
  }));
}

/**
 * Gradient of max/min over axes: g spread evenly over the elements equal to the
 * result (ties share it, as PyTorch's full max()/min(); a NaN result passes none).
 */
function selectReduce<D extends DType>(op: 'max' | 'min', x: T<D>, axis?: red.Axes | red.ReduceOptions | null, keepDims?: boolean): T<D> {
  const forward = op === 'max' ? red.max : red.min;
  return differentiable(op, [x], () => forward(x, axis, keepDims), (out) => {
    const kept = keptShape(op, x.shape, axis);
    return {
      saved: [x, out],
      rule: (g, [t, y]) => [
        tidy(() => {
          const hit = ew.eq(t as T<D>, views.broadcastTo((y as T<D>).reshape(kept), t.shape));
          const share = ew.where(hit, 1, 0).cast(t.dtype) as T<D>;
          const count = red.sum(share, keptAxes(kept, t.shape), true);
          return ew.where(hit, ew.div(views.broadcastTo((g as T<D>).reshape(kept), t.shape), views.broadcastTo(count, t.shape)), 0);
        }),
      ],
    };
  });
}

/** The axes a kept shape reduced. */
function keptAxes(kept: readonly number[], shape: readonly number[]): number[] {
  return shape.flatMap((_, i) => (kept[i] === 1 ? [i] : []));
}

/** Maximum over axes (NaN if any element is NaN); differentiable (ties share the gradient). */
export function max<D extends DType>(x: T<D>, axis?: red.Axes | red.ReduceOptions | null, keepDims?: boolean): T<D> {
  return selectReduce('max', x, axis, keepDims);
}

/** Minimum over axes (NaN if any element is NaN); differentiable (ties share the gradient). */
export function min<D extends DType>(x: T<D>, axis?: red.Axes | red.ReduceOptions | null, keepDims?: boolean): T<D> {
  return selectReduce('min', x, axis, keepDims);
}
