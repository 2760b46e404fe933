// kiln.train: exact resume, atomic checkpoints (a save killed midway leaves the
// previous checkpoint loadable), corrupt/mismatched checkpoints refused, the
// NaN guard, gradient accumulation == one big batch, clipping vs a float64
// reference, LayerSkip's drop rates, and a short run that lowers validation loss.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-train-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
const tmp = (name: string): string => path.join(tmpRoot, name);

const text = 'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs! How vexingly quick daft zebras jump. '.repeat(40);
const dataset = kiln.data.textDataset(text, { validationFraction: 0.2 });
const CFG = { vocabSize: 256, dim: 32, nLayers: 3, nHeads: 4, nKvHeads: 2, hiddenDim: 64, seed: 7 };

function setup(lr = 3e-3) {
  const model = new kiln.nn.TransformerLM(CFG);
  const optimizer = new kiln.optim.AdamW(model.namedParameters(), { lr, weightDecay: 0.1, excludeFromWeightDecay: [/Norm/] });
  return { model, optimizer };
}
const schedule = kiln.sched.wsd({ peak: 3e-3, warmup: 2, stable: 3, decay: 3 });
const weights = (m: kiln.nn.Module): Record<string, number[]> => Object.fromEntries(m.namedParameters().map(([n, p]) => [n, Array.from(p.dataSync() as Float32Array)]));

describe('resume', () => {
  it('N steps + resume + M steps == N + M steps, bit for bit (AdamW, WSD, accumulation, layer dropout, clipping)', async () => {
    const common = { data: dataset, schedule, batchSize: 2, ctx: 16, accumulate: 2, clipGradNorm: 0.5, layerDropout: 0.5, seed: 3, evalEvery: 0, progress: false } as const;
    const a = setup();
    const straight = await kiln.train.fit({ ...common, ...a, steps: 8 });
    const b = setup();
    const first = await kiln.train.fit({ ...common, ...b, steps: 4, checkpoint: { dir: tmp('resume'), every: 4 } });
    expect(first.checkpoint).toMatch(/step-00000004$/);
    b.model.dispose();
    b.optimizer.dispose();
    const c = setup();
    const resumed = await kiln.train.fit({ ...common, ...c, steps: 8, resumeFrom: tmp('resume') });
    expect(resumed.steps).toBe(8);
    expect(resumed.records.slice(-4).map((r) => r.loss)).toEqual(straight.records.slice(4).map((r) => r.loss));
    expect(weights(c.model)).toEqual(weights(a.model));
    expect(c.optimizer.paramGroups[0].lr).toBe(a.optimizer.paramGroups[0].lr);
    for (const s of [a, c]) {
      s.model.dispose();
      s.optimizer.dispose();
    }
  });

  it('refuses corrupt or mismatched checkpoints before touching the model or any file', async () => {
    const s = setup();
    await kiln.train.fit({ model: s.model, optimizer: s.optimizer, data: dataset, steps: 2, batchSize: 2, ctx: 16, evalEvery: 0, progress: false, checkpoint: { dir: tmp('bad'), every: 2 } });
    const dir = path.join(tmp('bad'), 'step-00000002');
    const before = weights(s.model);
    // mismatched run settings
    await expect(kiln.train.fit({ ...s, data: dataset, steps: 4, batchSize: 3, ctx: 16, progress: false, resumeFrom: tmp('bad') })).rejects.toThrow(/batchSize = 2.*batchSize = 3/);
    // a different model
    const other = new kiln.nn.TransformerLM({ ...CFG, dim: 16 });
    const otherOpt = new kiln.optim.AdamW(other.parameters());
    await expect(kiln.train.fit({ model: other, optimizer: otherOpt, data: dataset, steps: 4, batchSize: 2, ctx: 16, progress: false, resumeFrom: dir })).rejects.toThrow(/holds a model with config/);
    other.dispose();
    otherOpt.dispose();
    // one flipped byte in the weights
    const file = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 3] ^= 0x40;
    fs.writeFileSync(file, bytes);
    const listing = fs.readdirSync(tmp('bad')).sort();
    await expect(kiln.train.fit({ ...s, data: dataset, steps: 4, batchSize: 2, ctx: 16, progress: false, resumeFrom: tmp('bad'), checkpoint: { dir: tmp('bad'), every: 1 } })).rejects.toThrow(/SHA-256/);
    expect(fs.readdirSync(tmp('bad')).sort()).toEqual(listing);
    expect(weights(s.model)).toEqual(before);
    expect(() => kiln.train.loadCheckpoint(tmp('nowhere'))).toThrow(/not found/);
    s.model.dispose();
    s.optimizer.dispose();
  });

  it('a save killed midway leaves the previous checkpoint as latest, and loadable', async () => {
    const root = tmp('atomic');
    const distCjs = fileURLToPath(new URL('../../dist/cjs/index.js', import.meta.url));
    const script = `
      const kiln = require(${JSON.stringify(distCjs)});
      const ds = kiln.data.textDataset(${JSON.stringify(text)}, { validationFraction: 0.2 });
      const model = new kiln.nn.TransformerLM(${JSON.stringify(CFG)});
      const optimizer = new kiln.optim.AdamW(model.parameters());
      kiln.train.fit({ model, optimizer, data: ds, steps: 10, batchSize: 2, ctx: 16, evalEvery: 0, progress: false,
        checkpoint: { dir: ${JSON.stringify(root)}, every: 2 },
        onStep: (r) => { if (r.step === 3) process.env.KILN_CHECKPOINT_PAUSE_MS = '20000'; } });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, KILN_CHECKPOINT_PAUSE_MS: '' } });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    // Wait until the step-4 save has written its files into a temporary folder, then kill -9.
    const deadline = Date.now() + 60_000;
    while (!(fs.existsSync(root) && fs.readdirSync(root).some((n) => n.startsWith('.tmp-step-00000004')))) {
      if (Date.now() > deadline || child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(fs.existsSync(root) && fs.readdirSync(root).some((n) => n.startsWith('.tmp-step-00000004')), `the child did not reach the step-4 save (exit ${child.exitCode}): ${stderr}`).toBe(true);
    child.kill('SIGKILL');
    await exited;
    expect(JSON.parse(fs.readFileSync(path.join(root, 'latest.json'), 'utf8')).checkpoint).toBe('step-00000002');
    expect(fs.existsSync(path.join(root, 'step-00000004'))).toBe(false);
    const c = kiln.train.loadCheckpoint(root);
    expect(c.state.step).toBe(2);
    Object.values(c.model).forEach((t) => t.dispose());
    Object.values(c.optimizerTensors).forEach((t) => t.dispose());
    // and a run resumes from it, finishing the job
    const s = setup();
    const r = await kiln.train.fit({ ...s, data: dataset, steps: 4, batchSize: 2, ctx: 16, evalEvery: 0, progress: false, resumeFrom: root, checkpoint: { dir: root, every: 2 } });
    expect(r.steps).toBe(4);
    s.model.dispose();
    s.optimizer.dispose();
  }, 90_000);
});

describe('steps', () => {
  it('a non-finite loss skips the update (weights and optimizer state unchanged) and is counted', async () => {
    const s = setup();
    let calls = 0;
    const poisoned = Object.assign(Object.create(Object.getPrototypeOf(s.model)), s.model) as kiln.nn.TransformerLM;
    poisoned.forward = (tokens, opts) => {
      const out = s.model.forward(tokens, opts);
      calls += 1;
      return calls === 3 ? { ...out, loss: kiln.mul(out.loss!, NaN) } : out;
    };
    let atTwo: Record<string, number[]> | null = null;
    let atThree: Record<string, number[]> | null = null;
    const r = await kiln.train.fit({
      model: poisoned, optimizer: s.optimizer, data: dataset, steps: 4, batchSize: 2, ctx: 16, evalEvery: 0, progress: false,
      onStep: (rec) => {
        if (rec.step === 2) atTwo = weights(s.model);
        if (rec.step === 3) atThree = weights(s.model);
      },
    });
    expect(r.skippedSteps).toBe(1);
    expect(r.records[2].skipped).toBe(true);
    expect(r.records.filter((x) => x.skipped).length).toBe(1);
    expect(atThree).toEqual(atTwo);
    expect(weights(s.model)).not.toEqual(atThree);
    s.model.dispose();
    s.optimizer.dispose();
  });

  it('accumulating 4 micro-batches of 4 equals one batch of 16 (within 1e-5)', async () => {
    const run = async (batchSize: number, accumulate: number) => {
      const model = new kiln.nn.TransformerLM(CFG);
      const optimizer = new kiln.optim.SGD(model.parameters(), { lr: 1 });
      const before = weights(model);
      await kiln.train.fit({ model, optimizer, data: dataset, steps: 1, batchSize, ctx: 16, accumulate, seed: 11, evalEvery: 0, progress: false });
      const after = weights(model);
      model.dispose();
      optimizer.dispose();
      return Object.fromEntries(Object.keys(before).map((k) => [k, before[k].map((v, i) => v - after[k][i])])); // = the gradient (lr 1)
    };
    const big = await run(16, 1);
    const small = await run(4, 4);
    for (const k of Object.keys(big)) {
      const scale = Math.max(...big[k].map(Math.abs));
      big[k].forEach((g, i) => expect(Math.abs(g - small[k][i]), `${k}[${i}]`).toBeLessThanOrEqual(1e-5 * Math.max(scale, 1e-3)));
    }
  });

  it('clipGradNorm scales to the float64 global norm', () => {
    kiln.tidy(() => {
      const a = kiln.tensor([3, 4], [2], { requiresGrad: true });
      const b = kiln.tensor([[1, 2], [2, 4]], undefined, { requiresGrad: true });
      kiln.sum(kiln.mul(a, a)).backward(); // grad 2a = [6, 8]
      kiln.sum(kiln.mul(b, 0.5)).backward(); // grad 0.5 everywhere
      const want = Math.sqrt(36 + 64 + 4 * 0.25);
      const r = kiln.train.clipGradNorm([a, b], 1);
      expect(r.norm).toBeCloseTo(want, 5);
      expect(r.clipped).toBe(true);
      expect(kiln.train.gradNorm([a, b]).norm).toBeCloseTo(1, 5);
      expect(kiln.train.clipGradNorm([a, b], 5).clipped).toBe(false);
    });
  });

  it('LayerSkip drop rates rise with depth; the draws follow them and never drop the first layer', () => {
    const L = 6;
    const p = 0.4;
    expect(kiln.train.layerDropRate(0, L, p)).toBe(0);
    expect(kiln.train.layerDropRate(L - 1, L, p)).toBeCloseTo(p, 12);
    const n = 4000;
    const kept = new Array<number>(L).fill(0);
    for (let s = 0; s < n; ++s) for (const l of kiln.train.layerDropoutPlan(L, p, 9, s)) kept[l] += 1;
    expect(kept[0]).toBe(n);
    for (let l = 1; l < L; ++l) {
      const q = kiln.train.layerDropRate(l, L, p);
      expect(Math.abs(1 - kept[l] / n - q)).toBeLessThan(4 * Math.sqrt((q * (1 - q)) / n));
    }
    expect(kiln.train.layerDropoutPlan(L, p, 9, 17)).toEqual(kiln.train.layerDropoutPlan(L, p, 9, 17));
  });
});

describe('Trainer', () => {
  it('snapshot / restore replays steps exactly; AutoLRS drives it through autoLRSHooks()', async () => {
    const s = setup();
    const trainer = new kiln.train.Trainer({ ...s, data: dataset, steps: 30, batchSize: 2, ctx: 16, evalEvery: 0, progress: false, layerDropout: 0.3, seed: 4 });
    await trainer.next();
    const snap = trainer.snapshot();
    const first = [trainer.trainStep().loss, trainer.trainStep().loss];
    const w = weights(s.model);
    trainer.restore(snap);
    expect(trainer.step).toBe(1);
    expect([trainer.trainStep().loss, trainer.trainStep().loss]).toEqual(first);
    expect(weights(s.model)).toEqual(w);
    expect(() => trainer.restore({ ...snap })).toThrow(/latest snapshot/);

    const auto = new kiln.sched.AutoLRS({ minLr: 1e-4, maxLr: 3e-2, stageSteps: 4, candidates: 3, initialCandidates: 2, growth: 2 });
    trainer.releaseSnapshot();
    const before = kiln.memory().tensors;
    const stages = await auto.run(10, trainer.autoLRSHooks());
    trainer.releaseSnapshot();
    expect(kiln.memory().tensors).toBe(before);
    expect(stages.reduce((n, st) => n + st.steps, 0)).toBe(10);
    expect(trainer.step).toBe(3 + 10); // 1 + 2 above, then the committed AutoLRS steps (search steps are undone)
    expect(trainer.log.records.map((r) => r.step)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1).filter((i) => i === 1 || i > 3));
    for (const st of stages) expect(st.lr).toBeGreaterThanOrEqual(1e-4);
    s.model.dispose();
    s.optimizer.dispose();
  });
});

describe('training', () => {
  it('a short run lowers validation loss well below the start and writes metrics and plots', async () => {
    const s = setup(1e-2);
    const ds = kiln.data.brownDataset({ categories: ['humor'] });
    const before = kiln.train.evaluate(s.model, ds, { batchSize: 8, ctx: 32, batches: 4 });
    const r = await kiln.train.fit({ ...s, data: ds, steps: 40, batchSize: 8, ctx: 32, evalBatches: 4, progress: false, logDir: tmp('log'), schedule: kiln.sched.wsd({ peak: 1e-2, warmup: 4, stable: 26, decay: 10 }) });
    expect(before.loss).toBeGreaterThan(5.3); // about ln(256) = 5.55 at init
    expect(r.eval!.loss).toBeLessThan(before.loss - 1);
    const lines = fs.readFileSync(path.join(tmp('log'), 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines.length).toBe(40);
    expect(JSON.parse(lines[39]).evalLoss).toBeCloseTo(r.eval!.loss, 10);
    for (const f of ['loss.svg', 'lr.svg', 'grad-norm.svg']) expect(fs.readFileSync(path.join(tmp('log'), f), 'utf8')).toMatch(/^<svg[\s\S]*polyline[\s\S]*<\/svg>\n$/);
    s.model.dispose();
    s.optimizer.dispose();
  });

  it('stops cleanly on abort (with a checkpoint) and validates its options', async () => {
    const s = setup();
    const ac = new AbortController();
    const r = await kiln.train.fit({ ...s, data: dataset, steps: 50, batchSize: 2, ctx: 16, evalEvery: 0, progress: false, signal: ac.signal, checkpoint: { dir: tmp('abort'), every: 100 }, onStep: (rec) => (rec.step === 3 ? ac.abort() : undefined) });
    expect(r.aborted).toBe(true);
    expect(r.steps).toBe(3);
    expect(r.checkpoint).toMatch(/step-00000003$/);
    await expect(kiln.train.fit({ ...s, data: dataset, batchSize: 2, ctx: 16 })).rejects.toThrow(/exactly one of 'steps' and 'tokens'/);
    await expect(kiln.train.fit({ ...s, data: dataset, steps: 1, batchSize: 0, ctx: 16 })).rejects.toThrow(/batchSize/);
    s.model.dispose();
    s.optimizer.dispose();
  });
});
