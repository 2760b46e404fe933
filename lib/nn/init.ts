// Parameter initialization from a counter-based random stream: with a seed,
// every draw takes the next blocks of (seed, offset), so a model built with the
// same seed has the same weights on any device; without one, the global stream
// (kiln.manualSeed) is used.
import type { Device } from '../device';
import type { DType } from '../dtype';
import * as creation from '../creation';
import { noGrad } from '../autograd/mode';
import * as ew from '../ops/elementwise';
import type { Tensor } from '../tensor';

export interface InitOptions {
  dtype?: DType;
  device?: Device;
  /** Seed of the initialization stream (default: the global stream). */
  seed?: number;
}

export class Initializer {
  private offset = 0;
  constructor(private readonly opts: InitOptions = {}) {}

  get dtype(): DType {
    return this.opts.dtype ?? 'float32';
  }

  private draw(kind: 'rand' | 'randn', shape: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const seeded = this.opts.seed === undefined ? {} : { seed: this.opts.seed, offset: this.offset };
    this.offset += Math.ceil(n / 4);
    const fn = kind === 'rand' ? creation.rand : creation.randn;
    return fn(shape, { ...seeded, device: this.opts.device });
  }

  /** N(0, std^2) in the layer's dtype. */
  normal(shape: readonly number[], std: number): Tensor {
    return noGrad(() => {
      const r = this.draw('randn', shape);
      return this.finish(ew.mul(r, std), [r]);
    });
  }

  /** U(-bound, bound) in the layer's dtype. */
  uniform(shape: readonly number[], bound: number): Tensor {
    return noGrad(() => {
      const u = this.draw('rand', shape);
      const centered = ew.sub(u, 0.5);
      return this.finish(ew.mul(centered, 2 * bound), [u, centered]);
    });
  }

  constant(shape: readonly number[], value: number): Tensor {
    return creation.full(shape, value, { dtype: this.dtype, device: this.opts.device });
  }

  /** Casts a float32 draw to the layer's dtype, disposing intermediates. */
  private finish(t: Tensor, temps: Tensor[] = []): Tensor {
    temps.forEach((x) => x.dispose());
    if (t.dtype === this.dtype) return t;
    try {
      return t.cast(this.dtype);
    } finally {
      t.dispose();
    }
  }
}
