#!/usr/bin/env node
// A short end-to-end check of the public API on a GPU (run by gpu-check.sh
// when node and dist/ are there): every dtype to the device and back, casts,
// rand/randn and binary ops equal to the CPU bit for bit, memory accounting.
// The full CUDA-vs-CPU suites are the native tests and test/js/cuda.test.ts.
'use strict';
const kiln = require('..');

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
}
const same = (a, b) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const info = kiln.devices().cuda;
check(info.available, `CUDA available: ${JSON.stringify(info.devices)}${info.reason ? ` (${info.reason})` : ''}`);
if (info.available) {
  kiln.tidy(() => {
    const x = kiln.randn([4099], { seed: 1 }).mul(300);
    const g = x.to('cuda');
    for (const dtype of kiln.DTYPES) {
      check(same(x.cast(dtype).dataSync(), g.cast(dtype).dataSync()), `cast float32 -> ${dtype} on cuda equals cpu`);
      check(same(x.cast(dtype).to('cuda').to('cpu').dataSync(), x.cast(dtype).dataSync()), `${dtype} round trip`);
    }
    for (const fn of [kiln.rand, kiln.randn]) {
      check(same(fn([10007], { seed: 5 }).dataSync(), fn([10007], { seed: 5, device: 'cuda' }).dataSync()), `${fn.name} seed 5`);
    }
    const a = kiln.randn([64, 1, 33], { seed: 2 });
    const b = kiln.randn([7, 33], { seed: 3 });
    for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum']) {
      const c = kiln[op](a, b).dataSync();
      const d = kiln[op](a.to('cuda'), b.to('cuda')).dataSync();
      check(same(c, d), `${op} broadcast float32`);
    }
    // W4A8 through the public API: the canonical and FireQ layouts on the GPU vs the CPU
    // (FP8 tensor-core sums keep ~13 bits: within 2% of the output scale; FireQ needs sm_89+)
    const q8 = kiln.quant;
    const w = q8.quantizeWeightInt4(kiln.randn([300, 1000], { seed: 6 }));
    const wg = new q8.Int4Weight({ packed: w.packed.to('cuda'), scales: w.scales.to('cuda'), exponent: w.exponent.to('cuda'), inFeatures: 1000 });
    const relErr = (got, want) => {
      let err = 0;
      let scale = 0;
      for (let i = 0; i < want.length; ++i) {
        err = Math.max(err, Math.abs(got[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      return err / scale;
    };
    for (const m of [1, 13, 200]) {
      const xq = kiln.randn([m, 1000], { seed: m });
      const want = q8.w4a8Linear(xq, w, { outDtype: 'float32' }).dataSync();
      const e1 = relErr(q8.w4a8Linear(xq.to('cuda'), wg, { outDtype: 'float32' }).dataSync(), want);
      check(e1 < 0.02, `w4a8Linear M ${m} canonical layout on cuda vs cpu: max error ${e1.toExponential(2)} of the output scale`);
      try {
        const fw = q8.packFireQ(wg);
        const e2 = relErr(q8.w4a8Linear(xq.to('cuda'), fw, { outDtype: 'float32' }).dataSync(), want);
        check(e2 < 0.02, `w4a8Linear M ${m} FireQ layout on cuda vs cpu: max error ${e2.toExponential(2)} of the output scale`);
        fw.dispose();
      } catch (e) {
        check(e instanceof kiln.DeviceError, `w4a8Linear FireQ layout: ${e.message.split('\n')[0]}`);
      }
    }
    w.dispose();
    wg.dispose();
    check(kiln.memory().bytes.cuda > 0, `cuda bytes accounted: ${kiln.memory().bytes.cuda}`);
  });
  check(kiln.memory().bytes.cuda === 0, 'cuda bytes back to 0 after tidy');
  const stats = kiln.internals.cudaAllocatorStats(0);
  check(stats.cacheHits > 0, `allocator reuses blocks: ${JSON.stringify(stats)}`);
}
console.log(failures === 0 ? 'gpu-smoke: all passed' : `gpu-smoke: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
