// kiln.optim: state dicts (3 steps, save, load, 3 steps == 6 steps, bit for
// bit), skipped steps (foundInf given or found leaves everything bit-identical),
// float32 master weights for bfloat16 parameters (== the float32 run, cast
// with round-to-nearest-even), parameters without gradients, gradients never
// written, typed errors, and CPU vs CUDA (skipped without a GPU).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { bf16, hashValues, hashValuesBf16, sameBits, vals } from './optim-data';

type AnyOptimizer = kiln.optim.AdamW | kiln.optim.LAMB | kiln.optim.LARS | kiln.optim.SGD;
type Make = (params: [string, kiln.Tensor][]) => AnyOptimizer;

const SIZES = [0, 1, 7, 300, 20000];
const NAMES = ['embed.weight', 'layer.bias', 'layer.norm.weight', 'layer.weight', 'head.weight'];

const MAKERS: [string, Make][] = [
  ['AdamW', (p) => new kiln.optim.AdamW(p, { lr: 1e-2 })],
  ['AdamW amsgrad', (p) => new kiln.optim.AdamW(p, { lr: 1e-2, amsgrad: true, excludeFromWeightDecay: ['bias'] })],
  ['LAMB', (p) => new kiln.optim.LAMB(p, { lr: 1e-2, excludeFromAdaptation: ['norm'] })],
  ['LARS', (p) => new kiln.optim.LARS(p, { lr: 0.1, weightDecay: 1e-3, nesterov: true })],
  ['SGD', (p) => new kiln.optim.SGD(p, { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 })],
];

/** Parameters from the hash; `exact16`: values (and later gradients) exact in bfloat16. */
let exact16 = false;
function makeParams(seed: number, dtype: 'float32' | 'bfloat16' = 'float32', device?: kiln.Device): [string, kiln.Tensor][] {
  const gen = exact16 || dtype === 'bfloat16' ? hashValuesBf16 : hashValues;
  return SIZES.map((n, i) => [NAMES[i], kiln.tensor(gen(seed * 17 + i, n, 1), [n], { dtype, device })]);
}

function gradsFor(params: [string, kiln.Tensor][], step: number, device?: kiln.Device): void {
  params.forEach(([, p], i) => {
    const gen = exact16 || p.dtype === 'bfloat16' ? hashValuesBf16 : hashValues;
    p.grad = kiln.tensor(gen(1000 + step * 31 + i, p.size, i === 4 ? 0.125 : 1), [p.size], { dtype: p.dtype as 'float32', device });
  });
}

function run(opt: AnyOptimizer, params: [string, kiln.Tensor][], from: number, to: number, device?: kiln.Device): void {
  for (let k = from; k <= to; ++k) {
    gradsFor(params, k, device);
    expect(opt.step().foundInf).toBe(false);
  }
}

/** Every state tensor and step, in a comparable form (the dict's tensors are disposed). */
function snapshot(opt: AnyOptimizer, params: [string, kiln.Tensor][]): { state: kiln.optim.StateDict; params: kiln.Tensor[] } {
  return { state: opt.stateDict(), params: params.map(([, p]) => p.clone()) };
}

function disposeSnapshot(s: { state: kiln.optim.StateDict; params: kiln.Tensor[] }): void {
  for (const st of Object.values(s.state.state)) for (const v of Object.values(st)) if (v instanceof kiln.Tensor) v.dispose();
  s.params.forEach((p) => p.dispose());
}

function expectSameSnapshot(a: ReturnType<typeof snapshot>, b: ReturnType<typeof snapshot>, what: string): void {
  a.params.forEach((p, i) => expect(sameBits(p, b.params[i]), `${what}: parameter ${i}`).toBe(true));
  expect(Object.keys(a.state.state)).toEqual(Object.keys(b.state.state));
  for (const [k, st] of Object.entries(a.state.state)) {
    const other = b.state.state[Number(k)];
    expect(Object.keys(st).sort(), `${what}: state ${k} keys`).toEqual(Object.keys(other).sort());
    for (const [key, v] of Object.entries(st)) {
      if (v instanceof kiln.Tensor) expect(sameBits(v, other[key as 'exp_avg'] as kiln.Tensor), `${what}: state ${k}.${key}`).toBe(true);
      else expect(v, `${what}: state ${k}.${key}`).toBe(other[key as 'step']);
    }
  }
  expect(a.state.param_groups).toEqual(b.state.param_groups);
}

function disposeAll(opt: AnyOptimizer, params: [string, kiln.Tensor][]): void {
  opt.dispose();
  params.forEach(([, p]) => p.dispose());
}

describe('state dicts', () => {
  for (const [name, make] of MAKERS) {
    it(`${name}: 3 steps, save, load into a new optimizer, 3 steps == 6 steps`, () => {
      const straight = makeParams(1);
      const o6 = make(straight);
      run(o6, straight, 1, 6);

      const first = makeParams(1);
      const o3 = make(first);
      run(o3, first, 1, 3);
      const saved = o3.stateDict();
      // PyTorch's key names
      const keys = new Set(Object.values(saved.state).flatMap((s) => Object.keys(s)));
      const want = name.startsWith('AdamW') ? ['step', 'exp_avg', 'exp_avg_sq'] : name === 'LAMB' ? ['step', 'exp_avg', 'exp_avg_sq'] : ['momentum_buffer'];
      for (const k of want) expect(keys.has(k), `${name}: state key ${k}`).toBe(true);
      if (name === 'AdamW amsgrad') expect(keys.has('max_exp_avg_sq')).toBe(true);
      expect(saved.param_groups[0].params).toEqual([0, 1, 2, 3, 4]);
      expect(saved.param_groups[0].lr).toBeGreaterThan(0);

      const resumed = first.map(([n, p]): [string, kiln.Tensor] => [n, p.clone()]);
      const o3b = make(resumed);
      o3b.loadStateDict(saved);
      for (const s of Object.values(saved.state)) for (const v of Object.values(s)) if (v instanceof kiln.Tensor) v.dispose(); // loaded as copies
      run(o3b, resumed, 4, 6);

      const a = snapshot(o6, straight);
      const b = snapshot(o3b, resumed);
      expectSameSnapshot(b, a, name);
      disposeSnapshot(a);
      disposeSnapshot(b);
      [o6, o3, o3b].forEach((o) => o.dispose());
      [...straight, ...first, ...resumed].forEach(([, p]) => p.dispose());
    });
  }

  it('loadStateDict checks before it changes anything', () => {
    const params = makeParams(2);
    const opt = new kiln.optim.AdamW(params);
    run(opt, params, 1, 2);
    const sd = opt.stateDict();
    const before = snapshot(opt, params);
    const bad = { ...sd, state: { ...sd.state, 3: { ...sd.state[3], exp_avg: kiln.zeros([299]) } } };
    expect(() => opt.loadStateDict(bad)).toThrow(kiln.ShapeError);
    expect(() => opt.loadStateDict(bad)).toThrow(/exp_avg.*float32\[299\].*float32\[300\]/);
    expect(() => opt.loadStateDict({ ...sd, param_groups: [...sd.param_groups, sd.param_groups[0]] })).toThrow(kiln.ValueError);
    expect(() => opt.loadStateDict({ ...sd, param_groups: [{ ...sd.param_groups[0], lr: -1 }] })).toThrow(kiln.ValueError);
    expect(() => opt.loadStateDict({ ...sd, param_groups: [{ ...sd.param_groups[0], params: [0, 1] }] })).toThrow(kiln.ValueError);
    const after = snapshot(opt, params);
    expectSameSnapshot(after, before, 'after refused loads');
    (bad.state[3].exp_avg as kiln.Tensor).dispose();
    disposeSnapshot(before);
    disposeSnapshot(after);
    disposeSnapshot({ state: sd, params: [] });
    disposeAll(opt, params);
  });
});

describe('skipped steps', () => {
  for (const [name, make] of MAKERS) {
    it(`${name}: foundInf leaves parameters and state bit-identical, and the next step is the step that was skipped`, () => {
      const params = makeParams(3);
      const opt = make(params);
      run(opt, params, 1, 2);
      const before = snapshot(opt, params);
      gradsFor(params, 3);
      expect(opt.step({ foundInf: true })).toEqual({ foundInf: true, gradNorm: null });
      expect(opt.step({ foundInf: kiln.tensor([1]) }).foundInf).toBe(true);
      expect(opt.skippedSteps).toBe(2);
      const after = snapshot(opt, params);
      expectSameSnapshot(after, before, `${name} after foundInf`);
      expect(opt.step({ foundInf: kiln.tensor([0]) }).foundInf).toBe(false);

      const ref = makeParams(3);
      const o2 = make(ref);
      run(o2, ref, 1, 3);
      const a = snapshot(opt, params);
      const b = snapshot(o2, ref);
      expectSameSnapshot(a, b, `${name}: skipped steps do not count`);
      [before, after, a, b].forEach(disposeSnapshot);
      disposeAll(opt, params);
      disposeAll(o2, ref);
    });
  }

  it('checkFinite finds inf / NaN gradients and skips the step; LAMB finds them through its clipping norm', () => {
    for (const make of [(p: [string, kiln.Tensor][]) => new kiln.optim.AdamW(p, { checkFinite: true }), (p: [string, kiln.Tensor][]) => new kiln.optim.LAMB(p)]) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const params = makeParams(4);
        const opt = make(params);
        run(opt, params, 1, 1);
        const before = snapshot(opt, params);
        gradsFor(params, 2);
        const g = hashValues(5, 20000, 1);
        g[12345] = bad;
        params[4][1].grad = kiln.tensor(g, [20000]);
        const r = opt.step();
        expect(r.foundInf, `${bad}`).toBe(true);
        expect(opt.skippedSteps).toBe(1);
        const after = snapshot(opt, params);
        expectSameSnapshot(after, before, `non-finite ${bad}`);
        [before, after].forEach(disposeSnapshot);
        disposeAll(opt, params);
      }
    }
  });

  it('gradScale divides the gradients: step(g * s, gradScale s) == step(g)', () => {
    const a = makeParams(6);
    const b = makeParams(6);
    const oa = new kiln.optim.AdamW(a);
    const ob = new kiln.optim.AdamW(b);
    for (let k = 1; k <= 3; ++k) {
      gradsFor(a, k);
      b.forEach(([, p], i) => (p.grad = kiln.tensor(Float32Array.from(vals(a[i][1].grad as kiln.Tensor), (x) => x * 1024), [p.size])));
      oa.step();
      ob.step({ gradScale: 1024 });
    }
    a.forEach(([, p], i) => expect(sameBits(p, b[i][1]), `p ${i}`).toBe(true));
    disposeAll(oa, a);
    disposeAll(ob, b);
  });
});

describe('parameters and gradients', () => {
  it('parameters without a gradient are skipped (no decay, no state); gradients are never written', () => {
    for (const [name, make] of MAKERS) {
      const params = makeParams(7);
      const opt = make(params);
      gradsFor(params, 1);
      params[3][1].grad = null;
      const p3 = params[3][1].clone();
      const grads = params.map(([, p]) => (p.grad === null ? null : p.grad.clone()));
      opt.step();
      expect(sameBits(params[3][1], p3), `${name}: untouched`).toBe(true);
      expect(opt.stateDict().state[3], `${name}: no state`).toBeUndefined();
      params.forEach(([, p], i) => {
        if (grads[i] !== null) expect(sameBits(p.grad as kiln.Tensor, grads[i] as kiln.Tensor), `${name}: grad ${i}`).toBe(true);
      });
      expect(sameBits(params[4][1], kiln.tensor(hashValues(7 * 17 + 4, 20000, 1), [20000])), `${name}: moved`).toBe(false);
      opt.zeroGrad();
      expect(params.every(([, p]) => p.grad === null)).toBe(true);
      grads.forEach((g) => g?.dispose());
      p3.dispose();
      disposeAll(opt, params);
    }
  });
});

describe('bfloat16 parameters', () => {
  beforeAll(() => {
    exact16 = true; // the float32 runs start from the same values and see the same gradients
  });
  afterAll(() => {
    exact16 = false;
  });
  for (const [name, make] of MAKERS) {
    it(`${name}: float32 master weights follow the float32 run; the parameter is its round-to-nearest-even cast`, () => {
      const ref = makeParams(8, 'float32');
      const half = makeParams(8, 'bfloat16');
      ref.forEach(([, p], i) => expect(vals(p)).toEqual(vals(half[i][1]))); // the same values to start
      const o32 = make(ref);
      const o16 = make(half);
      for (const g of o16.paramGroups) (g as { masterWeights: boolean }).masterWeights = true;
      for (let k = 1; k <= 4; ++k) {
        gradsFor(ref, k);
        gradsFor(half, k);
        o32.step();
        o16.step();
      }
      const sd = o16.stateDict();
      ref.forEach(([, p], i) => {
        const want = vals(p);
        if (p.size > 0) expect(sd.state[i].master_param, `${name}: master ${i}`).toBeDefined();
        if (p.size > 0) expect(sameBits(sd.state[i].master_param as kiln.Tensor, p), `${name}: master ${i} == float32 run`).toBe(true);
        expect(Array.from(vals(half[i][1])), `${name}: bf16 parameter ${i}`).toEqual(Array.from(want, bf16));
      });
      disposeSnapshot({ state: sd, params: [] });
      disposeAll(o32, ref);
      disposeAll(o16, half);
    });
  }

  it('without master weights one step is the float32 step from the bfloat16 value, rounded to bfloat16', () => {
    const ref = makeParams(9, 'float32');
    const half = makeParams(9, 'bfloat16');
    const o32 = new kiln.optim.AdamW(ref, { lr: 0.01 });
    const o16 = new kiln.optim.AdamW(half, { lr: 0.01 });
    gradsFor(ref, 1);
    gradsFor(half, 1);
    o32.step();
    o16.step();
    ref.forEach(([, p], i) => expect(Array.from(vals(half[i][1]))).toEqual(Array.from(vals(p), bf16)));
    disposeAll(o32, ref);
    disposeAll(o16, half);
  });
});

describe('typed errors', () => {
  const p = () => kiln.zeros([3]);
  it('bad options', () => {
    expect(() => new kiln.optim.AdamW([p()], { lr: -1 })).toThrow(kiln.ValueError);
    expect(() => new kiln.optim.AdamW([p()], { lr: -1 })).toThrow(/kiln: AdamW: options: lr must be a finite number >= 0, got -1/);
    expect(() => new kiln.optim.AdamW([p()], { betas: [1, 0.999] })).toThrow(/betas must be two numbers in \[0, 1\)/);
    expect(() => new kiln.optim.AdamW([p()], { betas: [0.9, -0.1] })).toThrow(kiln.ValueError);
    expect(() => new kiln.optim.AdamW([p()], { eps: NaN })).toThrow(kiln.ValueError);
    expect(() => new kiln.optim.AdamW([p()], { decay: 'weird' as 'l2' })).toThrow(/decay must be one of 'decoupled', 'l2'/);
    expect(() => new kiln.optim.AdamW([p()], { momentum: 0.9 } as never)).toThrow(/unknown option 'momentum'/);
    expect(() => new kiln.optim.AdamW([{ params: [p()], lr: -2 }])).toThrow(/parameter group 0: lr must be/);
    expect(() => new kiln.optim.LAMB([p()], { minCoeff: 2, maxCoeff: 1 })).toThrow(kiln.ValueError);
    expect(() => new kiln.optim.LAMB([p()], { maxGradNorm: -1 })).toThrow(kiln.ValueError);
    expect(() => new kiln.optim.LAMB([p()], { adapt: 'sometimes' as 'always' })).toThrow(kiln.ValueError);
    expect(() => new kiln.optim.LARS([p()], {} as { lr: number })).toThrow(/LARS: lr is required/);
    expect(() => new kiln.optim.LARS([p()], { lr: 0.1, momentumStyle: 'x' as 'sgd' })).toThrow(kiln.ValueError);
    expect(() => new kiln.optim.SGD([p()], { lr: 0.1, nesterov: true })).toThrow(/nesterov needs momentum > 0/);
    expect(() => new kiln.optim.SGD([p()], { lr: 0.1, dampening: 2 })).toThrow(kiln.ValueError);
  });

  it('bad parameters', () => {
    expect(() => new kiln.optim.AdamW([kiln.zeros([3], { dtype: 'int32' })])).toThrow(kiln.DTypeError);
    expect(() => new kiln.optim.AdamW([kiln.zeros([3], { dtype: 'int32' })])).toThrow(/parameter 0 is int32\[3\]/);
    expect(() => new kiln.optim.AdamW([kiln.transpose(kiln.zeros([3, 4]))])).toThrow(kiln.ShapeError);
    expect(() => new kiln.optim.AdamW([kiln.transpose(kiln.zeros([3, 4]))])).toThrow(/parameter 0 \(float32\[4, 3\].*\) must be contiguous/);
    const q = p();
    expect(() => new kiln.optim.AdamW([q, q])).toThrow(/appears more than once/);
    expect(() => new kiln.optim.AdamW('x' as never)).toThrow(kiln.ValueError);
    const d = p();
    d.dispose();
    expect(() => new kiln.optim.AdamW([d])).toThrow(kiln.DisposedError);
  });

  it('bad step arguments; an error leaves the step count alone', () => {
    const x = p();
    x.grad = kiln.ones([3]);
    const opt = new kiln.optim.AdamW([x]);
    expect(() => opt.step({ gradScale: 0 })).toThrow(/gradScale must be a finite number > 0, got 0/);
    expect(() => opt.step({ foundInf: kiln.zeros([2]) })).toThrow(kiln.ShapeError);
    expect(() => opt.step({ foundInf: 'yes' as never })).toThrow(kiln.ValueError);
    opt.paramGroups[0].lr = -1;
    expect(() => opt.step()).toThrow(/parameter group 0: lr must be/);
    opt.paramGroups[0].lr = 1e-3;
    expect(opt.stateDict().state[0]).toBeUndefined();
    opt.step();
    expect(opt.stateDict().state[0].step).toBe(1);
    disposeAll(opt, [['x', x]]);
  });

  it('a native refusal names the op, the operand and its dtype', () => {
    const x = p();
    const opt = new kiln.optim.AdamW([x]);
    x.grad = kiln.ones([3]);
    // a state tensor of the wrong shape reaches the kernel only through loadStateDict's checks: bypass them
    (opt as unknown as { state: Map<kiln.Tensor, kiln.optim.ParamState> }).state.set(x, { step: 0, exp_avg: kiln.zeros([3], { dtype: 'bfloat16' }), exp_avg_sq: kiln.zeros([3]) });
    expect(() => opt.step()).toThrow(kiln.DTypeError);
    expect(() => opt.step()).toThrow(/adamw_step: exp_avg 0 \(bfloat16\[3\].*\) must be float32/);
    disposeAll(opt, [['x', x]]);
  });
});

const cuda = kiln.devices().cuda;

describe.skipIf(!cuda.available)('CPU vs CUDA', () => {
  for (const [name, make] of MAKERS) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      it(`${name} ${dtype}${dtype === 'bfloat16' ? ' with master weights' : ''}`, () => {
        const cpu = makeParams(10, dtype);
        const gpu = makeParams(10, dtype, 'cuda');
        const oc = make(cpu);
        const og = make(gpu);
        for (const o of [oc, og]) for (const g of o.paramGroups) (g as { masterWeights: boolean }).masterWeights = dtype === 'bfloat16';
        for (let k = 1; k <= 4; ++k) {
          gradsFor(cpu, k);
          gradsFor(gpu, k, 'cuda');
          oc.step();
          og.step();
        }
        // AdamW and SGD: the same bits; LAMB and LARS: their norms sum in another order
        const exact = name.startsWith('AdamW') || name === 'SGD';
        cpu.forEach(([, p], i) => {
          const onGpu = gpu[i][1].to('cpu');
          if (exact) expect(sameBits(p, onGpu), `${name} p ${i}`).toBe(true);
          else {
            const a = vals(p);
            const b = vals(onGpu);
            const tol = dtype === 'bfloat16' ? 2 ** -7 : 1e-5;
            a.forEach((x, j) => expect(Math.abs(x - b[j]), `${name} p ${i}[${j}]`).toBeLessThanOrEqual(tol * (1 + Math.abs(x))));
          }
          onGpu.dispose();
        });
        disposeAll(oc, cpu);
        disposeAll(og, gpu);
      });
    }
  }
});
