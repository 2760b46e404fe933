// Differentiable nn ops: the fused kernels of lib/ops/nn.ts with their backward kernels.
import type { DType } from '../dtype';
import * as nn from '../ops/nn';
import type { Tensor } from '../tensor';
import { differentiable } from './record';

type T<D extends DType> = Tensor<D>;
const k = nn.backward;

export function softmax<D extends DType>(x: T<D>, axis = -1): T<D> {
  return differentiable('softmax', [x], () => nn.softmax(x, axis), (out) => ({ saved: [out], rule: (g, [y]) => [k.softmaxBackward(y as T<D>, g, axis)] }));
}

export function logSoftmax<D extends DType>(x: T<D>, axis = -1): T<D> {
  return differentiable('logSoftmax', [x], () => nn.logSoftmax(x, axis), (out) => ({ saved: [out], rule: (g, [y]) => [k.logSoftmaxBackward(y as T<D>, g, axis)] }));
}

export function crossEntropy(logits: Tensor, targets: Tensor<'int32'>, opts?: nn.CrossEntropyOptions): Tensor<'float32'> {
  let lse: Tensor<'float32'> | null = null;
  try {
    return differentiable(
      'crossEntropy',
      [logits, targets],
      () => {
        const r = nn.crossEntropyForward(logits, targets, opts);
        lse = r.lse;
        return r.loss;
      },
      () => ({
        saved: [logits, targets, lse as Tensor<'float32'>],
        rule: (g, [l, t, s]) => [k.crossEntropyBackward(l, t as Tensor<'int32'>, s as Tensor<'float32'>, g as Tensor<'float32'>, opts), null],
      }),
    );
  } finally {
    (lse as Tensor<'float32'> | null)?.dispose();
  }
}

export function embedding<D extends DType>(weight: T<D>, ids: Tensor<'int32'>): T<D> {
  return differentiable('embedding', [weight, ids], () => nn.embedding(weight, ids), () => ({
    saved: [ids],
    rule: (g, [i]) => [k.embeddingBackward(i as Tensor<'int32'>, g, weight.shape[0]), null],
  }));
}

export function rmsNorm<D extends DType>(x: T<D>, weight: T<D>, eps = 1e-6): T<D> {
  let rstd: Tensor | null = null;
  try {
    return differentiable(
      'rmsNorm',
      [x, weight],
      () => {
        const r = nn.rmsNormForward(x, weight, eps);
        rstd = r.rstd;
        return r.y;
      },
      () => ({
        saved: [x, weight, rstd as Tensor],
        rule: (g, [sx, sw, sr]) => {
          const { gx, gw } = k.rmsNormBackward(sx as T<D>, sw as T<D>, sr as Tensor<'float32'>, g);
          return [gx, castOwned(gw, weight.dtype)];
        },
      }),
    );
  } finally {
    (rstd as Tensor | null)?.dispose();
  }
}

export function layerNorm<D extends DType>(x: T<D>, weight: T<D>, bias: T<D>, eps = 1e-5): T<D> {
  let stats: Tensor[] = [];
  try {
    return differentiable(
      'layerNorm',
      [x, weight, bias],
      () => {
        const r = nn.layerNormForward(x, weight, bias, eps);
        stats = [r.mean, r.rstd];
        return r.y;
      },
      () => ({
        saved: [x, weight, ...stats],
        rule: (g, [sx, sw, sm, sr]) => {
          const { gx, gw, gb } = k.layerNormBackward(sx as T<D>, sw as T<D>, sm as Tensor<'float32'>, sr as Tensor<'float32'>, g);
          return [gx, castOwned(gw, weight.dtype), castOwned(gb, weight.dtype)];
        },
      }),
    );
  } finally {
    stats.forEach((t) => t.dispose());
  }
}

export function rope<D extends DType>(x: T<D>, positions: Tensor<'int32'>, opts?: nn.RopeOptions): T<D> {
  return differentiable('rope', [x, positions], () => nn.rope(x, positions, opts), () => ({
    saved: [positions],
    rule: (g, [p]) => [k.ropeBackward(g, p as Tensor<'int32'>, opts), null],
  }));
}

export function attention<D extends DType>(q: T<D>, kk: T<D>, v: T<D>, opts?: nn.AttentionOptions): T<D> {
  let lse: Tensor | null = null;
  try {
    return differentiable(
      'attention',
      [q, kk, v],
      () => {
        const r = nn.attentionForward(q, kk, v, opts);
        lse = r.lse;
        return r.out;
      },
      (out) => ({
        saved: [q, kk, v, out, lse as Tensor],
        rule: (g, [sq, sk, sv, so, sl]) => {
          const r = k.attentionBackward(sq as T<D>, sk as T<D>, sv as T<D>, so as T<D>, sl as Tensor<'float32'>, g, opts);
          return [r.gq, r.gk, r.gv];
        },
      }),
    );
  } finally {
    (lse as Tensor | null)?.dispose();
  }
}

/** t cast to dtype (t disposed when a copy was made). */
function castOwned(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  try {
    return t.cast(dtype);
  } finally {
    t.dispose();
  }
}
