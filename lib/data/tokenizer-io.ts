// Tokenizers to and from JSON files.
import * as fs from 'node:fs';
import { ValueError } from '../errors';
import { BPETokenizer } from './bpe';
import { ByteTokenizer, type Tokenizer, type TokenizerJSON } from './tokenizer';

/** The tokenizer a toJSON() object describes. */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  const j = json as Partial<TokenizerJSON> | null;
  if (j === null || typeof j !== 'object') throw new ValueError(`kiln: tokenizerFromJSON: expected an object, got ${j === null ? 'null' : typeof j}`);
  if (j.version !== 1) throw new ValueError(`kiln: tokenizerFromJSON: unsupported version ${String(j.version)} (this kiln reads version 1)`);
  if (j.type === 'byte') return new ByteTokenizer();
  if (j.type === 'bpe') {
    const merges = (j as { merges?: unknown }).merges;
    if (!Array.isArray(merges) || !merges.every((m) => Array.isArray(m) && m.length === 2)) throw new ValueError('kiln: tokenizerFromJSON: bpe merges must be an array of [a, b] pairs');
    return new BPETokenizer(merges as [number, number][]);
  }
  throw new ValueError(`kiln: tokenizerFromJSON: unknown tokenizer type ${String(j.type)} (expected 'byte' or 'bpe')`);
}

export function saveTokenizer(path: string, tokenizer: Tokenizer): void {
  fs.writeFileSync(path, JSON.stringify(tokenizer.toJSON()));
}

export function loadTokenizer(path: string): Tokenizer {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ValueError(`kiln: loadTokenizer: cannot read ${path}: ${(e as Error).message}`);
  }
  return tokenizerFromJSON(json);
}
