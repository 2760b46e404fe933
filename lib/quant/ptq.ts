// Post-training quantization of a TransformerLM (issue 8 item 5, specs/quant.md):
// calibration statistics (per-input-channel max |x| of every linear layer's
// input), FireQ channel-wise smoothing folded offline into the previous op
// (RMSNorm gain for wq/wk/wv and w1/w3, wv's rows for wo, w3's rows for w2,
// the final norm for the head), then every linear layer as an INT4
// QuantizedLinear (E4M3 group scales, per-tensor 2^e chosen by the quantizer)
// with FP8 per-token activations. With `attention`, FireQ's second stage:
// RoPE-aware pre-scaling folded into W_q/W_k, FP8 queries and an INT4 KV cache
// with a static per-head 2^e (emulated: rounded values, float32 attention).
// The float model is only read.
import * as g from '../autograd/grad-elementwise';
import * as gnn from '../autograd/grad-nn';
import * as gviews from '../autograd/grad-views';
import { noGrad } from '../autograd/mode';
import * as creation from '../creation';
import { ShapeError, ValueError } from '../errors';
import { tidy } from '../lifetime';
import type { KVCache } from '../nn/kv-cache';
import { Embedding, Linear, RMSNorm } from '../nn/layers';
import { Module, ModuleList } from '../nn/module';
import { lmForward, TransformerLM, type LMForwardOptions, type LMOutput, type TransformerConfig } from '../nn/transformer';
import { Tensor } from '../tensor';
import { dequantizeActivationFp8, quantizeActivationFp8 } from './activation';
import { options } from './int4';
import { Int4KVSlot } from './kv-int4';
import { QuantizedLinear } from './linear';

export interface QuantizeModelOptions {
  /** Weights per E4M3 group scale along K (default 128; 'channel' for one per row). */
  groupSize?: number | 'channel';
  /** Fold channel-wise smoothing into the previous op (default true). */
  smooth?: boolean;
  /**
   * SmoothQuant migration strength in [0, 1] (default 0.5):
   * lambda_j = max|x_j|^alpha / max|W[:, j]|^(1 - alpha) over the layers sharing the input.
   */
  alpha?: number;
  /** Quantize the output projection too (default false: it stays float, tied or not). */
  quantizeHead?: boolean;
  /**
   * Quantize the weights (default true). false builds the smoothed float model
   * (float Linear layers with the smoothing folded in): it computes the same
   * function as the original up to float rounding, which is how the folding is tested.
   */
  quantizeWeights?: boolean;
  /**
   * FireQ's attention stage (default false): queries rounded to FP8 (E4M3,
   * dynamic scale per token and head) and keys/values to INT4 as an INT4 KV
   * cache holds them (per token and head, one E4M3 scale per group of
   * kvGroupSize along head_dim, a static per-head 2^e from calibration applied
   * to K after RoPE and to V). Incremental decoding (kiln.nn.generate) on the
   * CPU stores K/V in a real INT4 cache (kvCache, default 'int4': 8x smaller
   * than float32) and attention reads it directly; a full forward pass, and
   * CUDA, use the same rounded values in float32.
   */
  attention?: boolean;
  /** The KV cache of incremental decoding with attention: 'int4' (default; CPU) or 'float'. */
  kvCache?: 'int4' | 'float';
  /**
   * RoPE-aware pre-scaling (default: the value of attention): per kv channel
   * mu = max|k|^a / max|q|^(1-a) (a = alpha, both channels of a RoPE pair
   * (i, i + headDim/2) sharing one mu, the query heads of a GQA group sharing
   * their kv head's), folded into W_q's rows (x mu) and W_k's rows (/ mu):
   * q . k and therefore the model's function are unchanged, K's outlier
   * channels move into the FP8 queries.
   */
  ropeScaling?: boolean;
  /** Group size of the INT4 KV scales along head_dim (default headDim; must divide it). */
  kvGroupSize?: number;
}

/** Per linear layer: the per-tensor exponent e (weight scale 2^e) and the smoothing factors' range. */
/** The attention-side settings of one block (quantizeModel's attention option). */
export interface AttentionQuantInfo {
  /** Round queries to FP8 per token and head. */
  fp8Queries: boolean;
  /** Per kv head: e of the static 2^e applied to K after RoPE before INT4 (null: K and V not quantized). */
  kExponents: number[] | null;
  vExponents: number[] | null;
  kvGroupSize: number;
  /** Incremental decoding on the CPU keeps K/V in a real INT4 cache (else a float cache of the rounded values). */
  int4Cache: boolean;
  /** Range of the RoPE-aware pre-scale mu folded into W_q/W_k (1, 1 without it). */
  muMin: number;
  muMax: number;
}

export interface QuantizedLayerInfo {
  name: string;
  /** e of the per-tensor 2^e (null for a float layer). */
  exponent: number | null;
  /** min and max of lambda over the input channels (1, 1 without smoothing). */
  lambdaMin: number;
  lambdaMax: number;
}

// What a block's forward needs: the float TransformerBlock and QuantizedBlock both fit.
interface Fwd {
  forward(x: Tensor): Tensor;
}
interface BlockLike {
  attnNorm: Fwd;
  attnOutNorm: Fwd | null;
  mlpNorm: Fwd;
  mlpOutNorm: Fwd | null;
  attn: { wq: Fwd; wk: Fwd; wv: Fwd; wo: Fwd; nHeads: number; nKvHeads: number; headDim: number; ropeTheta: number; quant?: AttentionQuantInfo | null };
  mlp: { w1: Fwd; w2: Fwd; w3: Fwd };
}
type Site = 'qkv' | 'o' | 'w13' | 'w2' | 'q' | 'k' | 'v';
type Observe = (site: Site, x: Tensor) => void;

/** E4M3 rounding of a finite v >= 0 (RNE, subnormals, saturating at 448), in float64 (exact here). */
function e4m3(v: number): number {
  if (!(v > 0)) return 0;
  const step = v < 2 ** -6 ? 2 ** -9 : 2 ** (Math.floor(Math.log2(v)) - 3);
  const x = v / step;
  const f = Math.floor(x);
  const d = x - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  return Math.min(448, r * step);
}

function rne(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/**
 * x [B, H, S, hd] as an INT4 KV cache stores it: per (b, h, s) and group of G
 * along hd, with t = 2^e[h]: s_g = max(e4m3(amax_g t / 7), 2^-9),
 * q = clamp(rne(fl32(x t) / s_g), -8, 7), value e4m3(q s_g) / t (the weight recipe of specs/quant.md).
 */
function fakeInt4Kv(x: Tensor, exps: readonly number[], G: number): Tensor {
  const [b, h, s, d] = x.shape;
  const v = noGrad(() => tidy(() => Float32Array.from(x.to('cpu').cast('float32').dataSync() as Float32Array)));
  const out = new Float32Array(v.length);
  for (let row = 0; row < b * h * s; ++row) {
    const t = 2 ** exps[Math.floor(row / s) % h];
    for (let g0 = 0; g0 < d; g0 += G) {
      const o = row * d + g0;
      let amax = 0;
      for (let j = 0; j < G; ++j) amax = Math.max(amax, Math.abs(v[o + j]));
      const sc = Math.max(e4m3(Math.fround(Math.fround(amax * t) / 7)), 2 ** -9);
      for (let j = 0; j < G; ++j) {
        const q = Math.min(7, Math.max(-8, rne(Math.fround(Math.fround(v[o + j] * t) / sc))));
        out[o + j] = (Math.sign(q) * e4m3(Math.abs(q) * sc)) / t;
      }
    }
  }
  return creation.tensor(out, [b, h, s, d], { dtype: 'float32', device: x.device }).cast(x.dtype);
}

/** x rounded to FP8 with a dynamic scale per row of the last dimension (specs/quant.md "FP8 activations"). */
function fakeFp8(x: Tensor): Tensor {
  const { values, scales } = quantizeActivationFp8(x.cast('float32'));
  try {
    return dequantizeActivationFp8(values, scales).cast(x.dtype);
  } finally {
    values.dispose();
    scales.dispose();
  }
}

/** The Llama block (transformer.ts + attention.ts), with optional observation of the linear inputs. */
function blockForward(blk: BlockLike, x: Tensor, positions?: Tensor<'int32'>, cache?: { cache: KVCache; slot: number }, observe?: Observe): Tensor {
  if (x.ndim !== 3) throw new ShapeError(`kiln: quantized block: x must be [batch, seq, dim], got ${x.describe()}`);
  const [b, s] = x.shape;
  const at = blk.attn;
  return tidy(() => {
    const xn = blk.attnNorm.forward(x);
    observe?.('qkv', xn);
    const start = cache ? cache.cache.length : 0;
    const pos = positions ?? creation.arange(start, start + s, 1, { dtype: 'int32', device: x.device });
    const heads = (t: Tensor, h: number) => gviews.transpose(t.reshape([b, s, h, at.headDim]), [0, 2, 1, 3]);
    const qIn = at.wq.forward(xn);
    const kIn = at.wk.forward(xn);
    const vIn = at.wv.forward(xn);
    observe?.('q', qIn);
    observe?.('k', kIn);
    observe?.('v', vIn);
    let q = gnn.rope(heads(qIn, at.nHeads), pos, { theta: at.ropeTheta });
    let k = gnn.rope(heads(kIn, at.nKvHeads), pos, { theta: at.ropeTheta });
    let v = heads(vIn, at.nKvHeads);
    const aq = at.quant;
    if (aq?.fp8Queries) q = fakeFp8(q);
    let heads4: Tensor;
    const kExps = aq?.kExponents, vExps = aq?.vExponents;
    if (cache && aq?.int4Cache && kExps && vExps && x.device === 'cpu') {
      // a real INT4 cache: the new rows quantized into it, attention reading INT4
      const c = cache.cache;
      const slot = c.attachment(cache.slot, () => new Int4KVSlot({ batch: b, kvHeads: at.nKvHeads, headDim: at.headDim, capacity: c.capacity, groupSize: aq.kvGroupSize, kExponents: kExps, vExponents: vExps, device: x.device }));
      slot.append(c.length, k, v);
      heads4 = slot.attend(q.dtype === 'float32' ? q : q.cast('float32'), c.length + s).cast(q.dtype);
    } else {
      // the same rounding emulated on float K/V (no cache, or a float cache)
      if (kExps) k = fakeInt4Kv(k, kExps, aq!.kvGroupSize);
      if (vExps) v = fakeInt4Kv(v, vExps, aq!.kvGroupSize);
      const kv = cache ? cache.cache.write(cache.slot, k, v) : { k, v };
      heads4 = gnn.attention(q, kv.k, kv.v, { causal: true });
    }
    const o = gviews.transpose(heads4, [0, 2, 1, 3]).reshape([b, s, at.nHeads * at.headDim]);
    observe?.('o', o);
    const a = at.wo.forward(o);
    const h = g.add(x, blk.attnOutNorm ? blk.attnOutNorm.forward(a) : a);
    const hn = blk.mlpNorm.forward(h);
    observe?.('w13', hn);
    const u = g.mul(g.silu(blk.mlp.w1.forward(hn)), blk.mlp.w3.forward(hn));
    observe?.('w2', u);
    const m = blk.mlp.w2.forward(u);
    return g.add(h, blk.mlpOutNorm ? blk.mlpOutNorm.forward(m) : m);
  });
}

export class QuantizedAttention extends Module {
  constructor(
    readonly wq: Fwd & Module,
    readonly wk: Fwd & Module,
    readonly wv: Fwd & Module,
    readonly wo: Fwd & Module,
    readonly nHeads: number,
    readonly nKvHeads: number,
    readonly headDim: number,
    readonly ropeTheta: number,
    readonly quant: AttentionQuantInfo | null = null,
  ) {
    super();
    for (const [n, m] of Object.entries({ wq, wk, wv, wo })) this.registerModule(n, m);
  }
}

export class QuantizedMLP extends Module {
  constructor(readonly w1: Fwd & Module, readonly w2: Fwd & Module, readonly w3: Fwd & Module) {
    super();
    for (const [n, m] of Object.entries({ w1, w2, w3 })) this.registerModule(n, m);
  }
}

export class QuantizedBlock extends Module {
  constructor(
    readonly attnNorm: RMSNorm,
    readonly attn: QuantizedAttention,
    readonly attnOutNorm: RMSNorm | null,
    readonly mlpNorm: RMSNorm,
    readonly mlp: QuantizedMLP,
    readonly mlpOutNorm: RMSNorm | null,
  ) {
    super();
    this.registerModule('attnNorm', attnNorm);
    this.registerModule('attn', attn);
    if (attnOutNorm) this.registerModule('attnOutNorm', attnOutNorm);
    this.registerModule('mlpNorm', mlpNorm);
    this.registerModule('mlp', mlp);
    if (mlpOutNorm) this.registerModule('mlpOutNorm', mlpOutNorm);
  }

  forward(x: Tensor, positions?: Tensor<'int32'>, cache?: { cache: KVCache; slot: number }): Tensor {
    return blockForward(this, x, positions, cache);
  }
}

/**
 * The result of quantizeModel: TransformerLM's forward (targets, layer plans,
 * KV cache), so kiln.nn.generate and kiln.train.evaluate run it. It owns all
 * its tensors (dispose() frees them); inference only.
 */
export class QuantizedTransformerLM extends Module {
  readonly config: Readonly<TransformerConfig>;
  readonly embed: Embedding;
  readonly blocks: ModuleList<QuantizedBlock>;
  readonly norm: RMSNorm;
  /** null: tied to embed.weight (float). */
  readonly lmHead: (Fwd & Module) | null;
  /** One entry per linear layer, in model order. */
  readonly layers: readonly QuantizedLayerInfo[];

  constructor(config: TransformerConfig, embed: Embedding, blocks: QuantizedBlock[], norm: RMSNorm, lmHead: (Fwd & Module) | null, layers: QuantizedLayerInfo[]) {
    super();
    this.config = Object.freeze({ ...config });
    this.embed = this.registerModule('embed', embed);
    this.blocks = this.registerModule('blocks', new ModuleList(blocks));
    this.norm = this.registerModule('norm', norm);
    this.lmHead = lmHead ? this.registerModule('lmHead', lmHead) : null;
    this.layers = Object.freeze(layers);
    this.eval();
  }

  /** tokens int32 [batch, seq] -> float32 logits [batch, seq, vocab] (and the loss given targets); inference only (no graph). */
  forward(tokens: Tensor<'int32'>, opts: LMForwardOptions = {}): LMOutput {
    return noGrad(() => lmForward('QuantizedTransformerLM', this, tokens, opts));
  }
}

// ---- host-side helpers (float64 math on copies of the float weights) ----

/** A float weight as a row-major Float64Array [rows, cols]. */
function host(t: Tensor): Float64Array {
  return Float64Array.from(noGrad(() => tidy(() => t.to('cpu').cast('float32').dataSync() as Float32Array)));
}

/** max |x| per last-dim channel, folded into acc. */
function observeMax(acc: Float64Array, x: Tensor): void {
  const d = x.shape[x.ndim - 1];
  const v = noGrad(() => tidy(() => x.to('cpu').cast('float32').dataSync() as Float32Array));
  for (let i = 0; i < v.length; ++i) {
    const a = Math.abs(v[i]);
    const j = i % d;
    if (a > acc[j] || Number.isNaN(a)) acc[j] = a;
  }
}

/** max |W[:, j]| over the rows of every [rows, k] matrix. */
function colMax(ws: Float64Array[], k: number): Float64Array {
  const m = new Float64Array(k);
  for (const w of ws) for (let i = 0; i < w.length; ++i) m[i % k] = Math.max(m[i % k], Math.abs(w[i]));
  return m;
}

/** SmoothQuant factors; 1 where a statistic is zero, and within [2^-10, 2^10] so folding cannot blow up a weight. */
function lambdas(act: Float64Array, wmax: Float64Array, alpha: number): Float64Array {
  const l = new Float64Array(act.length);
  for (let j = 0; j < l.length; ++j) {
    const a = act[j];
    const w = wmax[j];
    l[j] = a > 0 && w > 0 ? Math.min(2 ** 10, Math.max(2 ** -10, a ** alpha / w ** (1 - alpha))) : 1;
  }
  return l;
}

function scaleCols(w: Float64Array, k: number, l: Float64Array): Float64Array {
  const o = new Float64Array(w.length);
  for (let i = 0; i < w.length; ++i) o[i] = w[i] * l[i % k];
  return o;
}

function scaleRows(w: Float64Array, k: number, l: Float64Array): Float64Array {
  const o = new Float64Array(w.length);
  for (let i = 0; i < w.length; ++i) o[i] = w[i] / l[Math.floor(i / k)];
  return o;
}

function muRange(mu: Float64Array): { muMin: number; muMax: number } {
  const r = range(mu);
  return { muMin: r.lambdaMin, muMax: r.lambdaMax };
}

function range(l: Float64Array): { lambdaMin: number; lambdaMax: number } {
  let lambdaMin = Infinity;
  let lambdaMax = -Infinity;
  for (const v of l) {
    lambdaMin = Math.min(lambdaMin, v);
    lambdaMax = Math.max(lambdaMax, v);
  }
  return { lambdaMin, lambdaMax };
}

/**
 * Post-training quantization of a TransformerLM (specs/quant.md, FireQ): runs
 * the calibration batches through the float model (eval mode, no graph) to
 * collect the per-input-channel max |x| of every linear layer, folds
 * SmoothQuant-style factors lambda into the previous op (x / lambda @ (lambda W)),
 * and quantizes every linear layer of the blocks (wq, wk, wv, wo, w1, w2, w3;
 * the head with quantizeHead) to INT4 with the FireQ recipe (per-tensor 2^e,
 * E4M3 group scales). The model is only read; the result owns copies.
 * Throws ValueError for a bad model, calibration or option, KilnError from the
 * quantizer (e.g. a non-finite weight).
 */
export function quantizeModel(model: TransformerLM, calibration: readonly Tensor<'int32'>[], opts?: QuantizeModelOptions | null): QuantizedTransformerLM {
  const op = 'quantizeModel';
  const o = options(op, opts) as QuantizeModelOptions;
  if (!(model instanceof TransformerLM)) throw new ValueError(`kiln: ${op}: model must be a kiln.nn.TransformerLM, got ${String(model)}`);
  const smooth = o.smooth ?? true;
  const alpha = o.alpha ?? 0.5;
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) throw new ValueError(`kiln: ${op}: alpha must be a number in [0, 1], got ${String(o.alpha)}`);
  for (const k of ['smooth', 'quantizeHead', 'quantizeWeights', 'attention', 'ropeScaling'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new ValueError(`kiln: ${op}: ${k} must be a boolean, got ${String(o[k])}`);
  }
  const quantizeWeights = o.quantizeWeights ?? true;
  const quantizeHead = (o.quantizeHead ?? false) && quantizeWeights;
  if (!Array.isArray(calibration)) throw new ValueError(`kiln: ${op}: calibration must be an array of int32 [batch, seq] token tensors`);
  const attention = o.attention ?? false;
  const ropeScaling = o.ropeScaling ?? attention;
  const headDim = model.blocks.at(0).attn.headDim;
  const kvGroupSize = o.kvGroupSize ?? headDim;
  if (o.kvCache !== undefined && o.kvCache !== 'int4' && o.kvCache !== 'float') throw new ValueError(`kiln: ${op}: kvCache must be 'int4' or 'float', got ${String(o.kvCache)}`);
  const int4Cache = (o.kvCache ?? 'int4') === 'int4';
  if (!Number.isSafeInteger(kvGroupSize) || kvGroupSize < 1 || headDim % kvGroupSize !== 0) {
    throw new ValueError(`kiln: ${op}: kvGroupSize must be a positive divisor of the head dimension ${headDim}, got ${String(o.kvGroupSize)}`);
  }
  const calibrate = smooth || attention || ropeScaling;
  if (calibrate && calibration.length === 0) throw new ValueError(`kiln: ${op}: smoothing and attention quantization need at least one calibration batch (or smooth: false)`);
  const vocab = model.config.vocabSize;
  calibration.forEach((t, i) => {
    if (!(t instanceof Tensor) || t.dtype !== 'int32' || t.ndim !== 2 || t.size === 0) {
      throw new ValueError(`kiln: ${op}: calibration[${i}] must be a non-empty int32 [batch, seq] tensor, got ${t instanceof Tensor ? t.describe() : String(t)}`);
    }
    const ids = t.to('cpu');
    try {
      const v = ids.dataSync() as Int32Array;
      for (const id of v) if (id < 0 || id >= vocab) throw new ValueError(`kiln: ${op}: calibration[${i}] holds token ${id} outside the vocabulary [0, ${vocab})`);
    } finally {
      if (ids !== t) ids.dispose();
    }
  });

  const cfg = model.config;
  const dim = cfg.dim;
  const blocks = model.blocks.items;
  const hidden = blocks[0].mlp.hiddenDim;
  const kvDim = blocks[0].attn.nKvHeads * blocks[0].attn.headDim;

  // 1. calibration statistics
  const stats = blocks.map(() => ({
    qkv: new Float64Array(dim),
    o: new Float64Array(dim),
    w13: new Float64Array(hidden),
    w2: new Float64Array(hidden),
    q: new Float64Array(dim),
    k: new Float64Array(kvDim),
    v: new Float64Array(kvDim),
  }));
  const headStat = new Float64Array(dim);
  if (calibrate) {
    const wasTraining = model.training;
    model.eval();
    try {
      noGrad(() => {
        for (const tokens of calibration) {
          tidy(() => {
            let h = model.embed.forward(tokens.to(model.embed.weight.device));
            blocks.forEach((blk, i) => {
              h = blockForward(blk, h, undefined, undefined, (site, x) => observeMax(stats[i][site], x));
            });
            observeMax(headStat, model.norm.forward(h));
          });
        }
      });
    } finally {
      if (wasTraining) model.train();
    }
  }

  const device = model.embed.weight.device;
  const created: Module[] = [];
  const track = <M extends Module>(m: M): M => {
    created.push(m);
    return m;
  };
  const infos: QuantizedLayerInfo[] = [];
  const toTensor = (v: Float64Array, shape: number[], like: Tensor): Tensor =>
    noGrad(() => tidy(() => creation.tensor(Float32Array.from(v), shape, { dtype: 'float32', device }).cast(like.dtype)));
  const linear = (name: string, w: Float64Array, n: number, k: number, like: Tensor, l: Float64Array | null, quantize: boolean): Fwd & Module => {
    const wt = toTensor(w, [n, k], like);
    try {
      const lr = l ? range(l) : { lambdaMin: 1, lambdaMax: 1 };
      if (quantize) {
        const q = track(QuantizedLinear.fromWeights(wt, null, { groupSize: o.groupSize, outDtype: 'float32' }));
        infos.push({ name, exponent: (q.exponent.dataSync() as Int8Array)[0], ...lr });
        return q;
      }
      const f = track(new Linear(k, n, { bias: false, std: 0 }));
      noGrad(() => f.weight.copy_(wt));
      infos.push({ name, exponent: null, ...lr });
      return f;
    } finally {
      wt.dispose();
    }
  };
  const norm = (src: RMSNorm, l: Float64Array | null): RMSNorm => {
    const n = track(new RMSNorm(src.dim, src.eps));
    noGrad(() => {
      if (l === null) n.weight.copy_(src.weight);
      else {
        const gw = host(src.weight);
        const t = toTensor(gw.map((v, j) => v / l[j]), [src.dim], src.weight);
        try {
          n.weight.copy_(t);
        } finally {
          t.dispose();
        }
      }
    });
    return n;
  };

  try {
    // 2. fold the smoothing factors and build the new modules
    const qBlocks = blocks.map((blk, i) => {
      const p = `blocks.${i}`;
      const at = blk.attn;
      const [wq, wk, wv, wo] = [at.wq, at.wk, at.wv, at.wo].map((m) => host(m.weight));
      const [w1, w2, w3] = [blk.mlp.w1, blk.mlp.w2, blk.mlp.w3].map((m) => host(m.weight));
      // RoPE-aware pre-scale mu per kv channel (pair- and GQA-consistent), folded into W_q / W_k
      // first, so that the smoothing below sees the weights that get quantized
      const rep = at.nHeads / at.nKvHeads;
      const hd = at.headDim;
      const half = hd / 2;
      const mu = new Float64Array(kvDim).fill(1);
      let wqR = wq;
      let wkR = wk;
      if (ropeScaling) {
        const st = stats[i];
        for (let kh = 0; kh < at.nKvHeads; ++kh) {
          for (let pr = 0; pr < half; ++pr) {
            const kc = [kh * hd + pr, kh * hd + pr + half];
            const km = Math.max(st.k[kc[0]], st.k[kc[1]]);
            let qm = 0;
            for (let r = 0; r < rep; ++r) for (const c of kc) qm = Math.max(qm, st.q[(kh * rep + r) * hd + (c - kh * hd)]);
            const m = km > 0 && qm > 0 ? Math.min(2 ** 10, Math.max(2 ** -10, km ** alpha / qm ** (1 - alpha))) : 1;
            mu[kc[0]] = mu[kc[1]] = m;
          }
        }
        const muQ = Float64Array.from({ length: dim }, (_, c) => mu[Math.floor(Math.floor(c / hd) / rep) * hd + (c % hd)]);
        wqR = scaleRows(wq, dim, muQ.map((m) => 1 / m));
        wkR = scaleRows(wk, dim, mu);
      }
      let lQkv: Float64Array | null = null;
      let lO: Float64Array | null = null;
      let l13: Float64Array | null = null;
      let l2: Float64Array | null = null;
      let woS = wo;
      let wvS = wv;
      let w2S = w2;
      let w3S = w3;
      let lKvOf: Float64Array | null = null;
      if (smooth) {
        const st = stats[i];
        // wo's input channel c = head h, d comes from kv head h / rep: one lambda per kv channel
        const kvAct = new Float64Array(kvDim);
        const kvW = new Float64Array(kvDim);
        const woMax = colMax([wo], dim);
        for (let c = 0; c < dim; ++c) {
          const kc = Math.floor(Math.floor(c / hd) / rep) * hd + (c % hd);
          kvAct[kc] = Math.max(kvAct[kc], st.o[c]);
          kvW[kc] = Math.max(kvW[kc], woMax[c]);
        }
        const lKv = lambdas(kvAct, kvW, alpha);
        lKvOf = lKv;
        lO = Float64Array.from({ length: dim }, (_, c) => lKv[Math.floor(Math.floor(c / hd) / rep) * hd + (c % hd)]);
        wvS = scaleRows(wv, dim, lKv);
        woS = scaleCols(wo, dim, lO);
        // w2's input u = silu(w1 x) * (w3 x): dividing w3's rows by lambda divides u's channels
        l2 = lambdas(st.w2, colMax([w2], hidden), alpha);
        w3S = scaleRows(w3, dim, l2);
        w2S = scaleCols(w2, hidden, l2);
        // the norms' factors from the weights as they will be quantized (after the row scalings above)
        lQkv = lambdas(st.qkv, colMax([wqR, wkR, wvS], dim), alpha);
        l13 = lambdas(st.w13, colMax([w1, w3S], dim), alpha);
      }
      // the per-head 2^e of K (after RoPE) and V
      let aq: AttentionQuantInfo | null = null;
      if (ropeScaling || attention) {
        const st = stats[i];
        if (attention) {
          const exps = (amax: (kh: number) => number) =>
            Array.from({ length: at.nKvHeads }, (_, kh) => {
              const a = amax(kh);
              return a > 0 ? Math.min(14, Math.max(-8, Math.floor(Math.log2(448 / a)))) : 0;
            });
          // after RoPE |k_i| <= sqrt(2) max(|k_p|, |k_p+half|) for the pair p of i
          const kExponents = exps((kh) => {
            let a = 0;
            for (let c = 0; c < hd; ++c) a = Math.max(a, (Math.SQRT2 * Math.max(st.k[kh * hd + (c % half)], st.k[kh * hd + (c % half) + half])) / mu[kh * hd + c]);
            return a;
          });
          const vExponents = exps((kh) => {
            let a = 0;
            for (let c = kh * hd; c < (kh + 1) * hd; ++c) a = Math.max(a, st.v[c] / (lKvOf ? lKvOf[c] : 1));
            return a;
          });
          aq = { fp8Queries: true, kExponents, vExponents, kvGroupSize, int4Cache, ...muRange(mu) };
        } else aq = { fp8Queries: false, kExponents: null, vExponents: null, kvGroupSize, int4Cache: false, ...muRange(mu) };
      }
      const sc = (w: Float64Array, k: number, l: Float64Array | null) => (l ? scaleCols(w, k, l) : w);
      const attnNorm = norm(blk.attnNorm, lQkv);
      const attn = track(
        new QuantizedAttention(
          linear(`${p}.attn.wq`, sc(wqR, dim, lQkv), dim, dim, at.wq.weight, lQkv, quantizeWeights),
          linear(`${p}.attn.wk`, sc(wkR, dim, lQkv), kvDim, dim, at.wk.weight, lQkv, quantizeWeights),
          linear(`${p}.attn.wv`, sc(wvS, dim, lQkv), kvDim, dim, at.wv.weight, lQkv, quantizeWeights),
          linear(`${p}.attn.wo`, woS, dim, dim, at.wo.weight, lO, quantizeWeights),
          at.nHeads,
          at.nKvHeads,
          at.headDim,
          at.ropeTheta,
          aq,
        ),
      );
      const attnOutNorm = blk.attnOutNorm ? norm(blk.attnOutNorm, null) : null;
      const mlpNorm = norm(blk.mlpNorm, l13);
      const mlp = track(
        new QuantizedMLP(
          linear(`${p}.mlp.w1`, sc(w1, dim, l13), hidden, dim, blk.mlp.w1.weight, l13, quantizeWeights),
          linear(`${p}.mlp.w2`, w2S, dim, hidden, blk.mlp.w2.weight, l2, quantizeWeights),
          linear(`${p}.mlp.w3`, sc(w3S, dim, l13), hidden, dim, blk.mlp.w3.weight, l13, quantizeWeights),
        ),
      );
      const mlpOutNorm = blk.mlpOutNorm ? norm(blk.mlpOutNorm, null) : null;
      return track(new QuantizedBlock(attnNorm, attn, attnOutNorm, mlpNorm, mlp, mlpOutNorm));
    });
    const embed = track(new Embedding(cfg.vocabSize, dim, { std: 0 }));
    noGrad(() => embed.weight.copy_(model.embed.weight));
    let head: (Fwd & Module) | null = null;
    let finalNorm: RMSNorm;
    const headW = model.lmHead ? model.lmHead.weight : model.embed.weight;
    if (quantizeHead) {
      const w = host(headW);
      const lH = smooth ? lambdas(headStat, colMax([w], dim), alpha) : null;
      finalNorm = norm(model.norm, lH);
      head = linear('lmHead', lH ? scaleCols(w, dim, lH) : w, cfg.vocabSize, dim, headW, lH, true);
    } else {
      finalNorm = norm(model.norm, null);
      if (model.lmHead) head = linear('lmHead', host(headW), cfg.vocabSize, dim, headW, null, false);
    }
    return new QuantizedTransformerLM(cfg, embed, qBlocks, finalNorm, head, infos);
  } catch (e) {
    // free everything built so far (Tensor.dispose is idempotent, so nested modules are fine)
    for (const m of created) m.dispose();
    throw e;
  }
}
