// A training run described as JSON (kiln train --config cfg.json): the model,
// data and tokenizer, optimizer, schedule and loop settings. Each piece is
// built from it here; the run folder keeps a copy so eval and generate can
// rebuild the same model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ValueError } from '../errors';
import { devices } from '../runtime';
import type { Device } from '../device';
import { BPETokenizer } from '../data/bpe';
import { brownText } from '../data/brown';
import { brownDataset, textDataset, type TokenDataset } from '../data/dataset';
import { loadTokenizer, saveTokenizer } from '../data/tokenizer-io';
import { ByteTokenizer, type Tokenizer } from '../data/tokenizer';
import { TransformerLM, type TransformerConfig } from '../nn/transformer';
import { AdamW } from '../optim/adamw';
import { LAMB } from '../optim/lamb';
import { LARS } from '../optim/lars';
import { SGD } from '../optim/sgd';
import type { Schedule } from '../sched/spec';
import type { FitOptions } from '../train/fit';
import type { TrainableOptimizer } from '../train/types';

export interface RunConfig {
  /** TransformerLM config without vocabSize (taken from the tokenizer). */
  model: Omit<TransformerConfig, 'vocabSize' | 'device'> & { vocabSize?: number };
  data: {
    /** 'brown' (the Brown corpus) or a list of UTF-8 text files. */
    source: 'brown' | { files: string[]; validationFraction?: number };
    /** 'byte', or a BPE vocabulary size to train on the training text. */
    tokenizer: 'byte' | { bpe: number };
  };
  optimizer: { name: 'adamw' | 'lamb' | 'lars' | 'sgd' } & Record<string, unknown>;
  schedule?: Schedule | null;
  /** fit()'s loop settings, plus the checkpoint cadence (the run folder holds the checkpoints). */
  train: Pick<FitOptions, 'batchSize' | 'ctx' | 'accumulate' | 'clipGradNorm' | 'evalEvery' | 'evalBatches' | 'seed' | 'layerDropout'> & {
    steps: number;
    checkpointEvery?: number;
    keepCheckpoints?: number;
  };
  /** 'auto' (CUDA when available), 'cpu' or 'cuda' (default 'auto'). */
  device?: 'auto' | Device;
}

export function readConfig(file: string): RunConfig {
  let cfg: RunConfig;
  try {
    cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as RunConfig;
  } catch (e) {
    throw new ValueError(`kiln: cannot read the config ${file}: ${(e as Error).message}`);
  }
  for (const k of ['model', 'data', 'optimizer', 'train'] as const) {
    if (cfg[k] === null || typeof cfg[k] !== 'object') throw new ValueError(`kiln: config ${file}: '${k}' must be an object`);
  }
  return cfg;
}

export function resolveDevice(cfg: RunConfig): Device {
  const d = cfg.device ?? 'auto';
  if (d === 'auto') return devices().cuda.available ? 'cuda' : 'cpu';
  return d;
}

/** The run's tokenizer: loaded from the run folder, or made (and saved there). */
export function runTokenizer(cfg: RunConfig, runDir: string, log: (s: string) => void): Tokenizer {
  const file = path.join(runDir, 'tokenizer.json');
  if (fs.existsSync(file)) return loadTokenizer(file);
  let tok: Tokenizer;
  const t = cfg.data.tokenizer;
  if (t === 'byte') tok = new ByteTokenizer();
  else if (t && typeof t === 'object' && Number.isInteger(t.bpe)) {
    const t0 = Date.now();
    const text = cfg.data.source === 'brown' ? brownText({ split: 'train' }) : cfg.data.source.files.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    tok = BPETokenizer.train(text, { vocabSize: t.bpe });
    log(`trained a BPE tokenizer: ${tok.vocabSize} tokens in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
  } else throw new ValueError(`kiln: config: data.tokenizer must be 'byte' or { "bpe": vocabSize }`);
  fs.mkdirSync(runDir, { recursive: true });
  saveTokenizer(file, tok);
  return tok;
}

export function runDataset(cfg: RunConfig, tokenizer: Tokenizer): TokenDataset {
  const s = cfg.data.source;
  if (s === 'brown') return brownDataset({ tokenizer });
  if (s && typeof s === 'object' && Array.isArray(s.files)) {
    return textDataset(
      s.files.map((f) => fs.readFileSync(f, 'utf8')),
      { tokenizer, validationFraction: s.validationFraction },
    );
  }
  throw new ValueError(`kiln: config: data.source must be 'brown' or { "files": [...] }`);
}

export function runModel(cfg: RunConfig, tokenizer: Tokenizer, device: Device): TransformerLM {
  return new TransformerLM({ ...cfg.model, vocabSize: tokenizer.vocabSize, device } as TransformerConfig);
}

/** The optimizer of the config over the model's named parameters (string patterns become RegExps). */
export function runOptimizer(cfg: RunConfig, model: TransformerLM): TrainableOptimizer {
  const { name, ...opts } = cfg.optimizer;
  const params = model.namedParameters();
  const o = opts as never;
  switch (name) {
    case 'adamw':
      return new AdamW(params, o) as unknown as TrainableOptimizer;
    case 'lamb':
      return new LAMB(params, o) as unknown as TrainableOptimizer;
    case 'lars':
      return new LARS(params, o) as unknown as TrainableOptimizer;
    case 'sgd':
      return new SGD(params, o) as unknown as TrainableOptimizer;
    default:
      throw new ValueError(`kiln: config: optimizer.name must be 'adamw', 'lamb', 'lars' or 'sgd', got ${String(name)}`);
  }
}
