// Validation loss and perplexity of a language model on a dataset split.
import { noGrad } from '../autograd/mode';
import { ValueError } from '../errors';
import { tidy } from '../lifetime';
import type { TokenDataset } from '../data/dataset';
import type { LanguageModel } from './types';

export interface EvalOptions {
  batchSize: number;
  ctx: number;
  /** Batches to average (default: the whole split, in order). */
  batches?: number;
  split?: 'train' | 'validation';
  /** Layer plan to evaluate (default: every layer). */
  layers?: readonly number[];
}

export interface EvalResult {
  /** Mean cross entropy per token (nats). */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  tokens: number;
}

/** Mean loss over the first `batches` in-order windows of the split (eval mode, no graph). */
export function evaluate(model: LanguageModel, data: TokenDataset, opts: EvalOptions): EvalResult {
  const split = opts.split ?? 'validation';
  // batches on the model's device
  const batcher = data.batcher(split, { batchSize: opts.batchSize, ctx: opts.ctx, shuffle: false, device: model.parameters()[0]?.device });
  const n = Math.min(opts.batches ?? batcher.batchesPerEpoch, batcher.batchesPerEpoch);
  if (!(n >= 1)) throw new ValueError(`kiln: evaluate: batches must be >= 1, got ${String(opts.batches)}`);
  const wasTraining = model.training;
  model.eval();
  let sum = 0;
  try {
    noGrad(() => {
      for (let i = 0; i < n; ++i) {
        tidy(() => {
          const { x, y } = batcher.next();
          sum += model.forward(x, { targets: y, layers: opts.layers }).loss!.item();
        });
      }
    });
  } finally {
    if (wasTraining) model.train();
  }
  const loss = sum / n;
  return { loss, perplexity: Math.exp(loss), tokens: n * opts.batchSize * opts.ctx };
}
