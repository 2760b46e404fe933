// Text generation from a TransformerLM: prefill the prompt, then one token at a
// time with a KV cache (indexed by plan slot, so a layer plan works too).
// Sampling: greedy (temperature 0), or softmax(logits / temperature) in float64
// restricted to the top-k tokens and/or the smallest set whose probability
// reaches top-p (Holtzman et al. 2020), drawn from a seeded stream.
import { noGrad } from '../autograd/mode';
import { ValueError } from '../errors';
import { tidy } from '../lifetime';
import { mixSeed, uniformStream } from '../prng';
import { tensor } from '../creation';
import * as views from '../ops/views';
import type { Tensor } from '../tensor';
import { KVCache } from './kv-cache';

/** What generate needs of a model: kiln.nn.TransformerLM, kiln.quant.QuantizedTransformerLM, or anything shaped like them. */
export interface GenerativeLM {
  readonly config: { readonly vocabSize: number };
  readonly blocks: { readonly items: readonly unknown[] };
  readonly embed: { readonly weight: Tensor };
  readonly training: boolean;
  eval(): unknown;
  train(): unknown;
  forward(tokens: Tensor<'int32'>, opts: { layers?: readonly number[]; cache?: KVCache }): { logits: Tensor };
}

export interface SamplingOptions {
  /** 0: greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (default: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (default 1: all). */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Sampling seed (default 0). */
  seed?: number;
  /** Layer plan (default: every layer). */
  layers?: readonly number[];
  /** Stop after generating one of these ids (it is included). */
  stop?: readonly number[];
  /** Use the KV cache (default true); false recomputes the whole sequence per token. */
  cache?: boolean;
  onToken?: (id: number) => void;
}

/** Picks a token id from one row of logits. `uniform` gives [0, 1) doubles. */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, uniform: () => number): number {
  const t = opts.temperature ?? 1;
  if (!(t >= 0)) throw new ValueError(`kiln: sample: temperature must be >= 0, got ${String(t)}`);
  const n = logits.length;
  if (t === 0) {
    let best = 0;
    for (let i = 1; i < n; ++i) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const k = opts.topK ?? n;
  const p = opts.topP ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new ValueError(`kiln: sample: topK must be a positive integer, got ${String(opts.topK)}`);
  if (!(p > 0 && p <= 1)) throw new ValueError(`kiln: sample: topP must be in (0, 1], got ${String(opts.topP)}`);
  // Ids by descending logit (ties: lower id first), then the top-k prefix.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b).slice(0, Math.min(k, n));
  const max = logits[order[0]];
  const w = order.map((i) => Math.exp((logits[i] - max) / t));
  const total = w.reduce((a, b) => a + b, 0);
  // top-p: the shortest prefix whose probability reaches p
  let keep = order.length;
  if (p < 1) {
    let acc = 0;
    for (let j = 0; j < order.length; ++j) {
      acc += w[j] / total;
      if (acc >= p) {
        keep = j + 1;
        break;
      }
    }
  }
  const mass = w.slice(0, keep).reduce((a, b) => a + b, 0);
  let r = uniform() * mass;
  for (let j = 0; j < keep; ++j) {
    r -= w[j];
    if (r < 0) return order[j];
  }
  return order[keep - 1];
}

/** Generates up to maxNewTokens ids after `prompt` (batch 1); returns the new ids. */
export function generate(model: GenerativeLM, prompt: ArrayLike<number>, opts: GenerateOptions): number[] {
  const op = 'generate';
  const max = opts?.maxNewTokens;
  if (!Number.isSafeInteger(max) || max < 0) throw new ValueError(`kiln: ${op}: maxNewTokens must be a non-negative integer, got ${String(max)}`);
  if (prompt.length === 0) throw new ValueError(`kiln: ${op}: the prompt must hold at least one token`);
  const vocab = model.config.vocabSize;
  for (let i = 0; i < prompt.length; ++i) {
    if (!Number.isInteger(prompt[i]) || prompt[i] < 0 || prompt[i] >= vocab) throw new ValueError(`kiln: ${op}: prompt token ${String(prompt[i])} at ${i} is outside the vocabulary [0, ${vocab})`);
  }
  const plan = opts.layers ?? model.blocks.items.map((_, i) => i);
  const useCache = opts.cache ?? true;
  const uniform = uniformStream(mixSeed(opts.seed ?? 0));
  const stop = new Set(opts.stop ?? []);
  const seq = Array.from(prompt);
  const out: number[] = [];
  const cache = useCache ? new KVCache({ slots: plan.length, capacity: prompt.length + max }) : null;
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      let feed = seq.slice();
      for (let i = 0; i < max; ++i) {
        const last = tidy(() => {
          const ids = tensor([cache ? feed : seq], undefined, { dtype: 'int32', device: model.embed.weight.device });
          const { logits } = model.forward(ids, { layers: plan, cache: cache ?? undefined });
          const [, s, v] = logits.shape;
          return Float32Array.from(views.narrow(logits.reshape([s, v]), 0, s - 1, 1).dataSync() as Float32Array);
        });
        const id = sampleToken(last, opts, uniform);
        out.push(id);
        seq.push(id);
        feed = [id];
        opts.onToken?.(id);
        if (stop.has(id)) break;
      }
    });
  } finally {
    cache?.dispose();
    if (wasTraining) model.train();
  }
  return out;
}
