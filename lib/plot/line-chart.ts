// A hand-written SVG line chart: axes with 1-2-5 ticks, grid, labels, and a
// legend in a corner no line crosses (else below the plot); straight stretches
// are simplified (Ramer-Douglas-Peucker) so long series stay small. Shared by
// kiln.sched.plot and the trainer's curves. No dependency.
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
  /** Logarithmic y axis (plotted values must be > 0). */
  logY?: boolean;
  xLabel?: string;
  yLabel?: string;
  /** Start a linear y axis at 0 when every value is positive (default true; false fits the data). */
  yFromZero?: boolean;
  /** x ticks at whole numbers at least (default true: x counts steps). */
  integerX?: boolean;
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

/** An x (count) label: 1234, 12.5k, 1.2M. */
export function formatCount(v: number): string {
  const unit = (x: number, u: string): string => `${Number(x.toFixed(2))}${u}`;
  if (Math.abs(v) >= 1e6) return unit(v / 1e6, 'M');
  if (Math.abs(v) >= 1e4) return unit(v / 1e3, 'k');
  return String(Math.round(v * 100) / 100);
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
  const shown = (x: number, y: number): boolean => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
  let xLo = Infinity, xHi = -Infinity, lo = Infinity, hi = -Infinity;
  for (const s of series) {
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      if (logY && !(y > 0)) throw new ValueError(`kiln: ${where}: logY needs every value > 0 (series '${s.label}' has ${y})`);
      xLo = Math.min(xLo, x);
      xHi = Math.max(xHi, x);
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    });
  }
  if (!Number.isFinite(xLo)) throw new ValueError(`kiln: ${where}: no finite points to plot`);
  if (xHi === xLo) xHi = xLo + 1;

  // Layout: the plot area, given the room kept below it.
  const left = 78, right = 24, top = options.title ? 44 : 20;
  const layout = (bottom: number) => {
    const pw = W - left - right, ph = H - top - bottom;
    const X = (t: number): number => left + ((t - xLo) / (xHi - xLo)) * pw;
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
      const y0 = (options.yFromZero ?? true) ? Math.min(0, lo) : lo - (hi - lo) * 0.04;
      const y1 = hi > y0 ? hi + (hi - y0) * 0.06 : y0 + 1;
      yStep = niceStep(y1 - y0, 6);
      for (let v = Math.ceil(y0 / yStep) * yStep; v <= y1 + yStep * 1e-9; v += yStep) yTicks.push(Math.abs(v) < yStep * 1e-9 ? 0 : v);
      Y = (v) => top + ph - ((v - y0) / (y1 - y0)) * ph;
    }
    return { pw, ph, X, Y, yTicks, yStep };
  };

  // The legend goes in a corner of the plot that no line crosses, else below the plot.
  const lh = 18;
  const lw = Math.max(...series.map((s) => s.label.length)) * 6.6 + 44;
  const legendH = series.length * lh + 10;
  let L = layout(56);
  let legend: { x: number; y: number; cols: number; inside: boolean } | null = null;
  const free = (x0: number, y0: number, w: number, h: number): boolean =>
    series.every((s) =>
      s.x.every((x, i) => {
        if (!shown(x, s.y[i])) return true;
        const px = L.X(x), py = L.Y(s.y[i]);
        return px < x0 - 3 || px > x0 + w + 3 || py < y0 - 3 || py > y0 + h + 3;
      }),
    );
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
  const rawXStep = niceStep(xHi - xLo, 8);
  const xStep = (options.integerX ?? true) ? Math.max(1, rawXStep) : rawXStep;
  const xTicks: number[] = [];
  for (let t = Math.ceil(xLo / xStep - 1e-9) * xStep; t <= xHi + xStep * 1e-9; t += xStep) xTicks.push(t);

  const f2 = (v: number): string => (Math.round(v * 100) / 100).toString();
  const f1 = (v: number): string => (Math.round(v * 10) / 10).toString();
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  if (options.title) out.push(`<text x="${f2(left + pw / 2)}" y="26" text-anchor="middle" font-size="15" font-weight="bold" fill="#111827">${escapeXml(options.title)}</text>`);
  out.push(`<defs><clipPath id="plot-area"><rect x="${left}" y="${top}" width="${pw}" height="${ph}"/></clipPath></defs>`);
  // Grid and ticks.
  out.push('<g stroke="#e5e7eb" stroke-width="1">');
  for (const v of yTicks) out.push(`<line x1="${left}" x2="${left + pw}" y1="${f2(Y(v))}" y2="${f2(Y(v))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${f2(X(t))}" x2="${f2(X(t))}" y1="${top}" y2="${top + ph}"/>`);
  out.push('</g>');
  out.push(`<g fill="#374151" font-size="11">`);
  for (const v of yTicks) out.push(`<text x="${left - 8}" y="${f2(Y(v) + 4)}" text-anchor="end">${escapeXml(logY ? formatTick(v, v / 10) : formatTick(v, yStep))}</text>`);
  for (const t of xTicks) out.push(`<text x="${f2(X(t))}" y="${top + ph + 18}" text-anchor="middle">${formatCount(t)}</text>`);
  out.push('</g>');
  out.push(`<g stroke="#374151" stroke-width="1">`);
  for (const v of yTicks) out.push(`<line x1="${left - 4}" x2="${left}" y1="${f2(Y(v))}" y2="${f2(Y(v))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${f2(X(t))}" x2="${f2(X(t))}" y1="${top + ph}" y2="${top + ph + 4}"/>`);
  out.push('</g>');
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#374151" stroke-width="1"/>`);
  // Axis labels.
  out.push(`<text x="${f2(left + pw / 2)}" y="${top + ph + 42}" text-anchor="middle" fill="#111827" font-size="13">${escapeXml(options.xLabel ?? 'step')}</text>`);
  out.push(`<text transform="translate(18 ${f2(top + ph / 2)}) rotate(-90)" text-anchor="middle" fill="#111827" font-size="13">${escapeXml(options.yLabel ?? '')}</text>`);
  // Lines: one polyline per run of shown points (a lone point is a dot).
  out.push('<g clip-path="url(#plot-area)" fill="none" stroke-width="2" stroke-linejoin="round" stroke-linecap="round">');
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    let run: [number, number][] = [];
    const flush = (): void => {
      if (run.length === 1) out.push(`<circle cx="${f1(run[0][0])}" cy="${f1(run[0][1])}" r="2.5" fill="${color}" stroke="none"/>`);
      else if (run.length > 1) out.push(`<polyline stroke="${color}" points="${simplify(run).map(([x, y]) => `${f1(x)},${f1(y)}`).join(' ')}"/>`);
      run = [];
    };
    s.x.forEach((x, i) => (shown(x, s.y[i]) ? run.push([X(x), Y(s.y[i])]) : flush()));
    flush();
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
    out.push(`<text x="${f2(x + 40)}" y="${f2(y + 4)}" fill="#111827">${escapeXml(s.label)}</text>`);
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
