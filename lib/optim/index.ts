// kiln.optim: fused optimizers over the native multi-tensor steps
// (native/KERNELS.md "Optimizers"; the contract: ../shared/specs/optim.md).
export {
  Optimizer,
  type NamedParameter,
  type ParamGroup,
  type ParamGroupInit,
  type ParamList,
  type ParamState,
  type StateDict,
  type StepOptions,
  type StepResult,
} from './base';
export { type CommonOptions, type NamePattern } from './options';
export { AdamW, ADAMW_DEFAULTS, type AdamWOptions, type AdamWConstructorOptions } from './adamw';
export { LAMB, LAMB_DEFAULTS, type LAMBOptions, type LAMBConstructorOptions } from './lamb';
export { LARS, LARS_DEFAULTS, type LARSOptions, type LARSConstructorOptions } from './lars';
export { SGD, SGD_DEFAULTS, type SGDOptions, type SGDConstructorOptions } from './sgd';
