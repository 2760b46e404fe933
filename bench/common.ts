// Pieces every TypeScript benchmark shares: command-line options, the package
// root and the kiln build it loads, timing, the machine's measured limits
// (bench/peak/fma_peak.cpp) and the "machine" line of a result table.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type Kiln = typeof import('../dist/cjs/index');

const args = process.argv.slice(2);
/** The value after --name, or def. */
export const opt = (name: string, def: string | null): string | null => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
/** Whether --name was given. */
export const flag = (name: string): boolean => args.includes(`--${name}`);

/** The kiln package root (the nearest package.json named kiln above this file). */
export function packageRoot(): string {
  for (let d = __dirname; ; d = path.dirname(d)) {
    const pj = path.join(d, 'package.json');
    if (fs.existsSync(pj) && (JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'kiln') return d;
    if (path.dirname(d) === d) throw new Error('bench: cannot find the kiln package root');
  }
}
export const ROOT = packageRoot();
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const kiln = require(ROOT) as Kiln;
export const DATE = new Date().toISOString().slice(0, 10);
export const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** bench/results/<date>-<name>.md unless --no-write or --out FILE. */
export function outPath(name: string): string | null {
  return flag('no-write') ? null : opt('out', path.join(ROOT, 'bench', 'results', `${DATE}-${name}.md`));
}

/** Prints the table and writes it to `out` (when not null). */
export function writeTable(lines: string[], out: string | null): void {
  const table = lines.join('\n');
  console.log(table);
  if (out) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, table);
    console.error(`wrote ${path.relative(process.cwd(), out)}`);
  }
}

// ---- timing --------------------------------------------------------------------------

export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Seconds, monotonic. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** Median seconds of `reps` calls after 2 warm-ups; `wait` (e.g. a device synchronize) runs after each call, inside the timing. */
export function timeSync(fn: () => void, reps: number, wait: () => void = () => {}): number {
  fn();
  fn();
  wait();
  const t: number[] = [];
  for (let i = 0; i < reps; ++i) {
    const t0 = now();
    fn();
    wait();
    t.push(now() - t0);
  }
  return median(t);
}

/** timeSync for an async call. */
export async function timeAsync(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  await fn();
  const t: number[] = [];
  for (let i = 0; i < reps; ++i) {
    const t0 = now();
    await fn();
    t.push(now() - t0);
  }
  return median(t);
}

// ---- the machine ---------------------------------------------------------------------

export interface Peak {
  peak_gflops: number;
  avx512_gflops: number;
  avx2_gflops: number;
  read_gbs: number;
}

/** Runs kiln_fma_peak with `threads` threads (building it with CMake when it is not built yet); best of two runs. */
export function measurePeak(threads: number): Peak | null {
  const candidates = [process.env.KILN_FMA_PEAK, path.join(ROOT, 'build', 'kiln_fma_peak'), path.join(ROOT, 'build', 'peak', 'kiln_fma_peak')].filter((p): p is string => !!p);
  let exe = candidates.find((p) => fs.existsSync(p));
  if (!exe) {
    try {
      const buildDir = fs.existsSync(path.join(ROOT, 'build', 'CMakeCache.txt')) ? path.join(ROOT, 'build') : path.join(ROOT, 'build', 'peak');
      if (buildDir.endsWith('peak')) {
        execFileSync('cmake', ['-S', ROOT, '-B', buildDir, '-DKILN_CUDA=OFF', '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'ignore' });
      }
      execFileSync('cmake', ['--build', buildDir, '--target', 'kiln_fma_peak'], { stdio: 'ignore' });
      exe = path.join(buildDir, 'kiln_fma_peak');
    } catch {
      return null;
    }
  }
  try {
    // Best of two runs (the machine may be shared).
    const runs = [0, 1].map(() => JSON.parse(execFileSync(exe as string, [String(threads)], { encoding: 'utf8' })) as Peak);
    return {
      peak_gflops: Math.max(...runs.map((r) => r.peak_gflops)),
      avx512_gflops: Math.max(...runs.map((r) => r.avx512_gflops)),
      avx2_gflops: Math.max(...runs.map((r) => r.avx2_gflops)),
      read_gbs: Math.max(...runs.map((r) => r.read_gbs)),
    };
  } catch {
    return null;
  }
}

/** "- machine: CPU, cores, RAM, OS; kiln ISA level" */
export function machineLine(): string {
  const dev = kiln.devices();
  return `- machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}; kiln ISA level ${dev.cpu.isaLevel} (${dev.cpu.isa.join(' ')})`;
}

/** "- limits: ..." for a measured Peak. */
export function limitsLine(peak: Peak | null, threads: number): string {
  return peak
    ? `- limits (bench/peak/fma_peak.cpp, ${threads} threads): float32 FMA peak ${peak.peak_gflops.toFixed(1)} GFLOP/s (AVX-512 ${peak.avx512_gflops.toFixed(1)}, AVX2 ${peak.avx2_gflops.toFixed(1)}); memory read ${peak.read_gbs.toFixed(1)} GB/s`
    : '- limits: kiln_fma_peak could not be built or run (n/a)';
}
