// kiln.io safetensors: bit-exact round trips of every dtype, the reference writer's
// exact bytes, validation of corrupt files, a fixture written by hand in Python
// (test/fixtures/gen_safetensors.py) and kiln's files read by Python/numpy/torch
// (test/fixtures/check_safetensors.py).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const io = kiln.io;
const FIXTURES = path.resolve(__dirname, '../fixtures');
const PYTHON = '/usr/bin/python3';
const hasNumpy = fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-safetensors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const tmpFile = (name = 'f'): string => path.join(tmp, `${name}-${counter++}.safetensors`);

/** The raw bytes of a tensor's elements (row-major). */
function bytesOf(t: kiln.Tensor): Uint8Array {
  const d = t.dataSync() as ArrayBufferView;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function expectSameTensor(a: kiln.Tensor, b: kiln.Tensor): void {
  expect(a.dtype).toBe(b.dtype);
  expect(a.shape).toEqual(b.shape);
  expect(Buffer.from(bytesOf(a)).equals(Buffer.from(bytesOf(b)))).toBe(true);
}

function disposeAll(rec: Record<string, kiln.Tensor>): void {
  for (const t of Object.values(rec)) t.dispose();
}

/** The header of serialized bytes: its length, JSON text and the data start. */
function headerOf(bytes: Uint8Array): { n: number; text: string; json: Record<string, unknown> } {
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const text = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
  return { n, text, json: JSON.parse(text) as Record<string, unknown> };
}

/** A file from a header (object or raw JSON text) and data bytes, space-padded like the reference writer. */
function craft(header: unknown, data: Uint8Array | number[] = [], opts: { n?: bigint; pad?: boolean } = {}): Uint8Array {
  let json = header instanceof Uint8Array ? Buffer.from(header) : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  if (opts.pad !== false) json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.n ?? BigInt(json.length));
  return new Uint8Array(Buffer.concat([len, json, Buffer.from(data)]));
}

// One tensor of every dtype with values chosen to catch any conversion: NaN payloads,
// infinities, -0, subnormals, every fp8 code, integer extremes, bools.
function everyDType(): Record<string, kiln.Tensor> {
  const f32bits = new Uint32Array([0x00000000, 0x80000000, 0x3fc00000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800123, 0x00000001, 0x7f7fffff, 0x12345678, 0xdeadbeef]);
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x8000, 0x7c00, 0xfc00, 0x7e01, 0xfd55, 0x7c01, 0xffff]);
  const bf16 = new Uint16Array([0x3f80, 0xc020, 0x4049, 0x7e96, 0x0001, 0x7f80, 0xff80, 0x7fc1, 0xffff, 0x7f81, 0x8000, 0x1234]);
  const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
  return {
    f32: kiln.tensor(new Float32Array(f32bits.buffer), [3, 4], { dtype: 'float32' }),
    f16: kiln.tensor(f16, [2, 6], { dtype: 'float16' }),
    bf16: kiln.tensor(bf16, [4, 3], { dtype: 'bfloat16' }),
    e4m3: kiln.tensor(codes, [16, 16], { dtype: 'float8_e4m3' }),
    e5m2: kiln.tensor(codes, [256], { dtype: 'float8_e5m2' }),
    i8: kiln.tensor(new Int8Array([-128, -1, 0, 1, 127]), [5], { dtype: 'int8' }),
    u8: kiln.tensor(codes, [2, 128], { dtype: 'uint8' }),
    i32: kiln.tensor(new Int32Array([-(2 ** 31), -1, 0, 1, 2 ** 31 - 1, 123456789]), [2, 3], { dtype: 'int32' }),
    bool: kiln.tensor([[true, false, true], [false, false, true]]),
  };
}

describe('safetensors round trips', () => {
  it('every dtype is bit-exact through a file, sync and async, and in memory', async () => {
    const src = everyDType();
    const before = kiln.memory().tensors;
    const file = tmpFile('every');
    io.saveSafetensorsSync(file, src, { epoch: '3' });
    const viaSync = io.loadSafetensorsSync(file);
    const viaAsync = await io.loadSafetensors(file);
    const viaBytes = io.parseSafetensors(io.serializeSafetensors(src, { epoch: '3' }));
    const file2 = tmpFile('every-async');
    await io.saveSafetensors(file2, src, { epoch: '3' });
    expect(Buffer.from(fs.readFileSync(file2)).equals(fs.readFileSync(file))).toBe(true);
    expect(Buffer.from(io.serializeSafetensors(src, { epoch: '3' })).equals(fs.readFileSync(file))).toBe(true);
    for (const loaded of [viaSync, viaAsync, viaBytes]) {
      expect(Object.keys(loaded.tensors).sort()).toEqual(Object.keys(src).sort());
      for (const [name, t] of Object.entries(src)) expectSameTensor(loaded.tensors[name], t);
      expect(loaded.metadata).toEqual({ epoch: '3' });
      expect(loaded.tensors.f32.device).toBe('cpu');
    }
    // decoded values agree too (kiln decodes fp8 / 16-bit floats)
    expect(viaSync.tensors.e4m3.toArray()).toEqual(src.e4m3.toArray());
    expect(viaSync.tensors.bool.toArray()).toEqual([[1, 0, 1], [0, 0, 1]]);
    for (const r of [viaSync, viaAsync, viaBytes]) disposeAll(r.tensors);
    expect(kiln.memory().tensors).toBe(before);
    disposeAll(src);
  });

  it('empty tensors and 0-d tensors', () => {
    const src = {
      empty1: kiln.zeros([0]),
      empty3: kiln.zeros([2, 0, 3], { dtype: 'bfloat16' }),
      emptyBool: kiln.zeros([0, 4], { dtype: 'bool' }),
      scalar: kiln.tensor(3.5),
      scalarI: kiln.tensor(-7, [], { dtype: 'int32' }),
      scalarB: kiln.tensor(true),
    };
    const bytes = io.serializeSafetensors(src);
    const { json } = headerOf(bytes);
    // order: F32 (empty1, scalar), I32 (scalarI), BF16 (empty3), BOOL (emptyBool, scalarB)
    expect(json.empty1).toEqual({ dtype: 'F32', shape: [0], data_offsets: [0, 0] });
    expect(json.scalarI).toEqual({ dtype: 'I32', shape: [], data_offsets: [4, 8] });
    expect(json.empty3).toEqual({ dtype: 'BF16', shape: [2, 0, 3], data_offsets: [8, 8] });
    expect(json.scalarB).toEqual({ dtype: 'BOOL', shape: [], data_offsets: [8, 9] });
    expect(json.scalar).toEqual({ dtype: 'F32', shape: [], data_offsets: [0, 4] });
    const { tensors } = io.parseSafetensors(bytes);
    for (const [name, t] of Object.entries(src)) expectSameTensor(tensors[name], t);
    expect(tensors.scalar.item()).toBe(3.5);
    expect(tensors.scalarI.item()).toBe(-7);
    expect(tensors.scalarB.item()).toBe(1);
    // a file of nothing but empty tensors has an empty byte buffer
    const only = io.parseSafetensors(io.serializeSafetensors({ e: src.empty1 }));
    expect(only.tensors.e.shape).toEqual([0]);
    disposeAll(only.tensors);
    disposeAll(tensors);
    disposeAll(src);
  });

  it('views and non-contiguous tensors are written packed', () => {
    const base = kiln.arange(0, 24, 1, { dtype: 'float32' }).reshape([2, 3, 4]);
    const src: Record<string, kiln.Tensor> = {
      transposed: base.transpose([2, 0, 1]),
      stepped: base.slice([0, 1, 0], [2, 3, 4], [1, 1, 2]),
      narrowed: kiln.narrow(base, 2, 1, 2),
      offsetView: base.reshape([24]).split([5, 19])[1], // contiguous, non-zero offset
      broadcast: kiln.tensor([1, 2, 3], [3], { dtype: 'int32' }).broadcastTo([2, 3]), // stride 0
      bf16T: base.cast('bfloat16').transpose([1, 0, 2]),
    };
    expect(src.transposed.isContiguous).toBe(false);
    const file = tmpFile('views');
    io.saveSafetensorsSync(file, src);
    const { tensors } = io.loadSafetensorsSync(file);
    for (const [name, t] of Object.entries(src)) {
      const packed = t.contiguous();
      expectSameTensor(tensors[name], packed);
      expect(tensors[name].toArray()).toEqual(t.toArray());
      packed.dispose();
    }
    expect(tensors.offsetView.toArray()).toEqual(Array.from({ length: 19 }, (_, i) => i + 5));
    disposeAll(tensors);
    disposeAll(src);
    base.dispose();
  });

  it('metadata: strings of any kind, none, and a Map of tensors', () => {
    const t = kiln.ones([2]);
    const metadata = { format: 'pt', note: 'k\u00efln \u2713 "quoted"\n\ttab \\ slash /', empty: '', '\u00fcber': '\u{1F600}' };
    const m = io.parseSafetensors(io.serializeSafetensors(new Map([['w', t]]), metadata));
    expect(m.metadata).toEqual(metadata);
    expect(Object.keys(m.metadata)).toEqual(Object.keys(metadata));
    disposeAll(m.tensors);
    const bytes = io.serializeSafetensors({ w: t });
    expect(headerOf(bytes).text).not.toContain('__metadata__');
    const none = io.parseSafetensors(bytes);
    expect(none.metadata).toEqual({});
    disposeAll(none.tensors);
    // "__metadata__": null is how serde writes no metadata; accepted
    const nul = io.parseSafetensors(craft({ __metadata__: null, a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, [9]));
    expect(nul.metadata).toEqual({});
    expect(nul.tensors.a.toArray()).toEqual([9]);
    disposeAll(nul.tensors);
    t.dispose();
  });

  it('names that are special in JS objects, and unicode names, round trip', () => {
    const t = kiln.tensor([1, 2], [2], { dtype: 'int8' });
    const src: Record<string, kiln.Tensor> = {};
    for (const name of ['__proto__', 'constructor', 'toString', '', '0', 'model.layers.0.attn.q_proj.weight', '\u00e9\u{1F600}']) {
      Object.defineProperty(src, name, { value: t, enumerable: true });
    }
    const { tensors } = io.parseSafetensors(io.serializeSafetensors(src));
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(src).sort());
    expect(Object.getPrototypeOf(tensors)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(tensors, '__proto__')).toBe(true);
    expect((Object.getOwnPropertyDescriptor(tensors, '__proto__')!.value as kiln.Tensor).toArray()).toEqual([1, 2]);
    for (const name of Object.keys(tensors)) (Object.getOwnPropertyDescriptor(tensors, name)!.value as kiln.Tensor).dispose();
    t.dispose();
  });

  it('saveSafetensors reads the tensors at the call: they may be disposed before it resolves', async () => {
    const t = kiln.tensor([1, 2, 3]);
    const file = tmpFile('snapshot');
    const pending = io.saveSafetensors(file, { t });
    t.dispose();
    await pending;
    const { tensors } = io.loadSafetensorsSync(file);
    expect(tensors.t.toArray()).toEqual([1, 2, 3]);
    disposeAll(tensors);
  });

  it('loads onto the requested device (DeviceError without CUDA)', async () => {
    const t = kiln.tensor([1.5, -2], [2], { dtype: 'bfloat16' });
    const file = tmpFile('device');
    io.saveSafetensorsSync(file, { t });
    if (!kiln.devices().cuda.available) {
      expect(() => io.loadSafetensorsSync(file, { device: 'cuda' })).toThrow(kiln.DeviceError);
      await expect(io.loadSafetensors(file, { device: 'cuda' })).rejects.toThrow(kiln.DeviceError);
    } else {
      const { tensors } = await io.loadSafetensors(file, { device: 'cuda' });
      expect(tensors.t.device).toBe('cuda:0');
      expectSameTensor(tensors.t, t);
      // and back: a CUDA tensor saves the same bytes
      expect(Buffer.from(io.serializeSafetensors({ t: tensors.t })).equals(Buffer.from(io.serializeSafetensors({ t })))).toBe(true);
      disposeAll(tensors);
    }
    t.dispose();
  });
});

describe('safetensors layout (the reference writer, byte for byte)', () => {
  // The expected bytes are the reference implementation's own serialization tests
  // (safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement, test_empty).
  it('matches the reference bytes', () => {
    const data = kiln.tensor([0, 1, 2, 3, 4, 5], [1, 2, 3]);
    const a = io.serializeSafetensors({ 'attn.0': data });
    expect(Array.from(a.subarray(0, 8))).toEqual([64, 0, 0, 0, 0, 0, 0, 0]);
    expect(headerOf(a).text).toBe('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
    expect(Array.from(a.subarray(72))).toEqual([0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64]);
    const r = data.reshape([1, 1, 2, 3]);
    const b = io.serializeSafetensors({ attn0: r });
    expect(Array.from(b.subarray(0, 8))).toEqual([72, 0, 0, 0, 0, 0, 0, 0]);
    expect(headerOf(b).text).toBe('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
    expect(b.byteLength).toBe(8 + 72 + 24);
    expect(Array.from(io.serializeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    expect(Array.from(io.serializeSafetensors({}, { framework: 'pt' }))).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
    r.dispose();
    data.dispose();
  });

  it('sorts by descending alignment then name, aligns every tensor, pads the header to 8 bytes', () => {
    const src = {
      b_u8: kiln.tensor([1, 2, 3], [3], { dtype: 'uint8' }),
      z_f32: kiln.tensor([1]),
      a_f32: kiln.tensor([1, 2]),
      flag: kiln.tensor([true]),
      m_bf16: kiln.tensor([1, 2, 3], [3], { dtype: 'bfloat16' }),
      c_i32: kiln.tensor([5], [1], { dtype: 'int32' }),
      e_f16: kiln.tensor([1], [1], { dtype: 'float16' }),
      q_e4m3: kiln.tensor([1], [1], { dtype: 'float8_e4m3' }),
      q_e5m2: kiln.tensor([1], [1], { dtype: 'float8_e5m2' }),
      i_i8: kiln.tensor([1], [1], { dtype: 'int8' }),
    };
    const bytes = io.serializeSafetensors(src, { k: 'v' });
    const { n, json } = headerOf(bytes);
    expect(n % 8).toBe(0);
    expect(Object.keys(json)).toEqual(['__metadata__', 'a_f32', 'z_f32', 'c_i32', 'm_bf16', 'e_f16', 'q_e4m3', 'q_e5m2', 'i_i8', 'b_u8', 'flag']);
    let pos = 0;
    for (const [name, info] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      const { data_offsets: [begin, end] } = info as { data_offsets: [number, number] };
      const t = src[name as keyof typeof src];
      expect(begin).toBe(pos);
      expect((8 + n + begin) % kiln.dtypeSize(t.dtype)).toBe(0);
      pos = end;
    }
    expect(bytes.byteLength).toBe(8 + n + pos);
    disposeAll(src);
  });

  it('writes atomically: no temporary files left, old file kept when the write fails', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'atomic-'));
    const file = path.join(dir, 'ckpt.safetensors');
    const a = kiln.tensor([1, 2]);
    io.saveSafetensorsSync(file, { a });
    const old = fs.readFileSync(file);
    const b = kiln.tensor([3, 4, 5]);
    await io.saveSafetensors(file, { b }); // overwrite
    expect(fs.readdirSync(dir)).toEqual(['ckpt.safetensors']);
    let loaded = io.loadSafetensorsSync(file);
    expect(Object.keys(loaded.tensors)).toEqual(['b']);
    disposeAll(loaded.tensors);
    io.saveSafetensorsSync(file, { a });
    expect(fs.readFileSync(file).equals(old)).toBe(true);
    // failures before writing (a disposed tensor, bad names) leave the old file untouched
    b.dispose();
    expect(() => io.saveSafetensorsSync(file, { a, b })).toThrow(kiln.DisposedError);
    await expect(io.saveSafetensors(file, { a, b })).rejects.toThrow(kiln.DisposedError);
    expect(fs.readFileSync(file).equals(old)).toBe(true);
    // a failure at the rename (the target is a directory) removes the temporary file
    const asDir = path.join(dir, 'is-a-dir');
    fs.mkdirSync(asDir);
    expect(() => io.saveSafetensorsSync(asDir, { a })).toThrow();
    await expect(io.saveSafetensors(asDir, { a })).rejects.toThrow();
    expect(fs.readdirSync(dir).sort()).toEqual(['ckpt.safetensors', 'is-a-dir']);
    expect(fs.readdirSync(asDir)).toEqual([]);
    // a missing directory fails without creating anything
    expect(() => io.saveSafetensorsSync(path.join(dir, 'no/such/dir.safetensors'), { a })).toThrow(/ENOENT/);
    loaded = io.loadSafetensorsSync(file);
    expect(loaded.tensors.a.toArray()).toEqual([1, 2]);
    disposeAll(loaded.tensors);
    a.dispose();
  });

  it('rejects bad arguments to save', async () => {
    const t = kiln.ones([1]);
    const bad: [unknown, unknown, RegExp][] = [
      [[t], undefined, /Record<string, Tensor> or a Map/],
      [null, undefined, /Record<string, Tensor> or a Map/],
      [t, undefined, /Record<string, Tensor> or a Map/],
      [{ w: [1, 2] }, undefined, /"w" is object, not a Tensor/],
      [{ __metadata__: t }, undefined, /reserved for the metadata/],
      [{ ['bad\uD800']: t }, undefined, /lone surrogate/],
      [{ t }, { n: 1 }, /metadata value of "n" must be a string/],
      [{ t }, ['x'], /metadata must be a Record<string, string>/],
    ];
    for (const [tensors, metadata, re] of bad) {
      const save = io.serializeSafetensors as (t: unknown, m?: unknown) => Uint8Array;
      expect(() => save(tensors, metadata)).toThrow(kiln.ValueError);
      expect(() => save(tensors, metadata)).toThrow(re);
      await expect((io.saveSafetensors as (p: string, t: unknown, m?: unknown) => Promise<void>)(tmpFile('bad'), tensors, metadata)).rejects.toThrow(re);
    }
    t.dispose();
  });
});

describe('safetensors validation', () => {
  const F32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const eight = new Array<number>(8).fill(0);
  const valid = craft({ a: F32x2 }, eight);
  const withLength = (bytes: Uint8Array, n: bigint): Uint8Array => {
    const copy = bytes.slice();
    new DataView(copy.buffer).setBigUint64(0, n, true);
    return copy;
  };

  // [what, file bytes, message regex]
  const corrupt: [string, Uint8Array, RegExp][] = [
    ['empty file', new Uint8Array(0), /truncated file: 0 bytes/],
    ['shorter than 8 bytes', new Uint8Array([8, 0, 0]), /truncated file: 3 bytes/],
    ['cut inside the header', valid.subarray(0, 20), /header length 56 is larger than the 12 bytes after it/],
    ['cut inside the data', valid.subarray(0, valid.byteLength - 3), /tensor "a": data_offsets \[0, 8\] end beyond the 5-byte data buffer/],
    ['header length beyond the file', withLength(valid, 1000n), /header length 1000 is larger than/],
    ['header length over 100 MB', withLength(valid, 100_000_001n), /header length 100000001 is more than the format's limit/],
    ['header length 2^64-1', withLength(valid, 2n ** 64n - 1n), /header length 18446744073709551615 is more than the format's limit/],
    ['header length 0', craft('', [], { n: 0n }), /does not start with '\{'/],
    ['leading whitespace', craft(' {}'), /does not start with '\{'/],
    ['a JSON array', craft('[1]'), /does not start with '\{'/],
    ['invalid JSON', craft('{"a":'), /invalid JSON/],
    ['trailing garbage', craft('{} x'), /invalid JSON: unexpected "x"/],
    ['single quotes', craft("{'a':1}"), /invalid JSON/],
    ['invalid UTF-8', craft(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), /the header is not valid UTF-8/],
    ['lone surrogate escape', craft('{"\\ud800":1}'), /lone surrogate/],
    ['entry is a number', craft({ a: 5 }), /tensor "a": entry must be an object \{dtype, shape, data_offsets\}, got the number 5/],
    ['entry is a list', craft({ a: [1] }), /tensor "a": entry must be an object/],
    ['entry is null', craft({ a: null }), /tensor "a": entry must be an object.*got null/],
    ['missing dtype', craft({ a: { shape: [2], data_offsets: [0, 8] } }, eight), /tensor "a": dtype must be a string, got missing/],
    ['unknown dtype', craft({ a: { ...F32x2, dtype: 'F33' } }, eight), /tensor "a": unknown dtype "F33"/],
    ['lower-case dtype', craft({ a: { ...F32x2, dtype: 'f32' } }, eight), /tensor "a": unknown dtype "f32"/],
    ['missing shape', craft({ a: { dtype: 'F32', data_offsets: [0, 8] } }, eight), /tensor "a": shape must be a list of non-negative integers, got missing/],
    ['negative dimension', craft({ a: { ...F32x2, shape: [2, -1] } }, eight), /tensor "a": shape must be a list of non-negative integers, but has the number -1/],
    ['fractional dimension', craft({ a: { ...F32x2, shape: [1.5] } }, eight), /shape must be a list of non-negative integers, but has the number 1.5/],
    ['float-spelled dimension', craft('{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', eight), /but has the number 2.0/],
    ['exponent dimension', craft('{"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', eight), /but has the number 2e0/],
    ['string dimension', craft({ a: { ...F32x2, shape: [2, '3'] } }, eight), /but has the string "3"/],
    ['shape not a list', craft({ a: { ...F32x2, shape: 2 } }, eight), /shape must be a list of non-negative integers, got the number 2/],
    ['huge dimension', craft('{"a":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,8]}}', eight), /but has the number 9007199254740993/],
    ['one offset', craft({ a: { ...F32x2, data_offsets: [0] } }, eight), /data_offsets must be two non-negative integers \[begin, end\], got a list of 1/],
    ['three offsets', craft({ a: { ...F32x2, data_offsets: [0, 8, 8] } }, eight), /data_offsets must be two non-negative integers/],
    ['offsets a string', craft({ a: { ...F32x2, data_offsets: '0,8' } }, eight), /data_offsets must be two .*got the string "0,8"/],
    ['negative offset', craft({ a: { ...F32x2, data_offsets: [-1, 8] } }, eight), /data_offsets must be two non-negative integers \[begin, end\], but has the number -1/],
    ['fractional offset', craft('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}', eight), /but has the number 8.0/],
    ['missing offsets', craft({ a: { dtype: 'F32', shape: [2] } }, eight), /data_offsets must be two .*got missing/],
    ['begin after end', craft({ a: { ...F32x2, data_offsets: [8, 0] } }, eight), /tensor "a": data_offsets \[8, 0\]: begin is after end/],
    ['end beyond the buffer', craft({ a: { ...F32x2, data_offsets: [0, 16] } }, eight), /tensor "a": data_offsets \[0, 16\] end beyond the 8-byte data buffer/],
    ['size mismatch', craft({ a: { ...F32x2, shape: [3] } }, eight), /tensor "a": data_offsets \[0, 8\] hold 8 bytes, but F32\[3\] takes 12/],
    ['size mismatch (0-d)', craft({ a: { ...F32x2, shape: [] } }, eight), /hold 8 bytes, but F32\[\] takes 4/],
    ['overflowing shape', craft({ a: { ...F32x2, shape: [2 ** 40, 2 ** 40, 2 ** 40] } }, eight), /hold 8 bytes, but F32\[1099511627776, 1099511627776, 1099511627776\] takes/],
    [
      'overlapping tensors',
      craft({ a: { dtype: 'U8', shape: [8], data_offsets: [0, 8] }, b: { dtype: 'U8', shape: [8], data_offsets: [4, 12] } }, new Array<number>(12).fill(0)),
      /tensors "a" \(data_offsets \[0, 8\]\) and "b" \(data_offsets \[4, 12\]\) overlap/,
    ],
    [
      'two tensors on the same bytes',
      craft({ a: { dtype: 'U8', shape: [8], data_offsets: [0, 8] }, b: { dtype: 'I8', shape: [8], data_offsets: [0, 8] } }, eight),
      /tensors "a" .* and "b" .* overlap/,
    ],
    [
      'an empty tensor inside another',
      craft({ a: { dtype: 'U8', shape: [8], data_offsets: [0, 8] }, e: { dtype: 'U8', shape: [0], data_offsets: [4, 4] } }, eight),
      /tensors "a" .* and "e" .* overlap/,
    ],
    [
      'a gap between tensors',
      craft({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [8, 12] } }, new Array<number>(12).fill(0)),
      /bytes \[4, 8\) of the data buffer, before tensor "b", belong to no tensor/,
    ],
    ['a gap at the start', craft({ b: { dtype: 'U8', shape: [4], data_offsets: [4, 8] } }, eight), /bytes \[0, 4\) of the data buffer, before tensor "b", belong to no tensor/],
    ['trailing bytes', craft({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, eight), /the data buffer has 8 bytes but the tensors end at byte 4; the 4 bytes after it belong to no tensor/],
    ['data but no tensors', craft({}, eight), /the data buffer has 8 bytes but the tensors end at byte 0/],
    ['duplicate tensor names', craft('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}', eight), /duplicate tensor name "a"/],
    ['duplicate field', craft('{"a":{"dtype":"U8","dtype":"I8","shape":[8],"data_offsets":[0,8]}}', eight), /duplicate key "dtype" in the entry of tensor "a"/],
    ['duplicate __metadata__', craft('{"__metadata__":{},"__metadata__":{}}'), /duplicate "__metadata__"/],
    ['duplicate metadata key', craft('{"__metadata__":{"k":"1","k":"2"}}'), /duplicate key "k" in "__metadata__"/],
    ['metadata value a number', craft({ __metadata__: { k: 1 } }), /"__metadata__" value of "k" must be a string, got the number 1/],
    ['metadata value null', craft({ __metadata__: { k: null } }), /"__metadata__" value of "k" must be a string, got null/],
    ['metadata value an object', craft({ __metadata__: { k: { x: 'y' } } }), /"__metadata__" value of "k" must be a string, got an object/],
    ['metadata a list', craft({ __metadata__: ['x'] }), /"__metadata__" must be an object of strings, got an array/],
    ['deep nesting', craft(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":${'['.repeat(100)}${']'.repeat(100)}}}`), /nested more than 64 levels/],
  ];

  it.each(corrupt)('rejects %s (in memory, sync and async file loads)', async (_what, bytes, re) => {
    const before = kiln.memory().tensors;
    expect(() => io.parseSafetensors(bytes)).toThrow(kiln.ValueError);
    expect(() => io.parseSafetensors(bytes)).toThrow(re);
    expect(() => io.parseSafetensors(bytes)).toThrow(/^kiln: parseSafetensors: <\d+ bytes>: /);
    const file = tmpFile('corrupt');
    fs.writeFileSync(file, bytes);
    let err: unknown;
    try {
      io.loadSafetensorsSync(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(kiln.ValueError);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message.startsWith(`kiln: loadSafetensorsSync: ${file}: `)).toBe(true);
    await expect(io.loadSafetensors(file)).rejects.toThrow(re);
    expect(kiln.memory().tensors).toBe(before);
  });

  it('accepts what the reference accepts: unknown entry fields, extra whitespace in JSON, no padding', () => {
    const ok = [
      craft({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2], extra: { nested: [1, 2.5, null, true] } } }, [1, 2]),
      craft('{ "a" : { "dtype" : "U8" ,\n "shape" : [ 2 ] , "data_offsets" : [ 0 , 2 ] } }\t\r\n', [1, 2]),
      craft({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, [1, 2], { pad: false }),
      craft('{"\\u0061":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', [1, 2]), // escaped name
    ];
    for (const bytes of ok) {
      const { tensors } = io.parseSafetensors(bytes);
      expect(tensors.a.toArray()).toEqual([1, 2]);
      disposeAll(tensors);
    }
  });

  it('tensors stored in any order, empty tensors anywhere on the boundaries', () => {
    const bytes = craft(
      {
        z: { dtype: 'U8', shape: [2], data_offsets: [4, 6] },
        e0: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
        a: { dtype: 'I16', shape: [2], data_offsets: [0, 4] },
        e1: { dtype: 'U8', shape: [3, 0], data_offsets: [4, 4] },
        e2: { dtype: 'U8', shape: [0], data_offsets: [6, 6] },
      },
      [1, 0, 2, 0, 7, 8],
    );
    const { tensors } = io.parseSafetensors(bytes, { unsupported: 'convert' });
    expect(Object.keys(tensors)).toEqual(['z', 'e0', 'a', 'e1', 'e2']); // header order
    expect(tensors.a.toArray()).toEqual([1, 2]);
    expect(tensors.z.toArray()).toEqual([7, 8]);
    expect(tensors.e1.shape).toEqual([3, 0]);
    disposeAll(tensors);
  });

  it('BOOL bytes other than 0 and 1 load as true', () => {
    const { tensors } = io.parseSafetensors(craft({ m: { dtype: 'BOOL', shape: [4], data_offsets: [0, 4] } }, [0, 1, 2, 255]));
    expect(Array.from(tensors.m.dataSync())).toEqual([0, 1, 1, 1]);
    disposeAll(tensors);
  });

  it('rejects bad load options and paths', async () => {
    const file = tmpFile('opts');
    io.saveSafetensorsSync(file, {});
    expect(() => io.loadSafetensorsSync(file, { unsupported: 'maybe' as never })).toThrow(/unsupported must be 'error', 'convert' or 'skip'/);
    expect(() => io.loadSafetensorsSync(file, { device: 'tpu' as never })).toThrow(kiln.DeviceError);
    expect(() => io.loadSafetensorsSync('')).toThrow(kiln.ValueError);
    expect(() => io.loadSafetensorsSync(path.join(tmp, 'missing.safetensors'))).toThrow(/ENOENT/);
    await expect(io.loadSafetensors(path.join(tmp, 'missing.safetensors'))).rejects.toThrow(/ENOENT/);
    expect(() => io.parseSafetensors('abc' as never)).toThrow(/expected the file's bytes/);
    const empty = io.loadSafetensorsSync(file);
    expect(empty).toEqual({ tensors: {}, metadata: {} });
  });
});

describe('safetensors dtypes kiln lacks', () => {
  const file = path.join(FIXTURES, 'unsupported.safetensors');

  it('a DTypeError names the tensor and its dtype, before anything is allocated', async () => {
    const before = kiln.memory().tensors;
    expect(() => io.loadSafetensorsSync(file)).toThrow(kiln.DTypeError);
    expect(() => io.loadSafetensorsSync(file)).toThrow(/tensor "u64" has dtype U64, which kiln does not support .*pass \{ unsupported: 'convert' \} to load it as int32/);
    const f64 = craft({ x: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Array<number>(8).fill(0));
    expect(() => io.parseSafetensors(f64)).toThrow(/tensor "x" has dtype F64, which kiln does not support .*to load it as float32, or 'skip'/);
    await expect(io.loadSafetensors(file)).rejects.toThrow(kiln.DTypeError);
    const other = craft({ c: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Array<number>(8).fill(0));
    expect(() => io.parseSafetensors(other)).toThrow(/tensor "c" has dtype C64.*unsupported: 'skip'/);
    expect(() => io.parseSafetensors(other, { unsupported: 'convert' })).toThrow(kiln.DTypeError);
    expect(kiln.memory().tensors).toBe(before);
  });

  it("'skip' leaves them out", () => {
    const { tensors } = io.loadSafetensorsSync(file, { unsupported: 'skip' });
    expect(Object.keys(tensors)).toEqual(['ok']);
    expect(tensors.ok.toArray()).toEqual([1, 2]);
    disposeAll(tensors);
  });

  it("'convert' makes F64 float32 and integers int32, and rejects values that do not fit", async () => {
    const before = kiln.memory().tensors;
    // i64_big holds 2^40: the whole load fails and nothing leaks
    expect(() => io.loadSafetensorsSync(file, { unsupported: 'convert' })).toThrow(/tensor "i64_big" \(I64\) holds 1099511627776 at element 1, which does not fit int32/);
    await expect(io.loadSafetensors(file, { unsupported: 'convert' })).rejects.toThrow(kiln.ValueError);
    expect(kiln.memory().tensors).toBe(before);
    // the same file without that tensor (rebuilt from the fixture's own bytes)
    const bytes = fs.readFileSync(file);
    const { n, json } = headerOf(bytes);
    const data = bytes.subarray(8 + n);
    const keep = Object.entries(json).filter(([k]) => k !== 'i64_big') as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][];
    let pos = 0;
    const parts: Buffer[] = [];
    const header: Record<string, unknown> = {};
    for (const [k, v] of keep) {
      const chunk = data.subarray(v.data_offsets[0], v.data_offsets[1]);
      header[k] = { ...v, data_offsets: [pos, pos + chunk.length] };
      pos += chunk.length;
      parts.push(Buffer.from(chunk));
    }
    const { tensors } = io.parseSafetensors(craft(header, Buffer.concat(parts)), { unsupported: 'convert' });
    expect(tensors.f64.dtype).toBe('float32');
    expect(tensors.f64.toArray()).toEqual([1, Math.fround(0.1), -Infinity]);
    expect(tensors.i64.dtype).toBe('int32');
    expect(tensors.i64.toArray()).toEqual([-(2 ** 31), 7, 2 ** 31 - 1]);
    expect(tensors.i16.toArray()).toEqual([-32768, 32767]);
    expect(tensors.u16.toArray()).toEqual([0, 65535]);
    expect(tensors.u32.toArray()).toEqual([5, 2 ** 31 - 1]);
    expect(tensors.u64.toArray()).toEqual([9]);
    expect(tensors.ok.dtype).toBe('float32');
    disposeAll(tensors);
  });
});

// The fixture written by test/fixtures/gen_safetensors.py (numpy + struct, by hand).
describe('safetensors fixture from Python', () => {
  const f32 = (bits: number): number => new Float32Array(new Uint32Array([bits]).buffer)[0];
  const bf16 = (bits: number): number => f32(bits << 16 >>> 0);

  it('loads every dtype with the values the generator wrote', async () => {
    const { tensors: t, metadata } = await io.loadSafetensors(path.join(FIXTURES, 'dtypes.safetensors'));
    expect(metadata).toEqual({ format: 'pt', note: 'k\u00efln \u2713 "quoted"\n', empty: '' });
    expect(Object.keys(t)).toEqual(['empty', 'float32.nan', 'float32.weight', 'int32', 'scalar', 'bfloat16', 'float16', 'fp8.e4m3', 'fp8.e5m2', 'int8', 'uint8', 'mask']);

    expect(t['float32.weight'].dtype).toBe('float32');
    expect(t['float32.weight'].shape).toEqual([2, 4]);
    expect(t['float32.weight'].toArray()).toEqual([[0, -0, 1.5, -2.25], [Infinity, -Infinity, 3.4028234663852886e38, f32(1)]]);
    expect(Object.is((t['float32.weight'].toArray() as number[][])[0][1], -0)).toBe(true);
    const nan = t['float32.nan'].dataSync();
    expect(Array.from(new Uint32Array(nan.buffer, nan.byteOffset, nan.length))).toEqual([0x7fc00000, 0xffc00001, 0x7f800123]);

    expect(t.float16.dtype).toBe('float16');
    expect(t.float16.shape).toEqual([2, 5]);
    expect(Array.from(t.float16.dataSync())).toEqual([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x8000, 0x7c00, 0xfc00, 0x7e01, 0xfd55]);
    expect((t.float16.toArray() as number[][]).flat()).toEqual([1, -2, 65504, 2 ** -24, 0.333251953125, -0, Infinity, -Infinity, NaN, NaN]);

    const bfBits = [0x3f80, 0xc020, 0x4049, 0x7e96, 0x0001, 0x7f80, 0xff80, 0x7fc1, 0xffff];
    expect(t.bfloat16.dtype).toBe('bfloat16');
    expect(Array.from(t.bfloat16.dataSync())).toEqual(bfBits);
    expect((t.bfloat16.toArray() as number[][]).flat()).toEqual(bfBits.map(bf16));
    expect((t.bfloat16.toArray() as number[][]).flat().slice(0, 3)).toEqual([1, -2.5, 3.140625]);

    expect(t['fp8.e4m3'].dtype).toBe('float8_e4m3');
    expect(Array.from(t['fp8.e4m3'].dataSync())).toEqual([0x00, 0x80, 0x38, 0xb8, 0x7e, 0xfe, 0x01, 0x7f, 0xff, 0x3c]);
    expect(t['fp8.e4m3'].toArray()).toEqual([0, -0, 1, -1, 448, -448, 2 ** -9, NaN, NaN, 1.5]);
    expect(t['fp8.e5m2'].dtype).toBe('float8_e5m2');
    expect(t['fp8.e5m2'].shape).toEqual([2, 5]);
    expect((t['fp8.e5m2'].toArray() as number[][]).flat()).toEqual([0, -0, 1, -1, 57344, Infinity, -Infinity, NaN, 2 ** -16, NaN]);

    expect(t.int8.dtype).toBe('int8');
    expect(t.int8.toArray()).toEqual([-128, -1, 0, 1, 127]);
    expect(t.uint8.toArray()).toEqual([[0, 1], [254, 255]]);
    expect(t.int32.dtype).toBe('int32');
    expect(t.int32.toArray()).toEqual([-(2 ** 31), -1, 0, 123456789, 2 ** 31 - 1]);
    expect(t.mask.dtype).toBe('bool');
    expect(t.mask.toArray()).toEqual([[1, 0, 1], [1, 0, 0]]);
    expect(t.empty.shape).toEqual([0, 3]);
    expect(t.empty.dtype).toBe('float32');
    expect(t.scalar.shape).toEqual([]);
    expect(t.scalar.item()).toBe(42);

    // kiln writes the same layout back: the same header (json.dumps escapes non-ASCII where kiln
    // writes UTF-8, so compare parsed headers and their key order) and the same byte buffer
    const again = io.serializeSafetensors(t, metadata);
    const fixture = new Uint8Array(fs.readFileSync(path.join(FIXTURES, 'dtypes.safetensors')));
    const [h1, h2] = [headerOf(fixture), headerOf(again)];
    expect(h2.json).toEqual(h1.json);
    expect(Object.keys(h2.json)).toEqual(Object.keys(h1.json));
    expect(Buffer.from(again.subarray(8 + h2.n)).equals(Buffer.from(fixture.subarray(8 + h1.n)))).toBe(true);
    const reparsed = io.parseSafetensors(again);
    for (const [name, x] of Object.entries(t)) expectSameTensor(reparsed.tensors[name], x);
    expect(reparsed.metadata).toEqual(metadata);
    disposeAll(reparsed.tensors);
    disposeAll(t);
  });

  it('the fixtures are small', () => {
    for (const f of ['dtypes.safetensors', 'unsupported.safetensors']) expect(fs.statSync(path.join(FIXTURES, f)).size).toBeLessThan(20_000);
  });
});

// kiln's files read by hand in Python (numpy; torch.frombuffer when torch is importable).
describe.skipIf(!hasNumpy)('safetensors files read by Python (check_safetensors.py)', () => {
  interface Report {
    torch: string | null;
    metadata: Record<string, string>;
    order: string[];
    tensors: Record<string, { dtype: string; shape: number[]; bits: number[]; values: (number | string)[]; torch_dtype: string | null }>;
  }
  const check = (file: string): Report => {
    const r = spawnSync(PYTHON, [path.join(FIXTURES, 'check_safetensors.py'), file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`check_safetensors.py failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout) as Report;
  };
  const fromPython = (v: number | string): number => (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : (v as number));

  it('reads every dtype with the same bits and values as kiln', () => {
    const src: Record<string, kiln.Tensor> = {
      ...everyDType(),
      empty: kiln.zeros([0, 2], { dtype: 'float16' }),
      scalar: kiln.tensor(-1.25, [], { dtype: 'bfloat16' }),
      view: kiln.arange(0, 12, 1, { dtype: 'int32' }).reshape([3, 4]).transpose(),
      'model.layers.0.\u00e9': kiln.randn([3, 5], { seed: 7 }),
    };
    const file = tmpFile('python');
    io.saveSafetensorsSync(file, src, { format: 'pt', step: '100', note: '\u2713 "q"' });
    const report = check(file);
    expect(report.metadata).toEqual({ format: 'pt', step: '100', note: '\u2713 "q"' });
    expect(report.order.sort()).toEqual(Object.keys(src).sort());
    for (const [name, t] of Object.entries(src)) {
      const got = report.tensors[name];
      expect(got.dtype).toBe({ float32: 'F32', float16: 'F16', bfloat16: 'BF16', float8_e4m3: 'F8_E4M3', float8_e5m2: 'F8_E5M2', int8: 'I8', uint8: 'U8', int32: 'I32', bool: 'BOOL' }[t.dtype]);
      expect(got.shape).toEqual(t.shape);
      const raw = t.dataSync() as ArrayBufferView;
      const bits = t.dtype === 'float32' ? new Uint32Array(raw.buffer, raw.byteOffset, t.size) : (raw as unknown as ArrayLike<number>);
      expect(got.bits).toEqual(Array.from(bits));
      // Python's own decoding of the bits (numpy f16, bf16 via a shift, its own fp8 decoder) equals kiln's
      const values = t.size === 0 ? [] : (t.reshape([-1]).toArray() as number[]);
      expect(got.values.map(fromPython)).toEqual(values);
      if (report.torch !== null && !t.dtype.startsWith('float8')) expect(got.torch_dtype).not.toBeNull();
    }
    disposeAll(src);
  });

  it('reads the reference-layout details (checked inside the script) for a file with only metadata', () => {
    const file = tmpFile('python-empty');
    io.saveSafetensorsSync(file, {}, { only: 'metadata' });
    expect(check(file)).toMatchObject({ metadata: { only: 'metadata' }, order: [], tensors: {} });
  });
});
