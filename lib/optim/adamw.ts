// AdamW (and Adam with L2 decay): ../shared/specs/optim.md "AdamW". Matches
// torch.optim.AdamW (single-tensor path) within float32 rounding.
import type { Tensor } from '../tensor';
import { Optimizer, type Active, type ParamGroup, type ParamGroupInit, type ParamList } from './base';
import { check, COMMON_SPECS, type CommonOptions, type OptionSpec } from './options';

export interface AdamWOptions extends CommonOptions {
  betas: readonly [number, number];
  eps: number;
  amsgrad: boolean;
  maximize: boolean;
  /** 'decoupled': p *= 1 - lr wd (AdamW); 'l2': g += wd p (Adam with weight decay). */
  decay: 'decoupled' | 'l2';
  biasCorrection: boolean;
}

/** Constructor options: any group option, plus checkFinite (see Optimizer.checkFinite). */
export type AdamWConstructorOptions = Partial<AdamWOptions> & { checkFinite?: boolean };

export const ADAMW_DEFAULTS: AdamWOptions = {
  lr: 1e-3,
  betas: [0.9, 0.999],
  eps: 1e-8,
  weightDecay: 1e-2,
  amsgrad: false,
  maximize: false,
  decay: 'decoupled',
  biasCorrection: true,
  excludeFromWeightDecay: [],
  masterWeights: false,
};

const SPECS: Record<keyof AdamWOptions, OptionSpec> = {
  ...COMMON_SPECS,
  betas: { key: 'betas', check: check.betas },
  eps: { key: 'eps', check: check.nonNegative },
  amsgrad: { key: 'amsgrad', check: check.bool },
  maximize: { key: 'maximize', check: check.bool },
  decay: { key: 'decay', check: check.oneOf('decoupled', 'l2') },
  biasCorrection: { key: 'bias_correction', check: check.bool },
};

export class AdamW extends Optimizer<AdamWOptions> {
  constructor(params: ParamList | readonly ParamGroupInit<AdamWOptions>[], opts?: AdamWConstructorOptions) {
    super('AdamW', params, ADAMW_DEFAULTS, opts, SPECS);
  }

  protected update(group: ParamGroup<AdamWOptions>, params: Active[], gradScale: number): void {
    const n = params.length;
    const ps: Tensor[] = [];
    const ms: Tensor[] = [];
    const vs: Tensor[] = [];
    const xs: Tensor[] = [];
    const ws: Tensor[] = [];
    const hasMaster: number[] = [];
    const perTensor: number[] = [];
    const steps: number[] = [];
    for (const a of params) {
      const s = a.state;
      s.exp_avg ??= this.zerosFor(a.p);
      s.exp_avg_sq ??= this.zerosFor(a.p);
      if (group.amsgrad) s.max_exp_avg_sq ??= this.zerosFor(a.p);
      const master = this.masterOf(group, a.p, s);
      const step = (s.step ?? 0) + 1;
      ps.push(a.p);
      ms.push(s.exp_avg);
      vs.push(s.exp_avg_sq);
      if (group.amsgrad) xs.push(s.max_exp_avg_sq as Tensor);
      if (master !== null) ws.push(master);
      hasMaster.push(master !== null ? 1 : 0);
      steps.push(step);
      perTensor.push(step, this.weightDecayOf(group, a.name));
    }
    const [b1, b2] = group.betas;
    const ints = [n, group.amsgrad ? 1 : 0, group.maximize ? 1 : 0, group.decay === 'l2' ? 1 : 0, group.biasCorrection ? 1 : 0, ...hasMaster];
    const floats = [group.lr, b1, b2, group.eps, gradScale, ...perTensor];
    this.runKernel('adamw_step', params, [...ps, ...ms, ...vs, ...xs, ...ws], ints, floats);
    params.forEach((a, i) => (a.state.step = steps[i]));
  }
}
