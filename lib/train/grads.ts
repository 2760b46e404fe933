// Global gradient norm and clipping over a model's parameters (the trainer's
// clipGradNorm and NaN guard).
import { noGrad } from '../autograd/mode';
import { tidy } from '../lifetime';
import * as ew from '../ops/elementwise';
import * as red from '../ops/reduce';
import type { Tensor } from '../tensor';

export interface GradNorm {
  /** sqrt(sum over parameters of ||grad||^2), in float64 over per-tensor float32 sums. */
  norm: number;
  /** False when a gradient holds inf or NaN (norm is then not finite). */
  finite: boolean;
}

/** The global L2 norm of the parameters' gradients (parameters without a gradient count 0). */
export function gradNorm(params: readonly Tensor[]): GradNorm {
  let sumsq = 0;
  noGrad(() =>
    tidy(() => {
      for (const p of params) {
        const g = p.grad;
        if (g === null || g.size === 0) continue;
        sumsq += red.sum(ew.mul(g, g)).item();
      }
    }),
  );
  return { norm: Math.sqrt(sumsq), finite: Number.isFinite(sumsq) };
}

/** Multiplies every gradient by `factor` in place. */
export function scaleGrads(params: readonly Tensor[], factor: number): void {
  noGrad(() =>
    tidy(() => {
      for (const p of params) if (p.grad !== null) p.grad.copy_(ew.mul(p.grad, factor));
    }),
  );
}

/**
 * Clips the global gradient norm to maxNorm (PyTorch's clip_grad_norm_: scale by
 * maxNorm / (norm + 1e-6) when norm > maxNorm). Returns the norm before clipping.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): GradNorm & { clipped: boolean } {
  const n = gradNorm(params);
  const clipped = n.finite && n.norm > maxNorm;
  if (clipped) scaleGrads(params, maxNorm / (n.norm + 1e-6));
  return { ...n, clipped };
}
