// LAMB: ../shared/specs/optim.md "LAMB". Two passes over memory per tensor (pass
// A: moments and the norms ||p||, ||u||; pass B: the update), one native call
// per group; the gradient norm for clipping is taken over every group first.
import type { Tensor } from '../tensor';
import { Optimizer, type Active, type ParamGroup, type ParamGroupInit, type ParamList } from './base';
import { check, COMMON_SPECS, matchesAny, type CommonOptions, type NamePattern, type OptionSpec } from './options';
import { ValueError } from '../errors';

export interface LAMBOptions extends CommonOptions {
  betas: readonly [number, number];
  eps: number;
  biasCorrection: boolean;
  /** m = b1 m + (1 - b1) g when true, b1 m + g when false. */
  gradAveraging: boolean;
  /** Clip by the global gradient norm G (over every group): g / (G / maxGradNorm) when G > maxGradNorm. 0 or null: no clipping. */
  maxGradNorm: number | null;
  /** 'update': u += wd p (LAMB paper, NVIDIA); 'l2': g += wd p; 'decoupled': p *= 1 - lr wd. */
  decay: 'update' | 'l2' | 'decoupled';
  /** Which tensors get the trust ratio: those with weight decay != 0 (Apex's default), all (NVLAMB), none. */
  adapt: 'nonzeroWd' | 'always' | 'never';
  /** r = min(r, 1). */
  trustClip: boolean;
  /** Clamp of the trust ratio (DeepSpeed's min_coeff / max_coeff); null: none. */
  minCoeff: number | null;
  maxCoeff: number | null;
  /** Parameters whose name matches one of these keep r = 1. */
  excludeFromAdaptation: readonly NamePattern[];
}

export type LAMBConstructorOptions = Partial<LAMBOptions> & { checkFinite?: boolean };

export const LAMB_DEFAULTS: LAMBOptions = {
  lr: 1e-3,
  betas: [0.9, 0.999],
  eps: 1e-6,
  weightDecay: 0.01,
  biasCorrection: true,
  gradAveraging: true,
  maxGradNorm: 1.0,
  decay: 'update',
  adapt: 'nonzeroWd',
  trustClip: false,
  minCoeff: null,
  maxCoeff: null,
  excludeFromWeightDecay: [],
  excludeFromAdaptation: [],
  masterWeights: false,
};

const SPECS: Record<keyof LAMBOptions, OptionSpec> = {
  ...COMMON_SPECS,
  betas: { key: 'betas', check: check.betas },
  eps: { key: 'eps', check: check.nonNegative },
  biasCorrection: { key: 'bias_correction', check: check.bool },
  gradAveraging: { key: 'grad_averaging', check: check.bool },
  maxGradNorm: { key: 'max_grad_norm', check: check.optionalNonNegative },
  decay: { key: 'decay', check: check.oneOf('update', 'l2', 'decoupled') },
  adapt: { key: 'adapt', check: check.oneOf('nonzeroWd', 'always', 'never') },
  trustClip: { key: 'trust_clip', check: check.bool },
  minCoeff: { key: 'min_coeff', check: check.optionalNonNegative },
  maxCoeff: { key: 'max_coeff', check: check.optionalNonNegative },
  excludeFromAdaptation: { key: 'exclude_from_adaptation', check: check.patterns },
};

const DECAY_CODE = { update: 0, l2: 1, decoupled: 2 } as const;

export class LAMB extends Optimizer<LAMBOptions> {
  constructor(params: ParamList | readonly ParamGroupInit<LAMBOptions>[], opts?: LAMBConstructorOptions) {
    super('LAMB', params, LAMB_DEFAULTS, opts, SPECS);
  }

  protected override checkExtra(name: string, o: LAMBOptions, where: string): void {
    if (o.minCoeff !== null && o.maxCoeff !== null && o.minCoeff > o.maxCoeff) {
      throw new ValueError(`kiln: ${name}: ${where}: minCoeff (${o.minCoeff}) must not exceed maxCoeff (${o.maxCoeff})`);
    }
    if (o.minCoeff === Infinity) throw new ValueError(`kiln: ${name}: ${where}: minCoeff must be finite`);
  }

  protected override needsGradNorm(): boolean {
    return this.paramGroups.some((g) => g.maxGradNorm !== null && g.maxGradNorm > 0);
  }

  protected update(group: ParamGroup<LAMBOptions>, params: Active[], gradScale: number, gradNorm: number | null): void {
    const n = params.length;
    const mgn = group.maxGradNorm;
    const clip = mgn !== null && mgn > 0 && gradNorm !== null && gradNorm > mgn ? gradNorm / mgn : 1;
    const ps: Tensor[] = [];
    const ms: Tensor[] = [];
    const vs: Tensor[] = [];
    const ws: Tensor[] = [];
    const adapt: number[] = [];
    const hasMaster: number[] = [];
    const perTensor: number[] = [];
    const steps: number[] = [];
    for (const a of params) {
      const s = a.state;
      s.exp_avg ??= this.zerosFor(a.p);
      s.exp_avg_sq ??= this.zerosFor(a.p);
      const master = this.masterOf(group, a.p, s);
      const wd = this.weightDecayOf(group, a.name);
      const step = (s.step ?? 0) + 1;
      ps.push(a.p);
      ms.push(s.exp_avg);
      vs.push(s.exp_avg_sq);
      if (master !== null) ws.push(master);
      hasMaster.push(master !== null ? 1 : 0);
      const excluded = matchesAny(a.name, group.excludeFromAdaptation);
      adapt.push(!excluded && (group.adapt === 'always' || (group.adapt === 'nonzeroWd' && wd !== 0)) ? 1 : 0);
      steps.push(step);
      perTensor.push(step, wd);
    }
    const [b1, b2] = group.betas;
    const ints = [n, DECAY_CODE[group.decay], group.biasCorrection ? 1 : 0, group.gradAveraging ? 1 : 0, group.trustClip ? 1 : 0, ...adapt, ...hasMaster];
    const floats = [group.lr, b1, b2, group.eps, gradScale * clip, group.minCoeff ?? 0, group.maxCoeff ?? Infinity, ...perTensor];
    this.runKernel('lamb_step', params, [...ps, ...ms, ...vs, ...ws], ints, floats);
    params.forEach((a, i) => (a.state.step = steps[i]));
  }
}
