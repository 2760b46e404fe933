// Six learning-rate schedules over 10k steps, plotted to docs/schedules.svg
// (the README's schedule figure):  node examples/schedules.mjs [out.svg]
import { fileURLToPath } from 'node:url';
import * as kiln from 'kiln';

const { sched } = kiln;
const out = process.argv[2] ?? fileURLToPath(new URL('../docs/schedules.svg', import.meta.url));
const peak = 3e-4;
const steps = 10_000;

const cosine = sched.seq([
  { schedule: sched.warmup({ to: peak, steps: 500 }), steps: 500 },
  { schedule: sched.cosine({ from: peak, to: peak / 10, steps: steps - 500 }) },
]);
const wsd = sched.wsd({ peak, warmup: 500, stable: 7500, decay: 2000, decayShape: '1-sqrt', minRatio: 0.05 });
const oneCycle = sched.oneCycle({ maxLr: peak, totalSteps: steps, pctStart: 0.25 });
const rex = sched.seq([
  { schedule: sched.warmup({ to: peak, steps: 500 }), steps: 500 },
  { schedule: sched.rex({ peak, steps: steps - 500 }) },
]);
const infinite = sched.infinite({ peak, warmup: 500, cooldown: 2500, constant: peak / 3, anneal: { start: 8500, steps: 1500, min: peak / 100 } });
// IBM's Power scheduler on 0.5M tokens per step: min(max, a * tokens^b), exponential decay at the end.
const power = sched.power({ a: 5.8, b: -0.51, max: peak, warmup: 500, tokensPerStep: 524_288, decay: { start: 8500, steps: 1500, shape: 'exp', halfLife: 300 } });

const svg = sched.plot(
  [
    { schedule: cosine, label: 'warmup + cosine to 10%' },
    { schedule: wsd, label: 'WSD (1-sqrt decay, 5% floor)' },
    { schedule: oneCycle, label: 'OneCycle (PyTorch)' },
    { schedule: rex, label: 'warmup + REX' },
    { schedule: infinite, label: 'infinite (cosine cooldown, anneal at 8.5k)' },
    { schedule: power, label: 'Power (IBM, 0.5M tokens/step)' },
  ],
  { steps, path: out, title: 'kiln.sched: lr vs step', width: 860, height: 460 },
);
console.log(`wrote ${out} (${svg.length} bytes); lr at step 9000: WSD ${sched.lrAt(wsd, 9000).toExponential(3)}`);
