// Byte-level BPE (Sennrich et al. 2016, over UTF-8 bytes as in GPT-2): text is
// pre-split into words (letters, digits, other symbols, each with its leading
// space; whitespace runs), and merges of the most frequent adjacent pair are
// learned inside words. Id 256 + r is the result of merge r.
import { ValueError } from '../errors';
import { checkIds, utf8Decode, utf8Encode, type Tokenizer, type TokenizerJSON } from './tokenizer';

/** GPT-2-style pre-tokenization (without its English contraction rules). */
const WORDS = / ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface BPETrainOptions {
  /** Final vocabulary size, >= 256 (256 bytes + merges). */
  vocabSize: number;
  /** Stop when the best pair occurs fewer times (default 2). */
  minFrequency?: number;
}

const pairKey = (a: number, b: number): number => a * 0x100000 + b;

export class BPETokenizer implements Tokenizer {
  readonly kind = 'bpe';
  readonly merges: readonly (readonly [number, number])[];
  private readonly rank = new Map<number, number>();
  private readonly pieces: Uint8Array[] = [];
  private readonly cache = new Map<string, number[]>();

  constructor(merges: readonly (readonly [number, number])[]) {
    for (let i = 0; i < 256; ++i) this.pieces.push(Uint8Array.of(i));
    merges.forEach(([a, b], r) => {
      const id = 256 + r;
      if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0 || a >= id || b >= id) {
        throw new ValueError(`kiln: BPETokenizer: merge ${r} = [${String(a)}, ${String(b)}] must join two earlier ids (< ${id})`);
      }
      const key = pairKey(a, b);
      if (this.rank.has(key)) throw new ValueError(`kiln: BPETokenizer: merge ${r} = [${a}, ${b}] repeats merge ${this.rank.get(key)}`);
      this.rank.set(key, r);
      const pa = this.pieces[a];
      const pb = this.pieces[b];
      const joined = new Uint8Array(pa.length + pb.length);
      joined.set(pa);
      joined.set(pb, pa.length);
      this.pieces.push(joined);
    });
    this.merges = merges.map(([a, b]) => [a, b] as const);
  }

  get vocabSize(): number {
    return 256 + this.merges.length;
  }

  /** Learns merges on `text` until vocabSize or no pair reaches minFrequency. */
  static train(text: string, opts: BPETrainOptions): BPETokenizer {
    if (typeof text !== 'string') throw new ValueError(`kiln: BPETokenizer.train: expected a string, got ${typeof text}`);
    const vocabSize = opts?.vocabSize;
    if (!Number.isInteger(vocabSize) || vocabSize < 256) throw new ValueError(`kiln: BPETokenizer.train: vocabSize must be an integer >= 256, got ${String(vocabSize)}`);
    const minFrequency = opts.minFrequency ?? 2;
    if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new ValueError(`kiln: BPETokenizer.train: minFrequency must be an integer >= 1, got ${String(minFrequency)}`);

    // Unique words with their counts, as byte-id arrays.
    const counts = new Map<string, number>();
    for (const m of text.matchAll(WORDS)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    const words: number[][] = [];
    const freq: number[] = [];
    for (const [w, c] of counts) {
      words.push(Array.from(utf8Encode(w)));
      freq.push(c);
    }
    // Pair counts and, per pair, the words that contain it (updated incrementally).
    const pairCount = new Map<number, number>();
    const where = new Map<number, Set<number>>();
    const addWord = (wi: number, sign: 1 | -1): void => {
      const w = words[wi];
      for (let i = 0; i + 1 < w.length; ++i) {
        const k = pairKey(w[i], w[i + 1]);
        pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[wi]);
        if (sign > 0) {
          let s = where.get(k);
          if (!s) where.set(k, (s = new Set()));
          s.add(wi);
        }
      }
    };
    words.forEach((_, wi) => addWord(wi, 1));

    const merges: [number, number][] = [];
    while (256 + merges.length < vocabSize) {
      // The most frequent pair; ties go to the smallest (a, b), so training is deterministic.
      let best = -1;
      let bestCount = 0;
      for (const [k, c] of pairCount) {
        if (c > bestCount || (c === bestCount && c > 0 && k < best)) {
          best = k;
          bestCount = c;
        }
      }
      if (best < 0 || bestCount < minFrequency) break;
      const a = Math.floor(best / 0x100000);
      const b = best % 0x100000;
      const id = 256 + merges.length;
      merges.push([a, b]);
      for (const wi of where.get(best) ?? []) {
        addWord(wi, -1);
        words[wi] = mergePair(words[wi], a, b, id);
        addWord(wi, 1);
      }
      where.delete(best);
      pairCount.delete(best);
      for (const [k, c] of pairCount) if (c === 0) pairCount.delete(k);
    }
    return new BPETokenizer(merges);
  }

  encode(text: string): Int32Array {
    if (typeof text !== 'string') throw new ValueError(`kiln: BPETokenizer.encode: expected a string, got ${typeof text}`);
    const out: number[] = [];
    for (const m of text.matchAll(WORDS)) {
      let ids = this.cache.get(m[0]);
      if (!ids) {
        ids = this.encodeWord(Array.from(utf8Encode(m[0])));
        if (this.cache.size < 100_000) this.cache.set(m[0], ids);
      }
      for (const id of ids) out.push(id);
    }
    return Int32Array.from(out);
  }

  /** Applies merges in rank order (the lowest-ranked adjacent pair first), as training did. */
  private encodeWord(ids: number[]): number[] {
    for (;;) {
      let bestRank = Infinity;
      let bestAt = -1;
      for (let i = 0; i + 1 < ids.length; ++i) {
        const r = this.rank.get(pairKey(ids[i], ids[i + 1]));
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          bestAt = i;
        }
      }
      if (bestAt < 0) return ids;
      const [a, b] = this.merges[bestRank];
      ids = mergePair(ids, a, b, 256 + bestRank);
    }
  }

  decode(ids: ArrayLike<number>): string {
    checkIds('BPETokenizer.decode', ids, this.vocabSize);
    let n = 0;
    for (let i = 0; i < ids.length; ++i) n += this.pieces[ids[i]].length;
    const bytes = new Uint8Array(n);
    let at = 0;
    for (let i = 0; i < ids.length; ++i) {
      bytes.set(this.pieces[ids[i]], at);
      at += this.pieces[ids[i]].length;
    }
    return utf8Decode(bytes);
  }

  /** The bytes id stands for. */
  bytesOf(id: number): Uint8Array {
    checkIds('BPETokenizer.bytesOf', [id], this.vocabSize);
    return this.pieces[id].slice();
  }

  toJSON(): TokenizerJSON {
    return { type: 'bpe', version: 1, merges: this.merges.map(([a, b]) => [a, b]) };
  }
}

/** ids with every adjacent (a, b) replaced by id, left to right. */
function mergePair(ids: number[], a: number, b: number, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; ++i) {
    if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
      out.push(id);
      ++i;
    } else {
      out.push(ids[i]);
    }
  }
  return out;
}
