// AutoLRS (Jin et al. 2021, "AutoLRS: Automatic Learning-Rate Schedule by
// Bayesian Optimization on the Fly"): training is cut into stages of tau steps.
// In each stage the controller checkpoints model + optimizer, and k times lets
// a Gaussian process with a lower-confidence-bound acquisition over log-lr
// propose an lr, trains tau' << tau steps with it, fits L(t) = a exp(b t) + c
// (b < 0) to the losses, predicts L(tau), and restores the checkpoint. It then
// trains tau steps with the lr of the best prediction; tau grows between stages.
// The trainer supplies checkpoint / restore / train as callbacks.
import { ValueError } from '../errors';
import { uint32Stream } from '../prng';
import { constant, seq } from './constructors';
import { fitExponential } from './forecast';
import { GaussianProcess, minimizeLCB } from './gp';
import type { Schedule } from './spec';

export interface AutoLRSOptions {
  /** The lr search range (log-uniform). */
  minLr: number;
  maxLr: number;
  /** tau of the first stage; default 1000. */
  stageSteps?: number;
  /** tau is multiplied by this after each stage; default 2. */
  growth?: number;
  /** tau never exceeds this; default unbounded. */
  maxStageSteps?: number;
  /** Candidate lrs per stage (k); default 10. */
  candidates?: number;
  /** tau' / tau: the steps each candidate trains; default 0.25 (shorter windows bias the forecast towards large lrs). */
  searchFraction?: number;
  /** Candidates drawn at random (log-uniform) before the GP proposes; default 2. */
  initialCandidates?: number;
  /** LCB exploration weight: mean - kappa * std; default 2. */
  kappa?: number;
  /** Seed of the random initial candidates; default 0. */
  seed?: number;
  /** Forecasts never go below this (the loss's lower bound; null for none); default 0. */
  lossFloor?: number | null;
}

/** What AutoLRS needs from the trainer. */
export interface AutoLRSHooks<C> {
  /** Saves model and optimizer state. */
  checkpoint(): C | Promise<C>;
  /** Puts back a saved state. */
  restore(checkpoint: C): void | Promise<void>;
  /** Trains `steps` updates at `lr` and returns the training loss after each (NaN/Infinity when it diverged). */
  train(lr: number, steps: number): readonly number[] | Promise<readonly number[]>;
}

export interface AutoLRSCandidate {
  lr: number;
  losses: number[];
  /** L(tau) forecast from the exponential fit (NaN when the run diverged). */
  predicted: number;
}

export interface AutoLRSStage {
  index: number;
  /** tau: the steps trained with the chosen lr */
  steps: number;
  /** tau': the steps each candidate trained */
  searchSteps: number;
  lr: number;
  candidates: AutoLRSCandidate[];
  /** the losses of the tau committed steps */
  losses: number[];
}

/** A seeded generator in [0, 1) (32-bit resolution is plenty for candidate lrs). */
function rng(seed: number): () => number {
  const next = uint32Stream(seed);
  return () => next() / 4294967296;
}

function positiveInt(where: string, name: string, v: number, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min) throw new ValueError(`kiln: ${where}: '${name}' must be an integer >= ${min}, got ${v}`);
  return v;
}

export class AutoLRS {
  readonly minLr: number;
  readonly maxLr: number;
  readonly growth: number;
  readonly maxStageSteps: number;
  readonly candidates: number;
  readonly searchFraction: number;
  readonly initialCandidates: number;
  readonly kappa: number;
  readonly lossFloor: number | null;
  /** The stages run so far. */
  readonly stages: AutoLRSStage[] = [];
  private tau: number;
  private readonly random: () => number;

  constructor(options: AutoLRSOptions) {
    const where = 'sched.AutoLRS';
    const o = options ?? ({} as AutoLRSOptions);
    const pos = (name: string, v: unknown): number => {
      if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) throw new ValueError(`kiln: ${where}: '${name}' must be a finite number > 0, got ${String(v)}`);
      return v;
    };
    this.minLr = pos('minLr', o.minLr);
    this.maxLr = pos('maxLr', o.maxLr);
    if (!(this.maxLr > this.minLr)) throw new ValueError(`kiln: ${where}: 'maxLr' (${this.maxLr}) must be > 'minLr' (${this.minLr})`);
    this.tau = positiveInt(where, 'stageSteps', o.stageSteps ?? 1000, 2);
    this.growth = pos('growth', o.growth ?? 2);
    this.maxStageSteps = o.maxStageSteps === undefined ? Infinity : positiveInt(where, 'maxStageSteps', o.maxStageSteps, 2);
    this.candidates = positiveInt(where, 'candidates', o.candidates ?? 10);
    this.searchFraction = pos('searchFraction', o.searchFraction ?? 0.25);
    if (this.searchFraction > 1) throw new ValueError(`kiln: ${where}: 'searchFraction' must be <= 1, got ${this.searchFraction}`);
    this.initialCandidates = positiveInt(where, 'initialCandidates', o.initialCandidates ?? 2);
    this.kappa = o.kappa ?? 2;
    if (!(this.kappa >= 0 && Number.isFinite(this.kappa))) throw new ValueError(`kiln: ${where}: 'kappa' must be a finite number >= 0, got ${this.kappa}`);
    this.random = rng(o.seed ?? 0);
    this.lossFloor = o.lossFloor === undefined ? 0 : o.lossFloor;
    if (this.lossFloor !== null && !Number.isFinite(this.lossFloor)) throw new ValueError(`kiln: ${where}: 'lossFloor' must be a finite number or null, got ${this.lossFloor}`);
  }

  /** tau of the next stage. */
  get stageSteps(): number {
    return this.tau;
  }

  /** Steps trained with chosen lrs so far (the search steps are not counted: they are undone). */
  get stepsTrained(): number {
    return this.stages.reduce((a, s) => a + s.steps, 0);
  }

  private lrOf(u: number): number {
    return Math.exp(Math.log(this.minLr) + u * (Math.log(this.maxLr) - Math.log(this.minLr)));
  }

  /** Runs one stage (search, then tau steps with the best lr); `limit` caps tau (the end of training). */
  async stage<C>(hooks: AutoLRSHooks<C>, limit = Infinity): Promise<AutoLRSStage> {
    const tau = Math.max(1, Math.min(this.tau, limit));
    const searchSteps = Math.max(2, Math.min(tau, Math.round(tau * this.searchFraction)));
    const saved = await hooks.checkpoint();
    const cands: AutoLRSCandidate[] = [];
    const us: number[] = [];
    const gp = new GaussianProcess();
    // GP targets: log of the forecasts, clipped at the median first loss of the candidates
    // (about where the stage started: ending above it is as bad as it gets; a diverged run
    // counts as that) and at 1e-3 of it (a forecast that hit the loss floor is not that good).
    const targets = (): number[] => {
      const first = cands.map((c) => c.losses[0]).filter(Number.isFinite).sort((a, b) => a - b);
      const cap = first.length ? first[(first.length - 1) >> 1] : 1;
      return cands.map((c) => Math.log(Math.max(1e-3 * cap, Number.isFinite(c.predicted) ? Math.min(c.predicted, cap) : cap)));
    };
    for (let i = 0; i < this.candidates; ++i) {
      let u: number;
      if (i < this.initialCandidates) u = this.random();
      else {
        gp.fit(us, targets());
        u = minimizeLCB(gp, 0, 1, this.kappa);
        if (us.some((x) => Math.abs(x - u) < 1e-3)) u = this.random(); // already tried: explore
      }
      const lr = this.lrOf(u);
      const losses = Array.from(await hooks.train(lr, searchSteps));
      await hooks.restore(saved);
      const diverged = losses.length === 0 || losses.some((l) => !Number.isFinite(l));
      const predicted = diverged ? NaN : fitExponential(losses, this.lossFloor === null ? {} : { floor: this.lossFloor }).at(tau);
      cands.push({ lr, losses, predicted });
      us.push(u);
    }
    // The best candidate by the GP's posterior mean (smoother than the noisy forecasts themselves).
    gp.fit(us, targets());
    let best = -1;
    let bestMean = Infinity;
    cands.forEach((c, i) => {
      if (!Number.isFinite(c.predicted)) return;
      const m = gp.predict(us[i]).mean;
      if (m < bestMean) [best, bestMean] = [i, m];
    });
    // Every candidate diverged: the smallest lr tried.
    const lr = best >= 0 ? cands[best].lr : Math.min(...cands.map((c) => c.lr));
    const losses = Array.from(await hooks.train(lr, tau));
    const st: AutoLRSStage = { index: this.stages.length, steps: tau, searchSteps, lr, candidates: cands, losses };
    this.stages.push(st);
    this.tau = Math.min(Math.round(this.tau * this.growth), this.maxStageSteps);
    if (this.tau < 2) this.tau = 2;
    return st;
  }

  /** Runs stages until `totalSteps` steps have been trained with chosen lrs (the last stage is cut to fit). */
  async run<C>(totalSteps: number, hooks: AutoLRSHooks<C>): Promise<AutoLRSStage[]> {
    positiveInt('sched.AutoLRS.run', 'totalSteps', totalSteps);
    const out: AutoLRSStage[] = [];
    while (this.stepsTrained < totalSteps) out.push(await this.stage(hooks, totalSteps - this.stepsTrained));
    return out;
  }

  /** The lrs chosen so far as a schedule (constant per stage), e.g. to plot or to replay the run. */
  schedule(): Schedule {
    if (this.stages.length === 0) throw new ValueError('kiln: sched.AutoLRS.schedule: no stage has run yet');
    return seq(this.stages.map((s) => ({ schedule: constant(s.lr), steps: s.steps })));
  }
}
