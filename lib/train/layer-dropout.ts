// LayerSkip-style layer dropout (Elhoushi et al. 2024, "LayerSkip", eq. 1):
// layer l of L is dropped with p_l = pMax * (e^{l ln 2 / (L-1)} - 1), a rate
// that grows with depth from 0 (first layer) to pMax (last). One draw per
// optimizer step for the whole batch, from (seed, step) only, so a resumed run
// draws the same plans.

/** The drop probability of layer l of nLayers. */
export function layerDropRate(l: number, nLayers: number, pMax: number): number {
  if (nLayers <= 1) return 0;
  return pMax * (Math.exp((l * Math.LN2) / (nLayers - 1)) - 1);
}

/** A uniform [0, 1) value from (seed, step, l) (integer hash; splitmix-style finalizer). */
function uniform(seed: number, step: number, l: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(step >>> 0, 0x85ebca6b) ^ Math.imul(l + 1, 0xc2b2ae35) ^ Math.floor(step / 2 ** 32)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h / 2 ** 32;
}

/** The layers kept at `step` (in order; never empty: the first layer is never dropped). */
export function layerDropoutPlan(nLayers: number, pMax: number, seed: number, step: number): number[] {
  const plan: number[] = [];
  for (let l = 0; l < nLayers; ++l) if (uniform(seed, step, l) >= layerDropRate(l, nLayers, pMax)) plan.push(l);
  return plan;
}
