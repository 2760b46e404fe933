// kiln.sched: learning-rate schedules as pure, JSON-serializable data, evaluated
// in float64 by lrAt(spec, step, ctx); LRScheduler binds them to an optimizer's
// parameter groups; adaptive controllers produce schedules from training
// signals. The contract: ../shared/specs/schedules.md.
export type {
  Schedule,
  Kind,
  LrContext,
  WarmupShape,
  DecayShape,
  Anneal,
  Constant,
  Linear,
  Polynomial,
  Warmup,
  Cosine,
  InverseSqrt,
  Rex,
  Table,
  CosineWarmRestarts,
  OneCycle,
  OneCycleMomentum,
  Wsd,
  Power,
  DecayPhase,
  Infinite,
  InfiniteAnneal,
  Rewarm,
  Seq,
  SeqPart,
  Combine,
  Relative,
  TorchSchedule,
  TorchStepLR,
  TorchMultiStepLR,
  TorchExponentialLR,
  TorchLinearLR,
  TorchPolynomialLR,
  TorchCosineAnnealingLR,
} from './spec';
export { lrAt, trace, normalize, sameSchedule, canonicalJSON, KINDS } from './evaluate';
export {
  constant,
  linear,
  polynomial,
  warmup,
  cosine,
  inverseSqrt,
  rex,
  table,
  cosineWarmRestarts,
  oneCycle,
  oneCycleMomentum,
  wsd,
  power,
  infinite,
  rewarm,
  seq,
  mul,
  min,
  max,
  relative,
  torch,
  type OneCycleOptions,
  type WsdOptions,
  type PowerOptions,
  type InfiniteOptions,
} from './constructors';
export { LRScheduler, type Schedulable, type SchedulableGroup, type LRSchedulerOptions, type RestoreOptions, type SchedulerState } from './scheduler';
export { fromGradNorms, medianFilter, type FromGradNormsOptions } from './grad-norms';
export { fitAnnealingLaw, annealingAreas, type AnnealingLawFit, type AnnealingLawParams, type FitAnnealingLawOptions } from './annealing-law';
export { GaussianProcess, minimizeLCB, type GPOptions, type GPPrediction } from './gp';
export { fitExponential, type ExpFit } from './forecast';
export { AutoLRS, type AutoLRSOptions, type AutoLRSHooks, type AutoLRSCandidate, type AutoLRSStage } from './autolrs';
export { plot, describe, type PlotOptions, type PlotSeries } from './plot';
