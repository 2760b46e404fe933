// kiln.train: the training loop, evaluation, checkpoints and their helpers.
export { fit, Trainer, type FitOptions, type FitResult, type CheckpointOptions, type TrainerSnapshot } from './fit';
export { evaluate, type EvalOptions, type EvalResult } from './evaluate';
export { saveCheckpoint, loadCheckpoint, listCheckpoints, resolveCheckpoint, type CheckpointState, type CheckpointContents } from './checkpoint';
export { gradNorm, clipGradNorm, scaleGrads, type GradNorm } from './grads';
export { layerDropRate, layerDropoutPlan } from './layer-dropout';
export { MetricsLog, type StepRecord } from './metrics';
export type { LanguageModel, TrainableOptimizer, OptimizerStateDict } from './types';
