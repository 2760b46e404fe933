// Token datasets: a tokenizer plus train and validation token arrays, from the
// Brown corpus, local text files, or token arrays given directly.
import * as fs from 'node:fs';
import { ValueError } from '../errors';
import { TokenBatcher, type BatcherOptions } from './batcher';
import { brownText, type BrownOptions } from './brown';
import { ByteTokenizer, type Tokenizer } from './tokenizer';

export class TokenDataset {
  constructor(
    readonly tokenizer: Tokenizer,
    readonly train: Int32Array,
    readonly validation: Int32Array,
  ) {
    for (const [name, t] of [['train', train], ['validation', validation]] as const) {
      if (!(t instanceof Int32Array)) throw new ValueError(`kiln: TokenDataset: ${name} must be an Int32Array`);
      for (let i = 0; i < t.length; ++i) {
        if (t[i] < 0 || t[i] >= tokenizer.vocabSize) throw new ValueError(`kiln: TokenDataset: ${name} token ${t[i]} at ${i} is outside the vocabulary [0, ${tokenizer.vocabSize})`);
      }
    }
  }

  get vocabSize(): number {
    return this.tokenizer.vocabSize;
  }

  /** A batcher over one split (validation defaults to in-order windows). */
  batcher(split: 'train' | 'validation', opts: BatcherOptions): TokenBatcher {
    if (split !== 'train' && split !== 'validation') throw new ValueError(`kiln: TokenDataset.batcher: split must be 'train' or 'validation', got ${String(split)}`);
    return new TokenBatcher(this[split], { shuffle: split === 'train', ...opts });
  }
}

export interface TextDatasetOptions {
  /** Default: bytes (vocab 256). */
  tokenizer?: Tokenizer;
}

/** The Brown corpus: train = 9 of 10 documents, validation = every 10th (see brown.ts). */
export function brownDataset(opts: TextDatasetOptions & Pick<BrownOptions, 'categories'> = {}): TokenDataset {
  const tokenizer = opts.tokenizer ?? new ByteTokenizer();
  return new TokenDataset(tokenizer, tokenizer.encode(brownText({ split: 'train', categories: opts.categories })), tokenizer.encode(brownText({ split: 'validation', categories: opts.categories })));
}

/** Texts split at a fraction of their length: the last `validationFraction` of each is validation (default 0.1). */
export function textDataset(texts: string | readonly string[], opts: TextDatasetOptions & { validationFraction?: number } = {}): TokenDataset {
  const tokenizer = opts.tokenizer ?? new ByteTokenizer();
  const frac = opts.validationFraction ?? 0.1;
  if (!(frac >= 0 && frac < 1)) throw new ValueError(`kiln: textDataset: validationFraction must be in [0, 1), got ${String(frac)}`);
  const train: string[] = [];
  const validation: string[] = [];
  for (const t of typeof texts === 'string' ? [texts] : texts) {
    if (typeof t !== 'string') throw new ValueError(`kiln: textDataset: texts must be strings, got ${typeof t}`);
    const cut = Math.floor(t.length * (1 - frac));
    train.push(t.slice(0, cut));
    validation.push(t.slice(cut));
  }
  return new TokenDataset(tokenizer, tokenizer.encode(train.join('\n')), tokenizer.encode(validation.join('\n')));
}

/** textDataset over local UTF-8 files. */
export function textFileDataset(paths: string | readonly string[], opts: TextDatasetOptions & { validationFraction?: number } = {}): TokenDataset {
  const list = typeof paths === 'string' ? [paths] : paths;
  return textDataset(
    list.map((p) => {
      try {
        return fs.readFileSync(p, 'utf8');
      } catch (e) {
        throw new ValueError(`kiln: textFileDataset: cannot read ${p}: ${(e as Error).message}`);
      }
    }),
    opts,
  );
}

/** A dataset over token arrays given directly (ids must be below the tokenizer's vocabulary). */
export function tokenDataset(train: Int32Array | readonly number[], validation: Int32Array | readonly number[], tokenizer: Tokenizer = new ByteTokenizer()): TokenDataset {
  const arr = (t: Int32Array | readonly number[]) => (t instanceof Int32Array ? t : Int32Array.from(t));
  return new TokenDataset(tokenizer, arr(train), arr(validation));
}
