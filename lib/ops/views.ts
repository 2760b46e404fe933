// View ops: new shapes and strides over the same storage, no copy
// (transpose/permute, slice, split, broadcastTo, squeeze/unsqueeze), and concat
// (which copies each input into a slice of its output).
import type { DType } from '../dtype';
import { DeviceError, DTypeError, ShapeError, ValueError } from '../errors';
import { checkShape, formatShape } from '../shape';
import { emptyTensor, runInto, Tensor, viewOf } from '../tensor';

/** Resolves a possibly negative axis against `ndim`. */
export function normAxis(op: string, axis: number, ndim: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= Math.max(ndim, 1)) {
    throw new ShapeError(`kiln: ${op}: ${what} ${String(axis)} is out of range for a tensor of rank ${ndim}`);
  }
  return axis < 0 ? axis + ndim : axis;
}

function live<D extends DType>(op: string, x: Tensor<D>): Tensor<D> {
  if (!(x instanceof Tensor)) throw new ValueError(`kiln: ${op}: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  x.storage(op);
  return x;
}

/** Reorders the dimensions (default: reversed), as a view. */
export function transpose<D extends DType>(x: Tensor<D>, perm?: readonly number[]): Tensor<D> {
  const op = 'transpose';
  live(op, x);
  const n = x.ndim;
  if (perm !== undefined && !Array.isArray(perm as unknown)) throw new ValueError(`kiln: ${op}: perm must be an array of axes, got ${String(perm)}`);
  const p = perm === undefined ? Array.from({ length: n }, (_, i) => n - 1 - i) : perm.map((a) => normAxis(op, a, n));
  if (p.length !== n || new Set(p).size !== n) {
    throw new ShapeError(`kiln: ${op}: ${formatShape(perm ?? [])} is not a permutation of the ${n} dimensions of ${x.describe()}`);
  }
  return viewOf(x, op, p.map((a) => x.shape[a]), p.map((a) => x.strides[a]), x.offset);
}

/** permute(x, 0, 2, 1) or permute(x, [0, 2, 1]): transpose with an explicit order. */
export function permute<D extends DType>(x: Tensor<D>, ...perm: (number | readonly number[])[]): Tensor<D> {
  const order = perm.length === 1 && Array.isArray(perm[0]) ? (perm[0] as readonly number[]) : (perm as number[]);
  return transpose(x, order);
}

/** Swaps two dimensions (a view). */
export function swapAxes<D extends DType>(x: Tensor<D>, a: number, b: number): Tensor<D> {
  live('swapAxes', x);
  const p = Array.from({ length: x.ndim }, (_, i) => i);
  const ia = normAxis('swapAxes', a, x.ndim);
  const ib = normAxis('swapAxes', b, x.ndim);
  [p[ia], p[ib]] = [p[ib], p[ia]];
  return transpose(x, p);
}

/**
 * A strided view: along each leading axis i < starts.length, elements
 * starts[i], starts[i] + steps[i], ... before ends[i] (NumPy slicing; negative
 * indices count from the end; ends are clamped; steps >= 1; default end: the
 * dimension's size).
 */
export function slice<D extends DType>(x: Tensor<D>, starts: readonly number[], ends?: readonly (number | undefined)[], steps?: readonly number[]): Tensor<D> {
  const op = 'slice';
  live(op, x);
  if (!Array.isArray(starts as unknown) || starts.length > x.ndim) {
    throw new ShapeError(`kiln: ${op}: starts ${String(starts)} must be an array of at most ${x.ndim} indices for ${x.describe()}`);
  }
  const shape = x.shape.slice();
  const strides = x.strides.slice();
  let offset = x.offset;
  for (let i = 0; i < starts.length; ++i) {
    const n = x.shape[i];
    const step = steps?.[i] ?? 1;
    if (!Number.isInteger(step) || step < 1) throw new ValueError(`kiln: ${op}: step ${String(step)} on axis ${i} must be a positive integer`);
    const clampIndex = (v: number, what: string): number => {
      if (!Number.isInteger(v)) throw new ValueError(`kiln: ${op}: ${what} ${String(v)} on axis ${i} must be an integer`);
      return Math.min(n, Math.max(0, v < 0 ? v + n : v));
    };
    const start = clampIndex(starts[i], 'start');
    const end = ends?.[i] === undefined ? n : clampIndex(ends[i] as number, 'end');
    const len = Math.max(0, Math.ceil((end - start) / step));
    shape[i] = len;
    strides[i] = x.strides[i] * step;
    if (len > 0) offset += start * x.strides[i];
  }
  return viewOf(x, op, shape, strides, offset);
}

/** `length` elements of `axis` from `start` (a view; like torch.narrow). */
export function narrow<D extends DType>(x: Tensor<D>, axis: number, start: number, length: number): Tensor<D> {
  const op = 'narrow';
  live(op, x);
  const a = normAxis(op, axis, x.ndim);
  const n = x.shape[a];
  const s = start < 0 ? start + n : start;
  if (!Number.isInteger(s) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > n) {
    throw new ShapeError(`kiln: ${op}: [${start}, ${start} + ${length}) is outside axis ${a} (size ${n}) of ${x.describe()}`);
  }
  const shape = x.shape.slice();
  shape[a] = length;
  return viewOf(x, op, shape, x.strides, x.offset + (length > 0 ? s * x.strides[a] : 0));
}

/**
 * Splits along `axis` into views: `sections` equal parts (the size must
 * divide), or parts of the given sizes (which must add up to the size).
 */
export function split<D extends DType>(x: Tensor<D>, sections: number | readonly number[], axis = 0): Tensor<D>[] {
  const op = 'split';
  live(op, x);
  const a = normAxis(op, axis, x.ndim);
  const n = x.shape[a];
  let sizes: number[];
  if (typeof sections === 'number') {
    if (!Number.isInteger(sections) || sections < 1 || n % sections !== 0) {
      throw new ShapeError(`kiln: ${op}: axis ${a} of ${x.describe()} (size ${n}) does not split into ${String(sections)} equal parts`);
    }
    sizes = new Array<number>(sections).fill(n / sections);
  } else {
    sizes = sections.slice();
    if (sizes.some((s) => !Number.isInteger(s) || s < 0) || sizes.reduce((p, q) => p + q, 0) !== n) {
      throw new ShapeError(`kiln: ${op}: sizes ${formatShape(sizes)} do not add up to axis ${a} of ${x.describe()} (size ${n})`);
    }
  }
  const parts: Tensor<D>[] = [];
  let start = 0;
  for (const size of sizes) {
    parts.push(narrow(x, a, start, size));
    start += size;
  }
  return parts;
}

/** Joins tensors of one dtype and device along an existing axis (a copy). */
export function concat<D extends DType>(tensors: readonly Tensor<D>[], axis = 0): Tensor<D> {
  const op = 'concat';
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) throw new ValueError(`kiln: ${op}: expected a non-empty array of tensors`);
  tensors.forEach((t) => live(op, t));
  const first = tensors[0];
  const a = normAxis(op, axis, first.ndim);
  let total = 0;
  for (const t of tensors) {
    if (t.dtype !== first.dtype) throw new DTypeError(`kiln: ${op}: dtypes differ: ${first.describe()} and ${t.describe()}`);
    if (t.device !== first.device) throw new DeviceError(`kiln: ${op}: devices differ: ${first.describe()} and ${t.describe()}`);
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError(`kiln: ${op}: shapes ${formatShape(first.shape)} and ${formatShape(t.shape)} differ outside axis ${a} (${first.describe()}, ${t.describe()})`);
    }
    total += t.shape[a];
  }
  const shape = first.shape.slice();
  shape[a] = total;
  const out = emptyTensor(shape, first.dtype, first.deviceSpec);
  let start = 0;
  for (const t of tensors) {
    if (t.size > 0) {
      const dst = narrow(out, a, start, t.shape[a]);
      try {
        runInto('cast', t.dtype, [t], dst);
      } catch (e) {
        out.dispose();
        throw e;
      } finally {
        dst.dispose();
      }
    }
    start += t.shape[a];
  }
  return out;
}

/** Stacks tensors of one shape along a new axis (a copy). */
export function stack<D extends DType>(tensors: readonly Tensor<D>[], axis = 0): Tensor<D> {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) throw new ValueError('kiln: stack: expected a non-empty array of tensors');
  const a = normAxis('stack', axis, tensors[0].ndim + 1);
  const views = tensors.map((t) => unsqueeze(t, a));
  try {
    return concat(views, a);
  } finally {
    views.forEach((v) => v.dispose());
  }
}

/** A view with `shape` (NumPy broadcasting: size-1 and missing leading dims get stride 0). */
export function broadcastTo<D extends DType>(x: Tensor<D>, shape: readonly number[]): Tensor<D> {
  const op = 'broadcastTo';
  live(op, x);
  const target = checkShape(op, shape);
  const lead = target.length - x.ndim;
  if (lead < 0) throw new ShapeError(`kiln: ${op}: cannot broadcast ${x.describe()} to the lower-rank shape ${formatShape(target)}`);
  const strides = target.map((d, i) => {
    if (i < lead) return 0;
    const n = x.shape[i - lead];
    if (n === d) return n === 1 ? 0 : x.strides[i - lead];
    if (n === 1) return 0;
    throw new ShapeError(`kiln: ${op}: cannot broadcast ${x.describe()} to ${formatShape(target)}`);
  });
  return viewOf(x, op, target, strides, x.offset);
}

/** Inserts a size-1 dimension at `axis` (a view). */
export function unsqueeze<D extends DType>(x: Tensor<D>, axis: number): Tensor<D> {
  const op = 'unsqueeze';
  live(op, x);
  const a = normAxis(op, axis, x.ndim + 1);
  const shape = x.shape.slice();
  const strides = x.strides.slice();
  shape.splice(a, 0, 1);
  strides.splice(a, 0, a < x.ndim ? x.strides[a] * x.shape[a] : 1);
  return viewOf(x, op, shape, strides, x.offset);
}

/** Removes size-1 dimensions (all, or the given one, which must have size 1), as a view. */
export function squeeze<D extends DType>(x: Tensor<D>, axis?: number): Tensor<D> {
  const op = 'squeeze';
  live(op, x);
  const drop = new Set<number>();
  if (axis === undefined) {
    x.shape.forEach((d, i) => d === 1 && drop.add(i));
  } else {
    const a = normAxis(op, axis, x.ndim);
    if (x.shape[a] !== 1) throw new ShapeError(`kiln: ${op}: axis ${a} of ${x.describe()} has size ${x.shape[a]}, not 1`);
    drop.add(a);
  }
  const keep = x.shape.map((_, i) => i).filter((i) => !drop.has(i));
  return viewOf(x, op, keep.map((i) => x.shape[i]), keep.map((i) => x.strides[i]), x.offset);
}

/** The elements as a 1-D tensor (a view when contiguous). */
export function flatten<D extends DType>(x: Tensor<D>): Tensor<D> {
  return live('flatten', x).reshape([-1]);
}
