// The shared machinery of kiln's optimizers (AdamW, LAMB, LARS, SGD): parameter
// groups (tensors, or [name, tensor] pairs as Module.namedParameters() gives
// them), option validation, per-parameter state, state dicts with PyTorch's key
// names, gradient unscaling and skipped steps (gradScale / foundInf), and the
// calls into the fused native steps (native/KERNELS.md "Optimizers"): one call
// per parameter group and device updates every tensor of the group in place.
// The contract is ../shared/specs/optim.md.
import { noGrad } from '../autograd/mode';
import { zeros } from '../creation';
import { dtypeCode, type DType } from '../dtype';
import { DTypeError, ShapeError, ValueError } from '../errors';
import { keep } from '../lifetime';
import { native, type NativeView } from '../native';
import { emptyTensor, Tensor } from '../tensor';
import { formatValue, matchesAny, type CommonOptions, type OptionSpec } from './options';

/** A parameter with its name (the pairs Module.namedParameters() returns). */
export type NamedParameter = readonly [string, Tensor];
/** Parameters of one group: tensors, or [name, tensor] pairs. */
export type ParamList = readonly Tensor[] | readonly NamedParameter[];

/** A parameter group as given to a constructor: its parameters and any options that differ from the defaults. */
export type ParamGroupInit<O> = Partial<O> & { params: ParamList; names?: readonly string[] };

/** A live parameter group: its parameters, their names (null when unnamed) and its options (mutable, e.g. `lr`). */
export type ParamGroup<O> = O & { params: Tensor[]; names: (string | null)[] };

/** What step() may be told. */
export interface StepOptions {
  /** Gradients are divided by this (loss scaling); default 1. */
  gradScale?: number;
  /** When true (or a tensor holding a non-zero value), the step changes nothing and reports foundInf. */
  foundInf?: boolean | Tensor;
}

/** What step() reports. */
export interface StepResult {
  /** True when the step was skipped: foundInf was given, or a gradient held inf or NaN (checkFinite, LAMB's clipping). */
  foundInf: boolean;
  /** sqrt(sum ||grad / gradScale||^2) over every parameter of every group, when it was computed (checkFinite, LAMB's clipping); else null. */
  gradNorm: number | null;
}

/** Per-parameter state; the tensors are float32 on the parameter's device. */
export interface ParamState {
  step?: number;
  exp_avg?: Tensor;
  exp_avg_sq?: Tensor;
  max_exp_avg_sq?: Tensor;
  momentum_buffer?: Tensor;
  /** float32 master weights of a 16-bit parameter (masterWeights). */
  master_param?: Tensor;
}

/** An optimizer's state in PyTorch's layout: per-parameter state keyed by the parameter's index over all groups, and the groups' hyperparameters (snake_case) with `params` as those indices. */
export interface StateDict {
  state: Record<number, ParamState>;
  param_groups: Record<string, unknown>[];
}

const STATE_TENSOR_KEYS = ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'momentum_buffer', 'master_param'] as const;
type StateTensorKey = (typeof STATE_TENSOR_KEYS)[number];

function isNamed(x: unknown): x is NamedParameter {
  return Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && x[1] instanceof Tensor;
}

function isGroupInit(x: unknown): x is ParamGroupInit<unknown> {
  return x !== null && typeof x === 'object' && !(x instanceof Tensor) && !Array.isArray(x) && 'params' in (x as object);
}

/** One parameter with a gradient, as a step sees it. */
export interface Active {
  p: Tensor;
  g: Tensor; // contiguous (maybe a temporary copy of p.grad)
  name: string | null;
  state: ParamState;
}

/** What a lars_step call needs beyond the tensors (LARS and SGD). */
export interface LarsCall {
  style: number; // 0 no momentum, 1 'sgd', 2 'paper'
  nesterov: boolean;
  norm: number; // 0 'sum', 1 'combined'
  trustClip: boolean;
  maximize: boolean;
  lr: number;
  momentum: number;
  dampening: number;
  trustCoefficient: number;
  eps: number;
}

/** A native call's operand list. */
export function viewsOf(op: string, ts: readonly Tensor[]): NativeView[] {
  return ts.map((t) => t.view(op));
}

// ---- the base class ----------------------------------------------------------------------------

export abstract class Optimizer<O extends CommonOptions> {
  /** The parameter groups; their options may be changed between steps (e.g. `lr` by a scheduler). */
  readonly paramGroups: ParamGroup<O>[] = [];
  /** Steps skipped because of foundInf so far. */
  skippedSteps = 0;
  /** Whether step() checks every gradient for inf / NaN first (one extra read of the gradients) and skips the step when one is found. */
  readonly checkFinite: boolean;
  protected readonly defaults: O;
  protected readonly state = new Map<Tensor, ParamState>();

  /** The optimizer's name in messages ('AdamW', ...). */
  protected readonly name: string;
  /** Every option with its state-dict name and check. */
  protected readonly specs: Record<string, OptionSpec>;

  protected constructor(name: string, params: unknown, defaults: O, opts: Record<string, unknown> | undefined, specs: Record<string, OptionSpec>) {
    this.name = name;
    this.specs = specs;
    const given = { ...(opts ?? {}) };
    this.checkFinite = given.checkFinite === undefined ? false : Boolean(given.checkFinite);
    if (given.checkFinite !== undefined && typeof given.checkFinite !== 'boolean') {
      throw new ValueError(`kiln: ${name}: checkFinite must be true or false, got ${String(given.checkFinite)}`);
    }
    delete given.checkFinite;
    const merged = { ...defaults } as Record<string, unknown>;
    for (const [k, v] of Object.entries(given)) {
      if (!(k in specs)) throw new ValueError(`kiln: ${name}: unknown option '${k}' (options: ${Object.keys(specs).join(', ')}, checkFinite)`);
      if (v !== undefined) merged[k] = v;
    }
    this.defaults = merged as O;
    this.checkOptions(name, specs, merged, 'options');
    const groups = this.parseParams(name, params);
    for (const g of groups) this.addGroup(name, specs, g);
  }

  private parseParams(name: string, params: unknown): ParamGroupInit<O>[] {
    if (params instanceof Tensor || isNamed(params)) params = [params];
    if (!Array.isArray(params)) {
      throw new ValueError(`kiln: ${name}: params must be an array of tensors, of [name, tensor] pairs, or of groups { params, ...options }`);
    }
    if (params.length > 0 && params.every(isGroupInit)) return params as ParamGroupInit<O>[];
    return [{ params } as unknown as ParamGroupInit<O>];
  }

  private checkOptions(name: string, specs: Record<string, OptionSpec>, o: Record<string, unknown>, where: string): void {
    for (const [k, spec] of Object.entries(specs)) {
      const why = spec.check(o[k]);
      if (why !== null) throw new ValueError(`kiln: ${name}: ${where}: ${k} must be ${why}, got ${formatValue(o[k])}`);
    }
    this.checkExtra(name, o as unknown as O, where);
  }

  /** Checks between options (e.g. nesterov needs momentum); throws ValueError. */
  protected checkExtra(_name: string, _o: O, _where: string): void {}

  private addGroup(name: string, specs: Record<string, OptionSpec>, init: ParamGroupInit<O>): void {
    const where = `parameter group ${this.paramGroups.length}`;
    const list = init.params as unknown;
    if (!Array.isArray(list)) throw new ValueError(`kiln: ${name}: ${where}: params must be an array`);
    const params: Tensor[] = [];
    const names: (string | null)[] = [];
    for (const [i, item] of list.entries()) {
      const [n, t] = isNamed(item) ? item : [null, item as unknown];
      if (!(t instanceof Tensor)) throw new ValueError(`kiln: ${name}: ${where}: params[${i}] is not a Tensor or a [name, Tensor] pair`);
      t.storage(name);
      if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16') {
        throw new DTypeError(`kiln: ${name}: ${where}: parameter ${n ?? i} is ${t.describe()}; parameters must be float32, float16 or bfloat16`);
      }
      if (!t.isContiguous) throw new ShapeError(`kiln: ${name}: ${where}: parameter ${n ?? i} (${t.describe()}) must be contiguous (it is updated in place)`);
      params.push(t);
      names.push(n);
    }
    if (init.names !== undefined) {
      if (!Array.isArray(init.names) || init.names.length !== params.length || !init.names.every((s) => typeof s === 'string')) {
        throw new ValueError(`kiln: ${name}: ${where}: names must be ${params.length} strings, one per parameter`);
      }
      init.names.forEach((s, i) => (names[i] = s));
    }
    for (const p of params) {
      if (this.paramGroups.some((g) => g.params.includes(p)) || params.indexOf(p) !== params.lastIndexOf(p)) {
        throw new ValueError(`kiln: ${name}: ${where}: a parameter appears more than once (${p.describe()})`);
      }
    }
    const group = { ...this.defaults } as Record<string, unknown>;
    for (const [k, v] of Object.entries(init)) {
      if (k === 'params' || k === 'names') continue;
      if (!(k in specs)) throw new ValueError(`kiln: ${name}: ${where}: unknown option '${k}'`);
      if (v !== undefined) group[k] = v;
    }
    this.checkOptions(name, specs, group, where);
    group.params = params;
    group.names = names;
    this.paramGroups.push(group as unknown as ParamGroup<O>);
  }

  /** Adds a parameter group (options not given take the constructor's). */
  addParamGroup(group: ParamGroupInit<O>): void {
    this.addGroup(this.name, this.specs, group);
  }

  /** Sets every parameter's grad to null (disposing the gradients). */
  zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.isDisposed) p.grad = null;
      }
    }
  }

  /** The state of a parameter (created empty on first use). */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (s === undefined) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /** A float32 zero tensor shaped like p, on p's device, kept out of tidy() scopes. */
  protected zerosFor(p: Tensor): Tensor {
    return keep(zeros(p.shape, { dtype: 'float32', device: p.device }));
  }

  /** An uninitialised float32 tensor shaped like p (the kernel writes it before reading it). */
  protected emptyFor(p: Tensor): Tensor {
    return keep(emptyTensor(p.shape, 'float32', p.deviceSpec));
  }

  /** The master weights of p when its group keeps them (created from p on first use), else null. */
  protected masterOf(group: ParamGroup<O>, p: Tensor, s: ParamState): Tensor | null {
    if (p.dtype === 'float32') return null;
    if (!group.masterWeights) {
      if (s.master_param !== undefined) {
        s.master_param.dispose();
        delete s.master_param;
      }
      return null;
    }
    if (s.master_param === undefined) s.master_param = keep(p.cast('float32'));
    return s.master_param;
  }

  /** The weight decay of a parameter: the group's, or 0 when its name is excluded. */
  protected weightDecayOf(group: ParamGroup<O>, name: string | null): number {
    return matchesAny(name, group.excludeFromWeightDecay) ? 0 : group.weightDecay;
  }

  /**
   * Updates every parameter that has a gradient, in place, without recording
   * autograd. `gradScale`: gradients are divided by it. A step with foundInf
   * (given, or found by checkFinite / LAMB's gradient norm) changes nothing.
   */
  step(opts: StepOptions = {}): StepResult {
    if (opts === null || typeof opts !== 'object') throw new ValueError(`kiln: ${this.name}.step: expected { gradScale?, foundInf? }, got ${formatValue(opts)}`);
    const gradScale = opts.gradScale ?? 1;
    if (typeof gradScale !== 'number' || !Number.isFinite(gradScale) || gradScale <= 0) {
      throw new ValueError(`kiln: ${this.name}.step: gradScale must be a finite number > 0, got ${formatValue(gradScale)}`);
    }
    for (const [i, g] of this.paramGroups.entries()) this.checkOptions(this.name, this.specs, g as unknown as Record<string, unknown>, `parameter group ${i}`);
    if (flagSet(this.name, opts.foundInf)) {
      this.skippedSteps += 1;
      return { foundInf: true, gradNorm: null };
    }
    return noGrad(() => {
      const temps: Tensor[] = [];
      try {
        const active = this.paramGroups.map((g) =>
          g.params.flatMap((p, i): Active[] => {
            const grad = p.grad;
            if (grad === null || p.isDisposed) return [];
            const g2 = grad.isContiguous ? grad : grad.contiguous();
            if (g2 !== grad) temps.push(g2);
            return [{ p, g: g2, name: g.names[i], state: this.stateOf(p) }];
          }),
        );
        let gradNorm: number | null = null;
        let foundInf = false;
        if (this.checkFinite || this.needsGradNorm()) {
          const stats = gradStats(active.flat(), gradScale);
          gradNorm = Math.sqrt(stats.sumsq);
          foundInf = stats.nonFinite || (this.needsGradNorm() && !Number.isFinite(gradNorm));
        }
        if (foundInf) {
          this.skippedSteps += 1;
          return { foundInf: true, gradNorm };
        }
        this.paramGroups.forEach((g, i) => {
          if (active[i].length === 0) return;
          for (const part of byDevice(active[i])) this.update(g, part, gradScale, gradNorm);
        });
        return { foundInf: false, gradNorm };
      } finally {
        temps.forEach((t) => t.dispose());
      }
    });
  }

  /** Whether this step needs sqrt(sum ||g||^2) over all groups (LAMB's clipping). */
  protected needsGradNorm(): boolean {
    return false;
  }

  /** One fused native call for the parameters of one group on one device. */
  protected abstract update(group: ParamGroup<O>, params: Active[], gradScale: number, gradNorm: number | null): void;

  /**
   * One lars_step call (LARS and SGD): adapt[i] says which tensors get the
   * trust ratio. Momentum buffers are created on first use (the kernel sets
   * them from the first d without reading them).
   */
  protected larsStep(group: ParamGroup<O>, params: Active[], gradScale: number, call: LarsCall, adapt: number[]): void {
    const n = params.length;
    const bufs: Tensor[] = [];
    const created: Tensor[] = [];
    const first: number[] = [];
    const ws: Tensor[] = [];
    const hasMaster: number[] = [];
    for (const a of params) {
      const s = a.state;
      if (call.style !== 0) {
        let b = s.momentum_buffer;
        first.push(b === undefined ? 1 : 0);
        if (b === undefined) {
          b = this.emptyFor(a.p);
          created.push(b);
        }
        bufs.push(b);
      } else {
        first.push(0);
      }
      const master = this.masterOf(group, a.p, s);
      if (master !== null) ws.push(master);
      hasMaster.push(master !== null ? 1 : 0);
    }
    const ints = [n, call.style, call.nesterov ? 1 : 0, call.norm, call.trustClip ? 1 : 0, call.maximize ? 1 : 0, ...adapt, ...first, ...hasMaster];
    const floats = [call.lr, call.momentum, call.dampening, call.trustCoefficient, call.eps, gradScale, ...params.map((a) => this.weightDecayOf(group, a.name))];
    try {
      this.runKernel('lars_step', params, [...params.map((a) => a.p), ...bufs, ...ws], ints, floats);
    } catch (e) {
      created.forEach((t) => t.dispose());
      throw e;
    }
    if (call.style !== 0) params.forEach((a, i) => (a.state.momentum_buffer = bufs[i]));
  }

  /** Runs a step kernel; the key dtype is the first parameter's. */
  protected runKernel(op: string, params: Active[], outputs: Tensor[], ints: number[], floats: number[]): void {
    native.run(op, dtypeCode(params[0].p.dtype as DType), viewsOf(op, params.map((a) => a.g)), viewsOf(op, outputs), ints, floats);
  }

  // ---- state dicts -------------------------------------------------------------------------------

  /**
   * The state in PyTorch's layout (state[i].step / exp_avg / exp_avg_sq /
   * max_exp_avg_sq / momentum_buffer, param_groups with snake_case
   * hyperparameters). The tensors are copies owned by the caller.
   */
  stateDict(): StateDict {
    const state: Record<number, ParamState> = {};
    const groups: Record<string, unknown>[] = [];
    let index = 0;
    for (const g of this.paramGroups) {
      const ids: number[] = [];
      for (const p of g.params) {
        const s = this.state.get(p);
        if (s !== undefined && Object.keys(s).length > 0) {
          const out: ParamState = {};
          if (s.step !== undefined) out.step = s.step;
          for (const k of STATE_TENSOR_KEYS) {
            const t = s[k];
            if (t !== undefined) out[k] = t.clone();
          }
          state[index] = out;
        }
        ids.push(index++);
      }
      const entry: Record<string, unknown> = {};
      for (const [k, spec] of Object.entries(this.specs as Record<string, OptionSpec>)) {
        const v = (g as unknown as Record<string, unknown>)[k];
        entry[spec.key] = Array.isArray(v) ? v.map((x) => (x instanceof RegExp ? x.source : x)) : v;
      }
      entry.params = ids;
      if (g.names.some((n) => n !== null)) entry.param_names = g.names.slice();
      groups.push(entry);
    }
    return { state, param_groups: groups };
  }

  /**
   * Loads a state dict made by stateDict() (or PyTorch's layout): the groups
   * must have as many parameters as this optimizer's, state tensors the shapes
   * of their parameters. Tensors are copied (to float32 on the parameter's
   * device); hyperparameters replace the groups' (checked like the constructor's).
   */
  loadStateDict(sd: StateDict): void {
    const name = this.name;
    if (sd === null || typeof sd !== 'object' || !Array.isArray(sd.param_groups) || sd.state === null || typeof sd.state !== 'object') {
      throw new ValueError(`kiln: ${name}.loadStateDict: expected { state, param_groups }`);
    }
    if (sd.param_groups.length !== this.paramGroups.length) {
      throw new ValueError(`kiln: ${name}.loadStateDict: the state dict has ${sd.param_groups.length} parameter groups, the optimizer ${this.paramGroups.length}`);
    }
    const byIndex = new Map<number, Tensor>();
    const newOptions: Record<string, unknown>[] = [];
    sd.param_groups.forEach((sg, gi) => {
      const g = this.paramGroups[gi];
      const ids = sg.params;
      if (!Array.isArray(ids) || ids.length !== g.params.length) {
        throw new ValueError(`kiln: ${name}.loadStateDict: parameter group ${gi} has ${Array.isArray(ids) ? ids.length : 'no'} parameters in the state dict, ${g.params.length} in the optimizer`);
      }
      ids.forEach((id, i) => byIndex.set(Number(id), g.params[i]));
      const opts: Record<string, unknown> = { ...(g as unknown as Record<string, unknown>) };
      for (const [k, spec] of Object.entries(this.specs as Record<string, OptionSpec>)) {
        if (spec.key in sg) opts[k] = sg[spec.key];
      }
      this.checkOptions(name, this.specs, opts, `loadStateDict: parameter group ${gi}`);
      newOptions.push(opts);
    });
    // Check everything before changing anything.
    const loaded = new Map<Tensor, { step?: number; tensors: [StateTensorKey, Tensor][] }>();
    for (const [key, entry] of Object.entries(sd.state)) {
      const p = byIndex.get(Number(key));
      if (p === undefined) throw new ValueError(`kiln: ${name}.loadStateDict: state for parameter ${key}, which no group lists`);
      if (entry === null || typeof entry !== 'object') throw new ValueError(`kiln: ${name}.loadStateDict: state ${key} must be an object`);
      const item: { step?: number; tensors: [StateTensorKey, Tensor][] } = { tensors: [] };
      if (entry.step !== undefined) {
        const st = entry.step as unknown;
        const v = st instanceof Tensor ? st.item() : st;
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ValueError(`kiln: ${name}.loadStateDict: state ${key}: step must be a number >= 0, got ${formatValue(v)}`);
        item.step = v;
      }
      for (const k of STATE_TENSOR_KEYS) {
        const t = (entry as Record<string, unknown>)[k];
        if (t === undefined) continue;
        if (!(t instanceof Tensor)) throw new ValueError(`kiln: ${name}.loadStateDict: state ${key}: ${k} must be a Tensor`);
        t.storage(`${name}.loadStateDict`);
        if (t.ndim !== p.ndim || t.shape.some((d, i) => d !== p.shape[i])) {
          throw new ShapeError(`kiln: ${name}.loadStateDict: state ${key}: ${k} is ${t.describe()}, but its parameter is ${p.describe()}`);
        }
        item.tensors.push([k, t]);
      }
      loaded.set(p, item);
    }
    // Apply.
    newOptions.forEach((o, gi) => Object.assign(this.paramGroups[gi], o, { params: this.paramGroups[gi].params, names: this.paramGroups[gi].names }));
    for (const s of this.state.values()) disposeState(s);
    this.state.clear();
    for (const [p, item] of loaded) {
      const s: ParamState = {};
      if (item.step !== undefined) s.step = item.step;
      for (const [k, t] of item.tensors) s[k] = keep(ownedCopy(t, p));
      this.state.set(p, s);
    }
  }

  /** Frees the optimizer's state tensors (the parameters and their gradients are not touched). */
  dispose(): void {
    for (const s of this.state.values()) disposeState(s);
    this.state.clear();
  }
}

function disposeState(s: ParamState): void {
  for (const k of STATE_TENSOR_KEYS) s[k]?.dispose();
}

/** A float32 copy of t on p's device with its own storage. */
function ownedCopy(t: Tensor, p: Tensor): Tensor {
  const moved = t.to({ dtype: 'float32', device: p.device });
  if (moved.storage('loadStateDict') !== t.storage('loadStateDict') && moved.isContiguous) return moved;
  const c = moved.clone(); // to() of a float32 tensor on p's device is a view of t
  moved.dispose();
  return c;
}

function flagSet(name: string, f: unknown): boolean {
  if (f === undefined || f === false || f === null) return false;
  if (f === true) return true;
  if (f instanceof Tensor) {
    if (f.size !== 1) throw new ShapeError(`kiln: ${name}.step: foundInf must be a one-element tensor, got ${f.describe()}`);
    return f.item() !== 0;
  }
  throw new ValueError(`kiln: ${name}.step: foundInf must be a boolean or a one-element tensor, got ${formatValue(f)}`);
}

/** The active parameters split by device (a native call takes one device). */
function byDevice(active: Active[]): Active[][] {
  const parts = new Map<string, Active[]>();
  for (const a of active) {
    const list = parts.get(a.p.device);
    if (list === undefined) parts.set(a.p.device, [a]);
    else list.push(a);
  }
  return [...parts.values()];
}

/** sum ||g / gradScale||^2 over all the gradients (float64 over per-tensor sums) and whether one holds inf or NaN. */
export function gradStats(active: Active[], gradScale: number): { sumsq: number; nonFinite: boolean } {
  let sumsq = 0;
  let nonFinite = false;
  const parts = byDevice(active);
  for (const part of parts) {
    const op = 'optim_grad_sumsq';
    const out = emptyTensor([2, part.length], 'float32', part[0].p.deviceSpec);
    try {
      native.run(op, dtypeCode(part[0].g.dtype), viewsOf(op, part.map((a) => a.g)), [out.view(op)], [], [gradScale]);
      const r = out.dataSync();
      for (let i = 0; i < part.length; ++i) {
        sumsq += r[i];
        if (r[part.length + i] !== 0) nonFinite = true;
      }
    } finally {
      out.dispose();
    }
  }
  return { sumsq, nonFinite };
}
