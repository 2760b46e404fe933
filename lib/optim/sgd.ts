// SGD with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD:
// the lars_step kernel without adaptation (one pass over memory).
import { ValueError } from '../errors';
import { Optimizer, type Active, type ParamGroup, type ParamGroupInit, type ParamList } from './base';
import { check, COMMON_SPECS, type CommonOptions, type OptionSpec } from './options';
import { checkNesterov } from './lars';

export interface SGDOptions extends CommonOptions {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  maximize: boolean;
}

/** lr is required. */
export type SGDConstructorOptions = Partial<SGDOptions> & { lr: number; checkFinite?: boolean };

export const SGD_DEFAULTS: SGDOptions = {
  lr: NaN, // required
  momentum: 0,
  dampening: 0,
  nesterov: false,
  weightDecay: 0,
  maximize: false,
  excludeFromWeightDecay: [],
  masterWeights: false,
};

const SPECS: Record<keyof SGDOptions, OptionSpec> = {
  ...COMMON_SPECS,
  momentum: { key: 'momentum', check: check.nonNegative },
  dampening: { key: 'dampening', check: check.unit },
  nesterov: { key: 'nesterov', check: check.bool },
  maximize: { key: 'maximize', check: check.bool },
};

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamList | readonly ParamGroupInit<SGDOptions>[], opts: SGDConstructorOptions) {
    if (opts === undefined || opts === null || opts.lr === undefined) throw new ValueError('kiln: SGD: lr is required (new kiln.optim.SGD(params, { lr }))');
    super('SGD', params, SGD_DEFAULTS, opts, SPECS);
  }

  protected override checkExtra(name: string, o: SGDOptions, where: string): void {
    checkNesterov(name, where, o.nesterov, o.momentum, o.dampening, 'sgd');
  }

  protected update(group: ParamGroup<SGDOptions>, params: Active[], gradScale: number): void {
    const call = {
      style: group.momentum > 0 ? 1 : 0,
      nesterov: group.nesterov,
      norm: 0,
      trustClip: false,
      maximize: group.maximize,
      lr: group.lr,
      momentum: group.momentum,
      dampening: group.dampening,
      trustCoefficient: 0,
      eps: 0,
    };
    this.larsStep(group, params, gradScale, call, params.map(() => 0));
  }
}
