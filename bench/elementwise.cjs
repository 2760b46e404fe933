#!/usr/bin/env node
// Elementwise throughput on the CPU: kiln vs NumPy (the peer, run in the same
// benchmark run) vs the machine's copy bandwidth (the limit for these
// memory-bound kernels). Prints a Markdown table; `--out file` also writes it.
//
//   node bench/elementwise.cjs [--n 67108864] [--reps 10] [--out bench/results/x.md]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const kiln = require('..');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const N = Number(opt('n', 1 << 26)); // 256 MiB per float32 tensor: well beyond the caches
const REPS = Number(opt('reps', 10));
const OUT = opt('out', null);

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median seconds of fn over REPS runs after 2 warm-ups. */
function time(fn) {
  fn();
  fn();
  const t = [];
  for (let i = 0; i < REPS; ++i) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(t);
}

const d = kiln.devices();
const a = kiln.randn([N], { seed: 1 });
const b = kiln.randn([N], { seed: 2 });

// The limit: copy bandwidth (read 4N + write 4N bytes), the better of a
// single-threaded JS TypedArray copy and a copy on every kiln thread (clone:
// one memcpy per thread chunk).
const src = new Float32Array(N).map((_, i) => i % 1000);
const dst = new Float32Array(N);
const jsCopyGBs = (8 * N) / time(() => dst.set(src)) / 1e9;
const threadedCopyGBs = (8 * N) / time(() => a.clone().dispose()) / 1e9;
const copyGBs = Math.max(jsCopyGBs, threadedCopyGBs);
const cases = [
  // name, bytes moved per call, kiln fn, numpy statement (a, b float32 arrays)
  ['add f32 (a + b)', 12 * N, () => kiln.add(a, b).dispose(), 'a + b'],
  ['add f32 broadcast (a + 1)', 8 * N, () => a.add(1).dispose(), 'a + np.float32(1)'],
  ['cast f32 -> bf16', 6 * N, () => a.cast('bfloat16').dispose(), null],
  ['cast f32 -> f16', 6 * N, () => a.cast('float16').dispose(), 'a.astype(np.float16)'],
  ['cast f32 -> fp8 e4m3', 5 * N, () => a.cast('float8_e4m3').dispose(), null],
  ['randn f32', 4 * N, () => kiln.randn([N], { seed: 3 }).dispose(), 'rng.standard_normal(n, dtype=np.float32)'],
];

// NumPy peer, timed the same way (median of REPS after warm-up), in a subprocess.
function numpyTimes() {
  const stmts = cases.map((c) => c[3]).filter(Boolean);
  const py = `
import json, time, numpy as np
n = ${N}
rng = np.random.default_rng(1)
a = rng.standard_normal(n, dtype=np.float32); b = rng.standard_normal(n, dtype=np.float32)
out = {}
for s in ${JSON.stringify(stmts)}:
    f = eval('lambda: ' + s)
    f(); f()
    ts = []
    for _ in range(${REPS}):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    out[s] = sorted(ts)[len(ts) // 2]
print(json.dumps({'version': np.__version__, 'times': out}))
`;
  try {
    return JSON.parse(execFileSync('python3', ['-c', py], { encoding: 'utf8' }));
  } catch (e) {
    return null;
  }
}

const np = numpyTimes();
const rows = cases.map(([name, bytes, fn, stmt]) => {
  const sec = time(fn);
  const gbs = bytes / sec / 1e9;
  const npSec = np && stmt ? np.times[stmt] : null;
  return {
    name,
    ms: (sec * 1e3).toFixed(2),
    gbs: gbs.toFixed(1),
    ofCopy: `${((gbs / copyGBs) * 100).toFixed(0)}%`,
    numpyMs: npSec ? (npSec * 1e3).toFixed(2) : 'n/a',
    speedup: npSec ? `${(npSec / sec).toFixed(2)}x` : 'n/a',
  };
});
a.dispose();
b.dispose();

const lines = [
  `# Elementwise CPU throughput (n = ${N})`,
  '',
  `- date: ${new Date().toISOString().slice(0, 10)}; machine: ${os.cpus()[0].model}, ${os.cpus().length} cores, ${d.cpu.threads} kiln threads, ISA level ${d.cpu.isaLevel}`,
  `- limit: float32 copy ${copyGBs.toFixed(1)} GB/s read + write (JS TypedArray.set on one thread: ${jsCopyGBs.toFixed(1)} GB/s; memcpy on ${d.cpu.threads} threads: ${threadedCopyGBs.toFixed(1)} GB/s)`,
  `- peer: NumPy ${np ? np.version : 'not available'}, same process tree, same sizes; median of ${REPS} runs after 2 warm-ups; bytes moved = inputs read + output written`,
  '',
  '| op | kiln ms | kiln GB/s | % of copy | NumPy ms | kiln speed-up vs NumPy |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.name} | ${r.ms} | ${r.gbs} | ${r.ofCopy} | ${r.numpyMs} | ${r.speedup} |`),
  '',
];
const table = lines.join('\n');
console.log(table);
if (OUT) fs.writeFileSync(OUT, table);
