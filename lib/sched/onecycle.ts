// PyTorch's closed-form cyclic schedules, with PyTorch 1.13's arithmetic so the
// values equal get_last_lr() after k steps: CosineAnnealingWarmRestarts
// (Loshchilov & Hutter, SGDR) and OneCycleLR (Smith & Topin, super-convergence),
// whose momentum / beta1 cycling is a second schedule (oneCycleMomentum).
import { cos } from './cos';
import type { Anneal, CosineWarmRestarts, Family, Fields, OneCycle, OneCycleMomentum } from './spec';

export const cosineWarmRestartsFamily: Family<CosineWarmRestarts> = {
  normalize: (f) => ({
    kind: 'cosineWarmRestarts',
    base: f.num('base'),
    t0: f.steps('t0', 1),
    tMult: f.steps('tMult', 1, 1),
    etaMin: f.num('etaMin', { def: 0 }),
  }),
  at: (s, t) => {
    // PyTorch counts T_cur up by one per step and, on reaching T_i, subtracts it and
    // multiplies T_i by T_mult; the same integers in closed form:
    let tCur = t;
    let tI = s.t0;
    if (s.tMult === 1) tCur = t % s.t0;
    else {
      while (tCur >= tI) {
        tCur -= tI;
        tI *= s.tMult;
      }
    }
    // eta_min + (base - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
    return s.etaMin + ((s.base - s.etaMin) * (1 + cos((Math.PI * tCur) / tI))) / 2;
  },
};

interface Phase {
  end: number;
  /** indices into [initial, max, min] (lr) or [max, base] (momentum) */
  lr: [number, number];
  mom: [number, number];
}

/** OneCycleLR's phases: end steps computed as PyTorch does (floats). */
function phases(totalSteps: number, pctStart: number, threePhase: boolean): Phase[] {
  const INITIAL = 0, MAX = 1, MIN = 2;
  const MMAX = 0, MBASE = 1;
  if (threePhase) {
    return [
      { end: pctStart * totalSteps - 1, lr: [INITIAL, MAX], mom: [MMAX, MBASE] },
      { end: 2 * pctStart * totalSteps - 2, lr: [MAX, INITIAL], mom: [MBASE, MMAX] },
      { end: totalSteps - 1, lr: [INITIAL, MIN], mom: [MMAX, MMAX] },
    ];
  }
  return [
    { end: pctStart * totalSteps - 1, lr: [INITIAL, MAX], mom: [MMAX, MBASE] },
    { end: totalSteps - 1, lr: [MAX, MIN], mom: [MBASE, MMAX] },
  ];
}

function anneal(kind: Anneal, start: number, end: number, pct: number): number {
  // PyTorch: _annealing_cos end + (start - end) / 2 * (cos(pi pct) + 1); _annealing_linear (end - start) * pct + start.
  if (kind === 'cos') return end + ((start - end) / 2.0) * (cos(Math.PI * pct) + 1);
  return (end - start) * pct + start;
}

/**
 * OneCycleLR.get_lr at step t: the phase holding t, pct = (t - start) / (end - start).
 * Past totalSteps (where PyTorch throws) the value of the last phase's end is held.
 */
function oneCycleAt(ph: Phase[], kind: Anneal, values: number[], pick: (p: Phase) => [number, number], t: number, totalSteps: number): number {
  if (t > totalSteps) return values[pick(ph[ph.length - 1])[1]];
  let start = 0;
  for (let i = 0; i < ph.length; ++i) {
    const p = ph[i];
    if (t <= p.end || i === ph.length - 1) {
      const pct = (t - start) / (p.end - start);
      const [a, b] = pick(p);
      return anneal(kind, values[a], values[b], pct);
    }
    start = p.end;
  }
  throw new Error('unreachable');
}

function cycleFields(f: Fields): { totalSteps: number; pctStart: number; threePhase: boolean; anneal: Anneal } {
  return {
    totalSteps: f.steps('totalSteps', 1),
    pctStart: f.num('pctStart', { def: 0.3, min: 0, max: 1 }),
    threePhase: f.bool('threePhase', false),
    anneal: f.oneOf<Anneal>('anneal', ['cos', 'linear'], 'cos'),
  };
}

export const oneCycleFamily: Family<OneCycle> = {
  normalize: (f) => {
    const maxLr = f.num('maxLr', { min: 0 });
    const c = cycleFields(f);
    return {
      kind: 'oneCycle',
      maxLr,
      totalSteps: c.totalSteps,
      pctStart: c.pctStart,
      divFactor: f.num('divFactor', { def: 25, min: 0, above: true }),
      finalDivFactor: f.num('finalDivFactor', { def: 1e4, min: 0, above: true }),
      threePhase: c.threePhase,
      anneal: c.anneal,
    };
  },
  at: (s, t) => {
    // initial_lr = max_lr / div_factor, min_lr = initial_lr / final_div_factor
    const initial = s.maxLr / s.divFactor;
    const values = [initial, s.maxLr, initial / s.finalDivFactor];
    return oneCycleAt(phases(s.totalSteps, s.pctStart, s.threePhase), s.anneal, values, (p) => p.lr, t, s.totalSteps);
  },
};

export const oneCycleMomentumFamily: Family<OneCycleMomentum> = {
  normalize: (f) => {
    const c = cycleFields(f);
    return {
      kind: 'oneCycleMomentum',
      ...c,
      baseMomentum: f.num('baseMomentum', { def: 0.85, min: 0, max: 1 }),
      maxMomentum: f.num('maxMomentum', { def: 0.95, min: 0, max: 1 }),
    };
  },
  at: (s, t) => oneCycleAt(phases(s.totalSteps, s.pctStart, s.threePhase), s.anneal, [s.maxMomentum, s.baseMomentum], (p) => p.mom, t, s.totalSteps),
};
