// rand/randn: counter-based determinism and distribution moments.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

function moments(x: ArrayLike<number>): { mean: number; variance: number; skew: number; kurtosis: number } {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; ++i) mean += x[i];
  mean /= n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; ++i) {
    const d = x[i] - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  return { mean, variance: m2, skew: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) };
}

describe('rand', () => {
  it('is uniform on [0, 1) with the right moments', () => {
    const n = 1 << 20;
    const x = kiln.rand([n], { seed: 7 }).dataSync();
    let min = 1;
    let max = 0;
    for (const v of x) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    const m = moments(x);
    // standard errors: mean sqrt(1/12/n) ~ 2.8e-4; variance ~ 8.7e-5
    expect(Math.abs(m.mean - 0.5)).toBeLessThan(5 * 2.8e-4);
    expect(Math.abs(m.variance - 1 / 12)).toBeLessThan(5 * 8.7e-5);
    expect(Math.abs(m.skew)).toBeLessThan(0.01);
    // histogram: 16 bins, chi-square with 15 dof well under 40 (p ~ 5e-4)
    const bins = new Array<number>(16).fill(0);
    for (const v of x) bins[Math.floor(v * 16)] += 1;
    const chi2 = bins.reduce((s, b) => s + (b - n / 16) ** 2 / (n / 16), 0);
    expect(chi2).toBeLessThan(40);
  });
  it('is exact in low-precision dtypes and never rounds up to 1', () => {
    for (const dtype of ['bfloat16', 'float16', 'float8_e4m3', 'float8_e5m2'] as const) {
      const v = kiln.rand([4096], { seed: 1, dtype }).toArray() as number[];
      expect(Math.max(...v), dtype).toBeLessThan(1);
      expect(Math.min(...v), dtype).toBeGreaterThanOrEqual(0);
      expect(new Set(v).size, dtype).toBeGreaterThan(4);
    }
  });
});

describe('randn', () => {
  it('has normal moments (mean 0, variance 1, skew 0, kurtosis 3)', () => {
    const n = 1 << 20;
    const m = moments(kiln.randn([n], { seed: 11 }).dataSync());
    expect(Math.abs(m.mean)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(m.variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(m.skew)).toBeLessThan(5 * Math.sqrt(6 / n));
    expect(Math.abs(m.kurtosis - 3)).toBeLessThan(5 * Math.sqrt(24 / n));
  });
  it('matches the normal CDF (Kolmogorov-Smirnov)', () => {
    const n = 1 << 16;
    const x = Array.from(kiln.randn([n], { seed: 5 }).dataSync()).sort((a, b) => a - b);
    // Phi via erfc approximation (Numerical Recipes erfcc, |error| < 1.2e-7)
    const erfc = (z: number): number => {
      const t = 1 / (1 + 0.5 * Math.abs(z));
      const r =
        t *
        Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
      return z >= 0 ? r : 2 - r;
    };
    const phi = (v: number) => 0.5 * erfc(-v / Math.SQRT2);
    let d = 0;
    for (let i = 0; i < n; ++i) d = Math.max(d, Math.abs(phi(x[i]) - i / n), Math.abs(phi(x[i]) - (i + 1) / n));
    expect(d).toBeLessThan(1.95 / Math.sqrt(n)); // p ~ 0.001
  });
});

describe('determinism', () => {
  it('same seed -> same numbers; different seeds differ; prefixes agree across sizes', () => {
    const a = Array.from(kiln.randn([1000], { seed: 42 }).dataSync());
    const b = Array.from(kiln.randn([1000], { seed: 42 }).dataSync());
    const c = Array.from(kiln.randn([1000], { seed: 43 }).dataSync());
    const d = Array.from(kiln.randn([37], { seed: 42 }).dataSync());
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(d).toEqual(a.slice(0, 37));
    expect(Array.from(kiln.rand([5, 7], { seed: 42 }).dataSync())).toEqual(Array.from(kiln.rand([35], { seed: 42 }).dataSync()));
  });
  it('does not depend on the thread count', () => {
    const before = kiln.getNumThreads();
    kiln.setNumThreads(1);
    const one = Array.from(kiln.randn([100003], { seed: 9 }).dataSync());
    kiln.setNumThreads(3);
    const three = Array.from(kiln.randn([100003], { seed: 9 }).dataSync());
    kiln.setNumThreads(before);
    expect(three).toEqual(one);
  });
  it('the global stream advances and replays after manualSeed', () => {
    kiln.manualSeed(123);
    const s0 = kiln.getRngState();
    expect(s0).toEqual({ seed: 123, offset: 0 });
    const x1 = Array.from(kiln.rand([10]).dataSync());
    const x2 = Array.from(kiln.rand([10]).dataSync());
    expect(x2).not.toEqual(x1);
    expect(kiln.getRngState()).toEqual({ seed: 123, offset: 6 }); // ceil(10/4) blocks per call
    kiln.manualSeed(123);
    expect(Array.from(kiln.rand([10]).dataSync())).toEqual(x1);
    const state = kiln.getRngState();
    const next = Array.from(kiln.randn([10]).dataSync());
    kiln.setRngState(state);
    expect(Array.from(kiln.randn([10]).dataSync())).toEqual(next);
    // an unseeded call equals a seeded call's continuation: block offset 3 = elements 12..
    kiln.manualSeed(5);
    kiln.rand([12]);
    const cont = Array.from(kiln.rand([4]).dataSync());
    expect(cont).toEqual(Array.from(kiln.rand([16], { seed: 5 }).dataSync()).slice(12));
  });
});
