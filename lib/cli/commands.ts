// The kiln CLI's commands: train, eval, generate, sched plot.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ValueError } from '../errors';
import { unigramPerplexity } from '../data/unigram';
import { generate } from '../nn/generate';
import { lrAt } from '../sched/evaluate';
import { plot } from '../sched/plot';
import type { Schedule } from '../sched/spec';
import { listCheckpoints } from '../train/checkpoint';
import { evaluate } from '../train/evaluate';
import { fit } from '../train/fit';
import { flag, num, str, type Args } from './args';
import { readConfig, resolveDevice, runDataset, runModel, runOptimizer, runTokenizer, type RunConfig } from './config';
import { loadRun } from './run-dir';

const log = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

const layersOf = (args: Args): number[] | undefined => str(args, 'layers')?.split(',').map(Number);

export async function trainCommand(args: Args): Promise<void> {
  const cfgPath = str(args, 'config');
  const resume = flag(args, 'resume');
  const out = str(args, 'out') ?? (cfgPath ? path.join('runs', path.basename(cfgPath, '.json')) : undefined);
  if (!out) throw new ValueError("kiln train: give --config cfg.json (and optionally --out DIR), or --out DIR --resume");
  const saved = path.join(out, 'config.json');
  let cfg: RunConfig;
  if (resume) {
    if (!fs.existsSync(saved)) throw new ValueError(`kiln train --resume: ${out} has no config.json to resume`);
    cfg = readConfig(saved);
  } else {
    if (!cfgPath) throw new ValueError('kiln train: --config cfg.json is required');
    if (listCheckpoints(out).length > 0) throw new ValueError(`kiln train: ${out} already holds checkpoints; pass --resume to continue that run, or choose another --out`);
    cfg = readConfig(cfgPath);
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(saved, JSON.stringify(cfg, null, 2));
  }
  const steps = num(args, 'steps', cfg.train.steps)!;
  const device = resolveDevice(cfg);
  const tokenizer = runTokenizer(cfg, out, log);
  const data = runDataset(cfg, tokenizer);
  const model = runModel(cfg, tokenizer, device);
  const optimizer = runOptimizer(cfg, model);
  const t = cfg.train;
  const nParams = model.parameters().reduce((n, p) => n + p.size, 0);
  log(`kiln train: ${nParams.toLocaleString('en-US')} parameters on ${device}; ${data.train.length.toLocaleString('en-US')} training and ${data.validation.length.toLocaleString('en-US')} validation tokens (vocab ${tokenizer.vocabSize})`);
  const evalOpts = { batchSize: t.batchSize, ctx: t.ctx, batches: t.evalBatches ?? 8 };
  const baseline = unigramPerplexity(data.train, data.validation, tokenizer.vocabSize);
  const before = resume ? null : evaluate(model, data, evalOpts);
  log(`validation perplexity: unigram baseline ${baseline.toFixed(1)}${before ? `, untrained model ${before.perplexity.toFixed(1)}` : ''}`);
  const ac = new AbortController();
  const onSigint = (): void => {
    log('\nkiln train: interrupted; finishing the step and saving a checkpoint (resume with --resume)');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  const t0 = Date.now();
  try {
    const r = await fit({
      model,
      data,
      optimizer,
      schedule: cfg.schedule ?? undefined,
      steps,
      batchSize: t.batchSize,
      ctx: t.ctx,
      accumulate: t.accumulate,
      clipGradNorm: t.clipGradNorm,
      evalEvery: t.evalEvery,
      evalBatches: t.evalBatches,
      seed: t.seed,
      layerDropout: t.layerDropout,
      checkpoint: { dir: out, every: t.checkpointEvery ?? Math.max(1, Math.floor(steps / 4)), keep: t.keepCheckpoints ?? 2 },
      resumeFrom: resume ? out : undefined,
      progress: flag(args, 'no-progress') ? false : undefined,
      signal: ac.signal,
    });
    const secs = (Date.now() - t0) / 1e3;
    log(`${r.aborted ? 'stopped' : 'done'}: ${r.steps} steps, ${r.tokensSeen.toLocaleString('en-US')} tokens in ${secs.toFixed(0)} s; final training loss ${r.finalLoss.toFixed(3)}${r.skippedSteps ? `; ${r.skippedSteps} steps skipped (non-finite)` : ''}`);
    if (r.eval) log(`validation perplexity: ${r.eval.perplexity.toFixed(2)} (loss ${r.eval.loss.toFixed(3)} nats/token; unigram baseline ${baseline.toFixed(1)}${before ? `, untrained ${before.perplexity.toFixed(1)}` : ''})`);
    const rel = (p: string): string => path.relative(process.cwd(), p) || '.';
    log(`wrote ${rel(r.checkpoint ?? out)} and ${['metrics.jsonl', 'loss.svg', 'lr.svg', 'grad-norm.svg'].map((f) => rel(path.join(out, f))).join(', ')}`);
  } finally {
    process.removeListener('SIGINT', onSigint);
    model.dispose();
  }
}

export function evalCommand(args: Args): void {
  const run = str(args, 'run');
  if (!run) throw new ValueError('kiln eval: --run DIR is required');
  const { config, model, checkpoint, tokenizer } = loadRun(run, str(args, 'checkpoint'));
  try {
    const data = runDataset(config, tokenizer);
    const r = evaluate(model, data, { batchSize: config.train.batchSize, ctx: config.train.ctx, batches: num(args, 'batches'), layers: layersOf(args) });
    log(`${checkpoint}: validation loss ${r.loss.toFixed(4)} nats/token, perplexity ${r.perplexity.toFixed(2)} over ${r.tokens.toLocaleString('en-US')} tokens`);
  } finally {
    model.dispose();
  }
}

export function generateCommand(args: Args): void {
  const run = str(args, 'run');
  if (!run) throw new ValueError('kiln generate: --run DIR is required');
  const prompt = str(args, 'prompt', '')!;
  const { model, tokenizer } = loadRun(run, str(args, 'checkpoint'));
  try {
    const ids = tokenizer.encode(prompt.length ? prompt : '\n');
    process.stdout.write(prompt);
    const out = generate(model, ids, {
      maxNewTokens: num(args, 'max-tokens', 200)!,
      temperature: num(args, 'temperature', 0.8),
      topK: num(args, 'top-k'),
      topP: num(args, 'top-p', 0.95),
      seed: num(args, 'seed', 0),
      layers: layersOf(args),
    });
    process.stdout.write(`${tokenizer.decode(out)}\n`);
  } finally {
    model.dispose();
  }
}

export function schedPlotCommand(args: Args): void {
  const spec = str(args, 'spec');
  const cfgPath = str(args, 'config');
  let schedule: Schedule;
  let steps = num(args, 'steps');
  if (spec) schedule = JSON.parse(spec) as Schedule;
  else if (cfgPath) {
    const cfg = readConfig(cfgPath);
    if (!cfg.schedule) throw new ValueError(`kiln sched plot: ${cfgPath} has no schedule`);
    schedule = cfg.schedule;
    steps ??= cfg.train.steps;
  } else throw new ValueError("kiln sched plot: give --spec '{\"kind\": ...}' or --config cfg.json");
  if (steps === undefined) throw new ValueError('kiln sched plot: --steps N is required with --spec');
  const out = str(args, 'out', 'schedule.svg')!;
  plot(schedule, { steps, path: out, title: str(args, 'title') });
  log(`wrote ${out} (lr at step 0: ${lrAt(schedule, 0)}, at step ${steps - 1}: ${lrAt(schedule, steps - 1)})`);
}
