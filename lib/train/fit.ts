// kiln.train.fit: the training loop. Per optimizer step: `accumulate`
// micro-batches (forward, loss / accumulate, backward), the global gradient
// norm (clipped to clipGradNorm), a NaN/Inf guard (a step whose loss or
// gradients are not finite changes no weight and is counted), the optimizer
// update, the schedule's next lr; evaluation, metrics, checkpoints and plots on
// their cadence. Async: yields to the event loop between steps; an AbortSignal
// stops after the current step (with a checkpoint when checkpoints are on).
// Everything random is a function of (seed, step), and checkpoints hold every
// piece of state, so N steps + resume + M steps equals N + M steps bit for bit.
import * as path from 'node:path';
import { ValueError } from '../errors';
import { tidy } from '../lifetime';
import * as ew from '../autograd/grad-elementwise';
import { getRngState, setRngState, type RngState } from '../random';
import { LRScheduler, type SchedulerState } from '../sched/scheduler';
import type { Schedule } from '../sched/spec';
import type { TokenDataset } from '../data/dataset';
import type { BatcherState } from '../data/batcher';
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

function positiveInt(name: string, v: unknown, optional = false): number | undefined {
  if (v === undefined && optional) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new ValueError(`kiln: train.fit: ${name} must be a positive integer, got ${String(v)}`);
  return v as number;
}

/** The optimizer's state dict split into JSON and named tensors. */
function splitOptimizerState(sd: OptimizerStateDict): { json: CheckpointState['optimizer']; tensors: Record<string, Tensor> } {
  const tensors: Record<string, Tensor> = {};
  const steps: Record<string, number> = {};
  for (const [i, s] of Object.entries(sd.state)) {
    for (const [k, v] of Object.entries(s)) {
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
  return { state, param_groups: json.param_groups };
}

const comparableConfig = (c: Readonly<Record<string, unknown>> | undefined): string | null => {
  if (!c) return null;
  const { device: _d, ...rest } = c as Record<string, unknown>;
  void _d;
  return JSON.stringify(Object.keys(rest).sort().map((k) => [k, rest[k]]));
};

export async function fit(opts: FitOptions): Promise<FitResult> {
  const op = 'train.fit';
  if (opts === null || typeof opts !== 'object') throw new ValueError(`kiln: ${op}: expected an options object`);
  const { model, data, optimizer } = opts;
  if (!model || typeof model.forward !== 'function') throw new ValueError(`kiln: ${op}: 'model' must be a language model (forward(tokens, { targets }) -> { loss })`);
  if (!data || typeof data.batcher !== 'function') throw new ValueError(`kiln: ${op}: 'data' must be a kiln.data.TokenDataset`);
  if (!optimizer || typeof optimizer.step !== 'function' || !Array.isArray(optimizer.paramGroups)) throw new ValueError(`kiln: ${op}: 'optimizer' must be a kiln.optim optimizer`);
  const batchSize = positiveInt('batchSize', opts.batchSize)!;
  const ctx = positiveInt('ctx', opts.ctx)!;
  const accumulate = positiveInt('accumulate', opts.accumulate ?? 1)!;
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ValueError(`kiln: ${op}: seed must be a non-negative integer, got ${String(seed)}`);
  const tokensPerStep = batchSize * ctx * accumulate;
  if ((opts.steps === undefined) === (opts.tokens === undefined)) throw new ValueError(`kiln: ${op}: give exactly one of 'steps' and 'tokens'`);
  const totalSteps = opts.steps !== undefined ? positiveInt('steps', opts.steps)! : Math.ceil(positiveInt('tokens', opts.tokens)! / tokensPerStep);
  const clip = opts.clipGradNorm ?? null;
  if (clip !== null && !(typeof clip === 'number' && clip > 0)) throw new ValueError(`kiln: ${op}: clipGradNorm must be a number > 0 or null, got ${String(clip)}`);
  const pDrop = opts.layerDropout ?? 0;
  if (!(pDrop >= 0 && pDrop < 1)) throw new ValueError(`kiln: ${op}: layerDropout must be in [0, 1), got ${String(pDrop)}`);
  const nLayers = model.config?.nLayers;
  if (pDrop > 0 && !Number.isSafeInteger(nLayers)) throw new ValueError(`kiln: ${op}: layerDropout needs a model with config.nLayers`);
  const evalEvery = opts.evalEvery ?? 0;
  const evalBatches = positiveInt('evalBatches', opts.evalBatches ?? 8)!;
  const ck = opts.checkpoint;
  if (ck) {
    if (typeof ck.dir !== 'string' || ck.dir === '') throw new ValueError(`kiln: ${op}: checkpoint.dir must be a folder path`);
    positiveInt('checkpoint.every', ck.every);
  }
  const run = { batchSize, ctx, accumulate, seed, layerDropout: pDrop };

  const params = model.parameters();
  const batcher = data.batcher('train', { batchSize, ctx, seed });
  let step = 0;
  let tokensSeen = 0;
  let skippedSteps = 0;
  let scheduler: LRScheduler | null = null;

  if (opts.resumeFrom !== undefined) {
    // Read and check everything before changing anything.
    const c = loadCheckpoint(opts.resumeFrom);
    try {
      const s = c.state;
      const mismatch = Object.entries(run).filter(([k, v]) => (s.run as Record<string, unknown>)?.[k] !== v);
      if (mismatch.length) {
        throw new ValueError(`kiln: ${op}: checkpoint ${c.dir} was made with ${mismatch.map(([k]) => `${k} = ${String((s.run as Record<string, unknown>)[k])}`).join(', ')}; this run has ${mismatch.map(([k, v]) => `${k} = ${String(v)}`).join(', ')}`);
      }
      const want = comparableConfig(model.config as Record<string, unknown> | undefined);
      const have = comparableConfig(s.modelConfig ?? undefined);
      if (want !== null && have !== null && want !== have) throw new ValueError(`kiln: ${op}: checkpoint ${c.dir} holds a model with config ${JSON.stringify(s.modelConfig)}, not ${JSON.stringify(model.config)}`);
      if (s.step > totalSteps) throw new ValueError(`kiln: ${op}: checkpoint ${c.dir} is at step ${s.step}, past this run's ${totalSteps} steps`);
      model.loadStateDict(c.model);
      optimizer.loadStateDict(joinOptimizerState(s.optimizer, c.optimizerTensors));
      if (opts.schedule !== undefined) scheduler = LRScheduler.restore(optimizer, opts.schedule as Schedule, s.scheduler as SchedulerState);
      batcher.restore(s.batcher as BatcherState);
      setRngState(s.rng as RngState);
      step = s.step;
      tokensSeen = s.tokensSeen;
      skippedSteps = s.skippedSteps;
    } finally {
      Object.values(c.model).forEach((t) => t.dispose());
      Object.values(c.optimizerTensors).forEach((t) => t.dispose());
    }
  } else if (opts.schedule !== undefined) {
    scheduler = new LRScheduler(optimizer, opts.schedule as Schedule);
  }

  const logDir = opts.logDir ?? ck?.dir ?? null;
  const log = new MetricsLog(logDir, opts.resumeFrom !== undefined);
  if (opts.resumeFrom !== undefined) log.truncate(step);
  const progress = (opts.progress ?? process.stderr.isTTY === true) ? new ProgressLine() : null;
  const gradNorms: number[] = [];
  let lastCheckpoint: string | null = null;
  let lastEval: { loss: number; perplexity: number } | null = null;
  let finalLoss = NaN;
  let aborted = false;
  const start = performance.now();
  const startTokens = tokensSeen;

  const writeCheckpoint = (): void => {
    if (!ck) return;
    const sd = optimizer.stateDict();
    const { json, tensors } = splitOptimizerState(sd);
    const modelState = model.stateDict();
    try {
      lastCheckpoint = saveCheckpoint(
        ck.dir,
        { step, tokensSeen, skippedSteps, modelConfig: (model.config as Record<string, unknown> | undefined) ?? null, optimizer: json, scheduler: scheduler?.state() ?? null, batcher: batcher.state(), rng: getRngState(), run },
        modelState,
        tensors,
        ck.keep ?? 3,
      );
    } finally {
      Object.values(tensors).forEach((t) => t.dispose());
      Object.values(modelState).forEach((t) => t.dispose());
    }
  };

  model.train();
  while (step < totalSteps) {
    if (opts.signal?.aborted) {
      aborted = true;
      break;
    }
    const lr = optimizer.paramGroups[0].lr;
    const plan = pDrop > 0 ? layerDropoutPlan(nLayers!, pDrop, seed, step) : undefined;
    let lossSum = 0;
    for (let a = 0; a < accumulate; ++a) {
      tidy(() => {
        const { x, y } = batcher.next();
        const loss = model.forward(x, { targets: y, layers: plan }).loss;
        if (!loss) throw new ValueError(`kiln: ${op}: the model returned no loss for the given targets`);
        lossSum += loss.item();
        (accumulate > 1 ? ew.mul(loss, 1 / accumulate) : loss).backward();
      });
    }
    const loss = lossSum / accumulate;
    const norm = clip !== null ? clipGradNorm(params, clip) : { ...gradNorm(params), clipped: false };
    let skipped = !norm.finite || !Number.isFinite(loss);
    if (!skipped) skipped = optimizer.step().foundInf;
    if (skipped) skippedSteps += 1;
    optimizer.zeroGrad();
    for (const p of params) p.grad = null;
    step += 1;
    tokensSeen += tokensPerStep;
    scheduler?.step({ tokens: tokensSeen });
    finalLoss = loss;
    gradNorms.push(norm.norm);

    const elapsedSec = (performance.now() - start) / 1e3;
    const record: StepRecord = { step, loss, lr, gradNorm: norm.norm, clipped: norm.clipped, skipped, tokens: tokensSeen, tokensPerSec: (tokensSeen - startTokens) / Math.max(elapsedSec, 1e-9), elapsedSec };
    if ((evalEvery > 0 && step % evalEvery === 0) || (step === totalSteps && opts.evalEvery !== 0)) {
      const e = evaluate(model, data, { batchSize, ctx, batches: evalBatches });
      lastEval = { loss: e.loss, perplexity: e.perplexity };
      record.evalLoss = e.loss;
      record.evalPerplexity = e.perplexity;
    }
    log.add(record);
    progress?.update({ step, total: totalSteps, loss, lr, tokensPerSec: record.tokensPerSec, elapsedSec, evalLoss: lastEval?.loss }, step === totalSteps);
    if (opts.onStep) await opts.onStep(record);
    if (ck && (step % ck.every === 0 || step === totalSteps)) writeCheckpoint();
    if (record.evalLoss !== undefined || step === totalSteps) log.plot();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (aborted) {
    if (ck && lastCheckpoint !== path.join(ck.dir, `step-${String(step).padStart(8, '0')}`)) writeCheckpoint();
    log.plot();
  }
  progress?.done();
  return { steps: step, tokensSeen, skippedSteps, aborted, finalLoss, eval: lastEval, gradNorms, records: log.records, checkpoint: lastCheckpoint };
}
