// The package as users load it: CommonJS and ESM entry points, the api.md
// names, devices(), thread settings, the kernel registry.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('entry points', () => {
  it('require("kiln") and import("kiln") expose the same functions', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import * as esm from 'kiln'; import { createRequire } from 'node:module'; const cjs = createRequire(import.meta.url)('kiln');" +
          "const names = Object.keys(cjs).sort(); const missing = names.filter((n) => esm[n] !== cjs[n]);" +
          "console.log(JSON.stringify({ names: names.length, missing, sum: cjs.tensor([1, 2]).add(1).toArray() }));",
      ],
      { cwd: root, encoding: 'utf8' },
    );
    const r = JSON.parse(out) as { names: number; missing: string[]; sum: number[] };
    expect(r.missing).toEqual([]);
    expect(r.names).toBeGreaterThan(30);
    expect(r.sum).toEqual([2, 3]);
  });
  it('exports every api.md "Tensors" name', () => {
    for (const name of ['tensor', 'zeros', 'ones', 'full', 'arange', 'rand', 'randn', 'tidy', 'memory', 'devices', 'setNumThreads', 'getNumThreads', 'add', 'mul', 'KilnError', 'ShapeError', 'DTypeError', 'DeviceError', 'DisposedError', 'ValueError']) {
      expect(typeof (kiln as Record<string, unknown>)[name], name).not.toBe('undefined');
    }
    const t = kiln.ones([2]);
    for (const m of ['cast', 'to', 'reshape', 'contiguous', 'clone', 'data', 'dataSync', 'toArray', 'item', 'dispose', 'add', 'mul']) {
      expect(typeof (t as unknown as Record<string, unknown>)[m], m).toBe('function');
    }
    expect(typeof t[Symbol.dispose]).toBe('function');
    expect(createRequire(import.meta.url)).toBeTypeOf('function');
  });
});

describe('README example', () => {
  it('examples/first-tensor.mjs runs and frees everything', () => {
    const out = execFileSync(process.execPath, ['examples/first-tensor.mjs'], { cwd: root, encoding: 'utf8', env: process.env });
    expect(out).toContain("[ 2, 3 ] bfloat16");
    expect(out).toContain('tensors: 3');
  });
});

describe('devices and threads', () => {
  it('reports the CPU and explains CUDA', () => {
    const d = kiln.devices();
    expect(d.cpu.threads).toBeGreaterThanOrEqual(1);
    expect(Array.isArray(d.cpu.isa)).toBe(true);
    expect(['portable', 'avx2', 'avx512']).toContain(d.cpu.isaLevel);
    if (d.cuda.available) {
      expect(d.cuda.devices.length).toBeGreaterThan(0);
      expect(d.cuda.devices[0].computeCapability).toMatch(/^\d+\.\d+$/);
    } else {
      expect(d.cuda.reason).toMatch(/built without CUDA|driver|no CUDA|device/i);
      expect(d.cuda.devices).toEqual([]);
    }
  });
  it('setNumThreads changes the pool', () => {
    const before = kiln.getNumThreads();
    kiln.setNumThreads(3);
    expect(kiln.getNumThreads()).toBe(3);
    expect(kiln.devices().cpu.threads).toBe(3);
    kiln.setNumThreads(before);
    expect(kiln.getNumThreads()).toBe(before);
  });
  it('lists registered kernels by op/device/dtype', () => {
    const k = kiln.kernels();
    expect(k).toContain('add/cpu/float32');
    expect(k).toContain('cast/cpu/float8_e4m3');
    expect(k).not.toContain('div/cpu/int32');
    if (kiln.devices().cuda.compiled) expect(k).toContain('add/cuda/float32');
  });
});
