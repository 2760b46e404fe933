// Schedules for continual pre-training (Ibrahim et al. 2024, "Simple and
// Scalable Strategies to Continually Pre-train Large Language Models"; Singh et
// al. 2025, "Beyond Cosine Decay"): the infinite schedule (warmup -> cooldown to
// a constant -> constant, open-ended -> optional short exponential anneal) and
// re-warming to a new peak followed by any decay.
import { cos } from './cos';
import { lerp } from './shapes';
import { Fields, clean, type Family, type Infinite, type InfiniteAnneal, type Rewarm } from './spec';

export const infiniteFamily: Family<Infinite> = {
  normalize: (f) => {
    const warmup = f.steps('warmup');
    const cooldown = f.steps('cooldown');
    const raw = f.object('anneal');
    let anneal: InfiniteAnneal | undefined;
    if (raw) {
      const a = new Fields(f.kind, raw, `${f.path ? f.path + '.' : ''}anneal`);
      anneal = { start: a.steps('start', warmup + cooldown), steps: a.steps('steps', 1), min: a.num('min', { min: 0, above: true }) };
      a.done();
    }
    return clean({
      kind: 'infinite',
      peak: f.num('peak'),
      warmup,
      cooldown,
      constant: f.num('constant', { min: 0, above: true }),
      cooldownShape: f.oneOf('cooldownShape', ['cosine', 'inverseSqrt'] as const, 'cosine'),
      alpha: f.num('alpha', { def: 1, min: 0, above: true }),
      anneal,
    });
  },
  at: (s, t) => {
    // warmup: eta_max * t / W
    if (t < s.warmup) return lerp(0, s.peak, t, s.warmup);
    if (t < s.warmup + s.cooldown) {
      const x = (t - s.warmup) / s.cooldown;
      // cosine: eta_const + (eta_max - eta_const) (1 + cos(pi x)) / 2
      if (s.cooldownShape === 'cosine') return s.constant + ((s.peak - s.constant) * (1 + cos(Math.PI * x))) / 2;
      // inverse sqrt: eta_max + (eta_const - eta_max) h(x) / h(1), h(x) = 1 / sqrt(1 + alpha x) - 1
      const h = (u: number): number => 1 / Math.sqrt(1 + s.alpha * u) - 1;
      return s.peak + ((s.constant - s.peak) * h(x)) / h(1);
    }
    const a = s.anneal;
    // anneal: eta_const * (eta_min / eta_const)^(min(t - start, A) / A), then eta_min
    if (a && t >= a.start) return t - a.start >= a.steps ? a.min : s.constant * Math.pow(a.min / s.constant, (t - a.start) / a.steps);
    return s.constant;
  },
};

export const rewarmFamily: Family<Rewarm> = {
  normalize: (f, sub) => ({
    kind: 'rewarm',
    from: f.num('from', { def: 0 }),
    peak: f.num('peak'),
    warmup: f.steps('warmup'),
    then: sub(f.any('then'), `${f.path ? f.path + '.' : ''}then`),
  }),
  // Linear re-warm from `from` to the new peak over W steps (Gupta et al. 2023,
  // "Continual Pre-Training of LLMs: how to re-warm"), then `then` at step t - W.
  at: (s, t, ctx, sub) => (t < s.warmup ? lerp(s.from, s.peak, t, s.warmup) : sub(s.then, t - s.warmup, ctx)),
};
