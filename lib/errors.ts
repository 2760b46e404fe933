// Typed errors. Every message starts with "kiln: <op>:" and names the shapes,
// dtypes and device involved, so a log line alone tells what went wrong.

/** Base class of every error kiln throws on purpose. */
export class KilnError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that do not fit the op (broadcasting, reshape sizes, bad dimensions). */
export class ShapeError extends KilnError {}
/** A dtype the op does not accept, or two operands of different dtypes. */
export class DTypeError extends KilnError {}
/** A device that is unavailable, or operands on different devices. */
export class DeviceError extends KilnError {}
/** Use of a tensor after dispose(). */
export class DisposedError extends KilnError {}
/** A bad scalar argument (seed, step, thread count, ...). */
export class ValueError extends KilnError {}
/** The kernel registry has no kernel for this (op, device, dtype) — a kind of DTypeError. */
export class UnsupportedError extends DTypeError {}
/** An allocation failed on the host or a device. */
export class OutOfMemoryError extends KilnError {}

const byNativeCode: Record<string, new (message: string) => KilnError> = {
  ShapeError,
  DTypeError,
  DeviceError,
  ValueError,
  NoKernel: UnsupportedError,
  OutOfMemory: OutOfMemoryError,
};

/** Converts an error thrown by the addon (it carries `kilnCode`) to its class. */
export function fromNative(e: unknown): unknown {
  if (e instanceof Error && typeof (e as { kilnCode?: unknown }).kilnCode === 'string') {
    const Cls = byNativeCode[(e as unknown as { kilnCode: string }).kilnCode] ?? KilnError;
    return new Cls(e.message);
  }
  return e;
}
