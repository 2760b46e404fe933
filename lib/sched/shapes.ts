// Shared curve pieces: two-point interpolation and the warmup / decay shapes of
// WSD (HF transformers `get_wsd_schedule`, MiniCPM's exponential decay), also
// used by the power scheduler's decay phase.
import { cos } from './cos';
import type { DecayShape, WarmupShape } from './spec';

/**
 * from -> to over `steps` (t clamped to [0, steps]); exact at both ends.
 * The value is computed from the endpoint nearer in magnitude to it, so a ramp
 * from 0 is `to * (t / steps)` and a decay to 0 is `from * ((steps - t) / steps)`
 * (HF's linear warmup and decay, to the last bit).
 */
export function lerp(from: number, to: number, t: number, steps: number): number {
  if (t <= 0) return from;
  if (t >= steps) return to;
  return Math.abs(to) >= Math.abs(from) ? from + (to - from) * (t / steps) : to + (from - to) * ((steps - t) / steps);
}

/** Warmup factor in [0, 1] at progress p in [0, 1] (HF `_get_wsd_scheduler_lambda`). */
export function warmupFactor(shape: WarmupShape, p: number): number {
  switch (shape) {
    case 'linear':
      return p;
    case 'cosine':
      return 0.5 * (1.0 - cos(Math.PI * p));
    case '1-sqrt':
      return 1.0 - Math.sqrt(1.0 - p);
  }
}

/**
 * Decay factor at progress p in [0, 1], `into` steps after the decay began:
 * linear 1-p, cosine (1+cos(pi p))/2, 1-sqrt (Hägele et al. 2024), 1-square 1-p^2,
 * exp 0.5^(into/halfLife) (MiniCPM, Hu et al. 2024).
 */
export function decayFactor(shape: DecayShape, p: number, into: number, halfLife: number | undefined): number {
  switch (shape) {
    case 'linear':
      return 1.0 - p;
    case 'cosine':
      // HF: 0.5 * (1 + cos(pi * num_cycles * 2 * p)) with num_cycles = 0.5; pi*0.5*2 == pi exactly.
      return 0.5 * (1.0 + cos(Math.PI * p));
    case '1-sqrt':
      return 1.0 - Math.sqrt(p);
    case '1-square':
      return 1.0 - p * p;
    case 'exp':
      return Math.pow(0.5, into / (halfLife as number));
  }
}

/** HF's rescaling to a floor: f * (1 - r) + r, clipped at 0. */
export function withMinRatio(f: number, r: number): number {
  return Math.max(0.0, f * (1.0 - r) + r);
}

export const WARMUP_SHAPES: readonly WarmupShape[] = ['linear', 'cosine', '1-sqrt'];
export const DECAY_SHAPES: readonly DecayShape[] = ['linear', 'cosine', '1-sqrt', '1-square', 'exp'];
