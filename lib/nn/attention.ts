// Causal self-attention with RoPE and grouped-query heads (the Llama block's attention).
import * as gnn from '../autograd/grad-nn';
import * as gviews from '../autograd/grad-views';
import * as creation from '../creation';
import { ShapeError, ValueError } from '../errors';
import { tidy } from '../lifetime';
import type { Tensor } from '../tensor';
import { Initializer, type InitOptions } from './init';
import type { KVCache } from './kv-cache';
import { Linear } from './layers';
import { Module } from './module';

export interface AttentionConfig extends InitOptions {
  dim: number;
  nHeads: number;
  /** Key/value heads (grouped-query when fewer than nHeads; default nHeads). */
  nKvHeads?: number;
  /** RoPE base (default 10000). */
  ropeTheta?: number;
  /** N(0, std^2) for wq, wk, wv and outStd for wo (default: PyTorch's Linear init). */
  std?: number;
  outStd?: number;
  init?: Initializer;
}

/**
 * x [B, S, dim] -> [B, S, dim]: q, k, v projections (no bias), RoPE on q and
 * k, causal fused attention, output projection. Positions default to 0..S-1.
 */
export class CausalSelfAttention extends Module {
  readonly wq: Linear;
  readonly wk: Linear;
  readonly wv: Linear;
  readonly wo: Linear;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly ropeTheta: number;

  constructor(cfg: AttentionConfig) {
    super();
    this.nHeads = cfg.nHeads;
    this.nKvHeads = cfg.nKvHeads ?? cfg.nHeads;
    if (!Number.isInteger(cfg.dim) || !Number.isInteger(this.nHeads) || this.nHeads < 1 || cfg.dim % this.nHeads !== 0) {
      throw new ValueError(`kiln: CausalSelfAttention: dim (${cfg.dim}) must be a multiple of nHeads (${cfg.nHeads})`);
    }
    if (!Number.isInteger(this.nKvHeads) || this.nKvHeads < 1 || this.nHeads % this.nKvHeads !== 0) {
      throw new ValueError(`kiln: CausalSelfAttention: nHeads (${this.nHeads}) must be a multiple of nKvHeads (${this.nKvHeads})`);
    }
    this.headDim = cfg.dim / this.nHeads;
    if (this.headDim % 2 !== 0) throw new ValueError(`kiln: CausalSelfAttention: the head dimension (${this.headDim}) must be even for RoPE`);
    this.ropeTheta = cfg.ropeTheta ?? 10000;
    const init = cfg.init ?? new Initializer(cfg);
    const kv = this.nKvHeads * this.headDim;
    this.wq = this.registerModule('wq', new Linear(cfg.dim, cfg.dim, { init, std: cfg.std, bias: false }));
    this.wk = this.registerModule('wk', new Linear(cfg.dim, kv, { init, std: cfg.std, bias: false }));
    this.wv = this.registerModule('wv', new Linear(cfg.dim, kv, { init, std: cfg.std, bias: false }));
    this.wo = this.registerModule('wo', new Linear(cfg.dim, cfg.dim, { init, std: cfg.outStd ?? cfg.std, bias: false }));
  }

  /**
   * With a cache, x holds the next tokens after cache.length cached ones: their
   * k and v go into the cache's `slot` and attention reads the whole prefix
   * (the causal mask aligns the queries with the last keys).
   */
  forward(x: Tensor, positions?: Tensor<'int32'>, cache?: { cache: KVCache; slot: number }): Tensor {
    if (x.ndim !== 3) throw new ShapeError(`kiln: CausalSelfAttention: x must be [batch, seq, dim], got ${x.describe()}`);
    const [b, s] = x.shape;
    return tidy(() => {
      const start = cache ? cache.cache.length : 0;
      const pos = positions ?? creation.arange(start, start + s, 1, { dtype: 'int32', device: x.device });
      // [B, S, H*hd] -> [B, H, S, hd] (a view)
      const heads = (t: Tensor, h: number) => gviews.transpose(t.reshape([b, s, h, this.headDim]), [0, 2, 1, 3]);
      const q = gnn.rope(heads(this.wq.forward(x), this.nHeads), pos, { theta: this.ropeTheta });
      const k = gnn.rope(heads(this.wk.forward(x), this.nKvHeads), pos, { theta: this.ropeTheta });
      const v = heads(this.wv.forward(x), this.nKvHeads);
      const kv = cache ? cache.cache.write(cache.slot, k, v) : { k, v };
      const o = gnn.attention(q, kv.k, kv.v, { causal: true });
      return this.wo.forward(gviews.transpose(o, [0, 2, 1, 3]).reshape([b, s, this.nHeads * this.headDim]));
    });
  }
}
