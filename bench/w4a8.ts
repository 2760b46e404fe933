// W4A8 (INT4 weights x FP8 activations, kiln.quant) on the CPU: kiln's
// w4a8Linear vs kiln's own float32 matmul and vs onnxruntime-node's
// MatMulNBits (4 bits, block 128, accuracy level 0 = float32 compute and 4 =
// int8 activations), measured in the same run. Prints a Markdown table and
// writes it to bench/results/<date>-w4a8.md (or --out FILE).
//
//   npm run bench:w4a8 [-- --rounds 3 --threads 2 --ms 1,16,256 --shapes 11008x4096,4096x4096 --rotate-mb 160 --no-ort --out FILE --no-write]
//
// npm run bench:w4a8 builds lib/ and compiles this file with the repository's
// tsc into dist/bench/ (as bench:gemm). The native addon is the one lib/ loads
// (build/ or prebuilds/, or KILN_NATIVE_DIR).
//
// Method, the same for every engine: shapes N x K (outputs x inputs: the
// Llama-2-7B / Llama-3-8B linear layers) and M rows of activations. Weights
// are streamed from RAM: each engine holds several copies of its weights
// (more than 160 MB in all, far beyond the caches; --rotate-mb) and each call uses the next
// copy. Per (shape, M): x [M, K] standard normal float32, made once; every call
// allocates its float32 output [M, N]; two warm-up calls, then the median of
// `reps` calls (>= 0.3 s of kiln W4A8 work, 5 to 400 calls, the same for every
// engine). The engines run back to back, `rounds` times over; each engine's
// best median is reported. Every engine uses the same thread count.
//   - kiln W4A8: quant.w4a8Linear(x, weight, { outDtype: 'float32' }) — the
//     activations are quantized to FP8 per row inside the call; the weight is
//     quant.quantizeWeightInt4(w) (group 128).
//   - kiln f32: kiln.matmul(x, W^T) with W^T [K, N] row-major float32 (kiln's
//     fastest layout for a GEMV: B's rows read in order).
//   - onnxruntime MatMulNBits: the same INT4 codes (q + 8, zero point 8) with
//     float32 scales e4m3(s) / 2^e per (row, block of 128) as initializers of
//     a one-node model; A fed as float32.
// The table also gives the weight bytes each W4A8 call reads (N Kp / 2 + N Kp
// / 128) per second, against the machine's read bandwidth (bench/peak), and
// the largest difference between the onnxruntime and kiln outputs relative to
// the largest output (a check that both compute the same product).
import { DATE, flag, kiln, limitsLine, machineLine, measurePeak, now, opt, outPath, ROOT, timeAsync, timeSync, VERSION, writeTable } from './common';
import { intAttr, model, node, ONNX_FLOAT, ONNX_UINT8, Pb, tensorProto, valueInfo } from './onnx';

type KTensor = import('../dist/cjs/index').Tensor;
type Int4Weight = import('../dist/cjs/index').quant.Int4Weight;

const THREADS = Number(opt('threads', '0')) || kiln.getNumThreads();
kiln.setNumThreads(THREADS);
const ROUNDS = Math.max(1, Number(opt('rounds', '3')));
const OUT = outPath('w4a8');
const MS = (opt('ms', '1,16,256') ?? '').split(',').filter(Boolean).map(Number);
const SHAPES = (opt('shapes', '4096x4096,11008x4096,4096x11008,14336x4096') ?? '')
  .split(',')
  .filter(Boolean)
  .map((s) => {
    const [n, k] = s.split('x').map(Number);
    return { n, k };
  });
const ROTATE_BYTES = Number(opt('rotate-mb', '160')) * 2 ** 20;
const GROUP = 128;

const copiesFor = (bytes: number): number => Math.min(256, Math.max(2, Math.ceil(ROTATE_BYTES / bytes)));

// ---- onnxruntime-node ------------------------------------------------------------------

interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { dims: readonly number[]; data: unknown; dispose?: () => void }>>;
  release?: () => Promise<void>;
}
interface Ort {
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
}

function loadOrt(): { ort: Ort; version: string } | null {
  if (flag('no-ort')) return null;
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

/** One com.microsoft MatMulNBits node: Y [M, N] = A [M, K] @ dequant(B)^T (M symbolic). */
function matmulNBitsModel(n: number, k: number, b: Uint8Array, scales: Float32Array, level: number): Uint8Array {
  const blocks = k / GROUP;
  const graph = new Pb()
    .msg(
      1,
      node('MatMulNBits', ['A', 'B', 'scales'], ['Y'], {
        domain: 'com.microsoft',
        attrs: [intAttr('K', k), intAttr('N', n), intAttr('bits', 4), intAttr('block_size', GROUP), intAttr('accuracy_level', level)],
      }),
    )
    .str(2, 'w4a8')
    .msg(5, tensorProto('B', [n, blocks, GROUP / 2], ONNX_UINT8, b))
    .msg(5, tensorProto('scales', [n * blocks], ONNX_FLOAT, new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength)))
    .msg(11, valueInfo('A', ['M', k]))
    .msg(12, valueInfo('Y', ['M', n]));
  return model(graph, [
    ['', 13],
    ['com.microsoft', 1],
  ]);
}

/** A copy of a tensor in its own storage. */
function clone<T extends KTensor>(t: T): T {
  return kiln.tensor(t.dataSync(), t.shape, { dtype: t.dtype }) as T;
}

// ---- main --------------------------------------------------------------------------------

interface Row {
  n: number;
  k: number;
  m: number;
  reps: number;
  w4a8: number;
  f32: number;
  ort0: number | null;
  ort4: number | null;
  diff0: number | null;
  diff4: number | null;
}

async function main(): Promise<void> {
  const ortLoaded = loadOrt();
  const peak = measurePeak(THREADS);
  const rows: Row[] = [];
  for (const { n, k } of SHAPES) {
    const kp = Math.ceil(k / 128) * 128;
    const w = kiln.tidy(() => kiln.mul(kiln.randn([n, k], { seed: n + k }), 0.02));
    const qw = kiln.quant.quantizeWeightInt4(w, { groupSize: GROUP });
    const qBytes = (n * kp) / 2 + (n * kp) / GROUP;
    const qCopies: Int4Weight[] = [qw];
    for (let i = 1; i < copiesFor(qBytes); ++i) {
      qCopies.push(new kiln.quant.Int4Weight({ packed: clone(qw.packed), scales: clone(qw.scales), exponent: clone(qw.exponent), inFeatures: k }));
    }
    const wt = kiln.transpose(w).contiguous();
    const fCopies: KTensor[] = [wt];
    for (let i = 1; i < copiesFor(4 * n * k); ++i) fCopies.push(clone(wt));
    w.dispose();

    // onnxruntime's operands: nibbles as unsigned q + 8, scales e4m3(s) / 2^e
    let ortB: Uint8Array | null = null;
    let ortScales: Float32Array | null = null;
    if (ortLoaded) {
      ortB = Uint8Array.from(qw.packed.dataSync() as Uint8Array, (b) => b ^ 0x88);
      const s = qw.scales.to({ dtype: 'float32' });
      const inv = 2 ** -qw.e;
      ortScales = Float32Array.from(s.dataSync() as Float32Array, (v) => v * inv);
      s.dispose();
    }

    // onnxruntime sessions (level 0 and 4), each with its own copy of the weights
    const sessions: Record<number, OrtSession[]> = {};
    if (ortLoaded && ortB && ortScales) {
      for (const level of [0, 4]) {
        try {
          const bytes = matmulNBitsModel(n, k, ortB, ortScales, level);
          const list: OrtSession[] = [];
          for (let i = 0; i < copiesFor(qBytes + (n * kp * 4) / GROUP); ++i) {
            list.push(await ortLoaded.ort.InferenceSession.create(bytes, { intraOpNumThreads: THREADS, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' }));
          }
          sessions[level] = list;
        } catch (e) {
          console.error(`onnxruntime MatMulNBits (level ${level}) failed on ${n}x${k}: ${(e as Error).message}`);
        }
      }
    }

    for (const m of MS) {
      const x = kiln.randn([m, k], { seed: m });
      let qi = 0;
      let fi = 0;
      const w4a8 = (): void => kiln.quant.w4a8Linear(x, qCopies[qi++ % qCopies.length], { outDtype: 'float32' }).dispose();
      const f32 = (): void => kiln.matmul(x, fCopies[fi++ % fCopies.length]).dispose();
      let once = Infinity;
      for (let i = 0; i < 4; ++i) {
        const t0 = now();
        w4a8();
        if (i > 0) once = Math.min(once, now() - t0);
      }
      const reps = Math.min(400, Math.max(5, Math.ceil(0.3 / Math.max(once, 1e-6))));

      // onnxruntime vs kiln on this x (a check that both compute the same product)
      const diffs: Record<number, number | null> = { 0: null, 4: null };
      if (ortLoaded) {
        const yKiln = kiln.quant.w4a8Linear(x, qw, { outDtype: 'float32' });
        const yk = yKiln.dataSync() as Float32Array;
        yKiln.dispose();
        const feed = { A: new ortLoaded.ort.Tensor('float32', Float32Array.from(x.dataSync() as Float32Array), [m, k]) };
        for (const level of [0, 4]) {
          const list = sessions[level];
          if (!list) continue;
          const out = await list[0].run(feed);
          const yo = out.Y.data as Float32Array;
          let d = 0;
          let scale = 0;
          for (let i = 0; i < yo.length; ++i) {
            d = Math.max(d, Math.abs(yo[i] - yk[i]));
            scale = Math.max(scale, Math.abs(yk[i]));
          }
          diffs[level] = d / scale;
          out.Y.dispose?.();
        }
      }
      const feeds = ortLoaded ? { A: new ortLoaded.ort.Tensor('float32', Float32Array.from(x.dataSync() as Float32Array), [m, k]) } : null;

      const row: Row = { n, k, m, reps, w4a8: Infinity, f32: Infinity, ort0: null, ort4: null, diff0: diffs[0], diff4: diffs[4] };
      for (let r = 0; r < ROUNDS; ++r) {
        row.w4a8 = Math.min(row.w4a8, timeSync(w4a8, reps));
        row.f32 = Math.min(row.f32, timeSync(f32, reps));
        for (const level of [0, 4]) {
          const list = sessions[level];
          if (!list || !feeds) continue;
          let si = 0;
          const sec = await timeAsync(async () => {
            const out = await list[si++ % list.length].run(feeds);
            out.Y.dispose?.();
          }, reps);
          if (level === 0) row.ort0 = Math.min(row.ort0 ?? Infinity, sec);
          else row.ort4 = Math.min(row.ort4 ?? Infinity, sec);
        }
      }
      x.dispose();
      rows.push(row);
      const us = (s: number | null) => (s === null ? 'n/a' : (s * 1e6).toFixed(0));
      console.error(`${n}x${k} M ${m}: w4a8 ${us(row.w4a8)} us, f32 ${us(row.f32)} us, ort L0 ${us(row.ort0)} us, ort L4 ${us(row.ort4)} us (${reps} reps x ${ROUNDS} rounds)`);
    }
    for (const list of Object.values(sessions)) for (const s of list) await s.release?.();
    qCopies.forEach((c) => c.dispose());
    fCopies.forEach((c) => c.dispose());
  }

  const us = (s: number | null) => (s === null || !Number.isFinite(s) ? 'n/a' : (s * 1e6).toFixed(s < 1e-3 ? 1 : 0));
  const ratio = (x: number, y: number | null) => (y === null ? 'n/a' : `${(y / x).toFixed(2)}x`);
  const pct = (d: number | null) => (d === null ? 'n/a' : `${(d * 100).toFixed(1)}%`);
  const isa = kiln.devices().cpu;
  const path512 = isa.isaLevel === 'avx512' && isa.isa.includes('avx512_bf16') ? 'avx512 + AVX512-BF16 (vpermw lookup, vdpbf16ps)' : isa.isaLevel;
  const lines = [
    `# W4A8 (INT4 weights x FP8 activations) on the CPU — ${DATE}`,
    '',
    machineLine(),
    `- threads: ${THREADS} for every engine (kiln setNumThreads, onnxruntime intraOpNumThreads)`,
    `- versions: kiln ${VERSION} (quant.w4a8Linear, ${path512} path; kiln.matmul float32), Node ${process.version}, onnxruntime-node ${ortLoaded ? ortLoaded.version : 'not available'} (CPU execution provider, one com.microsoft MatMulNBits node: bits 4, block 128, accuracy level 0 and 4)`,
    limitsLine(peak, THREADS),
    `- method: weights streamed from RAM (each engine rotates over copies of its weights, > 160 MB in all); per (shape, M) the engines run back to back, ${ROUNDS} rounds, each number the best over rounds of the median of "reps" calls after 2 warm-ups; every call allocates its float32 output; kiln W4A8 quantizes the activations inside the call`,
    '',
    '| N x K | M | reps | W4A8 us | f32 matmul us | ORT L0 us | ORT L4 us | W4A8 vs f32 | vs ORT L0 | vs ORT L4 | W4A8 weights GB/s (% of read bw) | ORT L0 / L4 diff |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => {
      const kp = Math.ceil(r.k / 128) * 128;
      const gbs = ((r.n * kp) / 2 + (r.n * kp) / GROUP) / r.w4a8 / 1e9;
      const bw = `${gbs.toFixed(1)}${peak ? ` (${((gbs / peak.read_gbs) * 100).toFixed(0)}%)` : ''}`;
      return `| ${r.n} x ${r.k} | ${r.m} | ${r.reps} | ${us(r.w4a8)} | ${us(r.f32)} | ${us(r.ort0)} | ${us(r.ort4)} | ${ratio(r.w4a8, r.f32)} | ${ratio(r.w4a8, r.ort0)} | ${ratio(r.w4a8, r.ort4)} | ${bw} | ${pct(r.diff0)} / ${pct(r.diff4)} |`;
    }),
    '',
    'Ratios are speedups of kiln W4A8 (> 1: W4A8 is faster). "W4A8 weights GB/s" counts the packed weights and scales one call reads; the read bandwidth it is compared with is measured once before the run on a shared machine and moves with the other tenants\' traffic. "diff" is max |Y_ort - Y_kiln| / max |Y_kiln| on the first call (the engines quantize activations differently: kiln to FP8 per row, ORT level 0 not at all, level 4 to int8 per block).',
    '',
  ];
  writeTable(lines, OUT);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
