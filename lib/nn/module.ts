// Module: the base of every layer — named parameters, buffers and submodules,
// train/eval, state dicts, device moves and disposal.
import type { Device } from '../device';
import { DTypeError, KilnError, ShapeError, ValueError } from '../errors';
import { keep } from '../lifetime';
import { noGrad } from '../autograd/mode';
import { formatShape } from '../shape';
import { Tensor } from '../tensor';

export type StateDict = Record<string, Tensor>;

export interface LoadStateOptions {
  /** Every parameter and buffer must be present and no other keys (default true). */
  strict?: boolean;
}

export class Module {
  /** True in training mode (dropout active), false after eval(). */
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers a trainable parameter (kept out of tidy scopes, requiresGrad set). Returns it. */
  protected registerParameter<T extends Tensor>(name: string, t: T): T {
    this.checkName(name);
    keep(t);
    if (!t.requiresGrad) t.requiresGrad_(true);
    this.params.set(name, t);
    return t;
  }

  /** Registers a non-trainable tensor saved in the state dict. Returns it. */
  protected registerBuffer<T extends Tensor>(name: string, t: T): T {
    this.checkName(name);
    this.buffers.set(name, keep(t));
    return t;
  }

  /** Registers a submodule. Returns it. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    this.children.set(name, m);
    return m;
  }

  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new ValueError(`kiln: Module: bad name ${JSON.stringify(name)} (non-empty, no dots)`);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new ValueError(`kiln: Module: ${JSON.stringify(name)} is registered twice`);
    }
  }

  /** Submodules with dotted names, this module first (name ''). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this.children) out.push(...m.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /** Parameters with dotted names ("blocks.0.attn.wq.weight"), in registration order. */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, p] of m.params) out.push([prefix ? `${prefix}.${name}` : name, p]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, b] of m.buffers) out.push([prefix ? `${prefix}.${name}` : name, b]);
    }
    return out;
  }

  /** Number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets every parameter's grad to null (disposing it). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /**
   * Parameters and buffers by dotted name, as views of their storage (detached):
   * dispose the returned tensors when done (the module's own are unaffected).
   */
  stateDict(): StateDict {
    const sd: StateDict = {};
    for (const [name, t] of [...this.namedParameters(), ...this.namedBuffers()]) sd[name] = t.detach();
    return sd;
  }

  /**
   * Copies values into the parameters and buffers in place (the tensors keep
   * their identity, so optimizers holding them stay valid). Shapes and dtypes
   * must match; with strict (default) the keys must match exactly.
   */
  loadStateDict(sd: StateDict | Map<string, Tensor>, opts?: LoadStateOptions): void {
    const entries = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = new Map([...this.namedParameters(), ...this.namedBuffers()]);
    if (opts?.strict ?? true) {
      const missing = [...own.keys()].filter((k) => !entries.has(k));
      const unexpected = [...entries.keys()].filter((k) => !own.has(k));
      if (missing.length > 0 || unexpected.length > 0) {
        throw new KilnError(
          `kiln: loadStateDict: keys do not match${missing.length ? `; missing: ${missing.join(', ')}` : ''}${unexpected.length ? `; unexpected: ${unexpected.join(', ')}` : ''}`,
        );
      }
    }
    // check everything before copying anything
    for (const [name, src] of entries) {
      const dst = own.get(name);
      if (dst === undefined) continue;
      if (!(src instanceof Tensor)) throw new ValueError(`kiln: loadStateDict: ${name} is not a Tensor`);
      src.storage('loadStateDict');
      if (src.shape.length !== dst.shape.length || src.shape.some((d, i) => d !== dst.shape[i])) {
        throw new ShapeError(`kiln: loadStateDict: ${name}: shape ${formatShape(src.shape)} does not match the module's ${formatShape(dst.shape)}`);
      }
      if (src.dtype !== dst.dtype) throw new DTypeError(`kiln: loadStateDict: ${name}: dtype ${src.dtype} does not match the module's ${dst.dtype} (cast it first)`);
    }
    noGrad(() => {
      for (const [name, src] of entries) own.get(name)?.copy_(src);
    });
  }

  /**
   * Moves every parameter and buffer to `device` (new tensors replace the old
   * ones, which are disposed): create optimizers after moving the model.
   */
  to(device: Device): this {
    for (const [, m] of this.namedModules()) {
      for (const map of [m.params, m.buffers]) {
        for (const [name, t] of map) {
          const moved = keep(noGrad(() => t.to(device)));
          if (moved === t) continue;
          if (map === m.params) moved.requiresGrad_(true);
          map.set(name, moved);
          t.dispose();
          m.onReplaced(name, moved);
        }
      }
    }
    return this;
  }

  /** Called when to() replaces a registered tensor, so subclasses can update their fields. */
  protected onReplaced(name: string, t: Tensor): void {
    const self = this as unknown as Record<string, unknown>;
    if (self[name] instanceof Tensor) self[name] = t;
  }

  /** Disposes every parameter and buffer (the module is unusable afterwards). */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of [...m.params.values(), ...m.buffers.values()]) t.dispose();
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** An ordered list of submodules, registered as "0", "1", ... (dotted names like "blocks.3.attn"). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(modules: readonly M[] = []) {
    super();
    this.items = [];
    modules.forEach((m) => this.push(m));
  }

  push(m: M): void {
    this.items.push(this.registerModule(String(this.items.length), m));
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i];
    if (m === undefined) throw new ValueError(`kiln: ModuleList: index ${i} is out of range (length ${this.items.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
