// TransformerLM against PyTorch 1.13 (fixtures from test/fixtures/gen_transformer.py:
// the same weights and batch, PyTorch's loss, logits and parameter gradients),
// a finite-difference check of the whole model on a tiny config, a training
// smoke test with plain SGD, and a 200-step leak test.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { expectClose } from './helpers';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/transformer_${name}.safetensors`, import.meta.url));

/** Relative comparison scaled by the largest magnitude of the reference (gradients span decades). */
function expectRel(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, what: string): void {
  let scale = 0;
  for (let i = 0; i < want.length; ++i) scale = Math.max(scale, Math.abs(want[i]));
  expectClose(got, want, rtol, rtol * scale * 1e-2, what);
}

describe('TransformerLM vs PyTorch 1.13', () => {
  for (const name of ['prenorm', 'periln_gqa_tied']) {
    it(`${name}: loss, logits and every parameter gradient within 1e-4 relative`, () => {
      const { tensors, metadata } = kiln.io.loadSafetensorsSync(fixture(name));
      const cfg = JSON.parse(metadata.config) as kiln.nn.TransformerConfig;
      const model = new kiln.nn.TransformerLM(cfg);
      try {
        const sd: Record<string, kiln.Tensor> = {};
        for (const [k, v] of Object.entries(tensors)) if (k.startsWith('param.')) sd[k.slice(6)] = v;
        model.loadStateDict(sd);
        kiln.tidy(() => {
          const out = model.forward(tensors.tokens as kiln.Tensor<'int32'>, { targets: tensors.targets as kiln.Tensor<'int32'> });
          expectRel([out.loss!.item()], [tensors.loss.item()], 1e-5, 'loss');
          expectRel(out.logits.dataSync(), tensors.logits.dataSync() as Float32Array, 1e-4, 'logits');
          out.loss!.backward();
        });
        for (const [pname, p] of model.namedParameters()) {
          const want = tensors[`grad.${pname}`];
          expect(want, `fixture has grad.${pname}`).toBeDefined();
          expect(p.grad, `${pname} has a gradient`).not.toBeNull();
          expectRel(p.grad!.dataSync(), want.dataSync() as Float32Array, 1e-4, `grad ${pname}`);
        }
      } finally {
        model.dispose();
        Object.values(tensors).forEach((t) => t.dispose());
      }
    });
  }
});

describe('TransformerLM vs finite differences', () => {
  // Central differences of the float32 loss (taken in float64) at sampled entries
  // of every parameter; h = 1e-2 keeps the float32 rounding noise (~1e-5 in the
  // quotient) well under the tolerance while the O(h^2) truncation stays small.
  for (const periLN of [false, true]) {
    it(`tiny ${periLN ? 'Peri-LN, grouped-query, tied' : 'pre-norm'} model: backward matches (L(p+h) - L(p-h)) / 2h`, () => {
      const model = new kiln.nn.TransformerLM({ vocabSize: 11, dim: 8, nLayers: 2, nHeads: 2, nKvHeads: periLN ? 1 : 2, hiddenDim: 16, periLN, tiedEmbeddings: periLN, initStd: 0.3, seed: 5 });
      const tokens = kiln.tensor([[1, 4, 7, 2, 9], [3, 3, 10, 0, 5]], undefined, { dtype: 'int32' });
      const targets = kiln.tensor([[4, 7, 2, 9, 1], [3, 10, 0, 5, 6]], undefined, { dtype: 'int32' });
      const lossAt = (): number => kiln.noGrad(() => kiln.tidy(() => model.forward(tokens, { targets }).loss!.item()));
      try {
        kiln.tidy(() => model.forward(tokens, { targets }).loss!.backward());
        let checked = 0;
        for (const [name, p] of model.namedParameters()) {
          const grad = p.grad!.dataSync();
          const values = Float32Array.from(p.dataSync() as Float32Array);
          for (let k = 0; k < 3; ++k) {
            const i = (k * 7919 + name.length * 131) % values.length;
            const h = 1e-2;
            const probe = (delta: number): number => {
              const v = Float32Array.from(values);
              v[i] += delta;
              kiln.noGrad(() => kiln.tidy(() => p.copy_(kiln.tensor(v, p.shape))));
              return lossAt();
            };
            const fd = (probe(h) - probe(-h)) / (2 * h);
            kiln.noGrad(() => kiln.tidy(() => p.copy_(kiln.tensor(values, p.shape))));
            expect(Math.abs(grad[i] - fd), `${name}[${i}]: backward ${grad[i]} vs finite difference ${fd}`).toBeLessThan(2e-3 + 2e-2 * Math.abs(fd));
            checked++;
          }
        }
        expect(checked).toBeGreaterThan(30);
      } finally {
        model.dispose();
        tokens.dispose();
        targets.dispose();
      }
    });
  }
});

describe('TransformerLM structure', () => {
  it('has Llama parameter names and counts, tied embeddings and Peri-LN norms', () => {
    const cfg = { vocabSize: 11, dim: 8, nLayers: 2, nHeads: 2, nKvHeads: 1, hiddenDim: 12 };
    const m = new kiln.nn.TransformerLM(cfg);
    const names = m.namedParameters().map(([n]) => n);
    expect(names).toContain('embed.weight');
    expect(names).toContain('blocks.1.attn.wk.weight');
    expect(names).toContain('blocks.0.mlp.w2.weight');
    expect(names).toContain('lmHead.weight');
    expect(names).not.toContain('blocks.0.attnOutNorm.weight');
    const wk = m.namedParameters().find(([n]) => n === 'blocks.0.attn.wk.weight')![1];
    expect(wk.shape).toEqual([4, 8]); // one kv head of dim 4
    expect(m.numParameters()).toBe(11 * 8 * 2 + 2 * (8 + 64 + 32 + 32 + 64 + 8 + 3 * 96) + 8);
    m.dispose();
    const tied = new kiln.nn.TransformerLM({ ...cfg, tiedEmbeddings: true, periLN: true });
    const tn = tied.namedParameters().map(([n]) => n);
    expect(tn).not.toContain('lmHead.weight');
    expect(tn).toContain('blocks.0.attnOutNorm.weight');
    expect(tn).toContain('blocks.1.mlpOutNorm.weight');
    tied.dispose();
  });
  it('is deterministic for a seed; layer plans run a subset of blocks', () => {
    const cfg = { vocabSize: 11, dim: 8, nLayers: 3, nHeads: 2, seed: 5 };
    const a = new kiln.nn.TransformerLM(cfg);
    const b = new kiln.nn.TransformerLM(cfg);
    const tokens = kiln.tensor([[1, 2, 3, 4]], undefined, { dtype: 'int32' });
    kiln.tidy(() => {
      expect(Array.from(a.forward(tokens).logits.dataSync())).toEqual(Array.from(b.forward(tokens).logits.dataSync()));
      const full = a.forward(tokens).logits.dataSync();
      const skip = a.forward(tokens, { layers: [0, 2] }).logits.dataSync();
      expect(Array.from(skip)).not.toEqual(Array.from(full));
      expect(() => a.forward(tokens, { layers: [3] })).toThrow(kiln.ValueError);
    });
    [a, b, tokens].forEach((t) => t.dispose());
  });
});

describe('training', () => {
  it('plain SGD on a repeated text drives the loss down by 3x in 60 steps', () => {
    const text = 'the quick brown fox jumps over the lazy dog. '.repeat(4);
    const bytes = Array.from(text, (c) => c.charCodeAt(0) % 64);
    const seq = 32;
    const model = new kiln.nn.TransformerLM({ vocabSize: 64, dim: 32, nLayers: 2, nHeads: 4, hiddenDim: 64, seed: 1 });
    const params = model.parameters();
    const batch = (start: number) => {
      const x: number[][] = [];
      const y: number[][] = [];
      for (let b = 0; b < 4; ++b) {
        const o = (start + b * 7) % (bytes.length - seq - 1);
        x.push(bytes.slice(o, o + seq));
        y.push(bytes.slice(o + 1, o + seq + 1));
      }
      return [kiln.tensor(x, undefined, { dtype: 'int32' }), kiln.tensor(y, undefined, { dtype: 'int32' })] as const;
    };
    const losses: number[] = [];
    for (let step = 0; step < 60; ++step) {
      kiln.tidy(() => {
        const [x, y] = batch(step * 3);
        const { loss } = model.forward(x, { targets: y });
        loss!.backward();
        losses.push(loss!.item());
      });
      // plain SGD, written here on purpose (the optimizers are their own module)
      kiln.noGrad(() =>
        kiln.tidy(() => {
          for (const p of params) {
            p.copy_(kiln.sub(p, kiln.mul(p.grad!, 0.2)));
            p.grad = null;
          }
        }),
      );
    }
    const first = losses[0]!;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(Math.abs(first - Math.log(64))).toBeLessThan(0.2); // near-uniform logits at init
    expect(last).toBeLessThan(first / 3);
    model.dispose();
  });
  it('200 steps leave memory() exactly where it was after the first', () => {
    const model = new kiln.nn.TransformerLM({ vocabSize: 32, dim: 16, nLayers: 2, nHeads: 2, hiddenDim: 32, seed: 3 });
    const x = kiln.tensor(Array.from({ length: 2 * 16 }, (_, i) => (i * 7) % 32), [2, 16], { dtype: 'int32' });
    const step = () => {
      kiln.tidy(() => {
        const { loss } = model.forward(x, { targets: x });
        loss!.backward();
      });
      kiln.noGrad(() =>
        kiln.tidy(() => {
          for (const p of model.parameters()) p.copy_(kiln.sub(p, kiln.mul(p.grad!, 0.01)));
        }),
      );
    };
    step();
    const after = kiln.memory();
    for (let i = 0; i < 200; ++i) step();
    expect(kiln.memory()).toEqual(after);
    model.dispose();
    x.dispose();
  });
});
