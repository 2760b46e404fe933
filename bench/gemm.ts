// GEMM (float32 matmul) on the CPU: kiln vs NumPy/OpenBLAS vs onnxruntime-node
// (one MatMul node), measured in the same run, back to back per shape, and
// against the machine's limits (FMA peak and memory read bandwidth, measured by
// bench/peak/fma_peak.cpp). Prints a Markdown table and writes it to
// bench/results/<date>-gemm.md (or --out FILE).
//
//   npm run bench:gemm [-- --rounds 5 --threads 2 --out FILE --shapes 512,1024 --squares-only --no-write]
//
// npm run bench:gemm builds lib/ (npm run build:ts), compiles this file with
// the repository's tsc into dist/bench/, and runs it with node: no loader or
// TypeScript runtime is needed. The native addon is the one lib/ loads
// (build/ or prebuilds/, or KILN_NATIVE_DIR).
//
// Method, the same for every engine: per shape, inputs made once (A [M, K],
// B [K, N] standard normal, row-major, both passed per call: no engine may
// pre-pack B), two warm-up calls, then the median of `reps` timed calls, each
// allocating its output (kiln.matmul, numpy `a @ b`, session.run). reps is
// chosen per shape from kiln's warm-up time (>= 0.3 s of timed work, 5 to
// 200 calls) and used by all three. The three engines run one after another
// for a shape, `rounds` times over; each engine's best median is reported.
// Every engine uses the same thread count (kiln.getNumThreads() unless
// --threads): OPENBLAS_NUM_THREADS for NumPy, intraOpNumThreads for onnxruntime.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { DATE, flag, kiln, limitsLine, machineLine, measurePeak, now, opt, outPath, ROOT, timeAsync, timeSync, VERSION, writeTable } from './common';
import { Pb, valueInfo } from './onnx';

type KTensor = import('../dist/cjs/index').Tensor<'float32'>;

const THREADS = Number(opt('threads', '0')) || kiln.getNumThreads();
kiln.setNumThreads(THREADS);
const ROUNDS = Math.max(1, Number(opt('rounds', '5')));
const OUT = outPath('gemm');

interface Shape {
  name: string;
  m: number;
  k: number;
  n: number;
}
const SQUARES = (opt('shapes', '512,1024,2048') ?? '').split(',').filter(Boolean).map(Number);
const SHAPES: Shape[] = [
  ...SQUARES.map((s) => ({ name: `${s}^3`, m: s, k: s, n: s })),
  ...(flag('squares-only')
    ? []
    : [
        { name: 'GEMV (1, 4096, 11008)', m: 1, k: 4096, n: 11008 },
        { name: '(16, 4096, 11008)', m: 16, k: 4096, n: 11008 },
        { name: '(256, 4096, 4096)', m: 256, k: 4096, n: 4096 },
      ]),
];

// ---- kiln ----------------------------------------------------------------------------

interface NativeLike {
  run(op: string, keyDtype: number, inputs: unknown[], outputs: unknown[], ints: number[] | null, floats: number[] | null): void;
}

/** kiln.matmul when lib/ has it, else the kernel through the addon (output allocated per call either way). */
function kilnMatmul(a: KTensor, b: KTensor, m: number, n: number): () => void {
  const k = kiln as unknown as { matmul?: (x: KTensor, y: KTensor) => KTensor };
  if (typeof k.matmul === 'function') {
    const mm = k.matmul;
    return () => mm(a, b).dispose();
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native } = require(path.join(ROOT, 'dist', 'cjs', 'native.js')) as { native: NativeLike };
  type Viewable = { view(op: string): unknown };
  return () => {
    const c = kiln.zeros([m, n]);
    native.run('matmul', 0, [(a as unknown as Viewable).view('matmul'), (b as unknown as Viewable).view('matmul')], [(c as unknown as Viewable).view('matmul')], null, null);
    c.dispose();
  };
}

// ---- NumPy (a python3 subprocess per shape and round) -----------------------------------

interface NumpyResult {
  sec: number;
  version: string;
  blas: string;
}

function numpyTime(s: Shape, reps: number): NumpyResult | null {
  const py = `
import json, time, ctypes, numpy as np
m, k, n, reps = ${s.m}, ${s.k}, ${s.n}, ${reps}
rng = np.random.default_rng(1)
a = rng.standard_normal((m, k), dtype=np.float32)
b = rng.standard_normal((k, n), dtype=np.float32)
f = lambda: a @ b
f(); f()
ts = []
for _ in range(reps):
    t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
blas = 'unknown BLAS'
try:
    cfg = np.show_config(mode='dicts')['Build Dependencies']['blas']
    blas = '%s %s' % (cfg.get('name', ''), cfg.get('version', ''))
    import glob, os
    # the OpenBLAS that numpy loaded (wheels bundle it in numpy.libs) and the core it dispatched to
    here = os.path.dirname(os.path.dirname(np.__file__))
    libs = glob.glob(os.path.join(here, 'numpy.libs', '*openblas*.so*')) + glob.glob(os.path.join(cfg['lib directory'], '*openblas*.so*'))
    for lib in libs:
        h = ctypes.CDLL(lib)
        for sym in ('scipy_openblas_get_corename64_', 'openblas_get_corename64_', 'openblas_get_corename'):
            if hasattr(h, sym):
                fn = getattr(h, sym); fn.restype = ctypes.c_char_p
                blas += ' (core: %s)' % fn().decode()
                break
        break
except Exception:
    pass
print(json.dumps({'sec': sorted(ts)[len(ts) // 2], 'version': np.__version__, 'blas': blas}))
`;
  try {
    const env = { ...process.env, OPENBLAS_NUM_THREADS: String(THREADS), OMP_NUM_THREADS: String(THREADS) };
    return JSON.parse(execFileSync('python3', ['-c', py], { encoding: 'utf8', env })) as NumpyResult;
  } catch {
    return null;
  }
}

// ---- onnxruntime-node: a one-node ONNX model encoded here ------------------------------------

/** ModelProto (ir_version 8, opset 13) with one MatMul node: Y = A @ B. */
function matmulModel(m: number, k: number, n: number): Uint8Array {
  const node = new Pb().str(1, 'A').str(1, 'B').str(2, 'Y').str(3, 'matmul').str(4, 'MatMul');
  const graph = new Pb()
    .msg(1, node)
    .str(2, 'gemm')
    .msg(11, valueInfo('A', [m, k]))
    .msg(11, valueInfo('B', [k, n]))
    .msg(12, valueInfo('Y', [m, n]));
  return new Pb()
    .int(1, 8) // ir_version
    .str(2, 'kiln-bench') // producer_name
    .msg(7, graph)
    .msg(8, new Pb().str(1, '').int(2, 13)) // opset_import
    .done();
}

interface Ort {
  InferenceSession: {
    create(model: Uint8Array, options: Record<string, unknown>): Promise<{
      run(feeds: Record<string, unknown>): Promise<Record<string, { dims: readonly number[]; data: unknown; dispose?: () => void }>>;
      release?: () => Promise<void>;
    }>;
  };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
}

function loadOrt(): { ort: Ort; version: string } | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require(require.resolve('onnxruntime-node', { paths: [ROOT] })) as Ort;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const version = (require(require.resolve('onnxruntime-node/package.json', { paths: [ROOT] })) as { version: string }).version;
    return { ort, version };
  } catch {
    return null;
  }
}

async function ortTime(o: Ort, s: Shape, a: Float32Array, b: Float32Array, reps: number): Promise<number> {
  const session = await o.InferenceSession.create(matmulModel(s.m, s.k, s.n), {
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = { A: new o.Tensor('float32', a, [s.m, s.k]), B: new o.Tensor('float32', b, [s.k, s.n]) };
  const sec = await timeAsync(async () => {
    const out = await session.run(feeds);
    if (out.Y.dims[1] !== s.n) throw new Error('onnxruntime: unexpected output shape');
    out.Y.dispose?.();
  }, reps);
  await session.release?.();
  return sec;
}

// ---- main ----------------------------------------------------------------------------

async function main(): Promise<void> {
  const ortLoaded = loadOrt();
  const peak = measurePeak(THREADS);
  let npInfo: NumpyResult | null = null;
  const api = typeof (kiln as unknown as { matmul?: unknown }).matmul === 'function' ? 'kiln.matmul' : "the 'matmul' kernel via the addon";

  interface Row {
    shape: Shape;
    reps: number;
    kiln: number;
    numpy: number | null;
    ort: number | null;
  }
  const rows: Row[] = [];
  for (const s of SHAPES) {
    const a = kiln.randn([s.m, s.k], { seed: 1 }) as KTensor;
    const b = kiln.randn([s.k, s.n], { seed: 2 }) as KTensor;
    const fn = kilnMatmul(a, b, s.m, s.n);
    // reps from kiln's warm-up time
    fn();
    const t0 = now();
    fn();
    const once = now() - t0;
    const reps = Math.min(200, Math.max(5, Math.ceil(0.3 / Math.max(once, 1e-6))));
    const aData = ortLoaded ? (a.dataSync() as Float32Array) : null;
    const bData = ortLoaded ? (b.dataSync() as Float32Array) : null;
    const row: Row = { shape: s, reps, kiln: Infinity, numpy: null, ort: null };
    for (let r = 0; r < ROUNDS; ++r) {
      row.kiln = Math.min(row.kiln, timeSync(fn, reps));
      const np = numpyTime(s, reps);
      if (np) {
        npInfo = np;
        row.numpy = Math.min(row.numpy ?? Infinity, np.sec);
      }
      if (ortLoaded && aData && bData) {
        try {
          const sec = await ortTime(ortLoaded.ort, s, aData, bData, reps);
          row.ort = Math.min(row.ort ?? Infinity, sec);
        } catch (e) {
          console.error(`onnxruntime failed on ${s.name}: ${(e as Error).message}`);
        }
      }
    }
    a.dispose();
    b.dispose();
    rows.push(row);
    const gf = (sec: number | null) => (sec ? ((2 * s.m * s.n * s.k) / sec / 1e9).toFixed(1) : 'n/a');
    console.error(`${s.name}: kiln ${gf(row.kiln)}  numpy ${gf(row.numpy)}  onnxruntime ${gf(row.ort)} GFLOP/s (${reps} reps x ${ROUNDS} rounds)`);
  }

  const gflops = (s: Shape, sec: number) => (2 * s.m * s.n * s.k) / sec / 1e9;
  const fmt = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
  const ratio = (x: number, y: number | null) => (y ? `${(y / x).toFixed(2)}x` : 'n/a');
  const lines = [
    `# GEMM (float32 matmul) on the CPU — ${DATE}`,
    '',
    machineLine(),
    `- threads: ${THREADS} for every engine (kiln setNumThreads, OPENBLAS_NUM_THREADS, onnxruntime intraOpNumThreads)`,
    `- versions: kiln ${VERSION} (${api}), Node ${process.version}, NumPy ${npInfo ? npInfo.version : 'not available'} with ${npInfo ? npInfo.blas : 'n/a'}, onnxruntime-node ${ortLoaded ? ortLoaded.version : 'not available'} (CPU execution provider, one MatMul node, opset 13)`,
    limitsLine(peak, THREADS),
    `- method: per shape, kiln, NumPy and onnxruntime back to back, ${ROUNDS} rounds; each number is the best over rounds of the median of "reps" calls after 2 warm-ups; every call allocates its output; A and B are fresh inputs (no pre-packed weights)`,
    '',
    '| shape (M, K, N) | reps | kiln ms | kiln GFLOP/s | % of FMA peak | NumPy GFLOP/s | onnxruntime GFLOP/s | kiln / NumPy | kiln / onnxruntime | B streamed GB/s (% of read bw) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => {
      const s = r.shape;
      const g = gflops(s, r.kiln);
      const bGBs = (4 * s.k * s.n) / r.kiln / 1e9;
      const stream = s.m <= 16 ? `${bGBs.toFixed(1)}${peak ? ` (${((bGBs / peak.read_gbs) * 100).toFixed(0)}%)` : ''}` : '–';
      return `| ${s.name} | ${r.reps} | ${(r.kiln * 1e3).toFixed(3)} | ${g.toFixed(1)} | ${peak ? `${((g / peak.peak_gflops) * 100).toFixed(0)}%` : 'n/a'} | ${fmt(r.numpy ? gflops(s, r.numpy) : null)} | ${fmt(r.ort ? gflops(s, r.ort) : null)} | ${ratio(r.kiln, r.numpy)} | ${ratio(r.kiln, r.ort)} | ${stream} |`;
    }),
    '',
    'Ratios are throughput ratios (> 1: kiln is faster). "B streamed" is 4·K·N bytes over the kiln time, for the skinny shapes that memory bounds.',
    '',
  ];
  writeTable(lines, OUT);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
