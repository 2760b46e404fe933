// LARS (and LARC's clip mode): ../shared/specs/optim.md "LARS". Adapted tensors
// take two passes over memory (the norms ||p||, ||g||, then the update), the
// others one; one native call per group. SGD (sgd.ts) is this kernel with no
// adaptation.
import { ValueError } from '../errors';
import type { Tensor } from '../tensor';
import { Optimizer, type Active, type ParamGroup, type ParamGroupInit, type ParamList } from './base';
import { check, COMMON_SPECS, matchesAny, type CommonOptions, type NamePattern, type OptionSpec } from './options';


export interface LARSOptions extends CommonOptions {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** eta in a = eta ||p|| / (||g|| + wd ||p|| + eps). */
  trustCoefficient: number;
  eps: number;
  /** LARC's clip mode: a = min(a / lr, 1). */
  trustClip: boolean;
  /** 'sgd': buf = mu buf + (1 - dampening) d, p -= lr buf (PyTorch SGD); 'paper': buf = mu buf + lr d, p -= buf. */
  momentumStyle: 'sgd' | 'paper';
  /** 'sum': ||g|| + wd ||p|| in the denominator; 'combined': ||g + wd p||. */
  norm: 'sum' | 'combined';
  maximize: boolean;
  /** Parameters whose name matches one of these keep a = 1 (biases, norms). */
  excludeFromAdaptation: readonly NamePattern[];
}

/** lr is required. */
export type LARSConstructorOptions = Partial<LARSOptions> & { lr: number; checkFinite?: boolean };

export const LARS_DEFAULTS: LARSOptions = {
  lr: NaN, // required
  momentum: 0.9,
  dampening: 0,
  nesterov: false,
  weightDecay: 0,
  trustCoefficient: 0.001,
  eps: 1e-8,
  trustClip: false,
  momentumStyle: 'sgd',
  norm: 'sum',
  maximize: false,
  excludeFromWeightDecay: [],
  excludeFromAdaptation: [],
  masterWeights: false,
};

const SPECS: Record<keyof LARSOptions, OptionSpec> = {
  ...COMMON_SPECS,
  momentum: { key: 'momentum', check: check.nonNegative },
  dampening: { key: 'dampening', check: check.unit },
  nesterov: { key: 'nesterov', check: check.bool },
  trustCoefficient: { key: 'trust_coefficient', check: check.nonNegative },
  eps: { key: 'eps', check: check.nonNegative },
  trustClip: { key: 'trust_clip', check: check.bool },
  momentumStyle: { key: 'momentum_style', check: check.oneOf('sgd', 'paper') },
  norm: { key: 'norm', check: check.oneOf('sum', 'combined') },
  maximize: { key: 'maximize', check: check.bool },
  excludeFromAdaptation: { key: 'exclude_from_adaptation', check: check.patterns },
};

/** Checks nesterov's requirements (PyTorch's: a momentum and, for the 'sgd' style, zero dampening). */
export function checkNesterov(name: string, where: string, nesterov: boolean, momentum: number, dampening: number, style: string): void {
  if (nesterov && (momentum <= 0 || (style === 'sgd' && dampening !== 0))) {
    throw new ValueError(`kiln: ${name}: ${where}: nesterov needs momentum > 0${style === 'sgd' ? ' and dampening 0' : ''} (momentum ${momentum}, dampening ${dampening})`);
  }
}

export class LARS extends Optimizer<LARSOptions> {
  constructor(params: ParamList | readonly ParamGroupInit<LARSOptions>[], opts: LARSConstructorOptions) {
    if (opts === undefined || opts === null || opts.lr === undefined) throw new ValueError('kiln: LARS: lr is required (new kiln.optim.LARS(params, { lr }))');
    super('LARS', params, LARS_DEFAULTS, opts, SPECS);
  }

  protected override checkExtra(name: string, o: LARSOptions, where: string): void {
    checkNesterov(name, where, o.nesterov, o.momentum, o.dampening, o.momentumStyle);
  }

  protected update(group: ParamGroup<LARSOptions>, params: Active[], gradScale: number): void {
    const call = {
      style: group.momentum > 0 ? (group.momentumStyle === 'sgd' ? 1 : 2) : 0,
      nesterov: group.nesterov,
      norm: group.norm === 'combined' ? 1 : 0,
      trustClip: group.trustClip,
      maximize: group.maximize,
      lr: group.lr,
      momentum: group.momentum,
      dampening: group.dampening,
      trustCoefficient: group.trustCoefficient,
      eps: group.eps,
    };
    const adapt = params.map((a) => (matchesAny(a.name, group.excludeFromAdaptation) ? 0 : 1));
    this.larsStep(group, params, gradScale, call, adapt);
  }
}
