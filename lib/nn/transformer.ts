// TransformerBlock and TransformerLM: a Llama-style decoder (RMSNorm, RoPE,
// SwiGLU, optional grouped-query attention), pre-norm or Peri-LN.
import * as g from '../autograd/grad-elementwise';
import * as gnn from '../autograd/grad-nn';
import * as gred from '../autograd/grad-reduce';
import * as gviews from '../autograd/grad-views';
import type { Device } from '../device';
import type { DType } from '../dtype';
import { ShapeError, ValueError } from '../errors';
import { tidy } from '../lifetime';
import { Tensor as TensorClass, type Tensor } from '../tensor';
import { CausalSelfAttention } from './attention';
import { Initializer } from './init';
import { Embedding, Linear, RMSNorm, SwiGLU } from './layers';
import type { KVCache } from './kv-cache';
import { Module, ModuleList } from './module';

export interface TransformerConfig {
  vocabSize: number;
  dim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads (default nHeads; fewer = grouped-query attention). */
  nKvHeads?: number;
  /** SwiGLU hidden size (default: Llama's 2/3 * 4 * dim rounded up to a multiple of 32). */
  hiddenDim?: number;
  /** RMSNorm epsilon (default 1e-5). */
  normEps?: number;
  /** RoPE base (default 10000). */
  ropeTheta?: number;
  /** Use the embedding matrix as the output projection (default false). */
  tiedEmbeddings?: boolean;
  /**
   * Peri-LN ("Peri-LN: Revisiting Layer Normalization in the Transformer
   * Architecture"): normalize both the input and the output of each sublayer
   * before the residual add (default false: pre-norm).
   */
  periLN?: boolean;
  /** Std of the N(0, std^2) weight init (default 0.02); residual output projections use std / sqrt(2 nLayers). */
  initStd?: number;
  /** Seed of the initialization stream (default 0). */
  seed?: number;
  dtype?: DType;
  device?: Device;
}

/** Llama's feed-forward width: 2/3 * 4 * dim, rounded up to a multiple of `multiple`. */
export function defaultHiddenDim(dim: number, multiple = 32): number {
  const h = Math.floor((2 * 4 * dim) / 3);
  return multiple * Math.ceil(h / multiple);
}

/** x + attn(norm(x)); then h + mlp(norm(h)) (Peri-LN: x + norm_out(attn(norm_in(x))), ...). */
export class TransformerBlock extends Module {
  readonly attnNorm: RMSNorm;
  readonly attn: CausalSelfAttention;
  readonly mlpNorm: RMSNorm;
  readonly mlp: SwiGLU;
  readonly attnOutNorm: RMSNorm | null;
  readonly mlpOutNorm: RMSNorm | null;

  constructor(cfg: TransformerConfig, init: Initializer) {
    super();
    const eps = cfg.normEps ?? 1e-5;
    const std = cfg.initStd ?? 0.02;
    const outStd = std / Math.sqrt(2 * cfg.nLayers);
    this.attnNorm = this.registerModule('attnNorm', new RMSNorm(cfg.dim, eps, { init }));
    this.attn = this.registerModule(
      'attn',
      new CausalSelfAttention({ dim: cfg.dim, nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, ropeTheta: cfg.ropeTheta, std, outStd, init }),
    );
    this.attnOutNorm = cfg.periLN ? this.registerModule('attnOutNorm', new RMSNorm(cfg.dim, eps, { init })) : null;
    this.mlpNorm = this.registerModule('mlpNorm', new RMSNorm(cfg.dim, eps, { init }));
    this.mlp = this.registerModule('mlp', new SwiGLU(cfg.dim, cfg.hiddenDim ?? defaultHiddenDim(cfg.dim), { init, std, outStd }));
    this.mlpOutNorm = cfg.periLN ? this.registerModule('mlpOutNorm', new RMSNorm(cfg.dim, eps, { init })) : null;
  }

  forward(x: Tensor, positions?: Tensor<'int32'>, cache?: { cache: KVCache; slot: number }): Tensor {
    return tidy(() => {
      const a = this.attn.forward(this.attnNorm.forward(x), positions, cache);
      const h = g.add(x, this.attnOutNorm ? this.attnOutNorm.forward(a) : a);
      const m = this.mlp.forward(this.mlpNorm.forward(h));
      return g.add(h, this.mlpOutNorm ? this.mlpOutNorm.forward(m) : m);
    });
  }
}

export interface LMOutput {
  /** [batch, seq, vocab] */
  logits: Tensor;
  /** Mean cross entropy (float32 scalar) when targets were given. */
  loss?: Tensor<'float32'>;
}

export interface LMForwardOptions {
  /** int32 [batch, seq] next-token targets; the loss ignores ignoreIndex (-100). */
  targets?: Tensor<'int32'>;
  /** int32 positions [seq] or [batch, seq] (default 0..seq-1). */
  positions?: Tensor<'int32'>;
  /**
   * Layer indices to run, in order (default: all). For layer-skipping inference
   * (shared/specs/depth.md); the KV cache of generation is indexed by plan slot.
   */
  layers?: readonly number[];
  /**
   * Incremental decoding: tokens follow cache.length cached ones (positions
   * default to cache.length + 0..seq-1); slot j of the cache serves the j-th
   * layer of the plan. The cache advances by seq.
   */
  cache?: KVCache;
}

/**
 * A Llama-style language model: token embedding, nLayers TransformerBlocks,
 * final RMSNorm, output projection (or the tied embedding).
 * Init: every projection and the embedding N(0, initStd^2); attention and
 * feed-forward output projections N(0, (initStd / sqrt(2 nLayers))^2) (GPT-2);
 * norms ones.
 */
export class TransformerLM extends Module {
  readonly config: Readonly<TransformerConfig>;
  readonly embed: Embedding;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly norm: RMSNorm;
  readonly lmHead: Linear | null;

  constructor(config: TransformerConfig) {
    super();
    for (const k of ['vocabSize', 'dim', 'nLayers', 'nHeads'] as const) {
      if (!Number.isSafeInteger(config[k]) || config[k] < 1) throw new ValueError(`kiln: TransformerLM: ${k} must be a positive integer, got ${String(config[k])}`);
    }
    this.config = Object.freeze({ ...config });
    const init = new Initializer({ seed: config.seed ?? 0, dtype: config.dtype, device: config.device });
    const std = config.initStd ?? 0.02;
    this.embed = this.registerModule('embed', new Embedding(config.vocabSize, config.dim, { init, std }));
    this.blocks = this.registerModule('blocks', new ModuleList<TransformerBlock>());
    for (let i = 0; i < config.nLayers; ++i) this.blocks.push(new TransformerBlock(config, init));
    this.norm = this.registerModule('norm', new RMSNorm(config.dim, config.normEps ?? 1e-5, { init }));
    this.lmHead = config.tiedEmbeddings ? null : this.registerModule('lmHead', new Linear(config.dim, config.vocabSize, { init, std, bias: false }));
  }

  /** tokens int32 [batch, seq] -> logits [batch, seq, vocab] (and the loss given targets). */
  forward(tokens: Tensor<'int32'>, opts: LMForwardOptions = {}): LMOutput {
    return lmForward('TransformerLM', this, tokens, opts);
  }
}

/** The pieces of a Llama-style LM that lmForward runs (TransformerLM, quant.QuantizedTransformerLM). */
export interface LMParts {
  readonly embed: { forward(ids: Tensor<'int32'>): Tensor; readonly weight: Tensor };
  readonly blocks: { readonly length: number; at(i: number): { forward(h: Tensor, positions?: Tensor<'int32'>, cache?: { cache: KVCache; slot: number }): Tensor } };
  readonly norm: { forward(h: Tensor): Tensor };
  /** null: the output projection is the (tied) embedding. */
  readonly lmHead: { forward(h: Tensor): Tensor } | null;
}

/**
 * Embedding, the blocks of the layer plan (slot j of a KV cache serves the j-th
 * planned layer), final norm, output projection, and the mean cross entropy
 * given targets; the cache advances by the sequence length.
 */
export function lmForward(name: string, m: LMParts, tokens: Tensor<'int32'>, opts: LMForwardOptions = {}): LMOutput {
  if (!(tokens instanceof TensorClass) || tokens.ndim !== 2 || tokens.dtype !== 'int32') {
    throw new ShapeError(`kiln: ${name}: tokens must be int32 [batch, seq], got ${tokens instanceof TensorClass ? tokens.describe() : String(tokens)}`);
  }
  const n = m.blocks.length;
  const plan = opts.layers ?? Array.from({ length: n }, (_, i) => i);
  for (const i of plan) {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new ValueError(`kiln: ${name}: layer index ${String(i)} is out of range (0..${n - 1})`);
  }
  const cache = opts.cache;
  if (cache && cache.slots < plan.length) throw new ValueError(`kiln: ${name}: the KV cache has ${cache.slots} slots for a plan of ${plan.length} layers`);
  const out = tidy(() => {
    let h = m.embed.forward(tokens);
    plan.forEach((i, slot) => {
      h = m.blocks.at(i).forward(h, opts.positions, cache ? { cache, slot } : undefined);
    });
    const hn = m.norm.forward(h);
    const logits = m.lmHead ? m.lmHead.forward(hn) : gred.matmul(hn, gviews.transpose(m.embed.weight));
    if (opts.targets === undefined) return { logits };
    return { logits, loss: gnn.crossEntropy(logits, opts.targets) };
  });
  cache?.advance(tokens.shape[1]);
  return out;
}
