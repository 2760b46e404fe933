// Warmup-stable-decay (Hu et al. 2024, MiniCPM; Hägele et al. 2024): the
// arithmetic of HF transformers `get_wsd_schedule` (lr = peak * factor; the
// factor f of warmup and decay is rescaled f*(1-r)+r with the min ratio r), plus
// the 1-square decay and MiniCPM's exponential decay 0.5^(s/halfLife).
import { DECAY_SHAPES, decayFactor, WARMUP_SHAPES, warmupFactor, withMinRatio } from './shapes';
import { clean, type DecayShape, type Family, type Fields, type Wsd } from './spec';

/** halfLife: required with the 'exp' shape, refused with the others. */
export function halfLifeOf(f: Fields, shape: DecayShape, shapeField: string): number | undefined {
  if (shape === 'exp') return f.num('halfLife', { min: 0, above: true });
  if (f.has('halfLife')) f.error(`'halfLife' is only used with ${shapeField} 'exp', not '${shape}'`);
  f.any('halfLife');
  return undefined;
}

export const wsdFamily: Family<Wsd> = {
  normalize: (f) => {
    const decayShape = f.oneOf('decayShape', DECAY_SHAPES, 'cosine');
    return clean({
      kind: 'wsd',
      peak: f.num('peak'),
      warmup: f.steps('warmup'),
      stable: f.steps('stable'),
      decay: f.steps('decay'),
      warmupShape: f.oneOf('warmupShape', WARMUP_SHAPES, 'linear'),
      decayShape,
      minRatio: f.num('minRatio', { def: 0, min: 0, max: 1 }),
      halfLife: halfLifeOf(f, decayShape, 'decayShape'),
    });
  },
  at: (s, t) => {
    const r = s.minRatio;
    if (t < s.warmup) return s.peak * withMinRatio(warmupFactor(s.warmupShape, t / Math.max(1, s.warmup)), r);
    if (t < s.warmup + s.stable) return s.peak;
    const into = Math.min(t - s.warmup - s.stable, s.decay);
    if (t < s.warmup + s.stable + s.decay) return s.peak * withMinRatio(decayFactor(s.decayShape, into / Math.max(1, s.decay), into, s.halfLife), r);
    // After the decay: HF holds r (every HF shape ends at 0); the exp shape holds its last value.
    return s.decayShape === 'exp' ? s.peak * withMinRatio(decayFactor('exp', 1, s.decay, s.halfLife), r) : s.peak * r;
  },
};
