// Reductions over axes: sum, mean, max, min, argmax (keepDims like NumPy).
import type { DType } from '../dtype';
import { ShapeError, ValueError } from '../errors';
import { formatShape } from '../shape';
import { emptyTensor, runInto, Tensor } from '../tensor';
import { normAxis } from './views';

/** One axis or several; omitted: every axis. */
export type Axes = number | readonly number[];

/** Options form: sum(x, { axis, keepDims }). */
export interface ReduceOptions {
  axis?: Axes;
  keepDims?: boolean;
}

function parseArgs(op: string, axisOrOpts?: Axes | ReduceOptions | null, keepDims?: boolean): { axis?: Axes; keepDims: boolean } {
  if (axisOrOpts !== null && typeof axisOrOpts === 'object' && !Array.isArray(axisOrOpts)) {
    const o = axisOrOpts as ReduceOptions;
    return { axis: o.axis, keepDims: o.keepDims ?? false };
  }
  if (keepDims !== undefined && typeof keepDims !== 'boolean') throw new ValueError(`kiln: ${op}: keepDims must be a boolean`);
  return { axis: (axisOrOpts ?? undefined) as Axes | undefined, keepDims: keepDims ?? false };
}

/** Sorted unique non-negative axes. */
export function normAxes(op: string, axis: Axes | undefined, ndim: number): number[] {
  if (axis === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axis === 'number' ? [axis] : axis;
  if (!Array.isArray(list as unknown)) throw new ValueError(`kiln: ${op}: axis must be a number or an array of numbers`);
  const axes = [...new Set(list.map((a) => normAxis(op, a, ndim)))].sort((p, q) => p - q);
  if (axes.length !== list.length) throw new ShapeError(`kiln: ${op}: axis ${formatShape(list)} repeats an axis`);
  return axes;
}

function reduce<D extends DType>(op: string, x: Tensor<D>, axisOrOpts?: Axes | ReduceOptions | null, keepDimsArg?: boolean): Tensor<D> {
  if (!(x instanceof Tensor)) throw new ValueError(`kiln: ${op}: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  x.storage(op);
  const { axis, keepDims } = parseArgs(op, axisOrOpts, keepDimsArg);
  const axes = normAxes(op, axis, x.ndim);
  if ((op === 'max' || op === 'min') && axes.some((a) => x.shape[a] === 0)) {
    throw new ShapeError(`kiln: ${op}: cannot reduce the empty axis of ${x.describe()} (axes ${formatShape(axes)})`);
  }
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = emptyTensor(kept, x.dtype, x.deviceSpec);
  runInto(op, x.dtype, [x], out, axes);
  if (keepDims) return out;
  try {
    return out.reshape(x.shape.filter((_, i) => !axes.includes(i)));
  } finally {
    out.dispose();
  }
}

/** Sum over axes (all by default). float sums accumulate in float64 on the CPU; int32 wraps. */
export function sum<D extends DType>(x: Tensor<D>, axis?: Axes | ReduceOptions | null, keepDims?: boolean): Tensor<D> {
  return reduce('sum', x, axis, keepDims);
}
/** Mean over axes (floating dtypes; NaN over zero elements). */
export function mean<D extends DType>(x: Tensor<D>, axis?: Axes | ReduceOptions | null, keepDims?: boolean): Tensor<D> {
  return reduce('mean', x, axis, keepDims);
}
/** Maximum over axes (NaN if any element is NaN). */
export function max<D extends DType>(x: Tensor<D>, axis?: Axes | ReduceOptions | null, keepDims?: boolean): Tensor<D> {
  return reduce('max', x, axis, keepDims);
}
/** Minimum over axes (NaN if any element is NaN). */
export function min<D extends DType>(x: Tensor<D>, axis?: Axes | ReduceOptions | null, keepDims?: boolean): Tensor<D> {
  return reduce('min', x, axis, keepDims);
}

/**
 * Index (int32) of the maximum along `axis` — the first one, or the first NaN.
 * Without an axis: the index into the flattened tensor.
 */
export function argmax(x: Tensor, axis?: number | { axis?: number; keepDims?: boolean } | null, keepDimsArg?: boolean): Tensor<'int32'> {
  const op = 'argmax';
  if (!(x instanceof Tensor)) throw new ValueError(`kiln: ${op}: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  x.storage(op);
  const { axis: ax, keepDims } = parseArgs(op, axis as Axes | ReduceOptions | null | undefined, keepDimsArg);
  if (Array.isArray(ax)) throw new ValueError(`kiln: ${op}: axis must be one number`);
  if (ax === undefined) {
    const flat = x.reshape([-1]);
    try {
      const r = argmax(flat, 0, false);
      if (!keepDims) return r;
      try {
        return r.reshape(x.shape.map(() => 1));
      } finally {
        r.dispose();
      }
    } finally {
      flat.dispose();
    }
  }
  const a = normAxis(op, ax as number, x.ndim);
  if (x.shape[a] === 0) throw new ShapeError(`kiln: ${op}: axis ${a} of ${x.describe()} is empty`);
  const kept = x.shape.map((d, i) => (i === a ? 1 : d));
  const out = emptyTensor(kept, 'int32', x.deviceSpec);
  runInto(op, x.dtype, [x], out, [a]);
  if (keepDims) return out;
  try {
    return out.reshape(x.shape.filter((_, i) => i !== a));
  } finally {
    out.dispose();
  }
}
