// kiln.optim.AdamW against torch.optim.AdamW / Adam (PyTorch 1.13, CPU,
// single-tensor path) over the option grid of ../shared/specs/optim.md:
// amsgrad, maximize, weight decay, lr changed mid-run, sizes 0, 1, 7, 257,
// 4099, 65537, 40 tensors in two groups, Adam's L2 decay (kiln's decay: 'l2').
// The fixtures (test/fixtures/adamw_torch113.{json,bin}) hold PyTorch's final
// parameters and state after 10 steps; the inputs come from the hash both
// sides implement. Tolerance: atol 1e-5 + rtol 1e-5 (optim.md "AdamW").
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { expectClose } from './helpers';
import { hashValues, vals } from './optim-data';

interface FixtureCase {
  name: string;
  torch: 'AdamW' | 'Adam';
  sizes: number[];
  defaults: { lr: number; betas: [number, number]; eps: number; weight_decay: number; amsgrad: boolean; maximize: boolean };
  groups: ({ tensors: number[] } & Partial<{ lr: number; betas: [number, number]; eps: number; weight_decay: number }>)[];
  lr_change: { step: number; lr: number[] } | null;
  seed: number;
  grad_scale: number;
  outputs: Record<string, number[]>;
}

const FIXTURES = path.resolve(__dirname, '../fixtures');
const meta = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'adamw_torch113.json'), 'utf8')) as { steps: number; cases: FixtureCase[] };
const raw = fs.readFileSync(path.join(FIXTURES, 'adamw_torch113.bin'));
const blob = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));

const TOL = 1e-5;

/** Runs the case through kiln.optim.AdamW; returns the parameters and the optimizer (for its state dict). */
function runKiln(c: FixtureCase): { params: kiln.Tensor[]; opt: kiln.optim.AdamW } {
  const params = c.sizes.map((n, t) => kiln.tensor(hashValues(c.seed * 1009 + t, n, 1), [n]));
  const d = c.defaults;
  const groups = c.groups.map((g) => ({
    params: g.tensors.map((t) => params[t]),
    ...(g.lr !== undefined ? { lr: g.lr } : {}),
    ...(g.betas !== undefined ? { betas: g.betas } : {}),
    ...(g.eps !== undefined ? { eps: g.eps } : {}),
    ...(g.weight_decay !== undefined ? { weightDecay: g.weight_decay } : {}),
  }));
  const opt = new kiln.optim.AdamW(groups, {
    lr: d.lr,
    betas: d.betas,
    eps: d.eps,
    weightDecay: d.weight_decay,
    amsgrad: d.amsgrad,
    maximize: d.maximize,
    decay: c.torch === 'Adam' ? 'l2' : 'decoupled',
  });
  for (let k = 1; k <= meta.steps; ++k) {
    if (c.lr_change !== null && k === c.lr_change.step) c.lr_change.lr.forEach((lr, gi) => (opt.paramGroups[gi].lr = lr));
    params.forEach((p, t) => (p.grad = kiln.tensor(hashValues(c.seed * 7919 + 100 * k + t, c.sizes[t], c.grad_scale), [c.sizes[t]])));
    expect(opt.step()).toEqual({ foundInf: false, gradNorm: null });
  }
  return { params, opt };
}

describe('AdamW vs PyTorch 1.13 (fixtures)', () => {
  it('the fixtures cover the grid of optim.md', () => {
    const names = meta.cases.map((c) => c.name);
    expect(meta.steps).toBe(10);
    expect(names.filter((n) => n.startsWith('grid')).length).toBe(16);
    for (const size of [0, 1, 7, 4099, 65537]) expect(meta.cases.some((c) => c.sizes.includes(size)), `size ${size}`).toBe(true);
    expect(meta.cases.some((c) => c.sizes.length >= 40 && c.groups.length === 2)).toBe(true);
    expect(meta.cases.some((c) => c.torch === 'Adam' && c.defaults.amsgrad)).toBe(true);
  });

  for (const c of meta.cases) {
    it(c.name, () => {
      const { params, opt } = runKiln(c);
      const sd = opt.stateDict();
      const keys = Object.keys(c.outputs);
      // state indices follow the order of the groups' parameter lists
      const order = c.groups.flatMap((g) => g.tensors);
      for (const key of keys) {
        c.outputs[key].forEach((offset, t) => {
          const n = c.sizes[t];
          const want = blob.subarray(offset, offset + n);
          let got: Float64Array;
          if (key === 'p') {
            got = vals(params[t]);
          } else {
            const st = sd.state[order.indexOf(t)];
            const tensor = st?.[key as 'exp_avg' | 'exp_avg_sq' | 'max_exp_avg_sq'];
            expect(tensor, `${c.name}: state ${t}.${key}`).toBeDefined();
            got = vals(tensor as kiln.Tensor);
            expect(st.step).toBe(meta.steps);
          }
          expectClose(got, want, TOL, TOL, `${c.name}: tensor ${t} [${n}] ${key}`);
        });
      }
      // the reference really moved: the largest tensor's p after 10 steps differs from the start by more than the tolerance
      const t = c.sizes.indexOf(Math.max(...c.sizes));
      const start = hashValues(c.seed * 1009 + t, c.sizes[t], 1);
      const moved = blob.subarray(c.outputs.p[t], c.outputs.p[t] + c.sizes[t]).some((v, i) => Math.abs(v - start[i]) > 10 * TOL);
      expect(moved, `${c.name}: the fixture's parameters moved`).toBe(true);
      for (const s of Object.values(sd.state)) for (const v of Object.values(s)) if (v instanceof kiln.Tensor) v.dispose();
      opt.dispose();
      params.forEach((p) => p.dispose());
    });
  }
});
