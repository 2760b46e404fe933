// Training checkpoints: a folder step-<n>/ holding model.safetensors (the
// model's state dict), optimizer.safetensors (the optimizer's state tensors)
// and state.json (step, optimizer hyperparameters and counters, scheduler and
// batcher state, RNG state, model config, and a SHA-256 of each tensor file).
// A checkpoint is written into a temporary folder, every file fsynced, then
// renamed into place, and `latest` is replaced the same way: a save that dies
// midway leaves the previous checkpoint and `latest` untouched.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ValueError } from '../errors';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors';
import type { Tensor } from '../tensor';

export const CHECKPOINT_FORMAT = 'kiln-checkpoint';
export const CHECKPOINT_VERSION = 1;

/** The JSON part of a checkpoint. */
export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  step: number;
  tokensSeen: number;
  skippedSteps: number;
  /** The model's config (TransformerLM.config) when it has one. */
  modelConfig: Record<string, unknown> | null;
  /** The optimizer's state dict without tensors: param_groups and per-parameter step counts. */
  optimizer: { param_groups: Record<string, unknown>[]; steps: Record<string, number> };
  scheduler: unknown;
  batcher: unknown;
  rng: unknown;
  /** Settings a resumed run must share (batch size, ctx, accumulation, seed, ...). */
  run: Record<string, unknown>;
  /** SHA-256 (hex) of model.safetensors and optimizer.safetensors. */
  sha256: Record<string, string>;
  /** Anything else the trainer keeps (e.g. recent metrics). */
  extra?: Record<string, unknown>;
}

export interface CheckpointContents {
  dir: string;
  state: CheckpointState;
  model: Record<string, Tensor>;
  optimizerTensors: Record<string, Tensor>;
}

const stepDirName = (step: number): string => `step-${String(step).padStart(8, '0')}`;

function writeFileSynced(file: string, bytes: Uint8Array | string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // some filesystems cannot fsync folders; the rename is still atomic
  }
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Test hook: KILN_CHECKPOINT_PAUSE_MS makes a save sleep between writing the files and publishing them. */
function testPause(): void {
  const ms = Number(process.env.KILN_CHECKPOINT_PAUSE_MS ?? 0);
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Writes a checkpoint for state.step under root; returns its folder. Keeps the newest `keep` (0: all). */
export function saveCheckpoint(root: string, state: Omit<CheckpointState, 'format' | 'version' | 'sha256'>, model: Record<string, Tensor>, optimizerTensors: Record<string, Tensor>, keep = 0): string {
  fs.mkdirSync(root, { recursive: true });
  const name = stepDirName(state.step);
  const final = path.join(root, name);
  const tmp = path.join(root, `.tmp-${name}-${process.pid}-${Date.now()}`);
  fs.mkdirSync(tmp);
  try {
    const modelBytes = serializeSafetensors(model, { format: 'pt' });
    const optBytes = serializeSafetensors(optimizerTensors);
    writeFileSynced(path.join(tmp, 'model.safetensors'), modelBytes);
    writeFileSynced(path.join(tmp, 'optimizer.safetensors'), optBytes);
    const full: CheckpointState = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, ...state, sha256: { 'model.safetensors': sha256(modelBytes), 'optimizer.safetensors': sha256(optBytes) } };
    writeFileSynced(path.join(tmp, 'state.json'), JSON.stringify(full, null, 1));
    fsyncDir(tmp);
    testPause();
    if (fs.existsSync(final)) fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(tmp, final);
    fsyncDir(root);
    const latestTmp = path.join(root, `.tmp-latest-${process.pid}`);
    writeFileSynced(latestTmp, JSON.stringify({ checkpoint: name, step: state.step }));
    fs.renameSync(latestTmp, path.join(root, 'latest.json'));
    fsyncDir(root);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (keep > 0) {
    const all = listCheckpoints(root);
    for (const old of all.slice(0, Math.max(0, all.length - keep))) fs.rmSync(old, { recursive: true, force: true });
  }
  return final;
}

/** The checkpoint folders under root, oldest first. */
export function listCheckpoints(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((n) => /^step-\d{8,}$/.test(n))
    .sort()
    .map((n) => path.join(root, n));
}

/** A checkpoint folder, or a root holding latest.json (resolved to the checkpoint it names). */
export function resolveCheckpoint(where: string): string {
  const latest = path.join(where, 'latest.json');
  if (fs.existsSync(latest)) {
    let name: unknown;
    try {
      name = (JSON.parse(fs.readFileSync(latest, 'utf8')) as { checkpoint?: unknown }).checkpoint;
    } catch (e) {
      throw new ValueError(`kiln: checkpoint: ${latest} is not valid JSON (${(e as Error).message})`);
    }
    if (typeof name !== 'string' || !/^step-\d+$/.test(name)) throw new ValueError(`kiln: checkpoint: ${latest} does not name a checkpoint`);
    return path.join(where, name);
  }
  return where;
}

/** Reads and verifies a checkpoint (format, version, hashes, tensor files) without touching any model. */
export function loadCheckpoint(where: string): CheckpointContents {
  const dir = resolveCheckpoint(where);
  const fail = (why: string): never => {
    throw new ValueError(`kiln: checkpoint ${dir}: ${why}`);
  };
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) fail('not found (expected a checkpoint folder or a folder with latest.json)');
  let state: CheckpointState;
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as CheckpointState;
  } catch (e) {
    return fail(`state.json is missing or not valid JSON (${(e as Error).message})`);
  }
  if (state?.format !== CHECKPOINT_FORMAT) fail(`state.json is not a kiln checkpoint (format ${String(state?.format)})`);
  if (state.version !== CHECKPOINT_VERSION) fail(`unsupported checkpoint version ${String(state.version)} (this kiln reads ${CHECKPOINT_VERSION})`);
  if (!Number.isSafeInteger(state.step) || state.step < 0) fail(`bad step ${String(state.step)}`);
  const read = (file: string): Record<string, Tensor> => {
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(path.join(dir, file));
    } catch (e) {
      return fail(`${file} cannot be read (${(e as Error).message})`);
    }
    if (sha256(bytes) !== state.sha256?.[file]) fail(`${file} does not match its SHA-256 in state.json (the file is corrupt or was replaced)`);
    return parseSafetensors(bytes).tensors as Record<string, Tensor>;
  };
  const model = read('model.safetensors');
  let optimizerTensors: Record<string, Tensor>;
  try {
    optimizerTensors = read('optimizer.safetensors');
  } catch (e) {
    Object.values(model).forEach((t) => t.dispose());
    throw e;
  }
  return { dir, state, model, optimizerTensors };
}
