// The global random stream for rand/randn calls without a seed: a seed and a
// Philox counter offset that advances by the blocks each call consumes, so a
// sequence of calls is reproducible after manualSeed().
import { ValueError } from './errors';

/** Default seed, so that a fresh process is reproducible too. */
const DEFAULT_SEED = 0x5eed;

let seed = DEFAULT_SEED;
let offset = 0;

export interface RngState {
  seed: number;
  offset: number;
}

export function checkSeed(op: string, s: unknown): number {
  if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) {
    throw new ValueError(`kiln: ${op}: seed must be a non-negative safe integer, got ${String(s)}`);
  }
  return s;
}

/** Resets the global stream: later unseeded rand/randn calls repeat exactly. */
export function manualSeed(s: number): void {
  seed = checkSeed('manualSeed', s);
  offset = 0;
}

export function getRngState(): RngState {
  return { seed, offset };
}

export function setRngState(state: RngState): void {
  seed = checkSeed('setRngState', state?.seed);
  if (typeof state.offset !== 'number' || !Number.isSafeInteger(state.offset) || state.offset < 0) {
    throw new ValueError(`kiln: setRngState: offset must be a non-negative safe integer, got ${String(state.offset)}`);
  }
  offset = state.offset;
}

/** Philox blocks a call over n elements uses (4 values per block; see philox.h). */
export function blocksFor(n: number): number {
  return Math.ceil(n / 4);
}

/** [seed, offset] for the next unseeded call of n elements; advances the stream. */
export function takeGlobal(n: number): [number, number] {
  const taken: [number, number] = [seed, offset];
  offset += blocksFor(n);
  return taken;
}
