// Helpers backward rules share.
import type { DType } from '../dtype';
import { runInto, Tensor } from '../tensor';
import * as creation from '../creation';
import * as reduce from '../ops/reduce';

/** A new handle on g (rules must not return g itself: the engine disposes it). */
export function same<D extends DType>(g: Tensor<D>): Tensor<D> {
  return g.detach();
}

/** Sums g over the dimensions NumPy broadcasting added to reach g's shape from `shape`. */
export function unbroadcast<D extends DType>(g: Tensor<D>, shape: readonly number[]): Tensor<D> {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return same(g);
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; ++i) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const summed = reduce.sum(g, axes, true);
  try {
    return summed.reshape(shape);
  } finally {
    summed.dispose();
  }
}

/** unbroadcast(t, shape), disposing t (for a gradient computed just for this). */
export function reduceTo<D extends DType>(t: Tensor<D>, shape: readonly number[]): Tensor<D> {
  try {
    return unbroadcast(t, shape);
  } finally {
    t.dispose();
  }
}

/** Zeros of `shape` with g written into the view that `select` picks (the gradient of a view op). */
export function scatterInto<D extends DType>(g: Tensor<D>, shape: readonly number[], select: (full: Tensor<D>) => Tensor<D>): Tensor<D> {
  const full = creation.zeros(shape, { dtype: g.dtype, device: g.device }) as Tensor<D>;
  const view = select(full);
  try {
    if (view.size > 0) runInto('cast', g.dtype, [g], view);
  } catch (e) {
    full.dispose();
    throw e;
  } finally {
    view.dispose();
  }
  return full;
}

/** f(t), then disposes t: chains the temporaries of a rule, e.g. tmp(mul(g, y), (t) => neg(t)). */
export function tmp<T>(t: Tensor, f: (t: Tensor) => T): T {
  try {
    return f(t);
  } finally {
    t.dispose();
  }
}
