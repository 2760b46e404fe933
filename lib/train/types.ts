// What the trainer needs of a model and an optimizer (kiln.nn.TransformerLM and
// kiln.optim.* fit; so does anything shaped like them).
import type { Module } from '../nn/module';
import type { StateDict } from '../optim/base';
import type { Tensor } from '../tensor';

export interface LanguageModel extends Module {
  forward(tokens: Tensor<'int32'>, opts?: { targets?: Tensor<'int32'>; layers?: readonly number[] }): { logits: Tensor; loss?: Tensor };
  readonly config?: Readonly<Record<string, unknown>> & { nLayers?: number };
}

/** The optimizer's state in PyTorch's layout (kiln.optim's StateDict). */
export type OptimizerStateDict = StateDict;

export interface TrainableOptimizer {
  paramGroups: { lr: number; params: Tensor[] }[];
  step(opts?: Record<string, unknown>): { foundInf: boolean; gradNorm: number | null };
  zeroGrad(): void;
  stateDict(): OptimizerStateDict;
  loadStateDict(sd: OptimizerStateDict): void;
}
