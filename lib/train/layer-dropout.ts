// LayerSkip-style layer dropout (Elhoushi et al. 2024, "LayerSkip", eq. 1):
// layer l of L is dropped with p_l = pMax * (e^{l ln 2 / (L-1)} - 1), a rate
// that grows with depth from 0 (first layer) to pMax (last). One draw per
// optimizer step for the whole batch, from (seed, step) only, so a resumed run
// draws the same plans.
import { mixSeed } from '../prng';

/** The drop probability of layer l of nLayers. */
export function layerDropRate(l: number, nLayers: number, pMax: number): number {
  if (nLayers <= 1) return 0;
  return pMax * (Math.exp((l * Math.LN2) / (nLayers - 1)) - 1);
}

/** The layers kept at `step` (in order; never empty: the first layer is never dropped). */
export function layerDropoutPlan(nLayers: number, pMax: number, seed: number, step: number): number[] {
  const plan: number[] = [];
  for (let l = 0; l < nLayers; ++l) if (mixSeed(seed, step, l) / 2 ** 32 >= layerDropRate(l, nLayers, pMax)) plan.push(l);
  return plan;
}
