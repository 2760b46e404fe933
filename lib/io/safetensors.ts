// safetensors files (the format of https://github.com/huggingface/safetensors):
//
//   8 bytes   N, the header length, an unsigned 64-bit little-endian integer
//   N bytes   a UTF-8 JSON object: { "<name>": { "dtype": "F32", "shape": [2, 3],
//             "data_offsets": [begin, end] }, ..., "__metadata__": { "<key>": "<value>" } }
//             (offsets relative to the byte buffer; the writer pads it with spaces to
//             a multiple of 8 bytes so the buffer starts 8-byte aligned)
//   the rest  the byte buffer: each tensor's elements, packed row-major, little-endian
//
// Writing follows the reference implementation byte for byte: tensors sorted by
// descending alignment (element size) then by name, which keeps every tensor aligned
// to its element size without padding, compact JSON with `__metadata__` first, the
// header padded with spaces. Reading follows its checks (header at most 100 MB and
// starting with '{', offsets covering the byte buffer exactly — no gaps, no overlaps,
// nothing after the last tensor), adding a strict JSON parse that rejects duplicate keys.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import { randomBytes } from 'node:crypto';
import { resolveDevice, type Device, type DeviceSpec } from '../device';
import { dtypeSize, type DType } from '../dtype';
import { DTypeError, KilnError, ShapeError, ValueError } from '../errors';
import { native } from '../native';
import { formatShape, MAX_DIMS } from '../shape';
import { emptyTensor, Tensor } from '../tensor';

/** The largest header accepted, as in the reference implementation (100 MB). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** What to do with a tensor whose safetensors dtype kiln has no dtype for. */
export type UnsupportedDTypeAction = 'error' | 'convert' | 'skip';

export interface SafetensorsLoadOptions {
  /** Where the tensors are created (default 'cpu'). */
  device?: Device;
  /**
   * Tensors of dtypes kiln lacks (F64, I64, I16, U16, U32, U64, and F4, F6_*,
   * F8_E8M0, C64): 'error' (default) throws a DTypeError naming the tensor;
   * 'convert' makes F64 float32 (rounded to nearest even) and the integer types
   * int32 (a ValueError when a value does not fit), other types still throw;
   * 'skip' leaves them out of the result.
   */
  unsupported?: UnsupportedDTypeAction;
}

export interface SafetensorsContents {
  /** The tensors, in the order of the file's header. */
  tensors: Record<string, Tensor>;
  /** `__metadata__` ({} when the file has none). */
  metadata: Record<string, string>;
}

/** Tensors to save: a record or a Map from names to tensors. */
export type TensorMap = Record<string, Tensor> | Map<string, Tensor>;

// ---- dtypes ------------------------------------------------------------------------

// Every dtype of the format in the reference's order (increasing alignment), with its bits per element.
const FORMAT_BITS: ReadonlyMap<string, number> = new Map([
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8], ['F8_E5M2', 8], ['F8_E4M3', 8],
  ['F8_E8M0', 8], ['I16', 16], ['U16', 16], ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32], ['F32', 32],
  ['C64', 64], ['F64', 64], ['I64', 64], ['U64', 64],
]);
const FORMAT_RANK: ReadonlyMap<string, number> = new Map([...FORMAT_BITS.keys()].map((k, i) => [k, i]));

const TO_KILN: Readonly<Record<string, DType>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F8_E4M3: 'float8_e4m3',
  F8_E5M2: 'float8_e5m2',
  I8: 'int8',
  U8: 'uint8',
  I32: 'int32',
  BOOL: 'bool',
};

const FROM_KILN: Readonly<Record<DType, string>> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  float8_e4m3: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
  int8: 'I8',
  uint8: 'U8',
  int32: 'I32',
  bool: 'BOOL',
};

// What 'convert' turns the other dtypes into.
const CONVERTIBLE: Readonly<Record<string, DType>> = {
  F64: 'float32',
  I16: 'int32',
  U16: 'int32',
  U32: 'int32',
  I64: 'int32',
  U64: 'int32',
};

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkHostEndianness(op: string): void {
  if (!LITTLE_ENDIAN) throw new KilnError(`kiln: ${op}: safetensors I/O needs a little-endian host (kiln stores tensors in host byte order)`);
}

const quote = (s: string): string => JSON.stringify(s);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// ---- writing -----------------------------------------------------------------------

interface Prepared {
  header: Uint8Array; // the 8-byte length and the padded JSON
  chunks: Uint8Array[]; // tensor bytes, in file order
  bytes: number; // total file size
}

function entriesOf(op: string, tensors: unknown): [string, unknown][] {
  if (tensors instanceof Map) return [...tensors.entries()] as [string, unknown][];
  if (tensors === null || typeof tensors !== 'object' || Array.isArray(tensors) || tensors instanceof Tensor) {
    throw new ValueError(`kiln: ${op}: tensors must be a Record<string, Tensor> or a Map<string, Tensor>, got ${tensors === null ? 'null' : Array.isArray(tensors) ? 'an array' : typeof tensors}`);
  }
  return Object.keys(tensors).map((k) => [k, (tensors as Record<string, unknown>)[k]]);
}

function checkMetadata(op: string, metadata: unknown): [string, string][] | null {
  if (metadata === undefined) return null;
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata) || metadata instanceof Map) {
    throw new ValueError(`kiln: ${op}: metadata must be a Record<string, string>, got ${metadata === null ? 'null' : Array.isArray(metadata) ? 'an array' : metadata instanceof Map ? 'a Map' : typeof metadata}`);
  }
  return Object.keys(metadata).map((k) => {
    const v = (metadata as Record<string, unknown>)[k];
    if (typeof v !== 'string') throw new ValueError(`kiln: ${op}: metadata value of ${quote(k)} must be a string, got ${v === null ? 'null' : typeof v}`);
    if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) throw new ValueError(`kiln: ${op}: metadata entry ${quote(k)} is not valid Unicode (lone surrogate)`);
    return [k, v];
  });
}

/** Compares strings by their UTF-8 bytes (the reference sorts Rust strings, which compare that way). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Validates the arguments and takes a copy of every tensor's bytes (contiguous, on the host). */
function prepare(op: string, tensors: unknown, metadata: unknown): Prepared {
  checkHostEndianness(op);
  const meta = checkMetadata(op, metadata);
  const items = entriesOf(op, tensors).map(([name, t]) => {
    if (typeof name !== 'string') throw new ValueError(`kiln: ${op}: tensor names must be strings, got ${typeof name}`);
    if (!(t instanceof Tensor)) throw new ValueError(`kiln: ${op}: ${quote(name)} is ${t === null ? 'null' : typeof t}, not a Tensor`);
    if (name === '__metadata__') throw new ValueError(`kiln: ${op}: "__metadata__" is reserved for the metadata and cannot name a tensor`);
    if (LONE_SURROGATE.test(name)) throw new ValueError(`kiln: ${op}: tensor name ${quote(name)} is not valid Unicode (lone surrogate)`);
    const tensor = t as Tensor;
    tensor.storage(op); // DisposedError naming the op
    return { name, t: tensor, format: FROM_KILN[tensor.dtype] };
  });
  items.sort((a, b) => FORMAT_RANK.get(b.format)! - FORMAT_RANK.get(a.format)! || compareUtf8(a.name, b.name));

  const parts: string[] = [];
  if (meta !== null) parts.push(`"__metadata__":{${meta.map(([k, v]) => `${quote(k)}:${quote(v)}`).join(',')}}`);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const { name, t, format } of items) {
    let bytes: Uint8Array;
    if (t.size === 0) {
      bytes = new Uint8Array(0);
    } else {
      const data = t.dataSync() as ArrayBufferView; // a packed copy, read back from any device
      bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    if (bytes.byteLength !== t.size * dtypeSize(t.dtype)) {
      throw new KilnError(`kiln: ${op}: ${quote(name)} (${t.describe()}) read back ${bytes.byteLength} bytes`);
    }
    parts.push(`${quote(name)}:{"dtype":"${format}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes.byteLength}]}`);
    offset += bytes.byteLength;
    chunks.push(bytes);
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const n = Math.ceil(json.byteLength / 8) * 8;
  if (n > SAFETENSORS_MAX_HEADER_BYTES) {
    throw new ValueError(`kiln: ${op}: the header would take ${n} bytes, more than the format's limit of ${SAFETENSORS_MAX_HEADER_BYTES}`);
  }
  const header = new Uint8Array(8 + n);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.byteLength);
  return { header, chunks, bytes: header.byteLength + offset };
}

/**
 * The bytes of a safetensors file holding `tensors` (and `metadata`, string
 * values only). Views and non-contiguous tensors are written packed; tensors on
 * a GPU are copied back.
 */
export function serializeSafetensors(tensors: TensorMap, metadata?: Record<string, string>): Uint8Array {
  const p = prepare('serializeSafetensors', tensors, metadata);
  const out = new Uint8Array(p.bytes);
  out.set(p.header, 0);
  let at = p.header.byteLength;
  for (const c of p.chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function checkPath(op: string, path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw new ValueError(`kiln: ${op}: path must be a non-empty string, got ${typeof path === 'string' ? '""' : typeof path}`);
  return path;
}

function tempPathFor(path: string): string {
  const abs = nodePath.resolve(path);
  return nodePath.join(nodePath.dirname(abs), `.${nodePath.basename(abs)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

// fsync of a directory is how the rename itself becomes durable; some platforms cannot open or sync directories.
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'EACCES', 'ENOTSUP', 'EBADF']);
const dirSyncUnsupported = (e: unknown): boolean => DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException)?.code ?? '');

const WRITE_CHUNK = 1 << 30;

/**
 * Writes `tensors` to `path` as a safetensors file. The write is atomic: the
 * bytes go to a temporary file in the same directory, which is fsynced and
 * renamed over `path` (then the directory is fsynced), so a crash leaves
 * either the old file or the complete new one.
 */
export function saveSafetensorsSync(path: string, tensors: TensorMap, metadata?: Record<string, string>): void {
  const op = 'saveSafetensorsSync';
  const target = checkPath(op, path);
  const p = prepare(op, tensors, metadata);
  const tmp = tempPathFor(target);
  let fd = fs.openSync(tmp, 'wx', 0o666);
  let renamed = false;
  try {
    for (const chunk of [p.header, ...p.chunks]) {
      for (let at = 0; at < chunk.byteLength; ) {
        at += fs.writeSync(fd, chunk, at, Math.min(chunk.byteLength - at, WRITE_CHUNK));
      }
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, target);
    renamed = true;
  } finally {
    if (fd >= 0) {
      try {
        fs.closeSync(fd);
      } catch {
        // the write's own error is the one to report
      }
    }
    if (!renamed) fs.rmSync(tmp, { force: true });
  }
  let dirFd = -1;
  try {
    dirFd = fs.openSync(nodePath.dirname(nodePath.resolve(target)), 'r');
    fs.fsyncSync(dirFd);
  } catch (e) {
    if (!dirSyncUnsupported(e)) throw e;
  } finally {
    if (dirFd >= 0) fs.closeSync(dirFd);
  }
}

/**
 * Like saveSafetensorsSync, asynchronously. The tensors are read when the call
 * is made (a copy of their bytes is kept until the write ends), so they may be
 * changed or disposed right after it.
 */
export function saveSafetensors(path: string, tensors: TensorMap, metadata?: Record<string, string>): Promise<void> {
  const op = 'saveSafetensors';
  let p: Prepared;
  let target: string;
  try {
    target = checkPath(op, path);
    p = prepare(op, tensors, metadata);
  } catch (e) {
    return Promise.reject(e);
  }
  return writeAtomic(target, p);
}

async function writeAtomic(target: string, p: Prepared): Promise<void> {
  const tmp = tempPathFor(target);
  let fh: fsp.FileHandle | null = await fsp.open(tmp, 'wx', 0o666);
  let renamed = false;
  try {
    for (const chunk of [p.header, ...p.chunks]) {
      for (let at = 0; at < chunk.byteLength; ) {
        const { bytesWritten } = await fh.write(chunk, at, Math.min(chunk.byteLength - at, WRITE_CHUNK));
        at += bytesWritten;
      }
    }
    await fh.sync();
    const h = fh;
    fh = null;
    await h.close();
    await fsp.rename(tmp, target);
    renamed = true;
  } finally {
    if (fh !== null) await fh.close().catch(() => undefined);
    if (!renamed) await fsp.rm(tmp, { force: true });
  }
  let dir: fsp.FileHandle | null = null;
  try {
    dir = await fsp.open(nodePath.dirname(nodePath.resolve(target)), 'r');
    await dir.sync();
  } catch (e) {
    if (!dirSyncUnsupported(e)) throw e;
  } finally {
    await dir?.close();
  }
}

// ---- a strict JSON parser -----------------------------------------------------------
// JSON.parse keeps the last of duplicate keys silently and turns big integers into
// inexact doubles; the format forbids duplicates and offsets must be exact. Objects
// become Maps (no prototype keys such as "__proto__"), numbers keep their text.

class JsonNumber {
  constructor(readonly text: string) {}
}
type Json = null | boolean | string | JsonNumber | Json[] | Map<string, Json>;

const MAX_JSON_DEPTH = 64;
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

function parseJson(s: string, fail: (msg: string) => never): Json {
  let i = 0;
  const where = (): string => (i < s.length ? `${quote(s[i])} at character ${i}` : 'the end of the header');
  const ws = (): void => {
    for (; i < s.length; ++i) {
      const c = s.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    }
  };
  const str = (): string => {
    ++i; // opening quote
    let out = '';
    let start = i;
    for (;;) {
      if (i >= s.length) fail('invalid JSON: unterminated string');
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        out += s.slice(start, i++);
        return out;
      }
      if (c < 0x20) fail(`invalid JSON: control character U+${c.toString(16).padStart(4, '0')} in a string at character ${i}`);
      if (c !== 0x5c) {
        ++i;
        continue;
      }
      out += s.slice(start, i);
      const e = s[i + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && e in simple) {
        out += simple[e];
        i += 2;
      } else if (e === 'u') {
        const hex = (at: number): number => {
          const h = s.slice(at, at + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) fail(`invalid JSON: bad \\u escape at character ${at - 2}`);
          return parseInt(h, 16);
        };
        const u = hex(i + 2);
        i += 6;
        if (u >= 0xdc00 && u <= 0xdfff) fail(`invalid JSON: lone surrogate \\u${u.toString(16)} at character ${i - 6}`);
        if (u >= 0xd800 && u <= 0xdbff) {
          if (s[i] !== '\\' || s[i + 1] !== 'u') fail(`invalid JSON: lone surrogate \\u${u.toString(16)} at character ${i - 6}`);
          const lo = hex(i + 2);
          if (lo < 0xdc00 || lo > 0xdfff) fail(`invalid JSON: lone surrogate \\u${u.toString(16)} at character ${i - 6}`);
          out += String.fromCharCode(u, lo);
          i += 6;
        } else {
          out += String.fromCharCode(u);
        }
      } else {
        fail(`invalid JSON: bad escape at character ${i}`);
      }
      start = i;
    }
  };
  const value = (depth: number, path: string): Json => {
    if (depth > MAX_JSON_DEPTH) fail(`invalid header: JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
    ws();
    const c = s[i];
    if (c === '{') {
      ++i;
      const obj = new Map<string, Json>();
      ws();
      if (s[i] === '}') {
        ++i;
        return obj;
      }
      for (;;) {
        ws();
        if (s[i] !== '"') fail(`invalid JSON: expected a key (a string) but found ${where()}`);
        const key = str();
        if (obj.has(key)) {
          fail(depth === 0 ? (key === '__metadata__' ? 'duplicate "__metadata__"' : `duplicate tensor name ${quote(key)}`) : `duplicate key ${quote(key)} in ${path}`);
        }
        ws();
        if (s[i] !== ':') fail(`invalid JSON: expected ':' but found ${where()}`);
        ++i;
        obj.set(key, value(depth + 1, depth === 0 ? (key === '__metadata__' ? '"__metadata__"' : `the entry of tensor ${quote(key)}`) : `${path}.${key}`));
        ws();
        if (s[i] === ',') {
          ++i;
          continue;
        }
        if (s[i] === '}') {
          ++i;
          return obj;
        }
        fail(`invalid JSON: expected ',' or '}' but found ${where()}`);
      }
    }
    if (c === '[') {
      ++i;
      const arr: Json[] = [];
      ws();
      if (s[i] === ']') {
        ++i;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1, path));
        ws();
        if (s[i] === ',') {
          ++i;
          continue;
        }
        if (s[i] === ']') {
          ++i;
          return arr;
        }
        fail(`invalid JSON: expected ',' or ']' but found ${where()}`);
      }
    }
    if (c === '"') return str();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (s.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(s);
    if (m !== null) {
      i += m[0].length;
      return new JsonNumber(m[0]);
    }
    return fail(`invalid JSON: unexpected ${where()}`);
  };
  const v = value(0, '');
  ws();
  if (i !== s.length) fail(`invalid JSON: unexpected ${where()} after the header object`);
  return v;
}

// ---- reading ------------------------------------------------------------------------

interface Entry {
  name: string;
  format: string; // the file's dtype name
  shape: number[];
  begin: number; // within the byte buffer
  end: number;
}

interface Header {
  entries: Entry[]; // header order
  metadata: Record<string, string>;
}

type Fail = (msg: string) => never;

function failer(op: string, source: string): Fail {
  return (msg: string): never => {
    throw new ValueError(`kiln: ${op}: ${source}: ${msg}`);
  };
}

function describeJson(v: Json | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (v instanceof JsonNumber) return `the number ${v.text}`;
  if (v instanceof Map) return 'an object';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `the string ${quote(v.length > 40 ? `${v.slice(0, 40)}...` : v)}` : `${typeof v} ${String(v)}`;
}

/** A non-negative integer that a double holds exactly, or null. */
function indexValue(v: Json | undefined): number | null {
  if (!(v instanceof JsonNumber) || !/^(?:0|[1-9][0-9]*)$/.test(v.text)) return null;
  const n = Number(v.text);
  return Number.isSafeInteger(n) ? n : null;
}

/** Reads the 8-byte header length and checks it against the file. */
function headerLength(first8: Uint8Array, fileBytes: number, fail: Fail): number {
  if (fileBytes < 8) fail(`truncated file: ${fileBytes} bytes, fewer than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    fail(`header length ${n} is more than the format's limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes (corrupt, or not a safetensors file)`);
  }
  if (n > BigInt(fileBytes - 8)) fail(`header length ${n} is larger than the ${fileBytes - 8} bytes after it (truncated or corrupt file)`);
  return Number(n);
}

/** Parses and validates the header against a byte buffer of `dataBytes` bytes. */
function parseHeader(json: Uint8Array, dataBytes: number, fail: Fail): Header {
  if (json.byteLength === 0 || json[0] !== 0x7b) fail(`the header does not start with '{' (corrupt, or not a safetensors file)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json);
  } catch {
    return fail('the header is not valid UTF-8');
  }
  const root = parseJson(text, (msg) => fail(`${msg}`));
  if (!(root instanceof Map)) return fail('the header is not a JSON object');

  const entries: Entry[] = [];
  const metadata: Record<string, string> = {};
  for (const [name, v] of root) {
    if (name === '__metadata__') {
      if (v === null) continue;
      if (!(v instanceof Map)) fail(`"__metadata__" must be an object of strings, got ${describeJson(v)}`);
      for (const [k, mv] of v) {
        if (typeof mv !== 'string') fail(`"__metadata__" value of ${quote(k)} must be a string, got ${describeJson(mv)}`);
        Object.defineProperty(metadata, k, { value: mv, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const t = `tensor ${quote(name)}`;
    if (!(v instanceof Map)) fail(`${t}: entry must be an object {dtype, shape, data_offsets}, got ${describeJson(v)}`);
    const dtype = v.get('dtype');
    if (typeof dtype !== 'string') fail(`${t}: dtype must be a string, got ${describeJson(dtype)}`);
    const bits = FORMAT_BITS.get(dtype);
    if (bits === undefined) fail(`${t}: unknown dtype ${quote(dtype)}; the format's dtypes are ${[...FORMAT_BITS.keys()].join(', ')}`);
    const shapeJson = v.get('shape');
    if (!Array.isArray(shapeJson)) fail(`${t}: shape must be a list of non-negative integers, got ${describeJson(shapeJson)}`);
    const shape = shapeJson.map((d) => {
      const n = indexValue(d);
      if (n === null) fail(`${t}: shape must be a list of non-negative integers, but has ${describeJson(d)}`);
      return n;
    });
    const offs = v.get('data_offsets');
    if (!Array.isArray(offs) || offs.length !== 2) {
      fail(`${t}: data_offsets must be two non-negative integers [begin, end], got ${Array.isArray(offs) ? `a list of ${offs.length}` : describeJson(offs)}`);
    }
    const [begin, end] = offs.map((o) => {
      const n = indexValue(o);
      if (n === null) fail(`${t}: data_offsets must be two non-negative integers [begin, end], but has ${describeJson(o)}`);
      return n;
    });
    const where = `data_offsets [${begin}, ${end}]`;
    if (begin > end) fail(`${t}: ${where}: begin is after end`);
    if (end > dataBytes) fail(`${t}: ${where} end beyond the ${dataBytes}-byte data buffer (truncated or corrupt file)`);
    const elements = shape.reduce((a, d) => a * BigInt(d), 1n);
    const totalBits = elements * BigInt(bits);
    if (totalBits % 8n !== 0n) fail(`${t}: ${dtype}${formatShape(shape)} is not a whole number of bytes`);
    if (totalBits / 8n !== BigInt(end - begin)) {
      fail(`${t}: ${where} hold ${end - begin} bytes, but ${dtype}${formatShape(shape)} takes ${totalBits / 8n} (${elements} elements x ${bits / 8} bytes)`);
    }
    entries.push({ name, format: dtype, shape, begin, end });
  }

  // The byte buffer must be covered exactly: sorted by offset, each tensor starts where the previous ends.
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let last: Entry | null = null;
  for (const e of sorted) {
    if (e.begin < pos) {
      fail(`tensors ${quote(last!.name)} (data_offsets [${last!.begin}, ${last!.end}]) and ${quote(e.name)} (data_offsets [${e.begin}, ${e.end}]) overlap`);
    }
    if (e.begin > pos) {
      fail(`bytes [${pos}, ${e.begin}) of the data buffer, before tensor ${quote(e.name)}, belong to no tensor; the format requires the tensors to cover the buffer without gaps`);
    }
    if (e.end > e.begin) {
      pos = e.end;
      last = e;
    }
  }
  if (pos !== dataBytes) {
    fail(`the data buffer has ${dataBytes} bytes but the tensors end at byte ${pos}; the ${dataBytes - pos} bytes after it belong to no tensor`);
  }
  return { entries, metadata };
}

interface LoadPlan {
  device: DeviceSpec;
  unsupported: UnsupportedDTypeAction;
}

function loadPlan(op: string, opts: unknown): LoadPlan {
  checkHostEndianness(op);
  if (opts !== undefined && (opts === null || typeof opts !== 'object' || Array.isArray(opts))) {
    throw new ValueError(`kiln: ${op}: options must be an object like { device, unsupported }, got ${opts === null ? 'null' : typeof opts}`);
  }
  const o = (opts ?? {}) as SafetensorsLoadOptions;
  const unsupported = o.unsupported ?? 'error';
  if (unsupported !== 'error' && unsupported !== 'convert' && unsupported !== 'skip') {
    throw new ValueError(`kiln: ${op}: unsupported must be 'error', 'convert' or 'skip', got ${JSON.stringify(unsupported)}`);
  }
  return { device: resolveDevice(op, o.device), unsupported };
}

/** The kiln dtype an entry loads as, or null to skip it; throws for dtypes kiln lacks (by plan). */
function targetDType(op: string, source: string, e: Entry, plan: LoadPlan): DType | null {
  const direct = TO_KILN[e.format];
  let target: DType | null = direct ?? null;
  if (target === null) {
    if (plan.unsupported === 'skip') return null;
    const converted = plan.unsupported === 'convert' ? CONVERTIBLE[e.format] : undefined;
    if (converted === undefined) {
      const hint = plan.unsupported === 'convert' ? 'kiln cannot convert it' : CONVERTIBLE[e.format] !== undefined ? `pass { unsupported: 'convert' } to load it as ${CONVERTIBLE[e.format]}, or 'skip'` : "pass { unsupported: 'skip' } to leave it out";
      throw new DTypeError(`kiln: ${op}: ${source}: tensor ${quote(e.name)} has dtype ${e.format}, which kiln does not support (kiln's dtypes: ${Object.keys(TO_KILN).join(', ')}); ${hint}`);
    }
    target = converted;
  }
  if (e.shape.length > MAX_DIMS) {
    throw new ShapeError(`kiln: ${op}: ${source}: tensor ${quote(e.name)} has ${e.shape.length} dimensions ${formatShape(e.shape)}; kiln supports at most ${MAX_DIMS}`);
  }
  return target;
}

/** The element bytes in kiln's storage format for `target` (converting when the file's dtype differs). */
function storageBytes(op: string, source: string, e: Entry, raw: Uint8Array, target: DType): Uint8Array {
  if (target === 'bool') {
    // kiln's bools are 0 or 1; other nonzero bytes mean true (as in NumPy and PyTorch)
    if (raw.every((b) => b <= 1)) return raw;
    return raw.map((b) => (b === 0 ? 0 : 1));
  }
  if (TO_KILN[e.format] === target) return raw;
  const aligned = raw.slice(); // own buffer at offset 0: aligned for the wide views below
  const buf = aligned.buffer;
  if (e.format === 'F64') {
    const out = Float32Array.from(new Float64Array(buf)); // rounds to nearest even
    return new Uint8Array(out.buffer);
  }
  let src: ArrayLike<number | bigint>;
  switch (e.format) {
    case 'I16': src = new Int16Array(buf); break;
    case 'U16': src = new Uint16Array(buf); break;
    case 'U32': src = new Uint32Array(buf); break;
    case 'I64': src = new BigInt64Array(buf); break;
    case 'U64': src = new BigUint64Array(buf); break;
    default: throw new KilnError(`kiln: ${op}: no conversion from ${e.format} to ${target}`);
  }
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; ++i) {
    const v = src[i];
    if (v > 2147483647 || v < -2147483648) {
      throw new ValueError(`kiln: ${op}: ${source}: tensor ${quote(e.name)} (${e.format}) holds ${String(v)} at element ${i}, which does not fit int32`);
    }
    out[i] = Number(v);
  }
  return new Uint8Array(out.buffer);
}

function makeTensor(op: string, e: Entry, bytes: Uint8Array, dtype: DType, device: DeviceSpec): Tensor {
  const t = emptyTensor(e.shape, dtype, device);
  try {
    if (bytes.byteLength > 0) native.write(t.storage(op).native, 0, bytes);
  } catch (err) {
    t.dispose();
    throw err;
  }
  return t;
}

function setTensor(out: Record<string, Tensor>, name: string, t: Tensor): void {
  Object.defineProperty(out, name, { value: t, enumerable: true, writable: true, configurable: true });
}

/** Builds the tensors, reading each one's bytes with `read`; disposes the ones made when anything fails. */
function buildTensors(op: string, source: string, header: Header, plan: LoadPlan, read: (e: Entry) => Uint8Array): SafetensorsContents {
  const tensors: Record<string, Tensor> = {};
  const targets = header.entries.map((e) => targetDType(op, source, e, plan)); // dtype errors before any allocation
  try {
    header.entries.forEach((e, i) => {
      const target = targets[i];
      if (target === null) return;
      setTensor(tensors, e.name, makeTensor(op, e, storageBytes(op, source, e, read(e), target), target, plan.device));
    });
  } catch (err) {
    for (const t of Object.values(tensors)) t.dispose();
    throw err;
  }
  return { tensors, metadata: header.metadata };
}

function asBytes(op: string, bytes: unknown): Uint8Array {
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new ValueError(`kiln: ${op}: expected the file's bytes as a Uint8Array, Buffer or ArrayBuffer, got ${bytes === null ? 'null' : typeof bytes}`);
}

/** Tensors and metadata from the bytes of a whole safetensors file (the inverse of serializeSafetensors). */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer, opts?: SafetensorsLoadOptions): SafetensorsContents {
  const op = 'parseSafetensors';
  const plan = loadPlan(op, opts);
  const all = asBytes(op, bytes);
  const source = `<${all.byteLength} bytes>`;
  const fail = failer(op, source);
  const n = headerLength(all.subarray(0, 8), all.byteLength, fail);
  const dataStart = 8 + n;
  const header = parseHeader(all.subarray(8, dataStart), all.byteLength - dataStart, fail);
  return buildTensors(op, source, header, plan, (e) => all.subarray(dataStart + e.begin, dataStart + e.end));
}

function readFullySync(fd: number, buf: Uint8Array, position: number, fail: Fail): void {
  for (let at = 0; at < buf.byteLength; ) {
    const got = fs.readSync(fd, buf, at, Math.min(buf.byteLength - at, WRITE_CHUNK), position + at);
    if (got === 0) fail(`the file ended while reading (it shrank after it was opened?)`);
    at += got;
  }
}

async function readFully(fh: fsp.FileHandle, buf: Uint8Array, position: number, fail: Fail): Promise<void> {
  for (let at = 0; at < buf.byteLength; ) {
    const { bytesRead } = await fh.read(buf, at, Math.min(buf.byteLength - at, WRITE_CHUNK), position + at);
    if (bytesRead === 0) fail(`the file ended while reading (it shrank after it was opened?)`);
    at += bytesRead;
  }
}

/** Loads every tensor of a safetensors file (validated first; see SafetensorsLoadOptions). */
export function loadSafetensorsSync(path: string, opts?: SafetensorsLoadOptions): SafetensorsContents {
  const op = 'loadSafetensorsSync';
  const file = checkPath(op, path);
  const plan = loadPlan(op, opts);
  const fail = failer(op, file);
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const first8 = new Uint8Array(8);
    if (size >= 8) readFullySync(fd, first8, 0, fail);
    const n = headerLength(first8, size, fail);
    const json = new Uint8Array(n);
    readFullySync(fd, json, 8, fail);
    const dataStart = 8 + n;
    const header = parseHeader(json, size - dataStart, fail);
    return buildTensors(op, file, header, plan, (e) => {
      const buf = new Uint8Array(e.end - e.begin);
      readFullySync(fd, buf, dataStart + e.begin, fail);
      return buf;
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** Like loadSafetensorsSync, reading the file asynchronously. */
export async function loadSafetensors(path: string, opts?: SafetensorsLoadOptions): Promise<SafetensorsContents> {
  const op = 'loadSafetensors';
  const file = checkPath(op, path);
  const plan = loadPlan(op, opts);
  const fail = failer(op, file);
  const fh = await fsp.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const first8 = new Uint8Array(8);
    if (size >= 8) await readFully(fh, first8, 0, fail);
    const n = headerLength(first8, size, fail);
    const json = new Uint8Array(n);
    await readFully(fh, json, 8, fail);
    const dataStart = 8 + n;
    const header = parseHeader(json, size - dataStart, fail);
    const targets = header.entries.map((e) => targetDType(op, file, e, plan)); // dtype errors before any allocation
    const tensors: Record<string, Tensor> = {};
    try {
      for (let i = 0; i < header.entries.length; ++i) {
        const e = header.entries[i];
        const target = targets[i];
        if (target === null) continue;
        const raw = new Uint8Array(e.end - e.begin);
        await readFully(fh, raw, dataStart + e.begin, fail);
        setTensor(tensors, e.name, makeTensor(op, e, storageBytes(op, file, e, raw, target), target, plan.device));
      }
    } catch (err) {
      for (const t of Object.values(tensors)) t.dispose();
      throw err;
    }
    return { tensors, metadata: header.metadata };
  } finally {
    await fh.close();
  }
}
