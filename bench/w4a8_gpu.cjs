#!/usr/bin/env node
// The FireQ benchmark plan on a GPU (issue 8 item 7; run by scripts/gpu-check.sh):
// kiln's W4A8 linear (INT4 weights x FP8 activations, cuda/quant.cu) vs PyTorch
// on the same card, in one run, over the Llama-2-7B / Llama-3-8B linear layers
// (N x K = outputs x inputs) and M in {1, 16, 64, 256, 1024, 4096, 16384}.
//
//   node bench/w4a8_gpu.cjs [--out FILE] [--quick] [--ms 1,16,...] [--shapes 4096x4096,...]
//                           [--rotate-mb 64] [--peak-fp8-tflops T --peak-bf16-tflops T --peak-gbps G]
//
// Engines (output bfloat16 [M, N] everywhere):
//   - kiln W4A8: quant.w4a8Linear(x bf16 [M, K], weight) — per-token FP8
//     quantization of x inside the call, then the W4A8 GEMM; the weight is
//     quant.quantizeWeightInt4(w, group 128), made once on the CPU and copied
//     to the GPU several times (canonical layout: cuda/quant.cu).
//   - kiln W4A8 FireQ: the same weight re-encoded by quant.packFireQ (the
//     FireQ fragment layout: cuda/quant_fireq.cu; sm_89+).
//   - torch bf16: x @ W^T (cuBLAS).
//   - torch fp8: torch._scaled_mm with per-tensor scales and with row-wise
//     scales (FP8 x FP8 -> bf16; M padded to a multiple of 16).
// Method: every engine rotates over copies of its weights totalling more than
// --rotate-mb (default 64 MB, above the 50 MB L2 of H100 / H200), so each call
// reads its weight from HBM. A timing is the median over repeats of one batch
// of `inner` calls divided by inner (inner chosen per case so a batch is about
// 2 ms of ideal work), after warm-up. kiln's times are wall times around the
// batch and a stream synchronisation (host overhead included: each kiln call
// also reads the weight exponent back, one synchronisation); PyTorch's are CUDA
// events (bench/w4a8_gpu_torch.py).
// Columns: us per call; TFLOP/s (2 M N K); GB/s (the bytes an ideal kernel
// moves: x, the weight in the engine's format, scales, y); % of roofline =
// the ideal time max(flops / peak, bytes / bandwidth) over the measured time,
// with each engine's own peak (FP8 tensor cores for W4A8 and _scaled_mm, BF16
// for torch bf16) and the card's HBM bandwidth (dense peaks from NVIDIA's data
// sheets, by card name, or the --peak-* flags).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const kiln = require('..');

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const OUT = opt('out', null);
const QUICK = args.includes('--quick');
const REPS = QUICK ? 3 : 5;
const MS = opt('ms', QUICK ? '1,16,256,4096' : '1,16,64,256,1024,4096,16384').split(',').filter(Boolean).map(Number);
const SHAPES = [
  { model: 'Llama-2-7B / Llama-3-8B', layer: 'q/o (L2: q/k/v/o)', n: 4096, k: 4096 },
  { model: 'Llama-2-7B', layer: 'gate/up', n: 11008, k: 4096 },
  { model: 'Llama-2-7B', layer: 'down', n: 4096, k: 11008 },
  { model: 'Llama-3-8B', layer: 'k/v', n: 1024, k: 4096 },
  { model: 'Llama-3-8B', layer: 'gate/up', n: 14336, k: 4096 },
  { model: 'Llama-3-8B', layer: 'down', n: 4096, k: 14336 },
].filter((s) => !opt('shapes', null) || opt('shapes').split(',').includes(`${s.n}x${s.k}`));
const ROTATE_BYTES = Number(opt('rotate-mb', '64')) * 2 ** 20;
const GROUP = 128;

const info = kiln.devices().cuda;
if (!info.available) {
  console.error(`bench/w4a8_gpu: CUDA unavailable: ${info.reason}`);
  process.exit(1);
}
const card = info.devices[0].name;
const sync = () => kiln.internals.cudaSynchronize(0);

// Dense peaks (FP8 and BF16 tensor-core TFLOP/s, HBM GB/s) from NVIDIA's data sheets.
const PEAKS = [
  { re: /H200/, fp8: 989.4, bf16: 494.7, gbps: 4800 },
  { re: /H100.*NVL/, fp8: 835, bf16: 417.5, gbps: 3900 },
  { re: /H100.*PCIe/, fp8: 756.5, bf16: 378, gbps: 2000 },
  { re: /H100/, fp8: 989.4, bf16: 494.7, gbps: 3350 },
  { re: /L40S/, fp8: 733, bf16: 362, gbps: 864 },
  { re: /A100/, fp8: 0, bf16: 312, gbps: 2039 },
];
const known = PEAKS.find((p) => p.re.test(card)) ?? { fp8: 0, bf16: 0, gbps: 0 };
const peak = {
  fp8: Number(opt('peak-fp8-tflops', known.fp8)) * 1e12,
  bf16: Number(opt('peak-bf16-tflops', known.bf16)) * 1e12,
  bw: Number(opt('peak-gbps', known.gbps)) * 1e9,
};

const kp = (k) => Math.ceil(k / 128) * 128;
const bytesOf = {
  w4a8: (m, n, k) => m * k * 2 + (n * kp(k)) / 2 + (n * kp(k)) / GROUP + m * n * 2,
  bf16: (m, n, k) => m * k * 2 + n * k * 2 + m * n * 2,
  fp8: (m, n, k) => m * k + n * k + m * n * 2,
};
const copiesFor = (bytes) => Math.max(2, Math.ceil(ROTATE_BYTES / bytes) + 1);
// calls per timed batch: about 2 ms of ideal work (at 20% of the FP8 roofline), 1 to 50
function innerFor(m, n, k) {
  const ideal = Math.max((2 * m * n * k) / (0.2 * (peak.fp8 || 500e12)), bytesOf.w4a8(m, n, k) / (0.2 * (peak.bw || 2e12)));
  return Math.max(1, Math.min(50, Math.ceil(2e-3 / ideal)));
}

const cases = [];
for (const s of SHAPES) {
  for (const m of MS) cases.push({ name: `${s.n}x${s.k} M ${m}`, shape: s, m, n: s.n, k: s.k, inner: innerFor(m, s.n, s.k) });
}

function medianUs(fn, inner) {
  for (let i = 0; i < 2; ++i) fn(i);
  sync();
  const t = [];
  let call = 0;
  for (let r = 0; r < REPS; ++r) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < inner; ++i) fn(call++);
    sync();
    t.push(Number(process.hrtime.bigint() - t0) / 1e3 / inner);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

// kiln: per shape, one quantized weight made on the CPU, copied to the GPU
// (layout 'fireq': re-encoded by quant.packFireQ first).
function runKiln(layout) {
  const out = {};
  for (const s of SHAPES) {
    const wf = kiln.tidy(() => kiln.mul(kiln.randn([s.n, s.k], { seed: s.n + s.k }), 0.02));
    const qw = kiln.quant.quantizeWeightInt4(wf, { groupSize: GROUP });
    wf.dispose();
    const nCopies = copiesFor((s.n * kp(s.k)) / 2 + (s.n * kp(s.k)) / GROUP);
    const weights = [];
    for (let c = 0; c < nCopies; ++c) {
      const w = new kiln.quant.Int4Weight({ packed: qw.packed.to('cuda'), scales: qw.scales.to('cuda'), exponent: qw.exponent.to('cuda'), inFeatures: s.k });
      if (layout === 'fireq') {
        weights.push(kiln.quant.packFireQ(w));
        w.dispose();
      } else {
        weights.push(w);
      }
    }
    qw.dispose();
    for (const c of cases.filter((cc) => cc.shape === s)) {
      try {
        out[c.name] = kiln.tidy(() => {
          const x = kiln.randn([c.m, c.k], { seed: c.m, device: 'cuda', dtype: 'bfloat16' });
          return medianUs((i) => kiln.quant.w4a8Linear(x, weights[i % nCopies], { outDtype: 'bfloat16' }).dispose(), c.inner);
        });
      } catch (e) {
        out[c.name] = `error: ${e.message.split('\n')[0]}`;
      }
    }
    for (const w of weights) w.dispose();
  }
  return out;
}

let torch = null;
try {
  const spec = { cases: cases.map((c) => ({ name: c.name, m: c.m, n: c.n, k: c.k, inner: c.inner })), reps: REPS, rotate_mb: ROTATE_BYTES / 2 ** 20 };
  torch = JSON.parse(execFileSync('python3', [path.join(__dirname, 'w4a8_gpu_torch.py'), JSON.stringify(spec)], { encoding: 'utf8', maxBuffer: 1 << 24 }));
} catch (e) {
  console.error(`bench/w4a8_gpu: PyTorch peer failed: ${e.message.split('\n')[0]}`);
}
const kilnUs = runKiln('canonical');
const fireqUs = runKiln('fireq');

function cells(us, flops, bytes, peakFlops, baseUs) {
  if (typeof us !== 'number') return `${us ?? 'n/a'} | | | | `;
  const roof = Math.max(peakFlops ? flops / peakFlops : 0, peak.bw ? bytes / peak.bw : 0) * 1e6;
  const pct = roof > 0 ? `${((100 * roof) / us).toFixed(1)}%` : 'n/a';
  const speed = typeof baseUs === 'number' ? `${(baseUs / us).toFixed(2)}x` : 'n/a';
  return `${us.toFixed(1)} | ${(flops / us / 1e6).toFixed(1)} | ${(bytes / us / 1e3).toFixed(0)} | ${pct} | ${speed}`;
}

const rows = [];
for (const c of cases) {
  const { m, n, k } = c;
  const flops = 2 * m * n * k;
  const t = torch?.results?.[c.name] ?? {};
  const base = t.bf16;
  const label = `${c.shape.model} ${c.shape.layer} | ${n}x${k} | ${m}`;
  rows.push(`| ${label} | kiln W4A8 | ${cells(kilnUs[c.name], flops, bytesOf.w4a8(m, n, k), peak.fp8, base)} |`);
  rows.push(`| ${label} | kiln W4A8 FireQ layout | ${cells(fireqUs[c.name], flops, bytesOf.w4a8(m, n, k), peak.fp8, base)} |`);
  rows.push(`| ${label} | torch bf16 | ${cells(t.bf16, flops, bytesOf.bf16(m, n, k), peak.bf16, base)} |`);
  const mp = t.m_fp8 ?? m;
  const pad = mp !== m ? ` (M padded to ${mp})` : '';
  rows.push(`| ${label} | torch _scaled_mm fp8 per-tensor${pad} | ${cells(t.fp8_tensor, 2 * mp * n * k, bytesOf.fp8(mp, n, k), peak.fp8, base)} |`);
  rows.push(`| ${label} | torch _scaled_mm fp8 row-wise${pad} | ${cells(t.fp8_row, 2 * mp * n * k, bytesOf.fp8(mp, n, k), peak.fp8, base)} |`);
}

const errors = Object.entries(torch?.errors ?? {}).map(([k, v]) => `- torch ${k}: ${v}`);
const table = [
  `# W4A8 on the GPU: kiln vs PyTorch, Llama linear shapes (${new Date().toISOString().slice(0, 10)})`,
  '',
  `- card: ${card} (compute capability ${info.devices[0].computeCapability}); driver CUDA ${info.driverVersion}; kiln built with CUDA ${info.runtimeVersion}`,
  `- peer: PyTorch ${torch ? `${torch.torch} (CUDA ${torch.cuda})` : 'not available'}`,
  `- roofline peaks: FP8 ${(peak.fp8 / 1e12).toFixed(0)} TFLOP/s, BF16 ${(peak.bf16 / 1e12).toFixed(0)} TFLOP/s (dense), HBM ${(peak.bw / 1e9).toFixed(0)} GB/s`,
  `- weights rotated over > ${ROTATE_BYTES / 2 ** 20} MB of copies per engine; median of ${REPS} batches; kiln: wall time incl. host overhead, PyTorch: CUDA events`,
  '- kiln W4A8 = quant.w4a8Linear(x bf16) -> bf16 (FP8 quantization of x included), canonical layout and FireQ layout (quant.packFireQ); speed = torch bf16 time / this time',
  '',
  '| layer | N x K | M | engine | us | TFLOP/s | GB/s | % roofline | speed vs torch bf16 |',
  '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows,
  '',
  ...(errors.length ? ['Errors:', ...errors, ''] : []),
];
console.log(table.join('\n'));
if (OUT) fs.writeFileSync(OUT, table.join('\n'));
