// Small counter-free JS generators for host-side choices (batch order, layer
// dropout, sampling): deterministic from integer seeds, no state beyond a
// 32-bit word. The tensor RNG (rand/randn) is Philox in the native code.

/** Mixes up to three integers (each below 2^53) into a 32-bit seed. */
export function mixSeed(a: number, b = 0, c = 0): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul(b >>> 0, 0x85ebca6b) ^ Math.imul((c >>> 0) + 1, 0xc2b2ae35) ^ Math.floor(a / 2 ** 32) ^ Math.floor(b / 2 ** 32)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** A stream of 32-bit unsigned integers (the mulberry32 step) from a 32-bit seed. */
export function uint32Stream(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A stream of uniform [0, 1) doubles (53 random bits) from a 32-bit seed. */
export function uniformStream(seed: number): () => number {
  const next = uint32Stream(seed);
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}
