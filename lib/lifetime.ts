// Tensor lifetime: live-tensor accounting, tidy() scopes, keep(), and a
// FinalizationRegistry that frees the storage of tensors that were garbage
// collected without dispose() (a safety net, not the way to manage memory).
import { ValueError } from './errors';
import { liveStorageBytes, type StorageRef } from './storage';

/** What lifetime tracking needs from a tensor. */
export interface Disposable {
  readonly isDisposed: boolean;
  dispose(): void;
}

let liveTensors = 0;

/** What the finalizer needs to free a collected tensor (never the tensor itself). */
export interface Held {
  storage: StorageRef;
  /** Releases the tensor's autograd node and gradient, when it has them. */
  extra?: () => void;
}

const finalizer = new FinalizationRegistry<Held>((held) => {
  liveTensors -= 1;
  held.storage.release();
  held.extra?.();
});

// Innermost tidy() scope last. Each holds the tensors created inside it.
const scopes: Set<Disposable>[] = [];

/** Called by every new Tensor: counts it, arms the finalizer, adds it to the current scope. */
export function track(t: Disposable, storage: StorageRef): Held {
  liveTensors += 1;
  const held: Held = { storage };
  finalizer.register(t, held, t);
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
  return held;
}

/** Called by Tensor.dispose() (once). */
export function untrack(t: Disposable, storage: StorageRef): void {
  liveTensors -= 1;
  finalizer.unregister(t);
  storage.release();
  for (let i = scopes.length - 1; i >= 0; --i) scopes[i].delete(t);
}

export interface MemoryInfo {
  /** Tensors created and not yet disposed (or garbage collected). */
  tensors: number;
  /** Bytes of live storage per device kind (views share their storage's bytes). */
  bytes: { cpu: number; cuda: number };
}

export function memory(): MemoryInfo {
  return { tensors: liveTensors, bytes: liveStorageBytes() };
}

function collect(value: unknown, into: Set<unknown>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ((value as Disposable).dispose !== undefined && 'isDisposed' in (value as object)) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, into, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value as Record<string, unknown>)) collect(v, into, seen);
  }
}

/**
 * Runs fn and disposes every tensor created inside it, except those it returns
 * (directly, or inside arrays, Maps and plain objects) and those passed to keep().
 * Returned tensors belong to the enclosing scope. fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new ValueError('kiln: tidy: expected a function');
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new ValueError('kiln: tidy: fn returned a Promise; tidy only works with synchronous functions (dispose tensors yourself in async code)');
  }
  const kept = new Set<unknown>();
  collect(result, kept, new Set());
  for (const t of scope) {
    if (kept.has(t)) {
      if (scopes.length > 0) scopes[scopes.length - 1].add(t);
    } else {
      t.dispose();
    }
  }
  return result;
}

/** Exempts a tensor from disposal by the enclosing tidy() scopes. Returns it. */
export function keep<T extends Disposable>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  return t;
}
