#!/usr/bin/env node
// GPU benchmark (run on a machine with an NVIDIA GPU, e.g. by scripts/gpu-check.sh):
// kiln vs PyTorch on the same card in one run — device copy bandwidth, matmul
// (bfloat16 and float32, kiln's own kernels and cuBLASLt when loaded) and
// fused attention forward/backward vs scaled_dot_product_attention. Times are
// medians of repeats after warm-up; kiln's are wall times over a synchronised
// loop of queued launches (host overhead included), PyTorch's are CUDA events.
//
//   node bench/gpu.cjs [--out bench/results/<date>-gpu.md] [--quick]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const kiln = require('..');

const args = process.argv.slice(2);
const OUT = args.includes('--out') ? args[args.indexOf('--out') + 1] : null;
const QUICK = args.includes('--quick');
const REPS = QUICK ? 5 : 20;

const info = kiln.devices().cuda;
if (!info.available) {
  console.error(`bench/gpu: CUDA unavailable: ${info.reason}`);
  process.exit(1);
}
const sync = () => kiln.internals.cudaSynchronize(0);

function medianMs(fn) {
  for (let i = 0; i < 3; ++i) fn();
  sync();
  const t = [];
  for (let r = 0; r < REPS; ++r) {
    const t0 = process.hrtime.bigint();
    fn();
    sync();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

const big = QUICK ? 1 << 26 : 1 << 28;
const cases = [
  { name: 'copy f32', kind: 'copy', n: big, dtype: 'float32', bytes: 8 * big },
  ...[
    [4096, 4096, 4096],
    [1, 4096, 11008],
    [16, 4096, 11008],
    [256, 4096, 4096],
  ].flatMap((mkn) =>
    ['bfloat16', 'float32'].map((dtype) => ({ name: `matmul ${dtype} ${mkn.join('x')}`, kind: 'matmul', mkn, dtype, flops: 2 * mkn[0] * mkn[1] * mkn[2] })),
  ),
  ...[false, true].flatMap((causal) =>
    ['attention', 'attention_backward'].map((kind) => {
      const bhsd = QUICK ? [1, 16, 1024, 128] : [4, 32, 2048, 128];
      const [b, h, s, d] = bhsd;
      const fwd = 4 * b * h * s * s * d * (causal ? 0.5 : 1);
      return { name: `${kind} bf16 ${bhsd.join('x')}${causal ? ' causal' : ''}`, kind, bhsd, causal, dtype: 'bfloat16', flops: kind === 'attention' ? fwd : 2.5 * fwd };
    }),
  ),
];

function runKiln(c) {
  return kiln.tidy(() => {
    if (c.kind === 'copy') {
      const x = kiln.randn([c.n], { seed: 1, device: 'cuda' });
      return medianMs(() => x.clone().dispose());
    }
    if (c.kind === 'matmul') {
      const [m, k, n] = c.mkn;
      const a = kiln.randn([m, k], { seed: 1, device: 'cuda', dtype: c.dtype });
      const b = kiln.randn([k, n], { seed: 2, device: 'cuda', dtype: c.dtype });
      return medianMs(() => kiln.matmul(a, b).dispose());
    }
    const [b, h, s, d] = c.bhsd;
    const q = kiln.randn([b, h, s, d], { seed: 3, device: 'cuda', dtype: c.dtype });
    const k = kiln.randn([b, h, s, d], { seed: 4, device: 'cuda', dtype: c.dtype });
    const v = kiln.randn([b, h, s, d], { seed: 5, device: 'cuda', dtype: c.dtype });
    if (c.kind === 'attention') return medianMs(() => kiln.attention(q, k, v, { causal: c.causal }).dispose());
    const { out, lse } = kiln.backward.attentionForward(q, k, v, { causal: c.causal });
    const go = kiln.randn([b, h, s, d], { seed: 6, device: 'cuda', dtype: c.dtype });
    return medianMs(() => {
      const g = kiln.backward.attentionBackward(q, k, v, out, lse, go, { causal: c.causal });
      g.gq.dispose();
      g.gk.dispose();
      g.gv.dispose();
    });
  });
}

let torch = null;
try {
  torch = JSON.parse(execFileSync('python3', [`${__dirname}/gpu_torch.py`, JSON.stringify(cases)], { encoding: 'utf8', maxBuffer: 1 << 24 }));
} catch (e) {
  console.error(`bench/gpu: PyTorch peer failed: ${e.message.split('\n')[0]}`);
}

const rows = cases.map((c) => {
  let ms;
  try {
    ms = runKiln(c);
  } catch (e) {
    return `| ${c.name} | error: ${e.message.split('\n')[0]} | | | |`;
  }
  const tms = torch?.results?.[c.name];
  const rate = (t) => (c.bytes ? `${(c.bytes / t / 1e6).toFixed(0)} GB/s` : `${(c.flops / t / 1e9).toFixed(1)} TFLOP/s`);
  return `| ${c.name} | ${ms.toFixed(3)} ms (${rate(ms)}) | ${tms ? `${tms.toFixed(3)} ms (${rate(tms)})` : 'n/a'} | ${tms ? (tms / ms).toFixed(2) : 'n/a'} |`;
});

const table = [
  `# GPU benchmark: kiln vs PyTorch (${new Date().toISOString().slice(0, 10)})`,
  '',
  `- card: ${info.devices[0].name} (compute capability ${info.devices[0].computeCapability}, ${(info.devices[0].memoryBytes / 2 ** 30).toFixed(0)} GiB); driver CUDA ${info.driverVersion}; kiln built with CUDA ${info.runtimeVersion}; cuBLASLt: ${info.cublasLt ?? 'n/a'}`,
  `- peer: PyTorch ${torch ? `${torch.torch} (CUDA ${torch.cuda})` : 'not available'}; float32 matmul with TF32 off on both sides; median of ${REPS} runs`,
  '',
  '| case | kiln | PyTorch | kiln speed (PyTorch time / kiln time) |',
  '| --- | --- | --- | ---: |',
  ...rows,
  '',
];
console.log(table.join('\n'));
if (OUT) fs.writeFileSync(OUT, table.join('\n'));
