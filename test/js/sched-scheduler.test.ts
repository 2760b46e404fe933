// kiln.sched.LRScheduler (binding specs to parameter groups, the step
// convention, state / restore, tokens, momentum) and kiln.sched.plot (SVG).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const sched = kiln.sched;
type Group = { lr: number; momentum?: number; betas?: readonly [number, number] };
const optimizerOf = (...groups: Group[]): { paramGroups: Group[] } => ({ paramGroups: groups });

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sched-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('LRScheduler', () => {
  const spec = sched.wsd({ peak: 1e-3, warmup: 10, stable: 20, decay: 30, decayShape: '1-sqrt', minRatio: 0.1 });

  it('the lr of update k is lrAt(spec, k): set at construction (k = 0) and after each step()', () => {
    const opt = optimizerOf({ lr: 123 }, { lr: 456 });
    const s = new sched.LRScheduler(opt, spec);
    expect(s.stepCount).toBe(0);
    for (let k = 0; k < 70; ++k) {
      if (k > 0) expect(s.step()).toEqual([sched.lrAt(spec, k), sched.lrAt(spec, k)]);
      expect(opt.paramGroups.map((g) => g.lr)).toEqual([sched.lrAt(spec, k), sched.lrAt(spec, k)]);
      expect(s.lr()).toEqual([sched.lrAt(spec, k), sched.lrAt(spec, k)]);
    }
    expect(s.stepCount).toBe(69);
    expect(s.momentum()).toBeNull();
  });

  it('one spec per group; relative specs multiply each group base lr (its lr at construction)', () => {
    const rel = sched.relative(sched.cosine({ from: 1, to: 0.1, steps: 10 }));
    const abs = sched.constant(0.5);
    const opt = optimizerOf({ lr: 1e-3 }, { lr: 2e-4 });
    const s = new sched.LRScheduler(opt, [rel, abs]);
    expect(s.bases).toEqual([1e-3, 2e-4]);
    for (let k = 0; k < 10; ++k) s.step();
    expect(opt.paramGroups[0].lr).toBe(1e-3 * 0.1);
    expect(opt.paramGroups[1].lr).toBe(0.5);
    const s2 = new sched.LRScheduler(optimizerOf({ lr: 1e-3 }, { lr: 2e-4 }), rel);
    expect(s2.lr()).toEqual([1e-3, 2e-4]);
  });

  it('state() is JSON; restore() resumes exactly where the uninterrupted run is', () => {
    const specs = [sched.power({ a: 0.05, b: -0.5, max: 1e-3, warmup: 5, tokensPerStep: 1000, decay: { start: 40, steps: 20, shape: 'cosine' } }), sched.relative(sched.torch.cosineAnnealingLR({ base: 1, tMax: 15 }))];
    const tokens = (k: number): number => k * 900 + (k % 3) * 100; // variable batch sizes
    const run = (stopAt: number | null): number[][] => {
      let opt = optimizerOf({ lr: 0 }, { lr: 0.3 });
      let s = new sched.LRScheduler(opt, specs);
      const out: number[][] = [opt.paramGroups.map((g) => g.lr)];
      for (let k = 1; k <= 60; ++k) {
        s.step({ tokens: tokens(k) });
        out.push(opt.paramGroups.map((g) => g.lr));
        if (k === stopAt) {
          const saved = JSON.stringify(s.state());
          opt = optimizerOf({ lr: 999 }, { lr: 999 }); // a fresh optimizer: its lrs are overwritten
          s = sched.LRScheduler.restore(opt, JSON.parse(JSON.stringify(specs)), JSON.parse(saved) as kiln.sched.SchedulerState);
          expect(opt.paramGroups.map((g) => g.lr)).toEqual(out[k]);
          expect(s.stepCount).toBe(k);
          expect(s.tokens).toBe(tokens(k));
          expect(s.bases).toEqual([0, 0.3]);
        }
      }
      return out;
    };
    const straight = run(null);
    for (const stop of [1, 17, 39, 45]) expect(run(stop)).toEqual(straight);
    // Tokens matter: the power schedule follows them, not the step.
    expect(straight[30][0]).toBe(sched.lrAt(specs[0], 30, { tokens: tokens(30) }));
    expect(straight[30][0]).not.toBe(sched.lrAt(specs[0], 30));
  });

  it('restore() throws on a different spec unless allowSpecChange', () => {
    const opt = optimizerOf({ lr: 0.1 });
    const s = new sched.LRScheduler(opt, spec);
    for (let k = 0; k < 25; ++k) s.step();
    const st = s.state();
    const other = sched.wsd({ peak: 1e-3, warmup: 10, stable: 20, decay: 40, decayShape: '1-sqrt', minRatio: 0.1 });
    expect(() => sched.LRScheduler.restore(opt, other, st)).toThrow(kiln.ValueError);
    expect(() => sched.LRScheduler.restore(opt, other, st)).toThrow(/schedule of parameter group 0 \(wsd\) differs from the saved one/);
    const r = sched.LRScheduler.restore(opt, other, st, { allowSpecChange: true });
    expect(opt.paramGroups[0].lr).toBe(sched.lrAt(other, 25));
    expect(r.stepCount).toBe(25);
    // The same spec written differently (key order, spelled-out defaults) is the same spec.
    const same = { kind: 'wsd', decayShape: '1-sqrt', minRatio: 0.1, peak: 1e-3, warmup: 10, stable: 20, decay: 30, warmupShape: 'linear' } as kiln.sched.Schedule;
    expect(() => sched.LRScheduler.restore(opt, same, st)).not.toThrow();
    expect(() => sched.LRScheduler.restore(optimizerOf({ lr: 1 }, { lr: 1 }), spec, st)).toThrow(/1 base lrs for 2 parameter groups/);
    expect(() => sched.LRScheduler.restore(opt, spec, { ...st, step: -1 })).toThrow(/'step' must be an integer >= 0/);
  });

  it('tokens: once given, every step must give them, never decreasing', () => {
    const s = new sched.LRScheduler(optimizerOf({ lr: 1 }), sched.constant(1));
    s.step();
    s.step({ tokens: 100 });
    expect(() => s.step()).toThrow(/'ctx\.tokens' was given before/);
    expect(() => s.step({ tokens: 50 })).toThrow(/must not decrease/);
    expect(() => s.step({ tokens: NaN })).toThrow(kiln.ValueError);
  });

  it('momentum schedules set `momentum` (SGD-like groups) or betas[0] (Adam-like groups)', () => {
    const m = sched.oneCycleMomentum({ totalSteps: 20 });
    const sgd = optimizerOf({ lr: 0.1, momentum: 0.9 });
    const adam = optimizerOf({ lr: 0.1, betas: [0.9, 0.98] });
    const a = new sched.LRScheduler(sgd, sched.oneCycle({ maxLr: 0.1, totalSteps: 20 }), { momentum: m });
    const b = new sched.LRScheduler(adam, sched.oneCycle({ maxLr: 0.1, totalSteps: 20 }), { momentum: m });
    for (let k = 0; k < 12; ++k) {
      expect(sgd.paramGroups[0].momentum).toBe(sched.lrAt(m, k));
      expect(adam.paramGroups[0].betas).toEqual([sched.lrAt(m, k), 0.98]);
      a.step();
      b.step();
    }
    expect(a.momentum()).toEqual([sched.lrAt(m, 12)]);
    const r = sched.LRScheduler.restore(sgd, sched.oneCycle({ maxLr: 0.1, totalSteps: 20 }), a.state());
    expect(r.momentum()).toEqual([sched.lrAt(m, 12)]);
    expect(() => new sched.LRScheduler(optimizerOf({ lr: 1 }), sched.constant(1), { momentum: m })).toThrow(/needs paramGroups\[0\] to have 'momentum' or 'betas'/);
  });

  it('rejects bad optimizers and spec counts', () => {
    expect(() => new sched.LRScheduler({ paramGroups: [] }, sched.constant(1))).toThrow(/non-empty 'paramGroups'/);
    expect(() => new sched.LRScheduler(optimizerOf({ lr: NaN }), sched.constant(1))).toThrow(/paramGroups\[0\]\.lr must be a finite number/);
    expect(() => new sched.LRScheduler(optimizerOf({ lr: 1 }, { lr: 1 }), [sched.constant(1)])).toThrow(/got 1 schedule specs for 2 parameter groups/);
    expect(() => new sched.LRScheduler(optimizerOf({ lr: 1 }), { kind: 'cosine', from: 1, steps: 0 } as kiln.sched.Schedule)).toThrow(/sched\.cosine: 'steps' must be an integer >= 1/);
  });

  const hasOptim = typeof (kiln as { optim?: { SGD?: unknown } }).optim?.SGD === 'function';
  it.skipIf(!hasOptim)('drives kiln.optim.SGD (lr and momentum) and resumes exactly', () => {
    const optim = (kiln as unknown as { optim: { SGD: new (p: kiln.Tensor[], o: object) => { paramGroups: Group[]; step(): unknown } } }).optim;
    const spec = sched.oneCycle({ maxLr: 0.05, totalSteps: 12, threePhase: true });
    const mom = sched.oneCycleMomentum({ totalSteps: 12, threePhase: true });
    const train = (stopAt: number | null): number[] =>
      kiln.tidy(() => {
        const w = kiln.tensor([1, -2, 3, -4], [4], { requiresGrad: true });
        let opt = new optim.SGD([w], { lr: 0.05, momentum: 0.9 });
        let s = new sched.LRScheduler(opt, spec, { momentum: mom });
        for (let k = 0; k < 12; ++k) {
          kiln.tidy(() => kiln.sum(kiln.mul(w, w)).backward());
          opt.step();
          w.grad?.dispose();
          (w as { grad: kiln.Tensor | null }).grad = null;
          s.step();
          if (k === stopAt) {
            // A new optimizer object (its lr / momentum from the constructor) resumed from the scheduler state.
            const state = JSON.parse(JSON.stringify(s.state())) as kiln.sched.SchedulerState;
            const buf = (opt as unknown as { stateDict(): unknown }).stateDict();
            opt = new optim.SGD([w], { lr: 1, momentum: 0 });
            (opt as unknown as { loadStateDict(d: unknown): void }).loadStateDict(buf);
            s = sched.LRScheduler.restore(opt, spec, state);
            expect(opt.paramGroups[0].lr).toBe(sched.lrAt(spec, k + 1));
            expect(opt.paramGroups[0].momentum).toBe(sched.lrAt(mom, k + 1));
          }
        }
        return Array.from(w.dataSync() as Float32Array);
      });
    const straight = train(null);
    expect(straight.every(Number.isFinite)).toBe(true);
    expect(straight).not.toEqual([1, -2, 3, -4]);
    expect(train(5)).toEqual(straight);
  });
});

describe('plot', () => {
  it('writes an SVG with one line per schedule, axes, ticks, labels and a legend', () => {
    const file = path.join(tmp, 'sub', 'lr.svg');
    const svg = sched.plot(
      [
        { schedule: sched.wsd({ peak: 3e-4, warmup: 100, stable: 600, decay: 300, decayShape: '1-sqrt' }), label: 'WSD <1-sqrt>' },
        sched.cosine({ from: 3e-4, to: 3e-5, steps: 1000 }),
      ],
      { steps: 1000, path: file, title: 'Schedules' },
    );
    expect(fs.readFileSync(file, 'utf8')).toBe(svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<polyline /g)?.length).toBe(2);
    expect(svg).toContain('WSD &lt;1-sqrt&gt;'); // labels are escaped
    expect(svg).toContain('>cosine<');
    expect(svg).toContain('>Schedules<');
    expect(svg).toContain('>learning rate<');
    expect(svg).toContain('>step<');
    // y ticks in compact exponent form at 5e-5 intervals, x ticks every 100 steps.
    for (const tick of ['>0<', '>1e-4<', '>2e-4<', '>3e-4<', '>500<', '>900<']) expect(svg, tick).toContain(tick);
    // Every tag that opens closes (a light well-formedness check).
    const open = (svg.match(/<(svg|g|defs|clipPath|text)[ >]/g) ?? []).length;
    const close = (svg.match(/<\/(svg|g|defs|clipPath|text)>/g) ?? []).length;
    expect(open).toBe(close);
  });

  it('maps values to the plot area (a higher lr is drawn higher) and drops only collinear points', () => {
    const line = sched.plot(sched.linear({ from: 1, to: 0, steps: 9 }), { steps: 10, width: 400, height: 300 });
    expect(line.match(/points="([^"]+)"/)![1].split(' ').length).toBe(2); // a straight line: its two ends
    const svg = sched.plot(sched.cosine({ from: 1, steps: 99 }), { steps: 100, width: 400, height: 300 });
    const pts = svg.match(/points="([^"]+)"/)![1].split(' ').map((p) => p.split(',').map(Number));
    expect(pts.length).toBeGreaterThan(10);
    for (let i = 1; i < pts.length; ++i) {
      expect(pts[i][0]).toBeGreaterThan(pts[i - 1][0]);
      expect(pts[i][1]).toBeGreaterThan(pts[i - 1][1]); // SVG y grows downwards
    }
    // Every step of the cosine lies within 0.2 px of the drawn polyline (0.1 px tolerance plus rounding).
    const [x0, y0] = pts[0];
    const [x1, y1] = pts[pts.length - 1];
    for (let t = 0; t < 100; ++t) {
      const x = x0 + ((x1 - x0) * t) / 99;
      const yTrue = y0 + (y1 - y0) * (1 - (1 + Math.cos((Math.PI * t) / 99)) / 2);
      const j = Math.max(1, pts.findIndex((p) => p[0] >= x - 1e-9));
      const [ax, ay] = pts[j - 1];
      const [bx, by] = pts[j];
      const yDrawn = bx === ax ? ay : ay + ((by - ay) * (x - ax)) / (bx - ax);
      expect(Math.abs(yDrawn - yTrue), `step ${t}`).toBeLessThan(0.2);
    }
  });

  it('examples/schedules.mjs runs and reproduces the committed docs/schedules.svg', () => {
    const root = path.resolve(__dirname, '../..');
    const file = path.join(tmp, 'example.svg');
    execFileSync(process.execPath, ['examples/schedules.mjs', file], { cwd: root, encoding: 'utf8', env: process.env });
    expect(fs.readFileSync(file, 'utf8')).toBe(fs.readFileSync(path.join(root, 'docs/schedules.svg'), 'utf8'));
  });

  it('samples long schedules, supports a log axis, and rejects bad input', () => {
    const svg = sched.plot(sched.inverseSqrt({ peak: 1e-2, warmup: 1000 }), { steps: 1_000_000, logY: true });
    const n = svg.match(/points="([^"]+)"/)![1].split(' ').length;
    expect(n).toBeGreaterThan(10);
    expect(n).toBeLessThanOrEqual(2000); // sampled at 2000 steps at most
    expect(svg).toContain('log scale');
    expect(() => sched.plot(sched.linear({ from: 1, to: 0, steps: 5 }), { steps: 10, logY: true })).toThrow(/logY needs every lr > 0/);
    expect(() => sched.plot(sched.constant(1), { steps: 1 })).toThrow(kiln.ValueError);
    expect(() => sched.plot([], { steps: 10 })).toThrow(/nothing to plot/);
  });
});
