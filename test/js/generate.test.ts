// Generation: cached decode equals full recompute under the same layer plan
// (identity, skip, repeat: shared/specs/depth.md "Correctness"), and sampling
// follows softmax(logits / T) restricted by top-k / top-p.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { expectClose } from './helpers';

const model = new kiln.nn.TransformerLM({ vocabSize: 64, dim: 32, nLayers: 3, nHeads: 4, nKvHeads: 2, hiddenDim: 48, seed: 2, initStd: 0.2 });

describe('KV cache', () => {
  for (const plan of [[0, 1, 2], [0, 2], [0, 1, 1, 2]]) {
    it(`plan [${plan}]: prefill + one token at a time gives the logits of the full sequence`, () => {
      const seq = [5, 17, 3, 42, 8, 8, 61, 0, 33, 12];
      const cache = new kiln.nn.KVCache({ slots: plan.length, capacity: seq.length });
      kiln.tidy(() => {
        const full = model.forward(kiln.tensor([seq], undefined, { dtype: 'int32' }), { layers: plan }).logits.dataSync() as Float32Array;
        const got: number[] = [];
        const pre = model.forward(kiln.tensor([seq.slice(0, 4)], undefined, { dtype: 'int32' }), { layers: plan, cache });
        got.push(...(pre.logits.dataSync() as Float32Array));
        for (let i = 4; i < seq.length; ++i) got.push(...(model.forward(kiln.tensor([[seq[i]]], undefined, { dtype: 'int32' }), { layers: plan, cache }).logits.dataSync() as Float32Array));
        expect(cache.length).toBe(seq.length);
        expectClose(got, Array.from(full), 1e-5, 1e-6, `plan [${plan}]`);
      });
      expect(() => kiln.tidy(() => model.forward(kiln.tensor([[1]], undefined, { dtype: 'int32' }), { layers: plan, cache }))).toThrow(/capacity/);
      cache.dispose();
    });
  }
  it('greedy generation is the same with and without the cache, and frees its cache', () => {
    const before = kiln.memory().tensors;
    const prompt = [1, 2, 3];
    for (const layers of [undefined, [0, 1, 1, 2]]) {
      const a = kiln.nn.generate(model, prompt, { maxNewTokens: 12, temperature: 0, layers });
      const b = kiln.nn.generate(model, prompt, { maxNewTokens: 12, temperature: 0, layers, cache: false });
      expect(a).toEqual(b);
      expect(a.length).toBe(12);
    }
    expect(kiln.memory().tensors).toBe(before);
    const stopped = kiln.nn.generate(model, prompt, { maxNewTokens: 12, temperature: 0 });
    expect(kiln.nn.generate(model, prompt, { maxNewTokens: 12, temperature: 0, stop: [stopped[2]] }).length).toBeLessThanOrEqual(3);
    expect(() => kiln.nn.generate(model, [64], { maxNewTokens: 1 })).toThrow(/outside the vocabulary/);
    expect(() => new kiln.nn.KVCache({ slots: 2, capacity: 4 }).write(2, kiln.zeros([1, 1, 1, 2]), kiln.zeros([1, 1, 1, 2]))).toThrow(/slot 2/);
  });
});

describe('sampling', () => {
  const logits = [2.0, 1.0, 0.5, 0.0, -1.0, 3.0];
  it('temperature 0, topK 1 and a tiny topP all pick the argmax', () => {
    const u = () => 0.999;
    expect(kiln.nn.sampleToken(logits, { temperature: 0 }, u)).toBe(5);
    expect(kiln.nn.sampleToken(logits, { topK: 1 }, u)).toBe(5);
    expect(kiln.nn.sampleToken(logits, { topP: 1e-6 }, u)).toBe(5);
    expect(() => kiln.nn.sampleToken(logits, { topP: 0 }, u)).toThrow(/topP/);
  });
  it('draws follow softmax(logits / T) over the top-k / top-p set', () => {
    const T = 0.7;
    const n = 20000;
    let state = 12345;
    const u = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (const opts of [{ temperature: T }, { temperature: T, topK: 3 }, { temperature: T, topP: 0.8 }]) {
      // reference: exact probabilities in float64
      const order = logits.map((_, i) => i).sort((a, b) => logits[b] - logits[a]);
      const w = order.map((i) => Math.exp(logits[i] / T));
      const tot = w.reduce((a, b) => a + b);
      let keep = opts.topK ?? logits.length;
      if (opts.topP !== undefined) {
        let acc = 0;
        keep = order.findIndex((_, j) => (acc += w[j] / tot) >= opts.topP!) + 1;
      }
      const mass = w.slice(0, keep).reduce((a, b) => a + b);
      const want = new Array<number>(logits.length).fill(0);
      order.slice(0, keep).forEach((id, j) => (want[id] = w[j] / mass));
      const counts = new Array<number>(logits.length).fill(0);
      for (let i = 0; i < n; ++i) counts[kiln.nn.sampleToken(logits, opts, u)] += 1;
      counts.forEach((c, id) => expect(Math.abs(c / n - want[id]), `${JSON.stringify(opts)} id ${id}`).toBeLessThan(4 * Math.sqrt((want[id] * (1 - want[id])) / n) + 1e-9));
    }
  });
});
