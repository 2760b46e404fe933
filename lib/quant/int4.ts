// INT4 weights in the canonical layout (specs/quant.md "INT4 weights"):
// q in [-8, 7], [N, K] row-major, two per byte with even k in the low nibble,
// K padded to a multiple of 128 with q = 0.
import * as creation from '../creation';
import { DTypeError, ShapeError, ValueError } from '../errors';
import { Tensor } from '../tensor';

/** K is padded to a multiple of this. */
export const K_ALIGN = 128;

/** K rounded up to a multiple of 128 (the packed length). */
export function paddedK(k: number): number {
  return Math.ceil(k / K_ALIGN) * K_ALIGN;
}

/** @internal An options argument: an object, or null / undefined for none. */
export function options<T extends object>(op: string, o: T | null | undefined): Partial<T> {
  if (o === undefined || o === null) return {};
  if (typeof o !== 'object' || Array.isArray(o)) throw new ValueError(`kiln: ${op}: options must be an object, got ${JSON.stringify(o)}`);
  return o;
}

export function checkTensor(op: string, t: unknown, role: string): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new ValueError(`kiln: ${op}: ${role} must be a Tensor, got ${t === null ? 'null' : typeof t}`);
  t.storage(op);
}

/**
 * Packs int8 q [N, K] (values in [-8, 7]) into the canonical uint8 [N, Kp/2]
 * layout (Kp = K rounded up to 128; q = 0 past K), on q's device.
 */
export function packInt4(q: Tensor<'int8'>): Tensor<'uint8'> {
  const op = 'packInt4';
  checkTensor(op, q, 'q');
  if (q.dtype !== 'int8') throw new DTypeError(`kiln: ${op}: q must be int8, got ${q.describe()}`);
  if (q.ndim !== 2) throw new ShapeError(`kiln: ${op}: q must be 2-D [N, K], got ${q.describe()}`);
  const [n, k] = q.shape;
  const kp = paddedK(k);
  const values = q.dataSync() as Int8Array;
  const out = new Uint8Array((n * kp) / 2);
  for (let r = 0; r < n; ++r) {
    for (let c = 0; c < k; ++c) {
      const v = values[r * k + c];
      if (v < -8 || v > 7) throw new ValueError(`kiln: ${op}: q[${r}, ${c}] = ${v} is outside [-8, 7] (${q.describe()})`);
      const at = (r * kp + c) >> 1;
      out[at] |= (v & 0xf) << ((c & 1) * 4);
    }
  }
  return creation.tensor(out, [n, kp / 2], { dtype: 'uint8', device: q.device });
}

/** Unpacks uint8 [N, Kp/2] into int8 q [N, K] (K defaults to Kp; K <= Kp), on the input's device. */
export function unpackInt4(packed: Tensor<'uint8'>, k?: number): Tensor<'int8'> {
  const op = 'unpackInt4';
  checkTensor(op, packed, 'packed');
  if (packed.dtype !== 'uint8') throw new DTypeError(`kiln: ${op}: packed must be uint8, got ${packed.describe()}`);
  if (packed.ndim !== 2) throw new ShapeError(`kiln: ${op}: packed must be 2-D [N, Kp/2], got ${packed.describe()}`);
  const [n, half] = packed.shape;
  const kp = half * 2;
  const kk = k ?? kp;
  if (!Number.isInteger(kk) || kk < 0 || kk > kp) {
    throw new ValueError(`kiln: ${op}: k must be an integer in [0, ${kp}] for ${packed.describe()}, got ${String(k)}`);
  }
  const bytes = packed.dataSync() as Uint8Array;
  const out = new Int8Array(n * kk);
  for (let r = 0; r < n; ++r) {
    for (let c = 0; c < kk; ++c) {
      const nib = (bytes[r * half + (c >> 1)] >> ((c & 1) * 4)) & 0xf;
      out[r * kk + c] = nib >= 8 ? nib - 16 : nib;
    }
  }
  return creation.tensor(out, [n, kk], { dtype: 'int8', device: packed.device });
}
