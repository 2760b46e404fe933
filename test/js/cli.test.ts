// The kiln command line (bin/kiln.cjs), run as a user would: train a tiny
// config, refuse to overwrite it, resume it, evaluate, generate, plot a schedule.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/kiln.cjs', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function kiln(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('kiln CLI', () => {
  const textFile = path.join(dir, 'corpus.txt');
  fs.writeFileSync(textFile, 'the cat sat on the mat and the dog sat on the log. '.repeat(60));
  const config = {
    model: { dim: 16, nLayers: 2, nHeads: 2, hiddenDim: 32, seed: 1 },
    data: { source: { files: [textFile], validationFraction: 0.2 }, tokenizer: 'byte' },
    optimizer: { name: 'adamw', lr: 0.01 },
    schedule: { kind: 'wsd', peak: 0.01, warmup: 1, stable: 4, decay: 3, warmupShape: 'linear', decayShape: 'linear', minRatio: 0 },
    train: { steps: 4, batchSize: 2, ctx: 16, evalEvery: 2, evalBatches: 2, checkpointEvery: 2 },
    device: 'cpu',
  };
  const cfgFile = path.join(dir, 'tiny.json');
  fs.writeFileSync(cfgFile, JSON.stringify(config));
  const run = path.join(dir, 'run');

  it('prints usage; unknown commands fail', () => {
    const r = kiln();
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/kiln train --config/);
    expect(kiln('fly').code).toBe(2);
  });

  it('trains, refuses to overwrite, resumes, evaluates and generates', () => {
    const t = kiln('train', '--config', cfgFile, '--out', run, '--no-progress');
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/unigram baseline [\d.]+, untrained model [\d.]+/);
    expect(t.out).toMatch(/done: 4 steps/);
    for (const f of ['config.json', 'tokenizer.json', 'latest.json', 'metrics.jsonl', 'loss.svg', 'lr.svg', 'grad-norm.svg', 'step-00000004/model.safetensors']) expect(fs.existsSync(path.join(run, f)), f).toBe(true);

    const again = kiln('train', '--config', cfgFile, '--out', run, '--no-progress');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already holds checkpoints; pass --resume/);

    const resumed = kiln('train', '--out', run, '--resume', '--steps', '6', '--no-progress');
    expect(resumed.code).toBe(0);
    expect(resumed.out).toMatch(/done: 6 steps/);
    expect(fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBe(6);

    const e = kiln('eval', '--run', run, '--batches', '2');
    expect(e.code).toBe(0);
    expect(e.out).toMatch(/step-00000006: validation loss [\d.]+ nats\/token, perplexity [\d.]+/);

    const g = kiln('generate', '--run', run, '--prompt', 'the cat', '--max-tokens', '8', '--temperature', '0');
    expect(g.code).toBe(0);
    expect(g.out.startsWith('the cat')).toBe(true);
    expect(Buffer.byteLength(g.out) - Buffer.byteLength('the cat\n')).toBeLessThanOrEqual(8 * 4);

    const missing = kiln('generate', '--run', path.join(dir, 'nope'), '--prompt', 'x');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/not a run folder/);
  }, 120_000);

  it('plots a schedule', () => {
    const out = path.join(dir, 'sched.svg');
    const r = kiln('sched', 'plot', '--spec', JSON.stringify(config.schedule), '--steps', '8', '--out', out);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toMatch(/^<svg/);
    expect(kiln('sched', 'plot', '--spec', JSON.stringify(config.schedule)).code).toBe(1);
  });
});
