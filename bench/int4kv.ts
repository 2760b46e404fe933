// The INT4 KV cache on the CPU (kiln.quant.Int4KVSlot, FireQ's attention
// stage): one decode step of grouped-query attention (1 query per head) over
// an L-token cache, kiln reading INT4 K/V vs kiln's float32 attention over a
// float32 cache and vs PyTorch 1.13 (bench/int4kv_torch.py, float32) in the
// same run. Prints a Markdown table and writes it to
// bench/results/<date>-int4kv.md (or --out FILE).
//
//   npm run bench:int4kv [-- --threads 2 --lens 1024,4096,16384 --rotate-mb 160 --no-torch --out FILE --no-write]
//
// Shape: Llama-3-8B attention (32 query heads, 8 kv heads, head_dim 128), one
// batch row. Method: every engine rotates over copies of its cache (more than
// --rotate-mb in all, beyond the caches), so each step reads K and V from
// RAM; two warm-up calls, then the median of `reps` calls; the engines run
// back to back, `rounds` times, each keeping its best median. The cache
// bytes one step reads: INT4 2 Hkv L (hd/2 + hd/G) (G = 128: one E4M3 scale
// per token and head), float32 2 Hkv L hd 4; compared with the machine's read
// bandwidth (bench/peak).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { DATE, flag, kiln, limitsLine, machineLine, measurePeak, opt, outPath, ROOT, timeSync, VERSION, writeTable } from './common';

type KTensor = import('../dist/cjs/index').Tensor;
type Int4KVSlot = import('../dist/cjs/index').quant.Int4KVSlot;

const THREADS = Number(opt('threads', '0')) || kiln.getNumThreads();
kiln.setNumThreads(THREADS);
const ROUNDS = Math.max(1, Number(opt('rounds', '3')));
const OUT = outPath('int4kv');
const LENS = (opt('lens', '1024,4096,16384') ?? '').split(',').filter(Boolean).map(Number);
const ROTATE_BYTES = Number(opt('rotate-mb', '160')) * 2 ** 20;
const HQ = 32, HKV = 8, HD = 128, G = 128;

const int4Bytes = (len: number): number => 2 * HKV * len * (HD / 2 + HD / G);
const f32Bytes = (len: number): number => 2 * HKV * len * HD * 4;
const copiesFor = (bytes: number): number => Math.min(256, Math.max(2, Math.ceil(ROTATE_BYTES / bytes)));
const repsFor = (len: number): number => Math.max(10, Math.min(200, Math.round(2e6 / len)));

interface TorchResult {
  torch: string;
  us: Record<string, number>;
}

interface Row {
  len: number;
  reps: number;
  int4: number;
  f32: number;
  torch: number | null;
  diff: number;
}

function main(): void {
  const peak = measurePeak(THREADS);
  let torch: TorchResult | null = null;
  if (!flag('no-torch')) {
    try {
      const spec = { cases: LENS.map((len) => ({ L: len, hq: HQ, hkv: HKV, hd: HD, reps: repsFor(len) })), threads: THREADS, rotate_mb: ROTATE_BYTES / 2 ** 20 };
      // OPENBLAS_NUM_THREADS=1: torch parallelizes the batched matmuls itself; OpenBLAS's own
      // threads on top oversubscribe the cores (measured: 8-12 ms instead of 0.64 ms at L = 1024)
      const env = { ...process.env, OPENBLAS_NUM_THREADS: '1' };
      torch = JSON.parse(execFileSync('/usr/bin/python3', [path.join(ROOT, 'bench', 'int4kv_torch.py'), JSON.stringify(spec)], { encoding: 'utf8', env })) as TorchResult;
    } catch (e) {
      console.error(`bench/int4kv: the PyTorch peer failed: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const rows: Row[] = [];
  for (const len of LENS) {
    const reps = repsFor(len);
    const q = kiln.randn([1, HQ, 1, HD], { seed: 1 });
    // float32 caches and the INT4 caches made from the same values
    const nf = copiesFor(f32Bytes(len)), ni = copiesFor(int4Bytes(len));
    const floats: { k: KTensor; v: KTensor }[] = [];
    const slots: Int4KVSlot[] = [];
    for (let c = 0; c < Math.max(nf, ni); ++c) {
      const k = kiln.randn([1, HKV, len, HD], { seed: 10 + c });
      const v = kiln.randn([1, HKV, len, HD], { seed: 1000 + c });
      if (c < ni) {
        const slot = new kiln.quant.Int4KVSlot({ batch: 1, kvHeads: HKV, headDim: HD, capacity: len, groupSize: G, kExponents: new Array(HKV).fill(4), vExponents: new Array(HKV).fill(4), device: 'cpu' });
        slot.append(0, k, v);
        slots.push(slot);
      }
      if (c < nf) floats.push({ k, v });
      else {
        k.dispose();
        v.dispose();
      }
    }
    // a check that both compute attention over (nearly) the same cache: INT4 rounding apart
    const a = slots[0].attend(q, len);
    const b = kiln.attention(q, floats[0].k, floats[0].v, { causal: true });
    const av = a.dataSync() as Float32Array, bv = b.dataSync() as Float32Array;
    let diff = 0, top = 0;
    for (let i = 0; i < av.length; ++i) {
      diff = Math.max(diff, Math.abs(av[i] - bv[i]));
      top = Math.max(top, Math.abs(bv[i]));
    }
    a.dispose();
    b.dispose();
    let i4 = Infinity, f32 = Infinity, call = 0;
    for (let r = 0; r < ROUNDS; ++r) {
      i4 = Math.min(i4, timeSync(() => slots[call++ % ni].attend(q, len).dispose(), reps));
      f32 = Math.min(f32, timeSync(() => {
        const c = floats[call++ % nf];
        kiln.attention(q, c.k, c.v, { causal: true }).dispose();
      }, reps));
    }
    rows.push({ len, reps, int4: i4, f32, torch: torch ? torch.us[String(len)] / 1e6 : null, diff: diff / top });
    slots.forEach((s) => s.dispose());
    floats.forEach((c) => {
      c.k.dispose();
      c.v.dispose();
    });
    q.dispose();
  }
  const us = (s: number | null): string => (s === null ? 'n/a' : (s * 1e6).toFixed(0));
  const ratio = (a: number, b: number | null): string => (b === null ? 'n/a' : `${(b / a).toFixed(2)}x`);
  const bw = (bytes: number, s: number): string => {
    const gbs = bytes / s / 1e9;
    return `${gbs.toFixed(1)}${peak ? ` (${((gbs / peak.read_gbs) * 100).toFixed(0)}%)` : ''}`;
  };
  const lines = [
    `# INT4 KV cache attention on the CPU (decode step) — ${DATE}`,
    '',
    machineLine(),
    `- threads: ${THREADS} for every engine (kiln setNumThreads, torch.set_num_threads)`,
    `- versions: kiln ${VERSION} (quant.Int4KVSlot.attend; kiln.attention float32), Node ${process.version}, PyTorch ${torch ? torch.torch : 'not run'} (float32 matmul + softmax + matmul: 1.13 has no fused attention; OpenBLAS, OPENBLAS_NUM_THREADS=1)`,
    limitsLine(peak, THREADS),
    `- shape: 32 query heads, 8 kv heads, head_dim 128 (Llama-3-8B), 1 query per head; INT4 scales per token and head (G = 128)`,
    `- method: each engine rotates over copies of its cache (> ${ROTATE_BYTES / 2 ** 20} MB in all); ${ROUNDS} rounds back to back, each number the best over rounds of the median of "reps" calls after 2 warm-ups; every call allocates its output`,
    '',
    '| L | reps | INT4 us | f32 us | torch f32 us | INT4 vs kiln f32 | INT4 vs torch | INT4 cache GB/s (% of read bw) | f32 cache GB/s | INT4 vs f32 output diff |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.len} | ${r.reps} | ${us(r.int4)} | ${us(r.f32)} | ${us(r.torch)} | ${ratio(r.int4, r.f32)} | ${ratio(r.int4, r.torch)} | ${bw(int4Bytes(r.len), r.int4)} | ${bw(f32Bytes(r.len), r.f32)} | ${(100 * r.diff).toFixed(1)}% |`),
    '',
    'Ratios are speedups of the INT4 cache (> 1: INT4 is faster). "diff" is max |o_int4 - o_f32| / max |o_f32| on the first cache (INT4 rounding of standard normal K/V; a check that both engines compute the same attention, not an accuracy figure: see test/js/quant-ptq.test.ts for the model-level effect).',
    '',
  ];
  writeTable(lines, OUT);
}

main();
