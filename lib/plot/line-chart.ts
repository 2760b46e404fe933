// A hand-written SVG line chart (axes with 1-2-5 ticks, grid, labels, legend),
// shared by kiln.sched.plot and the trainer's curves. No dependency.
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ValueError } from '../errors';

export interface LineSeries {
  label: string;
  x: readonly number[];
  /** Non-finite values leave a gap. */
  y: readonly number[];
}

export interface LineChartOptions {
  /** Also write the SVG here (folders are created). */
  path?: string;
  title?: string;
  width?: number;
  height?: number;
  /** Logarithmic y axis (finite values must be > 0). */
  logY?: boolean;
  xLabel?: string;
  yLabel?: string;
  /** Start the y axis at 0 when every value is positive (default true; false fits the data). */
  yFromZero?: boolean;
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f', '#7c2d12', '#475569'];

export const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 1, 2 or 5 times a power of ten, near range / count. */
export function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count);
  if (!(raw > 0)) return 1;
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

/** An x (step) label: 1234, 12.5k, 1.2M. */
export function formatCount(v: number): string {
  const unit = (x: number, u: string): string => `${Number(x.toFixed(2))}${u}`;
  if (Math.abs(v) >= 1e6) return unit(v / 1e6, 'M');
  if (Math.abs(v) >= 1e4) return unit(v / 1e3, 'k');
  return String(Math.round(v * 100) / 100);
}

/** Renders the series as an SVG line chart; returns the SVG text (and writes it to options.path). */
export function lineChart(series: readonly LineSeries[], options: LineChartOptions = {}): string {
  const where = 'lineChart';
  if (series.length === 0) throw new ValueError(`kiln: ${where}: nothing to plot`);
  for (const s of series) {
    if (s.x.length !== s.y.length) throw new ValueError(`kiln: ${where}: series '${s.label}' has ${s.x.length} x values and ${s.y.length} y values`);
  }
  const logY = options.logY ?? false;
  const W = options.width ?? 760;
  const H = options.height ?? 420;
  let xLo = Infinity, xHi = -Infinity, lo = Infinity, hi = -Infinity;
  for (const s of series) {
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      xLo = Math.min(xLo, x);
      xHi = Math.max(xHi, x);
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    });
  }
  if (!Number.isFinite(xLo)) throw new ValueError(`kiln: ${where}: no finite points to plot`);
  if (xHi === xLo) xHi = xLo + 1;
  if (logY && !(lo > 0)) throw new ValueError(`kiln: ${where}: logY needs every value > 0 (the smallest is ${lo})`);

  const left = 78, right = 24, top = options.title ? 44 : 20, bottom = 56;
  const pw = W - left - right, ph = H - top - bottom;
  const X = (t: number): number => left + ((t - xLo) / (xHi - xLo)) * pw;
  let yTicks: number[];
  let Y: (v: number) => number;
  let yStep = 0;
  if (logY) {
    const span = Math.log10(hi) - Math.log10(lo) || 1;
    const l0 = Math.log10(lo) - 0.02 * span, l1 = Math.log10(hi) + 0.05 * span;
    const e0 = Math.floor(Math.log10(lo)), e1 = Math.ceil(Math.log10(hi));
    yTicks = [];
    for (let e = e0; e <= e1; ++e) for (const m of e1 - e0 <= 2 ? [1, 2, 5] : [1]) yTicks.push(m * Math.pow(10, e));
    yTicks = yTicks.filter((v) => Math.log10(v) >= l0 && Math.log10(v) <= l1);
    Y = (v) => top + ph - ((Math.log10(v) - l0) / (l1 - l0)) * ph;
  } else {
    const y0 = (options.yFromZero ?? true) ? Math.min(0, lo) : lo - (hi - lo) * 0.04;
    const y1 = hi > y0 ? hi + (hi - y0) * 0.06 : y0 + 1;
    yStep = niceStep(y1 - y0, 6);
    yTicks = [];
    for (let v = Math.ceil(y0 / yStep) * yStep; v <= y1 + yStep * 1e-9; v += yStep) yTicks.push(Math.abs(v) < yStep * 1e-9 ? 0 : v);
    Y = (v) => top + ph - ((v - y0) / (y1 - y0)) * ph;
  }
  const xStep = niceStep(xHi - xLo, 8);
  const xTicks: number[] = [];
  for (let t = Math.ceil(xLo / xStep) * xStep; t <= xHi + xStep * 1e-9; t += xStep) xTicks.push(t);

  const f2 = (v: number): string => (Math.round(v * 100) / 100).toString();
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  if (options.title) out.push(`<text x="${f2(left + pw / 2)}" y="26" text-anchor="middle" font-size="15" font-weight="bold" fill="#111827">${escapeXml(options.title)}</text>`);
  out.push(`<defs><clipPath id="plot-area"><rect x="${left}" y="${top}" width="${pw}" height="${ph}"/></clipPath></defs>`);
  out.push('<g stroke="#e5e7eb" stroke-width="1">');
  for (const v of yTicks) out.push(`<line x1="${left}" x2="${left + pw}" y1="${f2(Y(v))}" y2="${f2(Y(v))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${f2(X(t))}" x2="${f2(X(t))}" y1="${top}" y2="${top + ph}"/>`);
  out.push('</g>');
  out.push('<g fill="#374151" font-size="11">');
  for (const v of yTicks) out.push(`<text x="${left - 8}" y="${f2(Y(v) + 4)}" text-anchor="end">${escapeXml(logY ? formatTick(v, v / 10) : formatTick(v, yStep))}</text>`);
  for (const t of xTicks) out.push(`<text x="${f2(X(t))}" y="${top + ph + 18}" text-anchor="middle">${formatCount(t)}</text>`);
  out.push('</g>');
  out.push('<g stroke="#374151" stroke-width="1">');
  for (const v of yTicks) out.push(`<line x1="${left - 4}" x2="${left}" y1="${f2(Y(v))}" y2="${f2(Y(v))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${f2(X(t))}" x2="${f2(X(t))}" y1="${top + ph}" y2="${top + ph + 4}"/>`);
  out.push('</g>');
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#374151" stroke-width="1"/>`);
  out.push(`<text x="${f2(left + pw / 2)}" y="${H - 14}" text-anchor="middle" fill="#111827" font-size="13">${escapeXml(options.xLabel ?? 'step')}</text>`);
  out.push(`<text transform="translate(18 ${f2(top + ph / 2)}) rotate(-90)" text-anchor="middle" fill="#111827" font-size="13">${escapeXml(options.yLabel ?? '')}</text>`);
  out.push('<g clip-path="url(#plot-area)" fill="none" stroke-width="2" stroke-linejoin="round" stroke-linecap="round">');
  series.forEach((s, k) => {
    // Split at gaps (non-finite values): one polyline per finite run; lone points as dots.
    let run: string[] = [];
    const flush = (): void => {
      if (run.length > 1) out.push(`<polyline stroke="${COLORS[k % COLORS.length]}" points="${run.join(' ')}"/>`);
      else if (run.length === 1) {
        const [cx, cy] = run[0].split(',');
        out.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${COLORS[k % COLORS.length]}" stroke="none"/>`);
      }
      run = [];
    };
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)) run.push(`${f2(X(x))},${f2(Y(y))}`);
      else flush();
    });
    flush();
  });
  out.push('</g>');
  const lh = 18;
  const textW = Math.max(...series.map((s) => s.label.length)) * 6.6;
  const lw = Math.min(pw - 16, textW + 44);
  const lx = left + pw - lw - 8, ly = top + 8;
  out.push(`<g font-size="12"><rect x="${f2(lx)}" y="${ly}" width="${f2(lw)}" height="${series.length * lh + 10}" fill="#ffffff" fill-opacity="0.92" stroke="#d1d5db" rx="4"/>`);
  series.forEach((s, k) => {
    const y = ly + 5 + k * lh + lh / 2;
    out.push(`<line x1="${f2(lx + 10)}" x2="${f2(lx + 34)}" y1="${f2(y)}" y2="${f2(y)}" stroke="${COLORS[k % COLORS.length]}" stroke-width="2.5"/>`);
    out.push(`<text x="${f2(lx + 40)}" y="${f2(y + 4)}" fill="#111827">${escapeXml(s.label)}</text>`);
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
