// Differentiable view and copy ops: gradients are routed back through the
// inverse view (or scattered into zeros of the input's shape).
import { isFloatDType, type DType } from '../dtype';
import type { Device } from '../device';
import * as views from '../ops/views';
import { Tensor, type ToTarget } from '../tensor';
import { differentiable } from './record';
import { scatterInto, unbroadcast } from './util';

type T<D extends DType> = Tensor<D>;

export function transpose<D extends DType>(x: T<D>, perm?: readonly number[]): T<D> {
  return differentiable('transpose', [x], () => views.transpose(x, perm), () => {
    const p = perm === undefined ? x.shape.map((_, i) => x.ndim - 1 - i) : perm.map((a) => (a < 0 ? a + x.ndim : a));
    const inverse = p.map((_, i) => p.indexOf(i));
    return { saved: [], rule: (g) => [views.transpose(g, inverse)] };
  });
}

export function permute<D extends DType>(x: T<D>, ...perm: (number | readonly number[])[]): T<D> {
  const order = perm.length === 1 && Array.isArray(perm[0]) ? (perm[0] as readonly number[]) : (perm as number[]);
  return transpose(x, order);
}

export function swapAxes<D extends DType>(x: T<D>, a: number, b: number): T<D> {
  const p = x.shape.map((_, i) => i);
  const ia = views.normAxis('swapAxes', a, x.ndim);
  const ib = views.normAxis('swapAxes', b, x.ndim);
  [p[ia], p[ib]] = [p[ib], p[ia]];
  return transpose(x, p);
}

export function slice<D extends DType>(x: T<D>, starts: readonly number[], ends?: readonly (number | undefined)[], steps?: readonly number[]): T<D> {
  return differentiable('slice', [x], () => views.slice(x, starts, ends, steps), () => ({
    saved: [],
    rule: (g) => [scatterInto(g, x.shape, (full) => views.slice(full, starts, ends, steps))],
  }));
}

export function narrow<D extends DType>(x: T<D>, axis: number, start: number, length: number): T<D> {
  return differentiable('narrow', [x], () => views.narrow(x, axis, start, length), () => ({
    saved: [],
    rule: (g) => [scatterInto(g, x.shape, (full) => views.narrow(full, axis, start, length))],
  }));
}

export function split<D extends DType>(x: T<D>, sections: number | readonly number[], axis = 0): T<D>[] {
  // the parts are narrow views, each with its own gradient route
  const parts = views.split(x, sections, axis);
  const a = views.normAxis('split', axis, x.ndim);
  let start = 0;
  return parts.map((p) => {
    const len = p.shape[a];
    const s = start;
    start += len;
    p.dispose();
    return narrow(x, a, s, len);
  });
}

export function concat<D extends DType>(tensors: readonly T<D>[], axis = 0): T<D> {
  return differentiable('concat', [tensors, ...tensors], () => views.concat(tensors, axis), () => {
    const a = views.normAxis('concat', axis, tensors[0].ndim);
    const sizes = tensors.map((t) => t.shape[a]);
    return {
      saved: [],
      rule: (g) => {
        let start = 0;
        return [
          null,
          ...sizes.map((len) => {
            const part = views.narrow(g, a, start, len);
            start += len;
            return part;
          }),
        ];
      },
    };
  });
}

export function stack<D extends DType>(tensors: readonly T<D>[], axis = 0): T<D> {
  const a = views.normAxis('stack', axis, (tensors[0]?.ndim ?? 0) + 1);
  const expanded = tensors.map((t) => unsqueeze(t, a));
  try {
    return concat(expanded, a);
  } finally {
    expanded.forEach((t) => t.dispose());
  }
}

export function broadcastTo<D extends DType>(x: T<D>, shape: readonly number[]): T<D> {
  return differentiable('broadcastTo', [x], () => views.broadcastTo(x, shape), () => ({ saved: [], rule: (g) => [unbroadcast(g, x.shape)] }));
}

/** Any reshape-like view: the gradient is reshaped back. */
function reshaping<D extends DType>(name: string, x: T<D>, forward: () => T<D>): T<D> {
  return differentiable(name, [x], forward, () => ({ saved: [], rule: (g) => [g.reshape(x.shape)] }));
}

export const unsqueeze = <D extends DType>(x: T<D>, axis: number): T<D> => reshaping('unsqueeze', x, () => views.unsqueeze(x, axis));
export const squeeze = <D extends DType>(x: T<D>, axis?: number): T<D> => reshaping('squeeze', x, () => views.squeeze(x, axis));
export const flatten = <D extends DType>(x: T<D>): T<D> => reshaping('flatten', x, () => views.flatten(x));

// ---- Tensor methods (the raw versions live on Tensor as rawReshape etc.) --------------

export const reshape = <D extends DType>(x: T<D>, shape: readonly number[]): T<D> => reshaping('reshape', x, () => x.rawReshape(shape));

export function contiguous<D extends DType>(x: T<D>): T<D> {
  return differentiable('contiguous', [x], () => x.rawContiguous(), () => ({ saved: [], rule: (g) => [g.detach()] }));
}

export function clone<D extends DType>(x: T<D>): T<D> {
  return differentiable('clone', [x], () => x.rawClone(), () => ({ saved: [], rule: (g) => [g.detach()] }));
}

/** Casts between floating dtypes carry gradients (cast back); casts to integers end the graph. */
export function cast<D extends DType, R extends DType>(x: T<D>, dtype: R): T<R> {
  const out = x.rawCast(dtype);
  if (!isFloatDType(out.dtype)) return out;
  return differentiable('cast', [x], () => out as Tensor, () => ({ saved: [], rule: (g) => [g.rawCast(x.dtype)] })) as T<R>;
}

export function to<D extends DType>(x: T<D>, target: ToTarget): Tensor {
  const out = x.rawTo(target);
  if (!isFloatDType(out.dtype)) return out;
  const device: Device = x.device;
  return differentiable('to', [x], () => out, () => ({
    saved: [],
    rule: (g) => [g.rawTo({ dtype: x.dtype, device })],
  }));
}
