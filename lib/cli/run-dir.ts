// A run folder: config.json, tokenizer.json, checkpoints (step-*/, latest.json),
// metrics.jsonl and the SVG curves. Loading one rebuilds the trained model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ValueError } from '../errors';
import { loadTokenizer } from '../data/tokenizer-io';
import type { Tokenizer } from '../data/tokenizer';
import { parseSafetensors } from '../io/safetensors';
import type { TransformerLM } from '../nn/transformer';
import type { Tensor } from '../tensor';
import { resolveCheckpoint } from '../train/checkpoint';
import { readConfig, resolveDevice, runModel, type RunConfig } from './config';

export interface LoadedRun {
  config: RunConfig;
  tokenizer: Tokenizer;
  model: TransformerLM;
  checkpoint: string;
}

/** The model of a run folder with the weights of its latest checkpoint (or of `checkpoint`). */
export function loadRun(runDir: string, checkpoint?: string): LoadedRun {
  const cfgFile = path.join(runDir, 'config.json');
  if (!fs.existsSync(cfgFile)) throw new ValueError(`kiln: ${runDir} is not a run folder (no config.json); train one with 'kiln train --config cfg.json --out ${runDir}'`);
  const config = readConfig(cfgFile);
  const tokenizer = loadTokenizer(path.join(runDir, 'tokenizer.json'));
  const dir = resolveCheckpoint(checkpoint ?? runDir);
  const file = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(file)) throw new ValueError(`kiln: no checkpoint in ${runDir} (expected latest.json or step-*/model.safetensors)`);
  const model = runModel(config, tokenizer, resolveDevice(config));
  const { tensors } = parseSafetensors(fs.readFileSync(file));
  try {
    model.loadStateDict(tensors as Record<string, Tensor>);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
  }
  return { config, tokenizer, model, checkpoint: dir };
}
