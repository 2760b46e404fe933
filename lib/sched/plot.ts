// kiln.sched.plot: an SVG chart of lr vs step for one or more schedules (the
// renderer is lib/plot/line-chart.ts).
import { ValueError } from '../errors';
import { lineChart, type LineChartOptions } from '../plot/line-chart';
import { checkStep, lrAt, normalize } from './evaluate';
import type { LrContext, Schedule } from './spec';

export interface PlotSeries {
  schedule: Schedule;
  label?: string;
  /** e.g. { base } for relative schedules */
  ctx?: { base?: number };
}

/** The chart's options (path, title, size, logY, axis labels) plus the steps to plot. */
export interface PlotOptions extends Pick<LineChartOptions, 'path' | 'title' | 'width' | 'height' | 'logY' | 'xLabel' | 'yLabel'> {
  /** Steps to plot (0 .. steps - 1). */
  steps: number;
  /** Most points drawn per series (steps are sampled evenly beyond it); default 2000. */
  maxPoints?: number;
}

/** A short default label for a spec. */
export function describe(s: Schedule): string {
  switch (s.kind) {
    case 'wsd':
      return `wsd (${s.warmupShape} warmup, ${s.decayShape} decay)`;
    case 'oneCycle':
      return `oneCycle (${s.anneal}${s.threePhase ? ', three-phase' : ''})`;
    case 'warmup':
      return `warmup (${s.shape})`;
    case 'infinite':
      return `infinite (${s.cooldownShape} cooldown${s.anneal ? ', anneal' : ''})`;
    case 'rex':
      return s.beta === 1 ? 'rex' : `rex (beta ${s.beta})`;
    case 'power':
      return `power (b ${s.b})`;
    case 'seq':
      return `seq(${s.parts.map((p) => describe(p.schedule)).join(', ')})`;
    case 'mul':
    case 'min':
    case 'max':
      return `${s.kind}(${s.of.map(describe).join(', ')})`;
    default:
      return s.kind;
  }
}

/** Renders schedules as an SVG line chart of lr vs step; returns the SVG text (and writes it to `path`). */
export function plot(specs: Schedule | readonly (Schedule | PlotSeries)[], options: PlotOptions): string {
  const where = 'sched.plot';
  if (!options || typeof options !== 'object') throw new ValueError(`kiln: ${where}: options { steps, path? } are required`);
  const steps = checkStep(where, options.steps);
  if (steps < 2) throw new ValueError(`kiln: ${where}: 'steps' must be at least 2, got ${steps}`);
  const list = (Array.isArray(specs) ? specs : [specs]) as (Schedule | PlotSeries)[];
  if (list.length === 0) throw new ValueError(`kiln: ${where}: nothing to plot`);
  const series = list.map((x) => {
    const isSeries = typeof x === 'object' && x !== null && 'schedule' in x && !('kind' in x);
    const s = normalize(isSeries ? (x as PlotSeries).schedule : x);
    return { s, label: (isSeries && (x as PlotSeries).label) || describe(s), ctx: (isSeries ? (x as PlotSeries).ctx : undefined) ?? {} };
  });
  const maxPoints = options.maxPoints ?? 2000;
  const logY = options.logY ?? false;
  const xs: number[] = [];
  const n = Math.min(steps, maxPoints);
  for (let i = 0; i < n; ++i) xs.push(n === steps ? i : Math.round((i * (steps - 1)) / (n - 1)));
  const lines = series.map(({ s, label, ctx }) => ({ label, x: xs, y: xs.map((t) => lrAt(s, t, ctx as LrContext)) }));
  if (logY) {
    const lo = Math.min(...lines.map((l) => Math.min(...l.y)));
    if (!(lo > 0)) throw new ValueError(`kiln: ${where}: logY needs every lr > 0 (the smallest is ${lo})`);
  }
  return lineChart(lines, {
    path: options.path,
    title: options.title,
    width: options.width,
    height: options.height,
    logY,
    xLabel: options.xLabel ?? 'step',
    yLabel: options.yLabel ?? (logY ? 'learning rate (log scale)' : 'learning rate'),
  });
}
