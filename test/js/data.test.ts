// kiln.data: the Brown corpus as plain text, the byte and BPE tokenizers (BPE
// training against a naive reference written here), datasets and the batcher
// (epoch coverage, seeded order, exact resume).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';

const { data } = kiln;

describe('Brown corpus', () => {
  it('detokenizes tagged sentences by hand-checked rules', () => {
    expect(data.detokenizeSentence("\tThe/at jury/nn said/vbd ,/, ``/`` it's/pps+bez fine/jj ''/'' (/( mostly/rb )/) ./.")).toBe('The jury said, "it\'s fine" (mostly).');
    expect(data.detokenizeSentence("``/`` Only/rb a/at handful/nn ''/'' ,/, he/pps said/vbd ./.")).toBe('"Only a handful", he said.');
    expect(data.detokenizeTagged('\n\n\tA/at b/nn ./.\n\n\n\tC/np ./.\n')).toBe('A b.\nC.');
  });
  it('has 500 documents split 450 / 50 by a fixed rule, tags stripped', () => {
    const all = data.brownDocuments();
    const train = data.brownDocuments({ split: 'train' });
    const val = data.brownDocuments({ split: 'validation' });
    expect(all.length).toBe(500);
    expect(train.length).toBe(450);
    expect(val.length).toBe(50);
    const trainIds = new Set(train.map((d) => d.id));
    expect(val.every((d) => !trainIds.has(d.id))).toBe(true);
    expect(new Set(val.map((d) => d.category)).size).toBeGreaterThan(10); // every genre is in validation
    const text = data.brownText({ split: 'validation' });
    expect(text.length).toBeGreaterThan(400_000);
    expect(text).not.toMatch(/\/(at|nn|vbd|in) /); // no "word/tag" left
    expect(text.startsWith(all[9].text.slice(0, 100))).toBe(true);
    expect(data.brownDocuments({ categories: ['humor'] }).every((d) => d.category === 'humor')).toBe(true);
    expect(() => data.brownDocuments({ categories: ['poetry'] })).toThrow(kiln.ValueError);
    expect(() => data.brownDocuments({ split: 'test' as 'train' })).toThrow(/split must be/);
  });
});

/** BPE training, the slow obvious way: recount every pair of every word occurrence for each merge. */
function naiveBpeMerges(text: string, vocabSize: number): [number, number][] {
  const words = (text.match(/ ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu) ?? []).map((w) => Array.from(new TextEncoder().encode(w)));
  const merges: [number, number][] = [];
  while (256 + merges.length < vocabSize) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; ++i) counts.set(`${w[i]},${w[i + 1]}`, (counts.get(`${w[i]},${w[i + 1]}`) ?? 0) + 1);
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best || bestCount < 2) break;
    const id = 256 + merges.length;
    merges.push(best);
    for (let wi = 0; wi < words.length; ++wi) {
      const w = words[wi];
      const out: number[] = [];
      for (let i = 0; i < w.length; ++i) {
        if (i + 1 < w.length && w[i] === best[0] && w[i + 1] === best[1]) {
          out.push(id);
          ++i;
        } else out.push(w[i]);
      }
      words[wi] = out;
    }
  }
  return merges;
}

describe('tokenizers', () => {
  const sample = 'The cat sat on the mat. The cat ate the rat; 12 cats, 34 rats!\nÜber naïve café — 猫.  Done.';
  it('bytes round-trip any text and reject ids outside 0..255', () => {
    const tok = new data.ByteTokenizer();
    const ids = tok.encode(sample);
    expect(Array.from(ids)).toEqual(Array.from(Buffer.from(sample, 'utf8')));
    expect(tok.decode(ids)).toBe(sample);
    expect(() => tok.decode([256])).toThrow(kiln.ValueError);
  });
  it('BPE learns the merges of the naive reference, in order, and round-trips', () => {
    const text = data.brownText({ categories: ['humor'] }).slice(0, 60_000);
    const bpe = data.BPETokenizer.train(text, { vocabSize: 400 });
    expect(bpe.vocabSize).toBe(400);
    expect(bpe.merges.map(([a, b]) => [a, b])).toEqual(naiveBpeMerges(text, 400));
    for (const t of [text.slice(0, 5000), sample, '', '   ', 'zzzz qqq 🙂']) expect(bpe.decode(bpe.encode(t))).toBe(t);
    expect(bpe.encode(text).length).toBeLessThan(new TextEncoder().encode(text).length * 0.6); // it compresses
    expect(Buffer.from(bpe.bytesOf(256)).toString()).toMatch(/^.{2}$/su);
  });
  it('BPE encoding applies merges in rank order (a hand-checkable case)', () => {
    // merges: "a"+"b" -> 256, "b"+"c" -> 257, 256+"c" -> 258. "abc": (a,b) ranks first -> [256, c] -> 258.
    const a = 97, b = 98, c = 99;
    const bpe = new data.BPETokenizer([[a, b], [b, c], [256, c]]);
    expect(Array.from(bpe.encode('abc'))).toEqual([258]);
    expect(Array.from(bpe.encode('bcab'))).toEqual([257, 256]);
    expect(() => new data.BPETokenizer([[a, 300]])).toThrow(/earlier ids/);
  });
  it('save / load as JSON, with clear errors for bad files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tok-'));
    try {
      const bpe = data.BPETokenizer.train(sample.repeat(3), { vocabSize: 300 });
      const file = path.join(dir, 'tok.json');
      data.saveTokenizer(file, bpe);
      const back = data.loadTokenizer(file);
      expect(back.kind).toBe('bpe');
      expect(Array.from(back.encode(sample))).toEqual(Array.from(bpe.encode(sample)));
      expect(data.tokenizerFromJSON(new data.ByteTokenizer().toJSON()).vocabSize).toBe(256);
      fs.writeFileSync(file, '{"type":"bpe","version":1,"merges":[[1]]}');
      expect(() => data.loadTokenizer(file)).toThrow(/pairs/);
      fs.writeFileSync(file, '{not json');
      expect(() => data.loadTokenizer(file)).toThrow(/cannot read/);
      expect(() => data.tokenizerFromJSON({ type: 'wordpiece', version: 1 })).toThrow(/unknown tokenizer type/);
      expect(() => data.BPETokenizer.train('abc', { vocabSize: 10 })).toThrow(/>= 256/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('batcher', () => {
  const tokens = Int32Array.from({ length: 1001 }, (_, i) => i % 251);
  it('each epoch visits every window once; y is x shifted by one', () => {
    const bt = new data.TokenBatcher(tokens, { batchSize: 4, ctx: 10, seed: 3 });
    expect(bt.windows).toBe(100);
    const starts: number[] = [];
    for (let i = 0; i < 25; ++i) {
      const { x, y } = bt.nextArrays();
      for (let r = 0; r < 4; ++r) {
        const row = Array.from(x.subarray(r * 10, r * 10 + 10));
        // locate the window by content: tokens are i % 251, windows start at multiples of 10
        const w = Array.from({ length: 100 }, (_, k) => k).find((k) => row.every((v, j) => v === tokens[k * 10 + j]))!;
        starts.push(w);
        expect(Array.from(y.subarray(r * 10, r * 10 + 10))).toEqual(Array.from(tokens.subarray(w * 10 + 1, w * 10 + 11)));
      }
    }
    expect(new Set(starts).size).toBe(100);
    expect(starts).not.toEqual(Array.from({ length: 100 }, (_, k) => k)); // shuffled
    expect(bt.epoch).toBe(1);
  });
  it('is deterministic for a seed, differs across seeds and epochs, and resumes exactly', () => {
    const run = (seed: number, n: number) => {
      const bt = new data.TokenBatcher(tokens, { batchSize: 3, ctx: 7, seed });
      return Array.from({ length: n }, () => Array.from(bt.nextArrays().x));
    };
    expect(run(5, 40)).toEqual(run(5, 40));
    expect(run(5, 10)).not.toEqual(run(6, 10));
    const a = new data.TokenBatcher(tokens, { batchSize: 3, ctx: 7, seed: 5 });
    for (let i = 0; i < 17; ++i) a.nextArrays();
    const saved = JSON.parse(JSON.stringify(a.state())) as kiln.data.BatcherState;
    const rest = Array.from({ length: 60 }, () => Array.from(a.nextArrays().y));
    const b = new data.TokenBatcher(tokens, { batchSize: 3, ctx: 7, seed: 5 });
    b.restore(saved);
    expect(Array.from({ length: 60 }, () => Array.from(b.nextArrays().y))).toEqual(rest);
    expect(() => new data.TokenBatcher(tokens, { batchSize: 3, ctx: 7, seed: 6 }).restore(saved)).toThrow(/seed 5/);
  });
  it('gives int32 tensors; in-order mode; errors', () => {
    const bt = new data.TokenBatcher(tokens, { batchSize: 2, ctx: 5, shuffle: false });
    kiln.tidy(() => {
      const { x, y } = bt.next();
      expect(x.dtype).toBe('int32');
      expect(x.shape).toEqual([2, 5]);
      expect(x.toArray()).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]);
      expect(y.toArray()).toEqual([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]);
    });
    expect(() => new data.TokenBatcher([1, 2], { batchSize: 1, ctx: 4 })).toThrow(/fewer than one window/);
    expect(() => new data.TokenBatcher(tokens, { batchSize: 0, ctx: 4 })).toThrow(/batchSize/);
  });
});

describe('datasets', () => {
  it('text split by fraction, token arrays checked against the vocabulary', () => {
    const ds = data.textDataset('abcdefghij', { validationFraction: 0.3 });
    expect(new TextDecoder().decode(Uint8Array.from(ds.train))).toBe('abcdefg');
    expect(new TextDecoder().decode(Uint8Array.from(ds.validation))).toBe('hij');
    expect(ds.vocabSize).toBe(256);
    expect(() => data.tokenDataset([1, 2, 300], [1])).toThrow(/outside the vocabulary/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-ds-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.txt'), 'hello world, hello kiln');
      const f = data.textFileDataset(path.join(dir, 'a.txt'), { validationFraction: 0.5 });
      expect(f.train.length + f.validation.length).toBe(23);
      expect(() => data.textFileDataset(path.join(dir, 'missing.txt'))).toThrow(/cannot read/);
      expect(f.batcher('validation', { batchSize: 1, ctx: 4 }).shuffle).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
