// Neural-network ops: softmax, logSoftmax, crossEntropy, embedding, rmsNorm,
// layerNorm, rope, attention — and the forward-with-saved-tensors and backward
// functions autograd uses (exported as kiln.backward). Kernel contracts:
// native/KERNELS.md.
import { dtypeCode, type DType } from '../dtype';
import { DeviceError, DTypeError, ShapeError, ValueError } from '../errors';
import { native } from '../native';
import { formatShape, sizeOf } from '../shape';
import { emptyTensor, Tensor } from '../tensor';
import { checkSame, geluOp, pointwiseBackward, type GeluOptions } from './elementwise';
import { normAxis, transpose } from './views';

const FLOAT16_PLUS: readonly DType[] = ['float32', 'float16', 'bfloat16'];

function tensorArg(op: string, t: unknown, name: string): Tensor {
  if (!(t instanceof Tensor)) throw new ValueError(`kiln: ${op}: ${name} must be a Tensor, got ${t === null ? 'null' : typeof t}`);
  t.storage(op);
  return t;
}

function floatArg(op: string, t: unknown, name: string): Tensor {
  const x = tensorArg(op, t, name);
  if (!FLOAT16_PLUS.includes(x.dtype)) {
    throw new DTypeError(`kiln: ${op}: ${name} must be float32, float16 or bfloat16, got ${x.describe()}`);
  }
  return x;
}

function intArg(op: string, t: unknown, name: string): Tensor<'int32'> {
  const x = tensorArg(op, t, name);
  if (x.dtype !== 'int32') throw new DTypeError(`kiln: ${op}: ${name} must be int32, got ${x.describe()}`);
  return x as Tensor<'int32'>;
}

function sameShape(op: string, a: Tensor, b: Tensor, what: string): void {
  if (a.ndim !== b.ndim || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`kiln: ${op}: ${what}: ${a.describe()} and ${b.describe()} must have the same shape`);
  }
}

/**
 * Runs kernel `op` with fresh outputs of the given shapes/dtypes; disposes
 * them all if it throws. Returns the outputs.
 */
function run(op: string, key: DType, inputs: readonly Tensor[], outs: readonly [readonly number[], DType][], device: Tensor, ints: number[] | null = null, floats: number[] | null = null): Tensor[] {
  const outputs = outs.map(([shape, dtype]) => emptyTensor(shape, dtype, device.deviceSpec));
  try {
    native.run(op, dtypeCode(key), inputs.map((t) => t.view(op)), outputs.map((t) => t.view(op)), ints, floats);
  } catch (e) {
    outputs.forEach((t) => t.dispose());
    throw e;
  }
  return outputs;
}

/** Owned temporaries of an op, disposed at the end. */
class Temps {
  private list: Tensor[] = [];
  add<T extends Tensor>(t: T, original?: Tensor): T {
    if (t !== original) this.list.push(t);
    return t;
  }
  dispose(): void {
    this.list.forEach((t) => t.dispose());
  }
}

/** x [..., D] as an [R, D] view (a packed copy when the rows cannot be one stride). */
function rows2d(x: Tensor, temps: Temps): Tensor {
  const d = x.ndim === 0 ? 1 : x.shape[x.ndim - 1];
  const r = d === 0 ? sizeOf(x.shape.slice(0, -1)) : x.size / d;
  const packed = temps.add(x.isContiguous ? x : x.contiguous(), x);
  return temps.add(packed.reshape([r, d]));
}

/** Moves `axis` last; returns the moved view (packed) and the permutation. */
function axisLast(x: Tensor, axis: number, op: string, temps: Temps): { moved: Tensor; perm: number[] | null } {
  const a = normAxis(op, axis, x.ndim);
  if (a === x.ndim - 1) return { moved: x, perm: null };
  const perm = Array.from({ length: x.ndim }, (_, i) => i).filter((i) => i !== a).concat([a]);
  return { moved: temps.add(transpose(x, perm)), perm };
}

/** Undoes axisLast on a result (a packed copy in the original axis order). */
function axisBack<D extends DType>(y: Tensor<D>, perm: number[] | null): Tensor<D> {
  if (perm === null) return y;
  const inverse = perm.map((_, i) => perm.indexOf(i));
  const view = transpose(y, inverse);
  try {
    return view.contiguous();
  } finally {
    view.dispose();
    y.dispose();
  }
}

// ---- softmax -------------------------------------------------------------------------

function softmaxLike<D extends DType>(op: 'softmax' | 'log_softmax', x: Tensor<D>, axis: number): Tensor<D> {
  const name = op === 'softmax' ? 'softmax' : 'logSoftmax';
  floatArg(name, x, 'x');
  if (x.ndim === 0) throw new ShapeError(`kiln: ${name}: needs at least one dimension, got ${x.describe()}`);
  const temps = new Temps();
  try {
    const { moved, perm } = axisLast(x, axis, name, temps);
    const rows = rows2d(moved, temps);
    const [y] = run(op, x.dtype, [rows], [[rows.shape, x.dtype]], x);
    const shaped = temps.add(y).reshape(moved.shape) as Tensor<D>;
    return axisBack(shaped, perm);
  } finally {
    temps.dispose();
  }
}

/** exp(x - max) / sum along `axis` (default: the last). */
export function softmax<D extends DType>(x: Tensor<D>, axis = -1): Tensor<D> {
  return softmaxLike('softmax', x, axis);
}

/** log(softmax(x)) along `axis`, computed stably. */
export function logSoftmax<D extends DType>(x: Tensor<D>, axis = -1): Tensor<D> {
  return softmaxLike('log_softmax', x, axis);
}

function softmaxBackwardLike<D extends DType>(op: 'softmax_backward' | 'log_softmax_backward', y: Tensor<D>, gy: Tensor<D>, axis: number): Tensor<D> {
  floatArg(op, y, 'y');
  floatArg(op, gy, 'gy');
  checkSame(op, [y, gy]);
  sameShape(op, y, gy, 'output and its gradient');
  const temps = new Temps();
  try {
    const ym = axisLast(y, axis, op, temps);
    const gm = axisLast(gy, axis, op, temps);
    const rows = rows2d(ym.moved, temps);
    const [gx] = run(op, y.dtype, [rows, rows2d(gm.moved, temps)], [[rows.shape, y.dtype]], y);
    const shaped = temps.add(gx).reshape(ym.moved.shape) as Tensor<D>;
    return axisBack(shaped, ym.perm);
  } finally {
    temps.dispose();
  }
}

// ---- cross entropy -------------------------------------------------------------------------

export interface CrossEntropyOptions {
  /** Target value whose rows are skipped (default -100, as PyTorch). */
  ignoreIndex?: number;
  /** Label smoothing in [0, 1] (default 0). */
  labelSmoothing?: number;
}

function ceAttrs(op: string, opts?: CrossEntropyOptions): { ints: number[]; floats: number[] } {
  const ignore = opts?.ignoreIndex ?? -100;
  const ls = opts?.labelSmoothing ?? 0;
  if (!Number.isInteger(ignore)) throw new ValueError(`kiln: ${op}: ignoreIndex must be an integer, got ${String(ignore)}`);
  if (typeof ls !== 'number' || !(ls >= 0 && ls <= 1)) throw new ValueError(`kiln: ${op}: labelSmoothing must be in [0, 1], got ${String(ls)}`);
  return { ints: [ignore], floats: [ls] };
}

function ceOperands(op: string, logits: Tensor, targets: Tensor, temps: Temps): { rows: Tensor; t1: Tensor } {
  floatArg(op, logits, 'logits');
  intArg(op, targets, 'targets');
  if (logits.ndim < 1) throw new ShapeError(`kiln: ${op}: logits need a class dimension, got ${logits.describe()}`);
  const lead = logits.shape.slice(0, -1);
  if (targets.ndim !== lead.length || targets.shape.some((d, i) => d !== lead[i])) {
    throw new ShapeError(`kiln: ${op}: targets ${targets.describe()} must have the shape of logits ${logits.describe()} without the last dimension (${formatShape(lead)})`);
  }
  if (logits.device !== targets.device) {
    throw new DeviceError(`kiln: ${op}: logits ${logits.describe()} and targets ${targets.describe()} are on different devices`);
  }
  const rows = rows2d(logits, temps);
  const t1 = temps.add(targets.reshape([rows.shape[0]]));
  return { rows, t1 };
}

/** Cross entropy and the per-row log-sum-exp autograd saves. */
export function crossEntropyForward(logits: Tensor, targets: Tensor<'int32'>, opts?: CrossEntropyOptions): { loss: Tensor<'float32'>; lse: Tensor<'float32'> } {
  const op = 'crossEntropy';
  const { ints, floats } = ceAttrs(op, opts);
  const temps = new Temps();
  try {
    const { rows, t1 } = ceOperands(op, logits, targets, temps);
    const [loss, lse] = run('cross_entropy', logits.dtype, [rows, t1], [[[], 'float32'], [[rows.shape[0]], 'float32']], logits, ints, floats);
    return { loss: loss as Tensor<'float32'>, lse: lse as Tensor<'float32'> };
  } finally {
    temps.dispose();
  }
}

/**
 * Mean cross entropy of logits [..., C] against int32 class targets [...],
 * fused with log-softmax; rows whose target is ignoreIndex are skipped
 * (NaN if all are). Returns a float32 scalar.
 */
export function crossEntropy(logits: Tensor, targets: Tensor<'int32'>, opts?: CrossEntropyOptions): Tensor<'float32'> {
  const { loss, lse } = crossEntropyForward(logits, targets, opts);
  lse.dispose();
  return loss;
}

/** d loss / d logits, given the forward's lse and the loss gradient (a float32 scalar tensor). */
export function crossEntropyBackward<D extends DType>(logits: Tensor<D>, targets: Tensor<'int32'>, lse: Tensor<'float32'>, gloss: Tensor<'float32'>, opts?: CrossEntropyOptions): Tensor<D> {
  const op = 'crossEntropyBackward';
  const { ints, floats } = ceAttrs(op, opts);
  const temps = new Temps();
  try {
    const { rows, t1 } = ceOperands(op, logits, targets, temps);
    tensorArg(op, lse, 'lse');
    tensorArg(op, gloss, 'gloss');
    const [g] = run('cross_entropy_backward', logits.dtype, [rows, t1, lse, gloss], [[rows.shape, logits.dtype]], logits, ints, floats);
    return temps.add(g).reshape(logits.shape) as Tensor<D>;
  } finally {
    temps.dispose();
  }
}

// ---- embedding ----------------------------------------------------------------------------

/** Rows of weight [V, D] picked by int32 ids [...]: [..., D]. */
export function embedding<D extends DType>(weight: Tensor<D>, ids: Tensor<'int32'>): Tensor<D> {
  const op = 'embedding';
  floatArg(op, weight, 'weight');
  intArg(op, ids, 'ids');
  if (weight.ndim !== 2) throw new ShapeError(`kiln: ${op}: weight must be [numEmbeddings, dim], got ${weight.describe()}`);
  const temps = new Temps();
  try {
    const flat = temps.add(ids.reshape([ids.size]));
    const [out] = run(op, weight.dtype, [weight, flat], [[[ids.size, weight.shape[1]], weight.dtype]], weight);
    return temps.add(out).reshape([...ids.shape, weight.shape[1]]) as Tensor<D>;
  } finally {
    temps.dispose();
  }
}

/** Gradient of embedding for the weight: [numEmbeddings, D], rows summed per id. */
export function embeddingBackward<D extends DType>(ids: Tensor<'int32'>, gout: Tensor<D>, numEmbeddings: number): Tensor<D> {
  const op = 'embeddingBackward';
  intArg(op, ids, 'ids');
  floatArg(op, gout, 'gout');
  if (!Number.isInteger(numEmbeddings) || numEmbeddings < 0) throw new ValueError(`kiln: ${op}: numEmbeddings must be a non-negative integer`);
  const d = gout.shape[gout.ndim - 1];
  if (gout.ndim !== ids.ndim + 1 || ids.shape.some((s, i) => s !== gout.shape[i])) {
    throw new ShapeError(`kiln: ${op}: gout ${gout.describe()} must be ids' shape ${formatShape(ids.shape)} plus the embedding dimension`);
  }
  const temps = new Temps();
  try {
    const flat = temps.add(ids.reshape([ids.size]));
    const g2 = rows2d(gout, temps);
    const [gw] = run('embedding_backward', gout.dtype, [flat, g2], [[[numEmbeddings, d], gout.dtype]], gout);
    return gw as Tensor<D>;
  } finally {
    temps.dispose();
  }
}

// ---- normalization ------------------------------------------------------------------------

function normOperands(op: string, x: Tensor, params: Tensor[], temps: Temps): Tensor {
  floatArg(op, x, 'x');
  if (x.ndim === 0) throw new ShapeError(`kiln: ${op}: x needs at least one dimension, got ${x.describe()}`);
  const d = x.shape[x.ndim - 1];
  for (const p of params) {
    floatArg(op, p, 'weight');
    checkSame(op, [x, p]);
    if (p.ndim !== 1 || p.shape[0] !== d) {
      throw new ShapeError(`kiln: ${op}: parameters must be [${d}] (the last dimension of ${x.describe()}), got ${p.describe()}`);
    }
  }
  return rows2d(x, temps);
}

function epsArg(op: string, eps: number): number {
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) throw new ValueError(`kiln: ${op}: eps must be a finite number >= 0, got ${String(eps)}`);
  return eps;
}

/** RMSNorm over the last dimension, also returning rstd [R] (float32) for backward. */
export function rmsNormForward<D extends DType>(x: Tensor<D>, weight: Tensor<D>, eps = 1e-6): { y: Tensor<D>; rstd: Tensor<'float32'> } {
  const op = 'rmsNorm';
  const temps = new Temps();
  try {
    const rows = normOperands(op, x, [weight], temps);
    const [y, rstd] = run('rms_norm', x.dtype, [rows, weight], [[rows.shape, x.dtype], [[rows.shape[0]], 'float32']], x, null, [epsArg(op, eps)]);
    return { y: temps.add(y).reshape(x.shape) as Tensor<D>, rstd: rstd as Tensor<'float32'> };
  } finally {
    temps.dispose();
  }
}

/** x / sqrt(mean(x^2) + eps) * weight over the last dimension. */
export function rmsNorm<D extends DType>(x: Tensor<D>, weight: Tensor<D>, eps = 1e-6): Tensor<D> {
  const { y, rstd } = rmsNormForward(x, weight, eps);
  rstd.dispose();
  return y;
}

/** Gradients of rmsNorm: gx (x's dtype) and gw (float32). */
export function rmsNormBackward<D extends DType>(x: Tensor<D>, weight: Tensor<D>, rstd: Tensor<'float32'>, gy: Tensor<D>): { gx: Tensor<D>; gw: Tensor<'float32'> } {
  const op = 'rmsNormBackward';
  const temps = new Temps();
  try {
    floatArg(op, x, 'x');
    floatArg(op, gy, 'gy');
    sameShape(op, x, gy, 'x and its output gradient');
    const rows = normOperands(op, x, [weight], temps);
    tensorArg(op, rstd, 'rstd');
    const [gx, gw] = run('rms_norm_backward', x.dtype, [rows, weight, rstd, rows2d(gy, temps)], [[rows.shape, x.dtype], [[rows.shape[1]], 'float32']], x);
    return { gx: temps.add(gx).reshape(x.shape) as Tensor<D>, gw: gw as Tensor<'float32'> };
  } finally {
    temps.dispose();
  }
}

/** LayerNorm over the last dimension, also returning mean and rstd [R] (float32). */
export function layerNormForward<D extends DType>(x: Tensor<D>, weight: Tensor<D>, bias: Tensor<D>, eps = 1e-5): { y: Tensor<D>; mean: Tensor<'float32'>; rstd: Tensor<'float32'> } {
  const op = 'layerNorm';
  const temps = new Temps();
  try {
    const rows = normOperands(op, x, [weight, bias], temps);
    const r = rows.shape[0];
    const [y, mean, rstd] = run('layer_norm', x.dtype, [rows, weight, bias], [[rows.shape, x.dtype], [[r], 'float32'], [[r], 'float32']], x, null, [epsArg(op, eps)]);
    return { y: temps.add(y).reshape(x.shape) as Tensor<D>, mean: mean as Tensor<'float32'>, rstd: rstd as Tensor<'float32'> };
  } finally {
    temps.dispose();
  }
}

/** (x - mean) / sqrt(var + eps) * weight + bias over the last dimension. */
export function layerNorm<D extends DType>(x: Tensor<D>, weight: Tensor<D>, bias: Tensor<D>, eps = 1e-5): Tensor<D> {
  const { y, mean, rstd } = layerNormForward(x, weight, bias, eps);
  mean.dispose();
  rstd.dispose();
  return y;
}

/** Gradients of layerNorm: gx (x's dtype), gw and gb (float32). */
export function layerNormBackward<D extends DType>(x: Tensor<D>, weight: Tensor<D>, mean: Tensor<'float32'>, rstd: Tensor<'float32'>, gy: Tensor<D>): { gx: Tensor<D>; gw: Tensor<'float32'>; gb: Tensor<'float32'> } {
  const op = 'layerNormBackward';
  const temps = new Temps();
  try {
    floatArg(op, x, 'x');
    floatArg(op, gy, 'gy');
    sameShape(op, x, gy, 'x and its output gradient');
    const rows = normOperands(op, x, [weight], temps);
    tensorArg(op, mean, 'mean');
    tensorArg(op, rstd, 'rstd');
    const d = rows.shape[1];
    const [gx, gw, gb] = run('layer_norm_backward', x.dtype, [rows, weight, mean, rstd, rows2d(gy, temps)], [[rows.shape, x.dtype], [[d], 'float32'], [[d], 'float32']], x);
    return { gx: temps.add(gx).reshape(x.shape) as Tensor<D>, gw: gw as Tensor<'float32'>, gb: gb as Tensor<'float32'> };
  } finally {
    temps.dispose();
  }
}

// ---- rotary embedding -----------------------------------------------------------------------

export interface RopeOptions {
  /** Base of the frequencies (default 10000). */
  theta?: number;
  /** Pairs (2i, 2i+1) instead of the default "rotate half" pairs (i, i + D/2). */
  interleaved?: boolean;
}

function ropeRun<D extends DType>(op: string, x: Tensor<D>, positions: Tensor<'int32'>, opts: RopeOptions | undefined, inverse: boolean): Tensor<D> {
  floatArg(op, x, 'x');
  intArg(op, positions, 'positions');
  const theta = opts?.theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0) || !Number.isFinite(theta)) throw new ValueError(`kiln: ${op}: theta must be a positive number, got ${String(theta)}`);
  if (x.ndim !== 4) throw new ShapeError(`kiln: ${op}: x must be [batch, heads, seq, headDim], got ${x.describe()}`);
  const [b, , s, d] = x.shape;
  if (d % 2 !== 0) throw new ShapeError(`kiln: ${op}: headDim must be even, got ${x.describe()}`);
  const okShape = (positions.ndim === 1 && positions.shape[0] === s) || (positions.ndim === 2 && positions.shape[0] === b && positions.shape[1] === s);
  if (!okShape) throw new ShapeError(`kiln: ${op}: positions must be [seq] = [${s}] or [batch, seq] = [${b}, ${s}], got ${positions.describe()}`);
  const [y] = run('rope', x.dtype, [x, positions], [[x.shape, x.dtype]], x, [opts?.interleaved ? 1 : 0, inverse ? 1 : 0], [theta]);
  return y as Tensor<D>;
}

/** Rotary position embedding of x [batch, heads, seq, headDim] at int32 positions [seq] or [batch, seq]. */
export function rope<D extends DType>(x: Tensor<D>, positions: Tensor<'int32'>, opts?: RopeOptions): Tensor<D> {
  return ropeRun('rope', x, positions, opts, false);
}

/** Gradient of rope: the inverse rotation of the output gradient. */
export function ropeBackward<D extends DType>(gy: Tensor<D>, positions: Tensor<'int32'>, opts?: RopeOptions): Tensor<D> {
  return ropeRun('ropeBackward', gy, positions, opts, true);
}

// ---- attention ---------------------------------------------------------------------------------

export interface AttentionOptions {
  /** Mask future keys (aligned bottom-right: query i sees keys j <= i + Sk - Sq). */
  causal?: boolean;
  /** Logit scale (default 1 / sqrt(headDim)). */
  scale?: number;
}

function attentionAttrs(op: string, q: Tensor, k: Tensor, v: Tensor, opts?: AttentionOptions): { ints: number[]; floats: number[] } {
  for (const [t, name] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
    floatArg(op, t, name);
    if (t.ndim !== 4) throw new ShapeError(`kiln: ${op}: ${name} must be [batch, heads, seq, headDim], got ${t.describe()}`);
  }
  checkSame(op, [q, k, v]);
  const [b, hq, , d] = q.shape;
  const [bk, hk, sk, dk] = k.shape;
  const [bv, hv, sv] = v.shape;
  if (bk !== b || bv !== b || dk !== d || hv !== hk || sv !== sk) {
    throw new ShapeError(`kiln: ${op}: q ${q.describe()}, k ${k.describe()}, v ${v.describe()} do not fit (k: [${b}, Hk, Sk, ${d}], v: [${b}, Hk, Sk, Dv])`);
  }
  if (hk === 0 || hq % hk !== 0) throw new ShapeError(`kiln: ${op}: query heads (${hq}) must be a multiple of key/value heads (${hk})`);
  const scale = opts?.scale ?? 1 / Math.sqrt(d);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new ValueError(`kiln: ${op}: scale must be a finite number, got ${String(scale)}`);
  return { ints: [opts?.causal ? 1 : 0], floats: [scale] };
}

/** Attention with the per-row log-sum-exp [B, Hq, Sq] (float32) autograd saves. */
export function attentionForward<D extends DType>(q: Tensor<D>, k: Tensor<D>, v: Tensor<D>, opts?: AttentionOptions): { out: Tensor<D>; lse: Tensor<'float32'> } {
  const op = 'attention';
  const { ints, floats } = attentionAttrs(op, q, k, v, opts);
  const [b, hq, sq] = q.shape;
  const dv = v.shape[3];
  const [out, lse] = run(op, q.dtype, [q, k, v], [[[b, hq, sq, dv], q.dtype], [[b, hq, sq], 'float32']], q, ints, floats);
  return { out: out as Tensor<D>, lse: lse as Tensor<'float32'> };
}

/**
 * softmax(q k^T * scale [+ causal mask]) v for q [B, Hq, Sq, D], k [B, Hk, Sk, D],
 * v [B, Hk, Sk, Dv]; Hq a multiple of Hk (grouped-query). Fused: the
 * [Sq, Sk] score matrix is never materialised beyond a tile.
 */
export function attention<D extends DType>(q: Tensor<D>, k: Tensor<D>, v: Tensor<D>, opts?: AttentionOptions): Tensor<D> {
  const { out, lse } = attentionForward(q, k, v, opts);
  lse.dispose();
  return out;
}

/** Gradients of attention given the forward's out and lse and the output gradient. */
export function attentionBackward<D extends DType>(q: Tensor<D>, k: Tensor<D>, v: Tensor<D>, out: Tensor<D>, lse: Tensor<'float32'>, gout: Tensor<D>, opts?: AttentionOptions): { gq: Tensor<D>; gk: Tensor<D>; gv: Tensor<D> } {
  const op = 'attentionBackward';
  const { ints, floats } = attentionAttrs(op, q, k, v, opts);
  floatArg(op, out, 'out');
  floatArg(op, gout, 'gout');
  tensorArg(op, lse, 'lse');
  sameShape(op, out, gout, 'output and its gradient');
  const [gq, gk, gv] = run('attention_backward', q.dtype, [q, k, v, out, lse, gout], [[q.shape, q.dtype], [k.shape, q.dtype], [v.shape, q.dtype]], q, ints, floats);
  return { gq: gq as Tensor<D>, gk: gk as Tensor<D>, gv: gv as Tensor<D> };
}

// ---- the kiln.backward namespace ----------------------------------------------------------

/** Backward kernels and forward-with-saved-tensors variants: the building blocks of autograd. */
export const backward = {
  reluBackward: <D extends DType>(x: Tensor<D>, gy: Tensor<D>): Tensor<D> => pointwiseBackward('relu_backward', x, gy),
  geluBackward: <D extends DType>(x: Tensor<D>, gy: Tensor<D>, opts?: GeluOptions): Tensor<D> =>
    pointwiseBackward(`${geluOp('geluBackward', opts)}_backward`, x, gy),
  siluBackward: <D extends DType>(x: Tensor<D>, gy: Tensor<D>): Tensor<D> => pointwiseBackward('silu_backward', x, gy),
  /** From the forward output y = sigmoid(x). */
  sigmoidBackward: <D extends DType>(y: Tensor<D>, gy: Tensor<D>): Tensor<D> => pointwiseBackward('sigmoid_backward', y, gy),
  /** From the forward output y = tanh(x). */
  tanhBackward: <D extends DType>(y: Tensor<D>, gy: Tensor<D>): Tensor<D> => pointwiseBackward('tanh_backward', y, gy),
  /** From the forward output y = softmax(x, axis). */
  softmaxBackward: <D extends DType>(y: Tensor<D>, gy: Tensor<D>, axis = -1): Tensor<D> => softmaxBackwardLike('softmax_backward', y, gy, axis),
  /** From the forward output y = logSoftmax(x, axis). */
  logSoftmaxBackward: <D extends DType>(y: Tensor<D>, gy: Tensor<D>, axis = -1): Tensor<D> => softmaxBackwardLike('log_softmax_backward', y, gy, axis),
  crossEntropyForward,
  crossEntropyBackward,
  embeddingBackward,
  rmsNormForward,
  rmsNormBackward,
  layerNormForward,
  layerNormBackward,
  ropeBackward,
  attentionForward,
  attentionBackward,
};
