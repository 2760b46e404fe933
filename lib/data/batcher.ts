// [batch, ctx] int32 batches of next-token pairs from one token array. The
// array is cut into windows of ctx + 1 tokens starting every ctx tokens
// (x = window[0..ctx), y = window[1..ctx]); each epoch visits every window once
// in an order shuffled from (seed, epoch), so a cursor (windows consumed) is
// the whole state: restore() resumes exactly.
import type { Device } from '../device';
import { ValueError } from '../errors';
import { tensor } from '../creation';
import { mixSeed, uint32Stream } from '../prng';
import type { Tensor } from '../tensor';

export interface BatcherOptions {
  batchSize: number;
  /** Tokens per row. */
  ctx: number;
  /** Shuffle seed (default 0). */
  seed?: number;
  /** Visit windows in a seeded random order per epoch (default true); false: in order. */
  shuffle?: boolean;
  device?: Device;
}

export interface BatcherState {
  seed: number;
  shuffle: boolean;
  /** Windows consumed since the start (epoch = floor(cursor / windows)). */
  cursor: number;
  windows: number;
}

export interface Batch {
  x: Tensor<'int32'>;
  y: Tensor<'int32'>;
}

export class TokenBatcher {
  readonly batchSize: number;
  readonly ctx: number;
  readonly seed: number;
  readonly shuffle: boolean;
  /** Windows per epoch. */
  readonly windows: number;
  private readonly tokens: Int32Array;
  private readonly device: Device | undefined;
  private cursor = 0;
  private orderEpoch = -1;
  private order: Uint32Array = new Uint32Array(0);

  constructor(tokens: Int32Array | readonly number[], opts: BatcherOptions) {
    const op = 'TokenBatcher';
    this.tokens = tokens instanceof Int32Array ? tokens : Int32Array.from(tokens);
    const { batchSize, ctx } = opts ?? ({} as BatcherOptions);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ValueError(`kiln: ${op}: batchSize must be a positive integer, got ${String(batchSize)}`);
    if (!Number.isInteger(ctx) || ctx < 1) throw new ValueError(`kiln: ${op}: ctx must be a positive integer, got ${String(ctx)}`);
    this.seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) throw new ValueError(`kiln: ${op}: seed must be a non-negative safe integer, got ${String(opts.seed)}`);
    this.batchSize = batchSize;
    this.ctx = ctx;
    this.shuffle = opts.shuffle ?? true;
    this.device = opts.device;
    this.windows = Math.floor((this.tokens.length - 1) / ctx);
    if (this.windows < 1) throw new ValueError(`kiln: ${op}: ${this.tokens.length} tokens are fewer than one window of ctx + 1 = ${ctx + 1}`);
  }

  /** Full epochs completed. */
  get epoch(): number {
    return Math.floor(this.cursor / this.windows);
  }

  /** Batches that cover one epoch (the last may run into the next epoch). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.windows / this.batchSize);
  }

  private windowAt(g: number): number {
    const epoch = Math.floor(g / this.windows);
    if (!this.shuffle) return g % this.windows;
    if (epoch !== this.orderEpoch) {
      const order = new Uint32Array(this.windows);
      for (let i = 0; i < order.length; ++i) order[i] = i;
      const next = uint32Stream(mixSeed(this.seed, epoch));
      for (let i = order.length - 1; i > 0; --i) {
        const j = next() % (i + 1); // modulo bias < 2^-20 for any realistic window count
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      this.order = order;
      this.orderEpoch = epoch;
    }
    return this.order[g % this.windows];
  }

  /** The next batch's token rows (advances the cursor). */
  nextArrays(): { x: Int32Array; y: Int32Array } {
    const { batchSize: b, ctx } = this;
    const x = new Int32Array(b * ctx);
    const y = new Int32Array(b * ctx);
    for (let r = 0; r < b; ++r) {
      const start = this.windowAt(this.cursor++) * ctx;
      x.set(this.tokens.subarray(start, start + ctx), r * ctx);
      y.set(this.tokens.subarray(start + 1, start + ctx + 1), r * ctx);
    }
    return { x, y };
  }

  /** The next batch as int32 tensors [batchSize, ctx] (advances the cursor). */
  next(): Batch {
    const { x, y } = this.nextArrays();
    const shape = [this.batchSize, this.ctx];
    return { x: tensor(x, shape, { dtype: 'int32', device: this.device }), y: tensor(y, shape, { dtype: 'int32', device: this.device }) };
  }

  state(): BatcherState {
    return { seed: this.seed, shuffle: this.shuffle, cursor: this.cursor, windows: this.windows };
  }

  /** Continues from a state() of a batcher over the same tokens and options. */
  restore(state: BatcherState): void {
    const op = 'TokenBatcher.restore';
    if (state === null || typeof state !== 'object') throw new ValueError(`kiln: ${op}: expected a state object`);
    if (state.seed !== this.seed || state.shuffle !== this.shuffle || state.windows !== this.windows) {
      throw new ValueError(`kiln: ${op}: the state is for seed ${state.seed}, shuffle ${state.shuffle}, ${state.windows} windows; this batcher has seed ${this.seed}, shuffle ${this.shuffle}, ${this.windows} windows`);
    }
    if (!Number.isSafeInteger(state.cursor) || state.cursor < 0) throw new ValueError(`kiln: ${op}: cursor must be a non-negative integer, got ${String(state.cursor)}`);
    this.cursor = state.cursor;
  }
}
