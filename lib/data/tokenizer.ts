// Tokenizers: text <-> int32 ids. ByteTokenizer is UTF-8 bytes (vocab 256);
// BPETokenizer (./bpe) learns byte-pair merges on top of it. Both serialize to
// JSON (toJSON / tokenizerFromJSON, saveTokenizer / loadTokenizer).
import { ValueError } from '../errors';

export interface Tokenizer {
  readonly kind: 'byte' | 'bpe';
  /** Ids are 0 .. vocabSize-1. */
  readonly vocabSize: number;
  encode(text: string): Int32Array;
  /** Invalid UTF-8 (e.g. a cut multi-byte character) decodes to U+FFFD. */
  decode(ids: ArrayLike<number>): string;
  toJSON(): TokenizerJSON;
}

export type TokenizerJSON = { type: 'byte'; version: 1 } | { type: 'bpe'; version: 1; merges: [number, number][] };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

export const utf8Encode = (text: string): Uint8Array => encoder.encode(text);
export const utf8Decode = (bytes: Uint8Array): string => decoder.decode(bytes);

export function checkIds(op: string, ids: ArrayLike<number>, vocabSize: number): void {
  for (let i = 0; i < ids.length; ++i) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new ValueError(`kiln: ${op}: id ${String(id)} at position ${i} is outside the vocabulary [0, ${vocabSize})`);
  }
}

/** UTF-8 bytes as ids: any text round-trips, vocab 256. */
export class ByteTokenizer implements Tokenizer {
  readonly kind = 'byte';
  readonly vocabSize = 256;
  encode(text: string): Int32Array {
    if (typeof text !== 'string') throw new ValueError(`kiln: ByteTokenizer.encode: expected a string, got ${typeof text}`);
    return Int32Array.from(utf8Encode(text));
  }
  decode(ids: ArrayLike<number>): string {
    checkIds('ByteTokenizer.decode', ids, 256);
    return utf8Decode(Uint8Array.from(ids as ArrayLike<number>));
  }
  toJSON(): TokenizerJSON {
    return { type: 'byte', version: 1 };
  }
}
