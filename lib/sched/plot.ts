// kiln.sched.plot: an SVG chart of lr vs step for one or more schedules, written
// by hand (axes with ticks and labels, grid, legend); no dependency.
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ValueError } from '../errors';
import { checkStep, lrAt, normalize } from './evaluate';
import type { LrContext, Schedule } from './spec';

export interface PlotSeries {
  schedule: Schedule;
  label?: string;
  /** e.g. { base } for relative schedules */
  ctx?: { base?: number };
}

export interface PlotOptions {
  /** Steps to plot (0 .. steps - 1). */
  steps: number;
  /** Write the SVG to this file (folders are created). */
  path?: string;
  title?: string;
  width?: number;
  height?: number;
  /** Logarithmic lr axis (every value must be > 0). */
  logY?: boolean;
  xLabel?: string;
  yLabel?: string;
  /** Most points drawn per series (steps are sampled evenly beyond it); default 2000. */
  maxPoints?: number;
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f', '#7c2d12', '#475569'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

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

/** 1, 2 or 5 times a power of ten, near range / count. */
function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/** A tick label: fixed for moderate values, compact exponent (2.5e-4) for small or large ones. */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.max(Math.abs(v), step);
  if (a < 1e-2 || a >= 1e5) {
    const digits = Math.max(0, Math.min(6, Math.floor(Math.log10(Math.abs(v))) - Math.floor(Math.log10(step))));
    const [mant, exp] = v.toExponential(digits).split('e');
    return `${mant.includes('.') ? mant.replace(/\.?0+$/, '') : mant}e${Number(exp)}`;
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(decimals);
}

function formatStep(v: number): string {
  const unit = (x: number, u: string): string => `${Number(x.toFixed(2))}${u}`;
  if (Math.abs(v) >= 1e6) return unit(v / 1e6, 'M');
  if (Math.abs(v) >= 1e4) return unit(v / 1e3, 'k');
  return String(Math.round(v));
}

/**
 * Ramer-Douglas-Peucker: keeps the points farther than `tol` pixels from the
 * chord of the stretch they lie in, so straight stretches cost two points.
 */
export function simplify(pts: readonly [number, number][], tol = 0.1): [number, number][] {
  const n = pts.length;
  if (n <= 2) return pts.slice();
  const keep = new Uint8Array(n);
  keep[0] = keep[n - 1] = 1;
  const stack: [number, number][] = [[0, n - 1]];
  while (stack.length) {
    const [a, b] = stack.pop()!;
    const [ax, ay] = pts[a];
    const [bx, by] = pts[b];
    const len = Math.hypot(bx - ax, by - ay) || 1;
    let far = -1;
    let dmax = tol;
    for (let i = a + 1; i < b; ++i) {
      const d = Math.abs((bx - ax) * (ay - pts[i][1]) - (ax - pts[i][0]) * (by - ay)) / len;
      if (d > dmax) [dmax, far] = [d, i];
    }
    if (far >= 0) {
      keep[far] = 1;
      stack.push([a, far], [far, b]);
    }
  }
  return pts.filter((_, i) => keep[i] === 1);
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
  const W = options.width ?? 760;
  const H = options.height ?? 420;
  const maxPoints = options.maxPoints ?? 2000;
  const logY = options.logY ?? false;
  const xs: number[] = [];
  const n = Math.min(steps, maxPoints);
  for (let i = 0; i < n; ++i) xs.push(n === steps ? i : Math.round((i * (steps - 1)) / (n - 1)));
  const ys = series.map(({ s, ctx }) => xs.map((t) => lrAt(s, t, ctx as LrContext)));
  let lo = Infinity, hi = -Infinity;
  for (const row of ys) for (const v of row) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (logY && !(lo > 0)) throw new ValueError(`kiln: ${where}: logY needs every lr > 0 (the smallest is ${lo})`);

  // Layout: the plot area, given the room kept below it.
  const left = 78, right = 24, top = options.title ? 44 : 20;
  const xMax = steps - 1;
  const layout = (bottom: number) => {
    const pw = W - left - right, ph = H - top - bottom;
    const X = (t: number): number => left + (t / xMax) * pw;
    let yTicks: number[] = [];
    let Y: (v: number) => number;
    let yStep = 0;
    if (logY) {
      const e0 = Math.floor(Math.log10(lo)), e1 = Math.ceil(Math.log10(hi));
      const span = Math.log10(hi) - Math.log10(lo) || 1;
      const l0 = Math.log10(lo) - 0.02 * span, l1 = Math.log10(hi) + 0.05 * span;
      for (let e = e0; e <= e1; ++e) for (const m of e1 - e0 <= 2 ? [1, 2, 5] : [1]) yTicks.push(m * Math.pow(10, e));
      yTicks = yTicks.filter((v) => Math.log10(v) >= l0 && Math.log10(v) <= l1);
      Y = (v) => top + ph - ((Math.log10(v) - l0) / (l1 - l0)) * ph;
    } else {
      const y0 = Math.min(0, lo);
      const y1 = hi > y0 ? hi + (hi - y0) * 0.06 : y0 + 1;
      yStep = niceStep(y1 - y0, 6);
      for (let v = Math.ceil(y0 / yStep) * yStep; v <= y1 + yStep * 1e-9; v += yStep) yTicks.push(Math.abs(v) < yStep * 1e-9 ? 0 : v);
      Y = (v) => top + ph - ((v - y0) / (y1 - y0)) * ph;
    }
    return { pw, ph, X, Y, yTicks, yStep, bottom };
  };

  // The legend goes in a corner of the plot that no line crosses, else below the plot.
  const lh = 18;
  const lw = Math.max(...series.map((s) => s.label.length)) * 6.6 + 44;
  const legendH = series.length * lh + 10;
  let L = layout(56);
  let legend: { x: number; y: number; cols: number; inside: boolean } | null = null;
  const free = (x0: number, y0: number, w: number, h: number): boolean =>
    ys.every((row) => row.every((v, i) => {
      const px = L.X(xs[i]), py = L.Y(v);
      return px < x0 - 3 || px > x0 + w + 3 || py < y0 - 3 || py > y0 + h + 3;
    }));
  if (lw <= L.pw - 16 && legendH <= L.ph - 16) {
    const xsOpt = [left + L.pw - lw - 8, left + 8];
    const ysOpt = [top + 8, top + L.ph - legendH - 8];
    for (const y of ysOpt) for (const x of xsOpt) if (!legend && free(x, y, lw, legendH)) legend = { x, y, cols: 1, inside: true };
  }
  if (!legend) {
    const cols = Math.max(1, Math.min(series.length, Math.floor((W - left - right) / lw)));
    const rows = Math.ceil(series.length / cols);
    L = layout(56 + rows * lh + 8);
    legend = { x: left, y: H - rows * lh - 10, cols, inside: false };
  }
  const { pw, ph, X, Y, yTicks, yStep } = L;
  const xStep = Math.max(1, niceStep(xMax, 8));
  const xTicks: number[] = [];
  for (let t = 0; t <= xMax + 1e-9; t += xStep) xTicks.push(t);

  const f2 = (v: number): string => (Math.round(v * 100) / 100).toString();
  const f1 = (v: number): string => (Math.round(v * 10) / 10).toString();
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  if (options.title) out.push(`<text x="${f2(left + pw / 2)}" y="26" text-anchor="middle" font-size="15" font-weight="bold" fill="#111827">${esc(options.title)}</text>`);
  out.push(`<defs><clipPath id="plot-area"><rect x="${left}" y="${top}" width="${pw}" height="${ph}"/></clipPath></defs>`);
  // Grid and ticks.
  out.push('<g stroke="#e5e7eb" stroke-width="1">');
  for (const v of yTicks) out.push(`<line x1="${left}" x2="${left + pw}" y1="${f2(Y(v))}" y2="${f2(Y(v))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${f2(X(t))}" x2="${f2(X(t))}" y1="${top}" y2="${top + ph}"/>`);
  out.push('</g>');
  out.push(`<g fill="#374151" font-size="11">`);
  for (const v of yTicks) out.push(`<text x="${left - 8}" y="${f2(Y(v) + 4)}" text-anchor="end">${esc(logY ? formatTick(v, v / 10) : formatTick(v, yStep))}</text>`);
  for (const t of xTicks) out.push(`<text x="${f2(X(t))}" y="${top + ph + 18}" text-anchor="middle">${formatStep(t)}</text>`);
  out.push('</g>');
  out.push(`<g stroke="#374151" stroke-width="1">`);
  for (const v of yTicks) out.push(`<line x1="${left - 4}" x2="${left}" y1="${f2(Y(v))}" y2="${f2(Y(v))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${f2(X(t))}" x2="${f2(X(t))}" y1="${top + ph}" y2="${top + ph + 4}"/>`);
  out.push('</g>');
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#374151" stroke-width="1"/>`);
  // Axis labels.
  out.push(`<text x="${f2(left + pw / 2)}" y="${top + ph + 42}" text-anchor="middle" fill="#111827" font-size="13">${esc(options.xLabel ?? 'step')}</text>`);
  out.push(`<text transform="translate(18 ${f2(top + ph / 2)}) rotate(-90)" text-anchor="middle" fill="#111827" font-size="13">${esc(options.yLabel ?? (logY ? 'learning rate (log scale)' : 'learning rate'))}</text>`);
  // Lines.
  out.push('<g clip-path="url(#plot-area)" fill="none" stroke-width="2" stroke-linejoin="round" stroke-linecap="round">');
  ys.forEach((row, k) => {
    const pts = simplify(row.map((v, i): [number, number] => [X(xs[i]), Y(v)]))
      .map(([x, y]) => `${f1(x)},${f1(y)}`)
      .join(' ');
    out.push(`<polyline stroke="${COLORS[k % COLORS.length]}" points="${pts}"/>`);
  });
  out.push('</g>');
  // Legend.
  out.push('<g font-size="12">');
  if (legend.inside) out.push(`<rect x="${f2(legend.x)}" y="${f2(legend.y)}" width="${f2(lw)}" height="${legendH}" fill="#ffffff" fill-opacity="0.92" stroke="#d1d5db" rx="4"/>`);
  series.forEach((s, k) => {
    const col = k % legend!.cols;
    const row = Math.floor(k / legend!.cols);
    const x = legend!.x + col * lw;
    const y = legend!.y + 5 + row * lh + lh / 2;
    out.push(`<line x1="${f2(x + 10)}" x2="${f2(x + 34)}" y1="${f2(y)}" y2="${f2(y)}" stroke="${COLORS[k % COLORS.length]}" stroke-width="2.5"/>`);
    out.push(`<text x="${f2(x + 40)}" y="${f2(y + 4)}" fill="#111827">${esc(s.label)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  const svg = out.join('\n') + '\n';
  if (options.path) {
    fs.mkdirSync(nodePath.dirname(nodePath.resolve(options.path)), { recursive: true });
    fs.writeFileSync(options.path, svg);
  }
  return svg;
}
