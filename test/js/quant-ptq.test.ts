// kiln.quant.quantizeModel (issue 8 item 5, shared/specs/quant.md): post-training
// W4A8 quantization of a TransformerLM trained here on the Brown 'humor'
// category. Smoothing folded into the norms / previous linears leaves the float
// function unchanged; the quantized model's validation perplexity stays within
// a stated bound of the float model's; it generates; it frees what it allocates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { maxRelativeError } from './helpers';

const CFG = { vocabSize: 256, dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 256, seed: 11 };
const EVAL = { batchSize: 8, ctx: 32, batches: 8 } as const;
const ds = kiln.data.brownDataset({ categories: ['humor'] });
let model: kiln.nn.TransformerLM;
const calibration: kiln.Tensor<'int32'>[] = [];

beforeAll(async () => {
  model = new kiln.nn.TransformerLM(CFG);
  const optimizer = new kiln.optim.AdamW(model.namedParameters(), { lr: 1e-2, weightDecay: 0.1, excludeFromWeightDecay: [/Norm/] });
  await kiln.train.fit({ model, optimizer, data: ds, steps: 120, batchSize: 8, ctx: 32, evalEvery: 0, progress: false, schedule: kiln.sched.wsd({ peak: 1e-2, warmup: 10, stable: 80, decay: 30 }) });
  optimizer.dispose();
  // calibration: training windows (never the validation split the perplexity is measured on)
  const b = ds.batcher('train', { batchSize: 4, ctx: 32, shuffle: false });
  for (let i = 0; i < 4; ++i) {
    const { x, y } = b.next();
    y.dispose();
    calibration.push(kiln.keep(x));
  }
}, 60_000);

afterAll(() => {
  model.dispose();
  calibration.forEach((t) => t.dispose());
});

const logits = (m: { forward(t: kiln.Tensor<'int32'>): { logits: kiln.Tensor } }, tokens: kiln.Tensor<'int32'>): Float32Array =>
  kiln.noGrad(() => kiln.tidy(() => Float32Array.from(m.forward(tokens).logits.cast('float32').dataSync() as Float32Array)));

describe('quantizeModel', () => {
  it('smoothing folded into the norms and previous linears leaves the float function unchanged', () => {
    const smoothed = kiln.quant.quantizeModel(model, calibration, { quantizeWeights: false });
    // the factors are not trivial: the folding really changed the weights
    const spread = Math.max(...smoothed.layers.map((l) => l.lambdaMax / l.lambdaMin));
    expect(spread).toBeGreaterThan(4);
    const g0 = model.blocks.at(0).attnNorm.weight.dataSync() as Float32Array;
    const g1 = smoothed.blocks.at(0).attnNorm.weight.dataSync() as Float32Array;
    expect(Math.max(...g0.map((v, j) => Math.abs(v - g1[j])))).toBeGreaterThan(0.1);
    const tokens = calibration[1];
    const want = logits(model, tokens);
    const got = logits(smoothed, tokens);
    expect(maxRelativeError(got, want)).toBeLessThan(1e-4);
    smoothed.dispose();
    // the RoPE-aware pre-scale folded into W_q / W_k (pair- and GQA-consistent) leaves q . k unchanged
    const rotated = kiln.quant.quantizeModel(model, calibration, { quantizeWeights: false, ropeScaling: true });
    const info = rotated.blocks.items.map((b) => b.attn.quant!);
    expect(Math.max(...info.map((a) => a.muMax / a.muMin))).toBeGreaterThan(1.5);
    expect(info.every((a) => a.kExponents === null && !a.fp8Queries)).toBe(true);
    const got2 = logits(rotated, tokens);
    expect(maxRelativeError(got2, want)).toBeLessThan(1e-4);
    rotated.dispose();
    // the float model itself was not touched
    expect(Array.from(model.blocks.at(0).attnNorm.weight.dataSync() as Float32Array)).toEqual(Array.from(g0));
  });

  it('W4A8 perplexity stays within 2% of the float model and logits within 3% RMS (reported)', () => {
    const float = kiln.train.evaluate(model, ds, EVAL);
    const runs: Record<string, kiln.quant.QuantizeModelOptions> = {
      'int4 + smoothing': {},
      'int4, no smoothing': { smooth: false },
      'int4 + smoothing, int4 head': { quantizeHead: true },
      'int4 + smoothing, groups of 32': { groupSize: 32 },
      'W4A8 + FP8 queries + INT4 KV': { attention: true },
      'W4A8 + FP8 queries + INT4 KV, no RoPE-aware scaling': { attention: true, ropeScaling: false },
    };
    const ppl: Record<string, number> = { float32: float.perplexity };
    const err: Record<string, number> = {};
    const vb = ds.batcher('validation', { batchSize: 2, ctx: 32, shuffle: false }).next();
    const want = logits(model, vb.x);
    for (const [name, opts] of Object.entries(runs)) {
      const q = kiln.quant.quantizeModel(model, calibration, opts);
      // relative RMS error of the logits
      const got = logits(q, vb.x);
      let se = 0;
      let ss = 0;
      for (let i = 0; i < want.length; ++i) {
        se += (got[i] - want[i]) ** 2;
        ss += want[i] ** 2;
      }
      err[name] = Math.sqrt(se / ss);
      for (const l of q.layers) if (l.name !== 'lmHead' || opts.quantizeHead) expect(l.exponent, l.name).toBeGreaterThanOrEqual(0);
      expect(q.blocks.at(0).attn.wq).toBeInstanceOf(kiln.quant.QuantizedLinear);
      ppl[name] = kiln.train.evaluate(q, ds, EVAL).perplexity;
      q.dispose();
    }
    vb.x.dispose();
    vb.y.dispose();
    console.log(`[quant-ptq] validation perplexity (${EVAL.batches * EVAL.batchSize * EVAL.ctx} tokens): ${Object.entries(ppl).map(([k, v]) => `${k} ${v.toFixed(3)} (${(100 * (v / float.perplexity - 1)).toFixed(2)}%${k in err ? `, logit rel. RMS err ${err[k].toFixed(4)}` : ''})`).join('; ')}`);
    // the model learned something (unigram-level perplexity of bytes is ~25-30; init is ~256)
    expect(float.perplexity).toBeLessThan(40);
    // Measured on this setup: |delta ppl| <= 0.12%, logit error 0.4-0.6% (1.5% with the
    // INT4 head, 0.8-1.0% with FP8 queries + INT4 KV). The bounds leave room for
    // kernel summation order and platform differences. The perplexity bound alone
    // is loose (a fold in the wrong direction for wv/w3 moved perplexity by only
    // 0.8%); the logit bound is what catches it (6.8% RMS error with that bug).
    for (const [name, v] of Object.entries(ppl)) expect(Math.abs(v / float.perplexity - 1), name).toBeLessThan(0.02);
    for (const [name, e] of Object.entries(err)) {
      expect(e, name).toBeLessThan(name.includes('head') ? 0.05 : name.includes('KV') ? 0.1 : 0.03);
      expect(e, name).toBeGreaterThan(1e-4); // quantization really happened
    }
    // the attention-side rounding is really applied on top of the weights' (measured 0.0077 / 0.0103 vs 0.0038)
    for (const name of ['W4A8 + FP8 queries + INT4 KV', 'W4A8 + FP8 queries + INT4 KV, no RoPE-aware scaling']) expect(err[name], name).toBeGreaterThan(1.2 * err['int4 + smoothing']);
  });

  it('the quantized model (INT4 head, FP8 queries, INT4 KV) generates (cached == uncached greedy) and frees everything on dispose', () => {
    const before = kiln.memory();
    const q = kiln.quant.quantizeModel(model, calibration, { quantizeHead: true, attention: true });
    const prompt = Array.from(new TextEncoder().encode('The man said '));
    const a = kiln.nn.generate(q, prompt, { maxNewTokens: 16, temperature: 0 });
    const b = kiln.nn.generate(q, prompt, { maxNewTokens: 16, temperature: 0, cache: false });
    expect(a.length).toBe(16);
    expect(a).toEqual(b);
    const sampled = kiln.nn.generate(q, prompt, { maxNewTokens: 8, temperature: 0.8, seed: 1 });
    expect(sampled.every((id) => id >= 0 && id < CFG.vocabSize)).toBe(true);
    // a layer plan and the KV cache work as in TransformerLM
    expect(kiln.nn.generate(q, prompt, { maxNewTokens: 4, temperature: 0, layers: [0, 1, 1] }).length).toBe(4);
    q.dispose();
    expect(kiln.memory()).toEqual(before);
  });

  it('the INT4 KV cache: step-by-step logits equal the full forward (which rounds K/V the same way) within float rounding, in 13% of the memory of a float cache', () => {
    const q = kiln.quant.quantizeModel(model, calibration, { attention: true });
    const qf = kiln.quant.quantizeModel(model, calibration, { attention: true, kvCache: 'float' });
    const tokens = kiln.tensor([Array.from(new TextEncoder().encode('Now is the time for all good men to com'))], undefined, { dtype: 'int32' }) as kiln.Tensor<'int32'>;
    const n = tokens.shape[1];
    const full = logits(q, tokens);
    const vocab = CFG.vocabSize;
    for (const m of [qf, q]) {
      const cache = new kiln.nn.KVCache({ slots: CFG.nLayers, capacity: n });
      const before = kiln.memory().bytes.cpu;
      const steps: Float32Array[] = [];
      const prompt = tokens.slice([0, 0], [1, 20]) as kiln.Tensor<'int32'>;
      steps.push(logits({ forward: (t) => m.forward(t, { cache }) }, prompt));
      prompt.dispose();
      for (let i = 20; i < n; ++i) {
        const t = tokens.slice([0, i], [1, i + 1]) as kiln.Tensor<'int32'>;
        steps.push(logits({ forward: (x) => m.forward(x, { cache }) }, t));
        t.dispose();
      }
      const cacheBytes = kiln.memory().bytes.cpu - before;
      const got = new Float32Array(n * vocab);
      let at = 0;
      for (const st of steps) {
        got.set(st, at);
        at += st.length;
      }
      // per position: the largest logit error relative to the logits' scale
      let maxAbs = 0;
      for (const v of full) maxAbs = Math.max(maxAbs, Math.abs(v));
      const errs = Array.from({ length: n }, (_, p) => {
        let e = 0;
        for (let j = 0; j < vocab; ++j) e = Math.max(e, Math.abs(got[p * vocab + j] - full[p * vocab + j]));
        return e / maxAbs;
      });
      if (m === qf) {
        // the float cache holds the same rounded values and attention runs the same kernel: bit for bit
        expect(Math.max(...errs)).toBe(0);
      } else {
        // the INT4 kernel sums in another order (suite int4kv: within 1e-5 of float64); a last-bit
        // difference can flip one FP8 / INT4 rounding in the next layer (measured: 1 position of 39 at
        // 7e-4, the others below 3e-7), so: nearly all positions within 1e-5, none beyond 1e-2
        expect(errs.filter((e) => e > 1e-5).length).toBeLessThanOrEqual(3);
        expect(Math.max(...errs)).toBeLessThan(1e-2);
      }
      // 2 layers x (K + V) x [1, 2 kv heads, n, 32]: float32 4 bytes per value, INT4 1/2 byte + 1 scale per 32
      const values = CFG.nLayers * 2 * CFG.nKvHeads * n * (CFG.dim / CFG.nHeads);
      expect(cacheBytes, m === q ? 'int4 cache' : 'float cache').toBe(m === q ? values / 2 + values / 32 + CFG.nLayers * 2 * CFG.nKvHeads : values * 4);
      cache.dispose();
    }
    for (const t of [q, qf, tokens]) t.dispose();
  });

  it('refuses bad input with typed errors and leaks nothing', () => {
    const before = kiln.memory().tensors;
    const bad: [unknown, unknown, unknown, RegExp][] = [
      [{}, calibration, {}, /TransformerLM/],
      [model, 'x', {}, /calibration must be an array/],
      [model, [], {}, /at least one calibration batch/],
      [model, [kiln.zeros([2, 3])], {}, /int32/],
      [model, [kiln.tensor([[1, 300]], undefined, { dtype: 'int32' })], {}, /outside the vocabulary/],
      [model, calibration, { alpha: 2 }, /alpha/],
      [model, calibration, { smooth: 'yes' }, /smooth must be a boolean/],
      [model, calibration, 5, /options/],
      [model, calibration, { groupSize: 48 }, /group/i],
      [model, calibration, { attention: true, kvGroupSize: 5 }, /kvGroupSize/],
      [model, calibration, { attention: 1 }, /attention must be a boolean/],
      [model, calibration, { attention: true, kvCache: 'int8' }, /kvCache must be 'int4' or 'float'/],
    ];
    for (const [m, c, o, re] of bad) {
      expect(() => kiln.quant.quantizeModel(m as kiln.nn.TransformerLM, c as kiln.Tensor<'int32'>[], o as kiln.quant.QuantizeModelOptions)).toThrow(re);
      try {
        kiln.quant.quantizeModel(m as kiln.nn.TransformerLM, c as kiln.Tensor<'int32'>[], o as kiln.quant.QuantizeModelOptions);
      } catch (e) {
        expect(e).toBeInstanceOf(kiln.KilnError);
      }
      if (Array.isArray(c) && c !== calibration) c.forEach((t) => (t as kiln.Tensor).dispose());
    }
    expect(kiln.memory().tensors).toBe(before);
    // no calibration is fine without smoothing
    const q = kiln.quant.quantizeModel(model, [], { smooth: false });
    q.dispose();
    expect(kiln.memory().tensors).toBe(before);
  });
});
