// The Tensor class: a typed, strided view of native storage on one device.
import { resolveDevice, type Device, type DeviceSpec } from './device';
import { checkDType, dtypeCode, dtypeSize, isFloatDType, typedArrayOf, type DType, type TypedArrayFor } from './dtype';
import { runBackward, seedFor } from './autograd/engine';
import { isGradEnabled } from './autograd/mode';
import type { Node } from './autograd/node';
import { DeviceError, DisposedError, DTypeError, ShapeError, ValueError } from './errors';
import { keep, track, untrack, type Held } from './lifetime';
import { native, type NativeView } from './native';
import * as gradEw from './autograd/grad-elementwise';
import * as gradNn from './autograd/grad-nn';
import * as gradReduce from './autograd/grad-reduce';
import * as gradViews from './autograd/grad-views';
import * as creation from './creation';
import * as elementwise from './ops/elementwise';
import * as matmulOps from './ops/matmul';
import * as nn from './ops/nn';
import * as reduce from './ops/reduce';
import * as views from './ops/views';
import { checkShape, contiguousStrides, formatShape, isContiguous, sizeOf } from './shape';
import { StorageRef } from './storage';

/** Nested number arrays, as returned by toArray(). */
export type NestedArray = number | NestedArray[];

/** Target of Tensor.to(): a device, or a dtype and/or a device. */
export type ToTarget = Device | { dtype?: DType; device?: Device };

interface TensorInit<D extends DType> {
  storage: StorageRef; // already retained for this tensor
  shape: readonly number[];
  strides: readonly number[];
  offset: number;
  dtype: D;
  device: DeviceSpec;
}

export class Tensor<D extends DType = DType> {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  readonly dtype: D;
  /** 'cpu' or 'cuda:N'. */
  readonly device: Device;
  /** Number of elements. */
  readonly size: number;
  /** @internal Element strides into the storage. */
  readonly strides: readonly number[];
  /** @internal Element offset into the storage. */
  readonly offset: number;
  /** @internal */
  readonly deviceSpec: DeviceSpec;
  private storageRef: StorageRef | null;
  private readonly held: Held;
  private leafRequiresGrad = false;
  private node: Node | null = null;
  private gradValue: Tensor | null = null;

  /** @internal Use kiln.tensor(), zeros(), ... to create tensors. */
  constructor(init: TensorInit<D>) {
    this.shape = Object.freeze(init.shape.slice());
    this.strides = Object.freeze(init.strides.slice());
    this.offset = init.offset;
    this.dtype = init.dtype;
    this.deviceSpec = init.device;
    this.device = init.device.name;
    this.size = sizeOf(init.shape);
    this.storageRef = init.storage;
    this.held = track(this, init.storage);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.storageRef === null;
  }

  /** "float32[2, 3] on cpu" — used in error messages. */
  describe(): string {
    return `${this.dtype}${formatShape(this.shape)} on ${this.device}`;
  }

  toString(): string {
    return `Tensor(${this.describe()}${this.isDisposed ? ', disposed' : ''})`;
  }

  /** Frees this tensor's hold on its storage. Idempotent. */
  dispose(): void {
    if (this.storageRef === null) return;
    const s = this.storageRef;
    this.storageRef = null;
    untrack(this, s);
    this.dropAutograd();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private dropAutograd(): void {
    this.node?.release();
    this.node = null;
    this.gradValue?.dispose();
    this.gradValue = null;
    this.held.extra = undefined;
  }

  private armFinalizer(): void {
    // a collected tensor must still release its graph node and its gradient
    this.held.extra = this.node === null && this.gradValue === null ? undefined : () => {
      this.node?.release();
      this.gradValue?.dispose();
    };
  }

  // ---- autograd ---------------------------------------------------------------------

  /** Whether gradients flow to this tensor: a leaf marked with requiresGrad, or the result of an op on one. */
  get requiresGrad(): boolean {
    return this.leafRequiresGrad || this.node !== null;
  }

  set requiresGrad(flag: boolean) {
    this.requiresGrad_(flag);
  }

  /** Marks a leaf tensor (one not computed by a recorded op) as needing gradients. Returns this. */
  requiresGrad_(flag = true): this {
    if (this.node !== null) {
      throw new ValueError(`kiln: requiresGrad_: ${this.describe()} was computed by '${this.node.name}'; only leaf tensors take requiresGrad (use detach() for a new leaf)`);
    }
    if (flag && !isFloatDType(this.dtype)) {
      throw new DTypeError(`kiln: requiresGrad_: only floating tensors can require gradients, got ${this.describe()}`);
    }
    this.leafRequiresGrad = flag;
    return this;
  }

  /** True unless the tensor was computed by a recorded op. */
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** @internal The node of the op that computed this tensor, or null for leaves. */
  get gradFn(): Node | null {
    return this.node;
  }

  /** @internal Called once by autograd's record(). */
  setGradFn(node: Node): void {
    this.node = node;
    this.armFinalizer();
  }

  /**
   * The accumulated gradient (null until a backward pass reaches this tensor).
   * The tensor owns it: it is kept out of tidy() scopes and disposed with the
   * tensor, and assigning a new one disposes the old one.
   */
  get grad(): Tensor<D> | null {
    return this.gradValue as Tensor<D> | null;
  }

  set grad(g: Tensor<D> | null) {
    if (g !== null) {
      if (!(g instanceof Tensor)) throw new ValueError(`kiln: grad: expected a Tensor or null, got ${typeof g}`);
      g.storage('grad');
      if (g.dtype !== this.dtype) throw new DTypeError(`kiln: grad: ${g.describe()} must have the dtype of ${this.describe()}`);
      if (g.device !== this.device) throw new DeviceError(`kiln: grad: ${g.describe()} must be on the device of ${this.describe()}`);
      if (g.shape.length !== this.shape.length || g.shape.some((d, i) => d !== this.shape[i])) {
        throw new ShapeError(`kiln: grad: ${g.describe()} must have the shape of ${this.describe()}`);
      }
      keep(g);
    }
    if (this.gradValue !== null && this.gradValue !== g) this.gradValue.dispose();
    this.gradValue = g;
    this.armFinalizer();
  }

  /** @internal Adds g (owned, disposed here) into grad. */
  accumulateGrad(g: Tensor): void {
    if (this.storageRef === null) {
      g.dispose();
      return;
    }
    const packed = g.isContiguous && g.dtype === this.dtype ? g : rawPacked(g, this.dtype);
    if (packed !== g) g.dispose();
    if (this.gradValue === null) {
      this.grad = packed as Tensor<D>;
      return;
    }
    const sum = elementwise.add(this.gradValue, packed as Tensor<D>) as Tensor<D>;
    packed.dispose();
    this.grad = sum;
  }

  /**
   * Backpropagates from this tensor: every leaf that requires grad and took
   * part in computing it gets d(this)/d(leaf) added to its grad. A non-scalar
   * needs the gradient of the output. The graph's saved tensors are freed.
   */
  backward(gradient?: Tensor<D>): void {
    this.storage('backward');
    const seed = seedFor(this, gradient, (t) => keep(creation.onesLike(t)));
    runBackward(this, seed, (a, b) => elementwise.add(a, b));
  }

  /**
   * Writes src's values into this tensor's storage in place (shapes must
   * match; dtype converted, device moved). Not recorded by autograd: on a
   * tensor that requires grad it must run under kiln.noGrad (e.g. an update step).
   */
  copy_(src: Tensor): this {
    const op = 'copy_';
    if (!(src instanceof Tensor)) throw new ValueError(`kiln: ${op}: expected a Tensor, got ${src === null ? 'null' : typeof src}`);
    this.storage(op);
    src.storage(op);
    if (src.shape.length !== this.shape.length || src.shape.some((d, i) => d !== this.shape[i])) {
      throw new ShapeError(`kiln: ${op}: source ${src.describe()} does not have the shape of ${this.describe()}`);
    }
    if (this.requiresGrad && isGradEnabled()) {
      throw new ValueError(`kiln: ${op}: ${this.describe()} requires grad; write into it under kiln.noGrad()`);
    }
    const moved = src.device === this.device ? src : src.rawTo(this.device);
    const view = this.shareView();
    try {
      runInto('cast', moved.dtype, [moved], view);
    } finally {
      view.dispose();
      if (moved !== src) moved.dispose();
    }
    return this;
  }

  /** A view of the same storage that is cut off from the graph (a new leaf, no grad). */
  detach(): Tensor<D> {
    return this.shareView();
  }

  /** @internal The live storage (throws DisposedError naming `op` after dispose). */
  storage(op: string): StorageRef {
    if (this.storageRef === null) {
      throw new DisposedError(`kiln: ${op}: tensor ${this.describe()} has been disposed`);
    }
    return this.storageRef;
  }

  /** @internal The operand the addon's kernels take. */
  view(op: string): NativeView {
    return [this.storage(op).native, dtypeCode(this.dtype), this.shape, this.strides, this.offset];
  }

  /** @internal True when the elements are packed row-major (any offset). */
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  // ---- conversions --------------------------------------------------------------

  /** A copy converted to `dtype` (round to nearest even; see README "Casting"). Same dtype: a new view. */
  cast<T extends DType>(dtype: T): Tensor<T> {
    return gradViews.cast(this, dtype);
  }

  /** @internal cast without autograd. */
  rawCast<T extends DType>(dtype: T): Tensor<T> {
    const target = checkDType('cast', dtype);
    if (target === (this.dtype as DType)) return this.shareView() as unknown as Tensor<T>;
    const out = emptyTensor(this.shape, target, this.deviceSpec) as Tensor<T>;
    runInto('cast', this.dtype, [this], out);
    return out;
  }

  /** Moves (copies) to a device and/or converts the dtype. Unchanged: a new view of the same storage. */
  to(target: Device): Tensor<D>;
  to<T extends DType = D>(target: { dtype?: T; device?: Device }): Tensor<T>;
  to(target: ToTarget): Tensor {
    return gradViews.to(this, target);
  }

  /** @internal to() without autograd. */
  rawTo(target: ToTarget): Tensor {
    const spec = typeof target === 'string' || target === undefined ? { device: target } : target;
    if (spec === null || typeof spec !== 'object') throw new ValueError(`kiln: to: expected a device or { dtype, device }, got ${String(target)}`);
    const device = spec.device === undefined ? this.deviceSpec : resolveDevice('to', spec.device);
    const dtype = spec.dtype === undefined ? this.dtype : checkDType('to', spec.dtype);
    this.storage('to');
    if (device.name === this.device) return dtype === this.dtype ? this.shareView() : this.rawCast(dtype);
    // Convert on the source device first (fewer bytes cross when narrowing), then copy packed bytes.
    const packed = dtype === this.dtype ? this.rawContiguous() : this.rawCast(dtype);
    try {
      const out = emptyTensor(packed.shape, dtype, device);
      try {
        const esize = dtypeSize(dtype);
        native.copy(out.storage('to').native, 0, packed.storage('to').native, packed.offset * esize, packed.size * esize);
      } catch (e) {
        out.dispose();
        throw e;
      }
      return out;
    } finally {
      packed.dispose();
    }
  }

  /** Same elements in a new shape (one entry may be -1). A view when contiguous, else a copy. */
  reshape(shape: readonly number[]): Tensor<D> {
    return gradViews.reshape(this, shape);
  }

  /** @internal reshape without autograd. */
  rawReshape(shape: readonly number[]): Tensor<D> {
    const target = inferShape('reshape', shape, this);
    if (!this.isContiguous) {
      const c = this.rawContiguous();
      try {
        return c.rawReshape(target);
      } finally {
        c.dispose();
      }
    }
    return new Tensor({
      storage: this.storage('reshape').retain(),
      shape: target,
      strides: contiguousStrides(target),
      offset: this.offset,
      dtype: this.dtype,
      device: this.deviceSpec,
    });
  }

  /** Row-major packed elements: a new view when already contiguous, else a copy. */
  contiguous(): Tensor<D> {
    return gradViews.contiguous(this);
  }

  /** @internal contiguous() without autograd. */
  rawContiguous(): Tensor<D> {
    if (this.isContiguous) return this.shareView();
    return this.rawClone();
  }

  /** A contiguous copy with its own storage. */
  clone(): Tensor<D> {
    return gradViews.clone(this);
  }

  /** @internal clone() without autograd. */
  rawClone(): Tensor<D> {
    const out = emptyTensor(this.shape, this.dtype, this.deviceSpec);
    runInto('cast', this.dtype, [this], out);
    return out;
  }

  // ---- readback -------------------------------------------------------------------

  /** A copy of the elements in row-major order (see DataTypeMap for the array type). */
  dataSync(): TypedArrayFor<D> {
    this.storage('dataSync');
    const src = this.isContiguous ? this : this.rawContiguous();
    try {
      const esize = dtypeSize(this.dtype);
      const buf = native.read(src.storage('dataSync').native, src.offset * esize, src.size * esize);
      return typedArrayOf(this.dtype, buf);
    } finally {
      if (src !== this) src.dispose();
    }
  }

  /** Like dataSync(), as a Promise (the copy is taken at the call). */
  data(): Promise<TypedArrayFor<D>> {
    try {
      return Promise.resolve(this.dataSync());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The elements as JS numbers (exact), nested by shape; a number for 0-d tensors. */
  toArray(): NestedArray {
    const flat = this.numbers('toArray');
    if (this.shape.length === 0) return flat[0];
    const build = (dim: number, start: number): NestedArray[] => {
      const n = this.shape[dim];
      const out = new Array<NestedArray>(n);
      if (dim === this.shape.length - 1) {
        for (let i = 0; i < n; ++i) out[i] = flat[start + i];
        return out;
      }
      const step = sizeOf(this.shape.slice(dim + 1));
      for (let i = 0; i < n; ++i) out[i] = build(dim + 1, start + i * step);
      return out;
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    this.storage('item');
    if (this.size !== 1) {
      throw new ShapeError(`kiln: item: tensor ${this.describe()} has ${this.size} elements; item() needs exactly one`);
    }
    return this.numbers('item')[0];
  }

  private numbers(op: string): ArrayLike<number> {
    this.storage(op);
    const raw = this.dataSync() as ArrayBufferView & ArrayLike<number>;
    if (this.dtype === 'float32' || !isFloatDType(this.dtype)) return raw;
    return native.decode(raw, dtypeCode(this.dtype));
  }

  // ---- ops as methods (see the functions of the same name on kiln) -------------------

  add(other: Tensor<D> | number): Tensor<D> {
    return gradEw.add(this, other);
  }
  sub(other: Tensor<D> | number): Tensor<D> {
    return gradEw.sub(this, other);
  }
  mul(other: Tensor<D> | number): Tensor<D> {
    return gradEw.mul(this, other);
  }
  div(other: Tensor<D> | number): Tensor<D> {
    return gradEw.div(this, other);
  }
  pow(other: Tensor<D> | number): Tensor<D> {
    return gradEw.pow(this, other);
  }
  maximum(other: Tensor<D> | number): Tensor<D> {
    return gradEw.maximum(this, other);
  }
  minimum(other: Tensor<D> | number): Tensor<D> {
    return gradEw.minimum(this, other);
  }
  eq(other: Tensor<D> | number): Tensor<'bool'> {
    return elementwise.eq(this, other);
  }
  ne(other: Tensor<D> | number): Tensor<'bool'> {
    return elementwise.ne(this, other);
  }
  lt(other: Tensor<D> | number): Tensor<'bool'> {
    return elementwise.lt(this, other);
  }
  le(other: Tensor<D> | number): Tensor<'bool'> {
    return elementwise.le(this, other);
  }
  gt(other: Tensor<D> | number): Tensor<'bool'> {
    return elementwise.gt(this, other);
  }
  ge(other: Tensor<D> | number): Tensor<'bool'> {
    return elementwise.ge(this, other);
  }
  logicalAnd(this: Tensor<'bool'>, other: Tensor<'bool'> | boolean): Tensor<'bool'> {
    return elementwise.logicalAnd(this, other);
  }
  logicalOr(this: Tensor<'bool'>, other: Tensor<'bool'> | boolean): Tensor<'bool'> {
    return elementwise.logicalOr(this, other);
  }
  logicalNot(this: Tensor<'bool'>): Tensor<'bool'> {
    return elementwise.logicalNot(this);
  }
  neg(): Tensor<D> {
    return gradEw.neg(this);
  }
  exp(): Tensor<D> {
    return gradEw.exp(this);
  }
  log(): Tensor<D> {
    return gradEw.log(this);
  }
  sqrt(): Tensor<D> {
    return gradEw.sqrt(this);
  }
  rsqrt(): Tensor<D> {
    return gradEw.rsqrt(this);
  }
  abs(): Tensor<D> {
    return gradEw.abs(this);
  }
  relu(): Tensor<D> {
    return gradEw.relu(this);
  }
  gelu(opts?: elementwise.GeluOptions): Tensor<D> {
    return gradEw.gelu(this, opts);
  }
  silu(): Tensor<D> {
    return gradEw.silu(this);
  }
  sigmoid(): Tensor<D> {
    return gradEw.sigmoid(this);
  }
  tanh(): Tensor<D> {
    return gradEw.tanh(this);
  }
  clamp(min?: number | null, max?: number | null): Tensor<D> {
    return gradEw.clamp(this, min, max);
  }
  sum(axis?: reduce.Axes | reduce.ReduceOptions | null, keepDims?: boolean): Tensor<D> {
    return gradReduce.sum(this, axis, keepDims);
  }
  mean(axis?: reduce.Axes | reduce.ReduceOptions | null, keepDims?: boolean): Tensor<D> {
    return gradReduce.mean(this, axis, keepDims);
  }
  max(axis?: reduce.Axes | reduce.ReduceOptions | null, keepDims?: boolean): Tensor<D> {
    return gradReduce.max(this, axis, keepDims);
  }
  min(axis?: reduce.Axes | reduce.ReduceOptions | null, keepDims?: boolean): Tensor<D> {
    return gradReduce.min(this, axis, keepDims);
  }
  argmax(axis?: number | null, keepDims?: boolean): Tensor<'int32'> {
    return reduce.argmax(this, axis, keepDims);
  }
  matmul(other: Tensor<D>): Tensor<D> {
    return gradReduce.matmul(this, other);
  }
  softmax(axis = -1): Tensor<D> {
    return gradNn.softmax(this, axis);
  }
  logSoftmax(axis = -1): Tensor<D> {
    return gradNn.logSoftmax(this, axis);
  }
  transpose(perm?: readonly number[]): Tensor<D> {
    return gradViews.transpose(this, perm);
  }
  permute(...perm: (number | readonly number[])[]): Tensor<D> {
    return gradViews.permute(this, ...perm);
  }
  slice(starts: readonly number[], ends?: readonly (number | undefined)[], steps?: readonly number[]): Tensor<D> {
    return gradViews.slice(this, starts, ends, steps);
  }
  split(sections: number | readonly number[], axis = 0): Tensor<D>[] {
    return gradViews.split(this, sections, axis);
  }
  squeeze(axis?: number): Tensor<D> {
    return gradViews.squeeze(this, axis);
  }
  unsqueeze(axis: number): Tensor<D> {
    return gradViews.unsqueeze(this, axis);
  }
  flatten(): Tensor<D> {
    return gradViews.flatten(this);
  }
  broadcastTo(shape: readonly number[]): Tensor<D> {
    return gradViews.broadcastTo(this, shape);
  }

  private shareView(): Tensor<D> {
    return new Tensor({
      storage: this.storage('view').retain(),
      shape: this.shape,
      strides: this.strides,
      offset: this.offset,
      dtype: this.dtype,
      device: this.deviceSpec,
    });
  }
}

/** g as a contiguous tensor of `dtype` (a new tensor). */
function rawPacked(g: Tensor, dtype: DType): Tensor {
  if (g.dtype !== dtype) return g.rawCast(dtype);
  return g.rawClone();
}

/** @internal A new contiguous tensor with uninitialised storage. */
export function emptyTensor<D extends DType>(shape: readonly number[], dtype: D, device: DeviceSpec): Tensor<D> {
  const storage = StorageRef.allocate(device, sizeOf(shape) * dtypeSize(dtype));
  return new Tensor({ storage, shape, strides: contiguousStrides(shape), offset: 0, dtype, device });
}

/** @internal Runs kernel `op` (keyed by `keyDType`) from inputs into `out`; disposes `out` if it throws. */
export function runInto(op: string, keyDType: DType, inputs: readonly Tensor[], out: Tensor, ints: number[] | null = null, floats: number[] | null = null): void {
  try {
    native.run(op, dtypeCode(keyDType), inputs.map((t) => t.view(op)), [out.view(op)], ints, floats);
  } catch (e) {
    out.dispose();
    throw e;
  }
}

/** Checks a reshape target against `t`'s size, resolving a single -1. */
function inferShape(op: string, shape: readonly number[], t: Tensor): number[] {
  if (!Array.isArray(shape)) throw new ShapeError(`kiln: ${op}: shape must be an array, got ${String(shape)}`);
  const infer = shape.indexOf(-1);
  if (infer !== shape.lastIndexOf(-1)) throw new ShapeError(`kiln: ${op}: shape ${formatShape(shape)} has more than one -1`);
  const known = shape.map((d) => (d === -1 ? 1 : d));
  checkShape(op, known);
  const rest = sizeOf(known);
  const target = known.slice();
  if (infer >= 0) {
    if (rest === 0 || t.size % rest !== 0) {
      throw new ShapeError(`kiln: ${op}: cannot reshape ${t.describe()} (${t.size} elements) to ${formatShape(shape)}`);
    }
    target[infer] = t.size / rest;
  } else if (rest !== t.size) {
    throw new ShapeError(`kiln: ${op}: cannot reshape ${t.describe()} (${t.size} elements) to ${formatShape(shape)} (${rest} elements)`);
  }
  return target;
}

/** @internal A view of t's storage that is in bounds by construction (view ops). */
export function viewOf<D extends DType>(t: Tensor<D>, op: string, shape: readonly number[], strides: readonly number[], offset: number): Tensor<D> {
  return new Tensor({ storage: t.storage(op).retain(), shape, strides, offset, dtype: t.dtype, device: t.deviceSpec });
}

/**
 * A view of `t`'s storage with explicit shape, element strides and element
 * offset (like torch.as_strided). Every addressed element must lie inside the
 * storage; strides must be non-negative. Mostly for tests and advanced use.
 */
export function asStrided<D extends DType>(t: Tensor<D>, shape: readonly number[], strides: readonly number[], offset = 0): Tensor<D> {
  const op = 'asStrided';
  const dims = checkShape(op, shape);
  const storage = t.storage(op);
  if (!Array.isArray(strides) || strides.length !== dims.length || strides.some((s) => !Number.isSafeInteger(s) || s < 0)) {
    throw new ShapeError(`kiln: ${op}: strides ${String(strides)} must be ${dims.length} non-negative integers for shape ${formatShape(dims)}`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw new ShapeError(`kiln: ${op}: offset must be a non-negative integer, got ${offset}`);
  if (sizeOf(dims) > 0) {
    let last = offset;
    for (let i = 0; i < dims.length; ++i) last += (dims[i] - 1) * strides[i];
    const capacity = storage.bytes / dtypeSize(t.dtype);
    if (last >= capacity) {
      throw new ShapeError(
        `kiln: ${op}: shape ${formatShape(dims)} with strides ${formatShape(strides)} and offset ${offset} reaches element ${last}, beyond the ${capacity} elements of ${t.describe()}'s storage`,
      );
    }
  }
  return new Tensor({ storage: storage.retain(), shape: dims, strides, offset, dtype: t.dtype, device: t.deviceSpec });
}
