// Shape arithmetic: validation, row-major strides, NumPy broadcasting.
import { ShapeError } from './errors';

/** The most dimensions a tensor may have (native/include/kiln/view.h kMaxDims). */
export const MAX_DIMS = 16;

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Checks every dimension is a non-negative safe integer; returns a copy. */
export function checkShape(op: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) {
    throw new ShapeError(`kiln: ${op}: shape must be an array of non-negative integers, got ${String(shape)}`);
  }
  if (shape.length > MAX_DIMS) {
    throw new ShapeError(`kiln: ${op}: shape ${formatShape(shape)} has ${shape.length} dimensions; at most ${MAX_DIMS} are supported`);
  }
  let size = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError(
        `kiln: ${op}: shape [${shape.map(String).join(', ')}] has an invalid dimension ${String(d)} (dimensions must be non-negative integers)`,
      );
    }
    size *= d;
  }
  if (!Number.isSafeInteger(size)) {
    throw new ShapeError(`kiln: ${op}: shape ${formatShape(shape)} has too many elements (${size})`);
  }
  return shape.slice();
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; --i) {
    if (shape[i] !== 1 && strides[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** NumPy broadcasting of two shapes, or null when they are incompatible. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; ++i) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da !== db && da !== 1 && db !== 1) return null;
    out[i] = da === 1 ? db : da;
  }
  return out;
}
