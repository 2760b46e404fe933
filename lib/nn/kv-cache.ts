// The key/value cache of incremental decoding, indexed by plan slot (not layer
// id: shared/specs/depth.md "Layer plan"): slot j holds the keys and values of
// the j-th layer the plan runs, so a repeated layer gets one slot per
// occurrence and a skipped layer none. Each slot is one preallocated
// [batch, kvHeads, capacity, headDim] buffer per k and v; a step writes its new
// rows into it and attention reads the filled prefix (views, no copies).
import { noGrad } from '../autograd/mode';
import * as creation from '../creation';
import type { Device } from '../device';
import type { DType } from '../dtype';
import { ShapeError, ValueError } from '../errors';
import { keep } from '../lifetime';
import * as views from '../ops/views';
import type { Tensor } from '../tensor';

export interface KVCacheOptions {
  /** Plan slots (the plan's length). */
  slots: number;
  /** Most tokens the cache holds (prompt + generated). */
  capacity: number;
}

export class KVCache {
  readonly slots: number;
  readonly capacity: number;
  /** Tokens cached so far (the position of the next token). */
  length = 0;
  private readonly k: (Tensor | null)[];
  private readonly v: (Tensor | null)[];
  private readonly attached: ({ dispose(): void } | null)[];

  constructor(opts: KVCacheOptions) {
    if (!Number.isSafeInteger(opts?.slots) || opts.slots < 1) throw new ValueError(`kiln: KVCache: slots must be a positive integer, got ${String(opts?.slots)}`);
    if (!Number.isSafeInteger(opts.capacity) || opts.capacity < 1) throw new ValueError(`kiln: KVCache: capacity must be a positive integer, got ${String(opts.capacity)}`);
    this.slots = opts.slots;
    this.capacity = opts.capacity;
    this.k = new Array<Tensor | null>(opts.slots).fill(null);
    this.v = new Array<Tensor | null>(opts.slots).fill(null);
    this.attached = new Array<{ dispose(): void } | null>(opts.slots).fill(null);
  }

  /**
   * A slot's storage in another form (kiln.quant's INT4 keys and values): made
   * by `make` on the slot's first use, disposed with the cache. The caller
   * writes and reads it; the cache's length and advance() apply as for write().
   */
  attachment<T extends { dispose(): void }>(slot: number, make: () => T): T {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new ValueError(`kiln: KVCache: slot ${String(slot)} is out of range (0..${this.slots - 1})`);
    const have = this.attached[slot];
    if (have !== null) return have as T;
    const made = make();
    this.attached[slot] = made;
    return made;
  }

  /**
   * Writes k, v [B, Hkv, s, hd] of the next s tokens into `slot` and returns the
   * cached prefix views [B, Hkv, length + s, hd] (valid until the next write).
   */
  write(slot: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new ValueError(`kiln: KVCache: slot ${String(slot)} is out of range (0..${this.slots - 1})`);
    if (k.ndim !== 4 || v.ndim !== 4) throw new ShapeError(`kiln: KVCache: k and v must be [batch, kvHeads, seq, headDim], got ${k.describe()} and ${v.describe()}`);
    const [b, h, s, d] = k.shape;
    const end = this.length + s;
    if (end > this.capacity) throw new ValueError(`kiln: KVCache: ${end} tokens exceed the capacity of ${this.capacity}`);
    const buf = (t: Tensor, have: Tensor | null): Tensor => {
      if (have !== null) {
        const [hb, hh, , hd] = have.shape;
        if (hb !== b || hh !== h || hd !== d || have.dtype !== t.dtype) throw new ShapeError(`kiln: KVCache: slot ${slot} holds ${have.describe()}, cannot take ${t.describe()}`);
        return have;
      }
      // kept: the cache outlives the tidy() of the forward pass that allocates it
      return keep(creation.zeros([b, h, this.capacity, d], { dtype: t.dtype as DType, device: t.device as Device }));
    };
    const kb = (this.k[slot] = buf(k, this.k[slot]));
    const vb = (this.v[slot] = buf(v, this.v[slot]));
    noGrad(() => {
      for (const [dst, src] of [[kb, k], [vb, v]] as const) {
        const rows = views.narrow(dst, 2, this.length, s);
        try {
          rows.copy_(src);
        } finally {
          rows.dispose();
        }
      }
    });
    return { k: views.narrow(kb, 2, 0, end), v: views.narrow(vb, 2, 0, end) };
  }

  /** Marks s more tokens as cached (after every slot was written for them). */
  advance(s: number): void {
    this.length += s;
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v, ...this.attached]) t?.dispose();
    this.k.fill(null);
    this.v.fill(null);
    this.attached.fill(null);
    this.length = 0;
  }
}
