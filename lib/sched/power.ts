// The Power scheduler (Shen et al. 2024, IBM, "Power Scheduler: a batch size and
// token number agnostic learning rate scheduler"): lr = min(max, a * n^b) with n
// the tokens seen (b < 0), a linear warmup to the value at the end of warmup,
// and an optional final decay phase with a pluggable shape. The paper's batch
// size factor beta folds into `a`.
import { DECAY_SHAPES, decayFactor, withMinRatio } from './shapes';
import { clean, Fields, type DecayPhase, type Family, type Power } from './spec';
import { halfLifeOf } from './wsd';

export const powerFamily: Family<Power> = {
  normalize: (f) => {
    const warmup = f.steps('warmup');
    const raw = f.object('decay');
    let decay: DecayPhase | undefined;
    if (raw) {
      const d = new Fields(f.kind, raw, `${f.path ? f.path + '.' : ''}decay`);
      const shape = d.oneOf('shape', DECAY_SHAPES, 'linear');
      decay = clean({ start: d.steps('start', warmup), steps: d.steps('steps', 1), shape, minRatio: d.num('minRatio', { def: 0, min: 0, max: 1 }), halfLife: halfLifeOf(d, shape, 'decay.shape') });
      d.done();
    }
    return clean({
      kind: 'power',
      a: f.num('a', { min: 0, above: true }),
      b: f.num('b', { max: 0 }),
      max: f.num('max', { min: 0, above: true }),
      warmup,
      tokensPerStep: f.num('tokensPerStep', { min: 0, above: true }),
      decay,
    });
  },
  at: (s, t, ctx) => {
    const n = ctx.tokens ?? t * s.tokensPerStep;
    const lr = (tokens: number): number => Math.min(s.max, s.a * Math.pow(tokens, s.b));
    const nWarm = s.warmup * s.tokensPerStep;
    if (n < nWarm) return (n / nWarm) * lr(nWarm);
    const d = s.decay;
    if (d) {
      const n0 = d.start * s.tokensPerStep;
      if (n >= n0) {
        const into = Math.min((n - n0) / s.tokensPerStep, d.steps); // steps into the decay
        return lr(n0) * withMinRatio(decayFactor(d.shape, into / d.steps, into, d.halfLife), d.minRatio);
      }
    }
    return lr(n);
  },
};
