// The INT4 KV cache of FireQ's attention stage (specs/quant.md "Attention";
// native/include/kiln/quant_kv.h): one slot's keys and values as INT4 with an
// E4M3 scale per token, head and group along head_dim and a static per-head
// 2^e, in preallocated [batch, kvHeads, capacity, ...] buffers; new rows are
// quantized into them (quant_int4_kv) and attention reads them directly
// (attention_int4kv) -- 8x less memory than a float32 cache. CPU kernels.
import * as creation from '../creation';
import type { Device } from '../device';
import { ShapeError } from '../errors';
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
  device: Device;
}

/** One plan slot's INT4 keys and values (held by a kiln.nn.KVCache as an attachment). */
export class Int4KVSlot {
  readonly opts: Int4KVSlotOptions;
  private readonly buffers: { k: Tensor; ks: Tensor; v: Tensor; vs: Tensor; ke: Tensor; ve: Tensor };

  constructor(opts: Int4KVSlotOptions) {
    this.opts = opts;
    const { batch: b, kvHeads: h, headDim: d, capacity: c, groupSize: g, device } = opts;
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
    const s = k.shape[2];
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
