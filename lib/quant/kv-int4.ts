// The INT4 KV cache of FireQ's attention stage (specs/quant.md "Attention";
// native/include/kiln/quant_kv.h): one slot's keys and values as INT4 with an
// E4M3 scale per token, head and group along head_dim and a static per-head
// 2^e, in preallocated [batch, kvHeads, capacity, ...] buffers; new rows are
// quantized into them (quant_int4_kv) and attention reads them directly
// (attention_int4kv) -- 8x less memory than a float32 cache. CPU kernels.
import * as creation from '../creation';
import { resolveDevice, type Device } from '../device';
import { ShapeError, ValueError } from '../errors';
import { checkTensor, options } from './int4';
import { keep } from '../lifetime';
import * as views from '../ops/views';
import { emptyTensor, type Tensor } from '../tensor';
import { runKernel } from './run';

export interface Int4KVSlotOptions {
  batch: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  /** Group size of the scales along headDim (divides it). */
  groupSize: number;
  /** Per kv head: e of the static 2^e applied to K (after RoPE) and to V before INT4. */
  kExponents: readonly number[];
  vExponents: readonly number[];
  /** Default 'cpu' (the INT4 KV kernels are CPU kernels). */
  device?: Device;
}

/** One plan slot's INT4 keys and values (held by a kiln.nn.KVCache as an attachment). */
export class Int4KVSlot {
  readonly opts: Required<Int4KVSlotOptions>;
  private readonly buffers: { k: Tensor; ks: Tensor; v: Tensor; vs: Tensor; ke: Tensor; ve: Tensor };

  constructor(opts: Int4KVSlotOptions) {
    const op = 'Int4KVSlot';
    const o = options(op, opts);
    for (const key of ['batch', 'kvHeads', 'headDim', 'capacity', 'groupSize'] as const) {
      const v = o[key];
      if (!Number.isSafeInteger(v) || (v as number) < 1) throw new ValueError(`kiln: ${op}: ${key} must be a positive integer, got ${String(v)}`);
    }
    const { batch: b, kvHeads: h, headDim: d, capacity: c, groupSize: g } = o as Int4KVSlotOptions;
    if (d % 2 !== 0) throw new ValueError(`kiln: ${op}: headDim must be even (two INT4 values per byte), got ${d}`);
    if (d % g !== 0) throw new ValueError(`kiln: ${op}: groupSize ${g} must divide headDim ${d}`);
    for (const key of ['kExponents', 'vExponents'] as const) {
      const e = o[key];
      if (!Array.isArray(e) || e.length !== h || !e.every((x) => Number.isInteger(x) && x >= 0 && x <= 14)) {
        throw new ValueError(`kiln: ${op}: ${key} must hold ${h} integers in [0, 14] (one 2^e per kv head), got ${JSON.stringify(e)}`);
      }
    }
    const device = resolveDevice(op, o.device).name;
    this.opts = { ...(o as Int4KVSlotOptions), device };
    const made: Tensor[] = [];
    const make = (t: Tensor) => {
      made.push(t);
      return keep(t); // outlives the tidy() of the forward pass that allocates it
    };
    try {
      this.buffers = {
        k: make(creation.zeros([b, h, c, d / 2], { dtype: 'uint8', device })),
        ks: make(creation.zeros([b, h, c, d / g], { dtype: 'float8_e4m3', device })),
        v: make(creation.zeros([b, h, c, d / 2], { dtype: 'uint8', device })),
        vs: make(creation.zeros([b, h, c, d / g], { dtype: 'float8_e4m3', device })),
        ke: make(creation.tensor(Int8Array.from(opts.kExponents), [h], { dtype: 'int8', device })),
        ve: make(creation.tensor(Int8Array.from(opts.vExponents), [h], { dtype: 'int8', device })),
      };
    } catch (e) {
      made.forEach((t) => t.dispose());
      throw e;
    }
  }

  /** Bytes held (packed values, scales). */
  get bytes(): number {
    const { k, ks, v, vs } = this.buffers;
    return k.size + ks.size + v.size + vs.size;
  }

  private check(what: string, t: Tensor, seq: number): void {
    const { batch, kvHeads, headDim } = this.opts;
    if (t.ndim !== 4 || t.shape[0] !== batch || t.shape[1] !== kvHeads || t.shape[2] !== seq || t.shape[3] !== headDim) {
      throw new ShapeError(`kiln: Int4KVSlot: ${what} must be [${batch}, ${kvHeads}, ${seq}, ${headDim}], got ${t.describe()}`);
    }
  }

  /** Quantizes k, v [B, Hkv, s, hd] (float) into rows start .. start + s. */
  append(start: number, k: Tensor, v: Tensor): void {
    checkTensor('Int4KVSlot.append', k, 'k');
    checkTensor('Int4KVSlot.append', v, 'v');
    if (!Number.isSafeInteger(start) || start < 0) throw new ValueError(`kiln: Int4KVSlot.append: start must be a non-negative integer, got ${String(start)}`);
    const s = k.ndim === 4 ? k.shape[2] : -1;
    this.check('k', k, s);
    this.check('v', v, s);
    if (start + s > this.opts.capacity) throw new ShapeError(`kiln: Int4KVSlot: ${start + s} tokens exceed the capacity of ${this.opts.capacity}`);
    const { k: kb, ks, v: vb, vs, ke, ve } = this.buffers;
    for (const [x, packed, scales, e] of [[k, kb, ks, ke], [v, vb, vs, ve]] as const) {
      const pw = views.narrow(packed, 2, start, s);
      const sw = views.narrow(scales, 2, start, s);
      try {
        runKernel('quant_int4_kv', x.dtype, [x, e], [pw, sw], [this.opts.groupSize]);
      } finally {
        pw.dispose();
        sw.dispose();
      }
    }
  }

  /**
   * Causal attention of q [B, Hq, Sq, hd] (float32; the last Sq of `length`
   * positions) over the first `length` cached rows: o [B, Hq, Sq, hd] float32.
   */
  attend(q: Tensor, length: number, scale = 1 / Math.sqrt(this.opts.headDim)): Tensor {
    checkTensor('Int4KVSlot.attend', q, 'q');
    if (!Number.isSafeInteger(length) || length < 1 || length > this.opts.capacity) {
      throw new ValueError(`kiln: Int4KVSlot.attend: length must be an integer in [1, ${this.opts.capacity}], got ${String(length)}`);
    }
    if (q.ndim !== 4) throw new ShapeError(`kiln: Int4KVSlot.attend: q must be [batch, heads, seq, headDim], got ${q.describe()}`);
    const { k: kb, ks, v: vb, vs, ke, ve } = this.buffers;
    const ws = [kb, ks, vb, vs].map((t) => views.narrow(t, 2, 0, length));
    const o = emptyTensor(q.shape, 'float32', q.deviceSpec);
    try {
      runKernel('attention_int4kv', 'float32', [q, ws[0], ws[1], ke, ws[2], ws[3], ve], [o], [1], [scale]);
    } finally {
      ws.forEach((t) => t.dispose());
    }
    return o;
  }

  dispose(): void {
    Object.values(this.buffers).forEach((t) => t.dispose());
  }
}
