// Fused optimizer steps: kiln AdamW / LAMB / LARS vs torch.optim.AdamW, and
// against a plain copy (the bandwidth ceiling), all measured in the same run.
// Prints a Markdown table and writes it to bench/results/<date>-optim.md
// (--out FILE, --no-write).
//
//   npm run bench:optim [-- --rounds 3 --threads 2 --params 10000000 --device cpu|cuda --out FILE --no-write]
//
// Layouts: `params` parameters as one tensor and as 200 equal tensors (one
// parameter group). Bytes per parameter (../shared/specs/optim.md "Bytes per
// parameter", float32): AdamW 28, LAMB 44 (with its default global-norm
// clipping: one more read of the gradients), LARS 28 (momentum). GB/s is those
// bytes over the step time.
//
// Copy ceiling: dst.copy_(src) over 4·params float32 elements in kiln and in
// PyTorch; GB/s counts the bytes read plus the bytes written (8 per element);
// the ceiling is the better of the two. A copy also pays the write-allocate
// read of its destination, which an in-place update does not: a fused step can
// exceed 100% of it.
//
// Peer: torch.optim.AdamW(foreach=True) (CPU) or (fused=True) and
// (foreach=True) (CUDA), run by a Python with torch (KILN_TORCH_PYTHON,
// /usr/bin/python3, python3: the first that imports torch), same thread count.
//
// Method: every case is timed as the median of `reps` steps after 2 warm-up
// steps (reps from the first step's time: >= 0.5 s of timed work, 5 to 50);
// kiln's cases and the Python process (all of its cases) alternate, `rounds`
// times; each number is the best median over rounds. CUDA times are wall times
// of a step followed by a device synchronisation, for kiln and torch alike.
// On the CPU the memory read bandwidth of bench/peak/fma_peak.cpp is printed too.
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { DATE, kiln, machineLine, measurePeak, now, opt, outPath, timeSync, VERSION, writeTable } from './common';

type Tensor = import('../dist/cjs/index').Tensor;

// ---- options ------------------------------------------------------------------------------

const DEVICE = (opt('device', 'cpu') ?? 'cpu') as 'cpu' | 'cuda';
const THREADS = Number(opt('threads', '0')) || kiln.getNumThreads();
kiln.setNumThreads(THREADS);
const ROUNDS = Math.max(1, Number(opt('rounds', '3')));
const PARAMS = Number(opt('params', '10000000'));
const TENSORS = [1, 200];
const OUT = outPath(DEVICE === 'cuda' ? 'optim-cuda' : 'optim');

if (DEVICE === 'cuda' && !kiln.devices().cuda.available) {
  console.error(`bench/optim: CUDA unavailable: ${kiln.devices().cuda.reason}`);
  process.exit(1);
}
const sync = DEVICE === 'cuda' ? () => kiln.internals.cudaSynchronize(0) : () => {};

// ---- timing ------------------------------------------------------------------------------

function repsFor(fn: () => void): number {
  fn();
  sync();
  const t0 = now();
  fn();
  sync();
  return Math.min(50, Math.max(5, Math.ceil(0.5 / Math.max(now() - t0, 1e-6))));
}

// ---- kiln cases -----------------------------------------------------------------------------

interface Case {
  name: 'AdamW' | 'LAMB' | 'LARS';
  tensors: number;
  bytes: number; // per parameter
}
const CASES: Case[] = TENSORS.flatMap((tensors) => [
  { name: 'AdamW' as const, tensors, bytes: 28 },
  { name: 'LAMB' as const, tensors, bytes: 44 },
  { name: 'LARS' as const, tensors, bytes: 28 },
]);

/** Parameters (standard normal) with gradients, `tensors` equal parts of PARAMS. */
function makeParams(tensors: number): Tensor[] {
  const per = Math.floor(PARAMS / tensors);
  return Array.from({ length: tensors }, (_, i) => {
    const p = kiln.randn([per], { seed: 1 + i, device: DEVICE });
    p.grad = kiln.randn([per], { seed: 1000 + i, device: DEVICE });
    return p;
  });
}

function makeOptimizer(c: Case, params: Tensor[]): { step(): unknown; dispose(): void } {
  if (c.name === 'AdamW') return new kiln.optim.AdamW(params);
  if (c.name === 'LAMB') return new kiln.optim.LAMB(params);
  return new kiln.optim.LARS(params, { lr: 0.1, weightDecay: 1e-4 });
}

function kilnCase(c: Case, reps: number | null): { sec: number; reps: number } {
  const params = makeParams(c.tensors);
  const o = makeOptimizer(c, params);
  const step = () => void o.step();
  const r = reps ?? repsFor(step);
  const sec = timeSync(step, r, sync);
  o.dispose();
  params.forEach((p) => p.dispose());
  return { sec, reps: r };
}

const COPY_N = 4 * PARAMS;

function kilnCopy(reps: number | null): { sec: number; reps: number } {
  const src = kiln.randn([COPY_N], { seed: 7, device: DEVICE });
  const dst = kiln.zeros([COPY_N], { device: DEVICE });
  const fn = () => void dst.copy_(src);
  const r = reps ?? repsFor(fn);
  const sec = timeSync(fn, r, sync);
  src.dispose();
  dst.dispose();
  return { sec, reps: r };
}

// ---- torch (one Python process per round, every case) -------------------------------------------

interface TorchResult {
  version: string;
  threads: number;
  copy: number;
  adamw: Record<string, Record<string, number>>; // variant -> tensors -> seconds
}

const TORCH_PY = `
import json, sys, time
import torch
dev, params, threads, copy_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tensors = [int(x) for x in sys.argv[5].split(',')]
variants = sys.argv[6].split(',')
torch.set_num_threads(threads)
sync = torch.cuda.synchronize if dev == 'cuda' else (lambda: None)
def time_median(fn):
    fn(); sync()
    t0 = time.perf_counter(); fn(); sync(); once = time.perf_counter() - t0
    reps = min(50, max(5, int(0.5 / max(once, 1e-6)) + 1))
    fn(); fn(); sync()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]
g = torch.Generator(device='cpu').manual_seed(0)
src = torch.randn(copy_n, generator=g).to(dev); dst = torch.zeros(copy_n, device=dev)
out = {'version': torch.__version__, 'threads': torch.get_num_threads(), 'copy': time_median(lambda: dst.copy_(src)), 'adamw': {}}
del src, dst
for v in variants:
    out['adamw'][v] = {}
    for k in tensors:
        per = params // k
        ps = [torch.randn(per, generator=g).to(dev).requires_grad_() for _ in range(k)]
        for p in ps: p.grad = torch.randn(per, generator=g).to(dev)
        try:
            o = torch.optim.AdamW(ps, **{v: True})
        except (TypeError, RuntimeError, ValueError) as e:
            print('torch AdamW(%s=True) unavailable: %s' % (v, e), file=sys.stderr)
            break
        out['adamw'][v][str(k)] = time_median(o.step)
        del o, ps
print(json.dumps(out))
`;

const TORCH_VARIANTS = DEVICE === 'cuda' ? ['fused', 'foreach'] : ['foreach'];

function torchPython(): string | null {
  for (const py of [process.env.KILN_TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
      return py;
    } catch {
      // next
    }
  }
  return null;
}

function torchRound(py: string): TorchResult | null {
  try {
    const env = { ...process.env, OMP_NUM_THREADS: String(THREADS), MKL_NUM_THREADS: String(THREADS) };
    const args = ['-c', TORCH_PY, DEVICE, String(PARAMS), String(THREADS), String(COPY_N), TENSORS.join(','), TORCH_VARIANTS.join(',')];
    return JSON.parse(execFileSync(py, args, { encoding: 'utf8', env, maxBuffer: 1 << 20 })) as TorchResult;
  } catch (e) {
    console.error(`torch failed: ${(e as Error).message.split('\n')[0]}`);
    return null;
  }
}

// ---- main ---------------------------------------------------------------------------------

function deviceLine(): string {
  if (DEVICE === 'cuda') {
    const g = kiln.devices().cuda.devices[0];
    return `- machine: ${g.name} (compute capability ${g.computeCapability}), host ${os.cpus()[0]?.model ?? 'unknown CPU'}`;
  }
  return machineLine();
}

function main(): void {
  const peak = DEVICE === 'cpu' ? measurePeak(THREADS) : null;
  const py = torchPython();
  if (py === null) console.error('bench/optim: no Python with torch found; the peer columns are n/a');
  const best = new Map<string, number>();
  const reps = new Map<string, number>();
  const keep = (key: string, r: { sec: number; reps: number }) => {
    best.set(key, Math.min(best.get(key) ?? Infinity, r.sec));
    reps.set(key, r.reps);
  };
  let torch: TorchResult | null = null;
  const torchBest = new Map<string, number>();
  for (let round = 0; round < ROUNDS; ++round) {
    keep('copy', kilnCopy(reps.get('copy') ?? null));
    for (const c of CASES) {
      const key = `${c.name}/${c.tensors}`;
      keep(key, kilnCase(c, reps.get(key) ?? null));
    }
    const t = py === null ? null : torchRound(py);
    if (t !== null) {
      torch = t;
      torchBest.set('copy', Math.min(torchBest.get('copy') ?? Infinity, t.copy));
      for (const [v, byK] of Object.entries(t.adamw)) {
        for (const [k, sec] of Object.entries(byK)) torchBest.set(`${v}/${k}`, Math.min(torchBest.get(`${v}/${k}`) ?? Infinity, sec));
      }
    }
    const gbs = (key: string, bytes: number) => ((bytes * PARAMS) / (best.get(key) as number) / 1e9).toFixed(1);
    console.error(`round ${round + 1}/${ROUNDS}: copy ${gbs('copy', 8 * 4)} GB/s, AdamW x1 ${gbs('AdamW/1', 28)} GB/s, torch ${torch ? 'ok' : 'n/a'}`);
  }

  const copyBytes = 8 * COPY_N;
  const kilnCopyGbs = copyBytes / (best.get('copy') as number) / 1e9;
  const torchCopyGbs = torchBest.has('copy') ? copyBytes / (torchBest.get('copy') as number) / 1e9 : null;
  const ceiling = Math.max(kilnCopyGbs, torchCopyGbs ?? 0);
  const peerName = TORCH_VARIANTS[0];
  const f1 = (x: number) => x.toFixed(1);
  const rows = CASES.map((c) => {
    const key = `${c.name}/${c.tensors}`;
    const sec = best.get(key) as number;
    const gbs = (c.bytes * PARAMS) / sec / 1e9;
    const peers = TORCH_VARIANTS.map((v) => (c.name === 'AdamW' ? (torchBest.get(`${v}/${c.tensors}`) ?? null) : null));
    const peerCells = peers.flatMap((p) => (p === null ? ['–', '–'] : [(p * 1e3).toFixed(2), `${(p / sec).toFixed(2)}x`]));
    return `| ${PARAMS.toLocaleString('en-US')} as ${c.tensors} | ${c.name} | ${c.bytes} | ${reps.get(key)} | ${(sec * 1e3).toFixed(2)} | ${f1(gbs)} | ${((gbs / ceiling) * 100).toFixed(0)}% | ${peerCells.join(' | ')} |`;
  });
  const peerHeads = TORCH_VARIANTS.flatMap((v) => [`torch AdamW(${v}) ms`, `kiln / torch ${v}`]);
  const lines = [
    `# Fused optimizer steps (${DEVICE === 'cuda' ? 'CUDA' : 'CPU'}) — ${DATE}`,
    '',
    deviceLine(),
    `- threads: ${THREADS} (kiln setNumThreads, torch.set_num_threads${torch ? ` = ${torch.threads}` : ''})`,
    `- versions: kiln ${VERSION}, Node ${process.version}, PyTorch ${torch ? torch.version : 'not available'}${py ? ` (${py})` : ''}`,
    `- copy ceiling (dst.copy_(src), ${COPY_N.toLocaleString('en-US')} float32, read + write bytes): kiln ${f1(kilnCopyGbs)} GB/s, PyTorch ${torchCopyGbs === null ? 'n/a' : f1(torchCopyGbs)} GB/s; "% of copy" uses the better, ${f1(ceiling)} GB/s${peak ? `; memory read (bench/peak/fma_peak.cpp) ${f1(peak.read_gbs)} GB/s` : ''}`,
    `- method: median of "reps" steps after 2 warm-ups, best of ${ROUNDS} rounds (kiln cases and the PyTorch process alternate); float32 parameters with fixed gradients; AdamW and LAMB with their defaults, LARS lr 0.1, weightDecay 1e-4, momentum 0.9`,
    '',
    `| parameters as tensors | optimizer | B/param | reps | kiln ms | kiln GB/s | % of copy | ${peerHeads.join(' | ')} |`,
    `| --- | --- | ---: | ---: | ---: | ---: | ---: | ${peerHeads.map(() => '---:').join(' | ')} |`,
    ...rows,
    '',
    `Ratios are time ratios (> 1: kiln is faster); torch has no LAMB or LARS, so those rows have no peer. An in-place update has no write-allocate traffic, a copy does: ${peerName === 'foreach' ? 'on the CPU ' : ''}a step can pass 100% of the copy.`,
    '',
  ];
  writeTable(lines, OUT);
}

main();
