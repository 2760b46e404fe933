// kiln.train.fit and Trainer: the training loop. Per optimizer step: `accumulate`
// micro-batches (forward, loss / accumulate, backward), the global gradient
// norm (clipped to clipGradNorm), a NaN/Inf guard (a step whose loss or
// gradients are not finite changes no weight and is counted), the optimizer
// update, the schedule's next lr; evaluation, metrics, checkpoints and plots on
// their cadence. Async: yields to the event loop between steps; an AbortSignal
// stops after the current step (with a checkpoint when checkpoints are on).
// Everything random is a function of (seed, step), and checkpoints hold every
// piece of state, so N steps + resume + M steps equals N + M steps bit for bit.
// Trainer also exposes single steps and in-memory snapshots, which is what an
// outer controller such as sched.AutoLRS drives (autoLRSHooks()).
import * as path from 'node:path';
import { ValueError } from '../errors';
import { keep, tidy } from '../lifetime';
import * as ew from '../autograd/grad-elementwise';
import { getRngState, setRngState, type RngState } from '../random';
import type { AutoLRSHooks } from '../sched/autolrs';
import { LRScheduler, type SchedulerState } from '../sched/scheduler';
import type { Schedule } from '../sched/spec';
import type { TokenDataset } from '../data/dataset';
import type { BatcherState, TokenBatcher } from '../data/batcher';
import { Tensor } from '../tensor';
import { loadCheckpoint, saveCheckpoint, type CheckpointState } from './checkpoint';
import { evaluate } from './evaluate';
import { clipGradNorm, gradNorm } from './grads';
import { layerDropoutPlan } from './layer-dropout';
import { MetricsLog, type StepRecord } from './metrics';
import { ProgressLine } from './progress';
import type { LanguageModel, OptimizerStateDict, TrainableOptimizer } from './types';

export interface CheckpointOptions {
  dir: string;
  /** Save every this many steps (and at the end, and on abort). */
  every: number;
  /** Keep the newest this many (default 3; 0 keeps all). */
  keep?: number;
}

export interface FitOptions {
  model: LanguageModel;
  data: TokenDataset;
  optimizer: TrainableOptimizer;
  /** An lr schedule (one spec, or one per parameter group); its lr multiplies or replaces each group's lr as the spec says. */
  schedule?: Schedule | readonly Schedule[];
  /** Optimizer steps to run in total (counting steps done before a resume). */
  steps?: number;
  /** Or: train until this many tokens (rounded up to whole steps). */
  tokens?: number;
  /** Rows per micro-batch. */
  batchSize: number;
  /** Tokens per row. */
  ctx: number;
  /** Micro-batches per optimizer step (default 1). */
  accumulate?: number;
  /** Clip the global gradient norm to this (default: no clipping; the norm is still recorded). */
  clipGradNorm?: number | null;
  /** Evaluate on the validation split every this many steps (default: only at the end; 0: never). */
  evalEvery?: number;
  /** Validation batches per evaluation (default 8). */
  evalBatches?: number;
  checkpoint?: CheckpointOptions;
  /** A checkpoint folder, or a checkpoint root holding latest.json, to continue from. */
  resumeFrom?: string;
  /** Shuffle and layer-dropout seed (default 0). */
  seed?: number;
  /** LayerSkip layer dropout: the drop rate of the last layer (rates rise with depth from 0). Default 0. */
  layerDropout?: number;
  /** Folder for metrics.jsonl and the SVG curves (default: the checkpoint dir, else none). */
  logDir?: string;
  /** A progress line on stderr (default: when stderr is a TTY). */
  progress?: boolean;
  signal?: AbortSignal;
  /** Called after every step (awaited). */
  onStep?: (record: StepRecord) => void | Promise<void>;
}

export interface FitResult {
  /** Steps done in total (including those before a resume). */
  steps: number;
  tokensSeen: number;
  /** Steps whose update was skipped because the loss or a gradient was not finite. */
  skippedSteps: number;
  aborted: boolean;
  /** Mean training loss of the last step. */
  finalLoss: number;
  /** The last evaluation, if any. */
  eval: { loss: number; perplexity: number } | null;
  /** Global gradient norm of each step of this run (for sched.fromGradNorms). */
  gradNorms: number[];
  records: StepRecord[];
  /** The last checkpoint written, if any. */
  checkpoint: string | null;
}

function positiveInt(name: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new ValueError(`kiln: train.fit: ${name} must be a positive integer, got ${String(v)}`);
  return v as number;
}

/** The optimizer's state dict split into JSON and named tensors. */
function splitOptimizerState(sd: OptimizerStateDict): { json: CheckpointState['optimizer']; tensors: Record<string, Tensor> } {
  const tensors: Record<string, Tensor> = {};
  const steps: Record<string, number> = {};
  for (const [i, s] of Object.entries(sd.state)) {
    for (const [k, v] of Object.entries(s as Record<string, unknown>)) {
      if (v instanceof Tensor) tensors[`state.${i}.${k}`] = v;
      else if (k === 'step' && typeof v === 'number') steps[i] = v;
    }
  }
  return { json: { param_groups: sd.param_groups, steps }, tensors };
}

function joinOptimizerState(json: CheckpointState['optimizer'], tensors: Record<string, Tensor>): OptimizerStateDict {
  const state: Record<number, Record<string, unknown>> = {};
  for (const [i, step] of Object.entries(json.steps ?? {})) state[Number(i)] = { step };
  for (const [key, t] of Object.entries(tensors)) {
    const m = /^state\.(\d+)\.(\w+)$/.exec(key);
    if (!m) throw new ValueError(`kiln: train.fit: unexpected tensor '${key}' in optimizer.safetensors`);
    (state[Number(m[1])] ??= {})[m[2]] = t;
  }
  return { state: state as OptimizerStateDict['state'], param_groups: json.param_groups };
}

/** A model config as a canonical string without its device (a checkpoint resumes on any device). */
function comparableConfig(c: Readonly<Record<string, unknown>> | undefined): string | null {
  if (!c) return null;
  return JSON.stringify(Object.entries(c).filter(([k]) => k !== 'device').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A snapshot of training state held in memory (valid until the trainer's next snapshot()). */
export interface TrainerSnapshot {
  readonly step: number;
  readonly tokensSeen: number;
  readonly skippedSteps: number;
  readonly model: Record<string, Tensor>;
  readonly optimizer: OptimizerStateDict;
  readonly batcher: BatcherState;
  readonly scheduler: SchedulerState | null;
  readonly rng: RngState;
}

export class Trainer {
  readonly model: LanguageModel;
  readonly data: TokenDataset;
  readonly optimizer: TrainableOptimizer;
  /** Steps the run ends at. */
  readonly totalSteps: number;
  /** Optimizer steps done (including those before a resume). */
  step = 0;
  tokensSeen = 0;
  skippedSteps = 0;
  scheduler: LRScheduler | null = null;
  readonly log: MetricsLog;
  /** Global gradient norm of each step run by this trainer. */
  readonly gradNorms: number[] = [];
  lastCheckpoint: string | null = null;
  lastEval: { loss: number; perplexity: number } | null = null;
  private readonly opts: FitOptions;
  private readonly params: Tensor[];
  private readonly batcher: TokenBatcher;
  private readonly batchSize: number;
  private readonly ctx: number;
  private readonly accumulate: number;
  private readonly seed: number;
  private readonly clip: number | null;
  private readonly pDrop: number;
  private readonly nLayers: number | undefined;
  private readonly evalBatches: number;
  private readonly run_: Record<string, unknown>;
  private readonly progress: ProgressLine | null;
  private startTime = performance.now();
  private startTokens = 0;
  private lastLoss = NaN;
  private snapshotHeld: TrainerSnapshot | null = null;

  constructor(opts: FitOptions) {
    const op = 'train.fit';
    if (opts === null || typeof opts !== 'object') throw new ValueError(`kiln: ${op}: expected an options object`);
    const { model, data, optimizer } = opts;
    if (!model || typeof model.forward !== 'function') throw new ValueError(`kiln: ${op}: 'model' must be a language model (forward(tokens, { targets }) -> { loss })`);
    if (!data || typeof data.batcher !== 'function') throw new ValueError(`kiln: ${op}: 'data' must be a kiln.data.TokenDataset`);
    if (!optimizer || typeof optimizer.step !== 'function' || !Array.isArray(optimizer.paramGroups)) throw new ValueError(`kiln: ${op}: 'optimizer' must be a kiln.optim optimizer`);
    this.opts = opts;
    this.model = model;
    this.data = data;
    this.optimizer = optimizer;
    this.batchSize = positiveInt('batchSize', opts.batchSize);
    this.ctx = positiveInt('ctx', opts.ctx);
    this.accumulate = positiveInt('accumulate', opts.accumulate ?? 1);
    this.seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) throw new ValueError(`kiln: ${op}: seed must be a non-negative integer, got ${String(opts.seed)}`);
    if ((opts.steps === undefined) === (opts.tokens === undefined)) throw new ValueError(`kiln: ${op}: give exactly one of 'steps' and 'tokens'`);
    this.totalSteps = opts.steps !== undefined ? positiveInt('steps', opts.steps) : Math.ceil(positiveInt('tokens', opts.tokens) / this.tokensPerStep);
    this.clip = opts.clipGradNorm ?? null;
    if (this.clip !== null && !(typeof this.clip === 'number' && this.clip > 0)) throw new ValueError(`kiln: ${op}: clipGradNorm must be a number > 0 or null, got ${String(this.clip)}`);
    this.pDrop = opts.layerDropout ?? 0;
    if (!(this.pDrop >= 0 && this.pDrop < 1)) throw new ValueError(`kiln: ${op}: layerDropout must be in [0, 1), got ${String(this.pDrop)}`);
    this.nLayers = model.config?.nLayers;
    if (this.pDrop > 0 && !Number.isSafeInteger(this.nLayers)) throw new ValueError(`kiln: ${op}: layerDropout needs a model with config.nLayers`);
    this.evalBatches = positiveInt('evalBatches', opts.evalBatches ?? 8);
    const ck = opts.checkpoint;
    if (ck) {
      if (typeof ck.dir !== 'string' || ck.dir === '') throw new ValueError(`kiln: ${op}: checkpoint.dir must be a folder path`);
      positiveInt('checkpoint.every', ck.every);
    }
    this.run_ = { batchSize: this.batchSize, ctx: this.ctx, accumulate: this.accumulate, seed: this.seed, layerDropout: this.pDrop };
    this.params = model.parameters();
    this.batcher = data.batcher('train', { batchSize: this.batchSize, ctx: this.ctx, seed: this.seed, device: this.params[0]?.device });
    if (opts.resumeFrom !== undefined) this.resume(opts.resumeFrom);
    else if (opts.schedule !== undefined) this.scheduler = new LRScheduler(optimizer, opts.schedule as Schedule);
    this.log = new MetricsLog(opts.logDir ?? ck?.dir ?? null, opts.resumeFrom !== undefined);
    if (opts.resumeFrom !== undefined) this.log.truncate(this.step);
    this.progress = (opts.progress ?? process.stderr.isTTY === true) ? new ProgressLine() : null;
    this.startTokens = this.tokensSeen;
  }

  get tokensPerStep(): number {
    return this.batchSize * this.ctx * this.accumulate;
  }

  /** Reads and checks a checkpoint completely before changing anything, then loads it. */
  private resume(from: string): void {
    const op = 'train.fit';
    const c = loadCheckpoint(from);
    try {
      const s = c.state;
      const mismatch = Object.entries(this.run_).filter(([k, v]) => (s.run as Record<string, unknown>)?.[k] !== v);
      if (mismatch.length) {
        throw new ValueError(`kiln: ${op}: checkpoint ${c.dir} was made with ${mismatch.map(([k]) => `${k} = ${String((s.run as Record<string, unknown>)[k])}`).join(', ')}; this run has ${mismatch.map(([k, v]) => `${k} = ${String(v)}`).join(', ')}`);
      }
      const want = comparableConfig(this.model.config as Record<string, unknown> | undefined);
      const have = comparableConfig(s.modelConfig ?? undefined);
      if (want !== null && have !== null && want !== have) throw new ValueError(`kiln: ${op}: checkpoint ${c.dir} holds a model with config ${JSON.stringify(s.modelConfig)}, not ${JSON.stringify(this.model.config)}`);
      if (s.step > this.totalSteps) throw new ValueError(`kiln: ${op}: checkpoint ${c.dir} is at step ${s.step}, past this run's ${this.totalSteps} steps`);
      this.model.loadStateDict(c.model);
      this.optimizer.loadStateDict(joinOptimizerState(s.optimizer, c.optimizerTensors));
      if (this.opts.schedule !== undefined) this.scheduler = LRScheduler.restore(this.optimizer, this.opts.schedule as Schedule, s.scheduler as SchedulerState);
      this.batcher.restore(s.batcher as BatcherState);
      setRngState(s.rng as RngState);
      this.step = s.step;
      this.tokensSeen = s.tokensSeen;
      this.skippedSteps = s.skippedSteps;
    } finally {
      Object.values(c.model).forEach((t) => t.dispose());
      Object.values(c.optimizerTensors).forEach((t) => t.dispose());
    }
  }

  /** One optimizer step (accumulation, clipping, NaN guard, update, schedule); no evaluation, logging or checkpoint. */
  trainStep(): { loss: number; lr: number; gradNorm: number; clipped: boolean; skipped: boolean } {
    const op = 'train.fit';
    const lr = this.optimizer.paramGroups[0].lr;
    const plan = this.pDrop > 0 ? layerDropoutPlan(this.nLayers!, this.pDrop, this.seed, this.step) : undefined;
    let lossSum = 0;
    for (let a = 0; a < this.accumulate; ++a) {
      tidy(() => {
        const { x, y } = this.batcher.next();
        const loss = this.model.forward(x, { targets: y, layers: plan }).loss;
        if (!loss) throw new ValueError(`kiln: ${op}: the model returned no loss for the given targets`);
        lossSum += loss.item();
        (this.accumulate > 1 ? ew.mul(loss, 1 / this.accumulate) : loss).backward();
      });
    }
    const loss = lossSum / this.accumulate;
    const norm = this.clip !== null ? clipGradNorm(this.params, this.clip) : { ...gradNorm(this.params), clipped: false };
    let skipped = !norm.finite || !Number.isFinite(loss);
    if (!skipped) skipped = this.optimizer.step().foundInf;
    if (skipped) this.skippedSteps += 1;
    this.optimizer.zeroGrad();
    for (const p of this.params) p.grad = null;
    this.step += 1;
    this.tokensSeen += this.tokensPerStep;
    this.scheduler?.step({ tokens: this.tokensSeen });
    this.gradNorms.push(norm.norm);
    this.lastLoss = loss;
    return { loss, lr, gradNorm: norm.norm, clipped: norm.clipped, skipped };
  }

  /** One step plus its record: evaluation, metrics, progress, onStep, checkpoint and plots on their cadence. */
  async next(): Promise<StepRecord> {
    const r = this.trainStep();
    const step = this.step;
    const elapsedSec = (performance.now() - this.startTime) / 1e3;
    const record: StepRecord = { step, ...r, tokens: this.tokensSeen, tokensPerSec: (this.tokensSeen - this.startTokens) / Math.max(elapsedSec, 1e-9), elapsedSec };
    const evalEvery = this.opts.evalEvery ?? 0;
    if ((evalEvery > 0 && step % evalEvery === 0) || (step === this.totalSteps && this.opts.evalEvery !== 0)) {
      const e = evaluate(this.model, this.data, { batchSize: this.batchSize, ctx: this.ctx, batches: this.evalBatches });
      this.lastEval = { loss: e.loss, perplexity: e.perplexity };
      record.evalLoss = e.loss;
      record.evalPerplexity = e.perplexity;
    }
    this.log.add(record);
    this.progress?.update({ step, total: this.totalSteps, loss: r.loss, lr: r.lr, tokensPerSec: record.tokensPerSec, elapsedSec, evalLoss: this.lastEval?.loss }, step === this.totalSteps);
    if (this.opts.onStep) await this.opts.onStep(record);
    const ck = this.opts.checkpoint;
    if (ck && (step % ck.every === 0 || step === this.totalSteps)) this.checkpoint();
    if (record.evalLoss !== undefined || step === this.totalSteps) this.log.plot();
    return record;
  }

  /** Writes a checkpoint now (needs the checkpoint option); returns its folder. */
  checkpoint(): string {
    const ck = this.opts.checkpoint;
    if (!ck) throw new ValueError('kiln: train.Trainer.checkpoint: the trainer has no checkpoint option');
    const { json, tensors } = splitOptimizerState(this.optimizer.stateDict());
    const modelState = this.model.stateDict();
    try {
      this.lastCheckpoint = saveCheckpoint(
        ck.dir,
        {
          step: this.step,
          tokensSeen: this.tokensSeen,
          skippedSteps: this.skippedSteps,
          modelConfig: (this.model.config as Record<string, unknown> | undefined) ?? null,
          optimizer: json,
          scheduler: this.scheduler?.state() ?? null,
          batcher: this.batcher.state(),
          rng: getRngState(),
          run: this.run_,
        },
        modelState,
        tensors,
        ck.keep ?? 3,
      );
    } finally {
      Object.values(tensors).forEach((t) => t.dispose());
      Object.values(modelState).forEach((t) => t.dispose());
    }
    return this.lastCheckpoint;
  }

  /** Trains until totalSteps (or an abort): the loop of fit(). */
  async run(): Promise<FitResult> {
    this.model.train();
    this.startTime = performance.now();
    this.startTokens = this.tokensSeen;
    let aborted = false;
    while (this.step < this.totalSteps) {
      if (this.opts.signal?.aborted) {
        aborted = true;
        break;
      }
      await this.next();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const ck = this.opts.checkpoint;
    if (aborted) {
      if (ck && this.lastCheckpoint !== path.join(ck.dir, `step-${String(this.step).padStart(8, '0')}`)) this.checkpoint();
      this.log.plot();
    }
    this.progress?.done();
    return { steps: this.step, tokensSeen: this.tokensSeen, skippedSteps: this.skippedSteps, aborted, finalLoss: this.lastLoss, eval: this.lastEval, gradNorms: this.gradNorms.slice(), records: this.log.records, checkpoint: this.lastCheckpoint };
  }

  /** The training state in memory (model, optimizer, data cursor, schedule, RNG, counters); the previous snapshot is freed. */
  snapshot(): TrainerSnapshot {
    this.releaseSnapshot();
    const views = this.model.stateDict();
    const model: Record<string, Tensor> = {};
    try {
      for (const [k, v] of Object.entries(views)) model[k] = keep(v.clone());
    } finally {
      Object.values(views).forEach((t) => t.dispose());
    }
    const optimizer = this.optimizer.stateDict();
    for (const s of Object.values(optimizer.state)) for (const v of Object.values(s as Record<string, unknown>)) if (v instanceof Tensor) keep(v);
    this.snapshotHeld = { step: this.step, tokensSeen: this.tokensSeen, skippedSteps: this.skippedSteps, model, optimizer, batcher: this.batcher.state(), scheduler: this.scheduler?.state() ?? null, rng: getRngState() };
    return this.snapshotHeld;
  }

  /** Puts back a snapshot() of this trainer; metrics recorded after it are dropped. */
  restore(s: TrainerSnapshot): void {
    if (s !== this.snapshotHeld) throw new ValueError('kiln: train.Trainer.restore: only the latest snapshot() of this trainer can be restored');
    this.model.loadStateDict(s.model);
    this.optimizer.loadStateDict(s.optimizer);
    this.batcher.restore(s.batcher);
    if (s.scheduler && this.opts.schedule !== undefined) this.scheduler = LRScheduler.restore(this.optimizer, this.opts.schedule as Schedule, s.scheduler);
    setRngState(s.rng);
    this.step = s.step;
    this.tokensSeen = s.tokensSeen;
    this.skippedSteps = s.skippedSteps;
    this.log.truncate(s.step);
  }

  /** Frees the held snapshot's tensors. */
  releaseSnapshot(): void {
    const s = this.snapshotHeld;
    if (!s) return;
    Object.values(s.model).forEach((t) => t.dispose());
    for (const st of Object.values(s.optimizer.state)) for (const v of Object.values(st as Record<string, unknown>)) if (v instanceof Tensor) v.dispose();
    this.snapshotHeld = null;
  }

  /**
   * The callbacks sched.AutoLRS drives: checkpoint/restore are in-memory
   * snapshots; train(lr, steps) sets every group's lr and runs `steps` logged
   * steps (no schedule: AutoLRS chooses the lr), returning their losses.
   */
  autoLRSHooks(): AutoLRSHooks<TrainerSnapshot> {
    return {
      checkpoint: () => this.snapshot(),
      restore: (s) => this.restore(s),
      train: async (lr, steps) => {
        if (this.scheduler) throw new ValueError('kiln: train.Trainer.autoLRSHooks: the trainer has a schedule; AutoLRS sets the lr itself (make the Trainer without one)');
        const losses: number[] = [];
        for (let i = 0; i < steps; ++i) {
          for (const g of this.optimizer.paramGroups) g.lr = lr;
          losses.push((await this.next()).loss);
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        return losses;
      },
    };
  }
}

/** Trains a language model: new Trainer(opts).run(). */
export async function fit(opts: FitOptions): Promise<FitResult> {
  return new Trainer(opts).run();
}
