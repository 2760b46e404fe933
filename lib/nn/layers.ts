// Basic layers: Linear, Embedding, RMSNorm, LayerNorm, Dropout, SwiGLU.
// Initializations follow PyTorch's defaults (documented per layer).
import * as g from '../autograd/grad-elementwise';
import * as gnn from '../autograd/grad-nn';
import * as gred from '../autograd/grad-reduce';
import * as gviews from '../autograd/grad-views';
import * as creation from '../creation';
import { ValueError } from '../errors';
import { tidy } from '../lifetime';
import * as ew from '../ops/elementwise';
import type { Tensor } from '../tensor';
import { Initializer, type InitOptions } from './init';
import { Module } from './module';

export interface LinearOptions extends InitOptions {
  /** Add a bias (default true). */
  bias?: boolean;
  /** Initialise W from N(0, std^2) and b with zeros instead of PyTorch's uniform default. */
  std?: number;
}

/**
 * y = x W^T + b with W [outFeatures, inFeatures] (PyTorch layout).
 * Init (PyTorch's default): W and b uniform in +-1/sqrt(inFeatures); or N(0, std^2) and zeros.
 */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions & { init?: Initializer } = {}) {
    super();
    checkDims('Linear', { inFeatures, outFeatures });
    const init = opts.init ?? new Initializer(opts);
    const bound = 1 / Math.sqrt(Math.max(1, inFeatures));
    const std = opts.std;
    this.weight = this.registerParameter('weight', std === undefined ? init.uniform([outFeatures, inFeatures], bound) : init.normal([outFeatures, inFeatures], std));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', std === undefined ? init.uniform([outFeatures], bound) : init.constant([outFeatures], 0));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = gred.matmul(x, gviews.transpose(this.weight));
      return this.bias === null ? y : g.add(y, this.bias);
    });
  }
}

/** Rows of weight [numEmbeddings, dim] by int32 ids. Init: N(0, 1) (PyTorch's default). */
export class Embedding extends Module {
  weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly dim: number, opts: InitOptions & { init?: Initializer; std?: number } = {}) {
    super();
    checkDims('Embedding', { numEmbeddings, dim });
    const init = opts.init ?? new Initializer(opts);
    this.weight = this.registerParameter('weight', init.normal([numEmbeddings, dim], opts.std ?? 1));
  }

  forward(ids: Tensor<'int32'>): Tensor {
    return gnn.embedding(this.weight, ids);
  }
}

/** RMSNorm over the last dimension; weight initialised to ones. */
export class RMSNorm extends Module {
  weight: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-6, opts: InitOptions & { init?: Initializer } = {}) {
    super();
    checkDims('RMSNorm', { dim });
    this.weight = this.registerParameter('weight', (opts.init ?? new Initializer(opts)).constant([dim], 1));
  }

  forward(x: Tensor): Tensor {
    return gnn.rmsNorm(x, this.weight, this.eps);
  }
}

/** LayerNorm over the last dimension; weight ones, bias zeros. */
export class LayerNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5, opts: InitOptions & { init?: Initializer } = {}) {
    super();
    checkDims('LayerNorm', { dim });
    const init = opts.init ?? new Initializer(opts);
    this.weight = this.registerParameter('weight', init.constant([dim], 1));
    this.bias = this.registerParameter('bias', init.constant([dim], 0));
  }

  forward(x: Tensor): Tensor {
    return gnn.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/**
 * Zeroes elements with probability p in training mode and scales the rest by
 * 1/(1-p); the identity in eval mode. The mask comes from the layer's own
 * (seed, offset) stream, so runs are reproducible and resumable (state()).
 */
export class Dropout extends Module {
  private offset = 0;
  constructor(readonly p = 0.1, readonly seed = 0) {
    super();
    if (!(p >= 0 && p < 1)) throw new ValueError(`kiln: Dropout: p must be in [0, 1), got ${String(p)}`);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new ValueError(`kiln: Dropout: seed must be a non-negative integer, got ${String(seed)}`);
  }

  forward(x: Tensor): Tensor {
    // identity (a view in the graph) in eval mode
    if (!this.training || this.p === 0) return gviews.reshape(x, x.shape);
    const offset = this.offset;
    this.offset += Math.ceil(x.size / 4);
    return tidy(() => {
      const u = creation.rand(x.shape, { seed: this.seed, offset, device: x.device });
      return g.where(ew.ge(u, this.p), g.mul(x, 1 / (1 - this.p)), 0);
    });
  }

  /** The stream position, for checkpoints. */
  state(): { seed: number; offset: number } {
    return { seed: this.seed, offset: this.offset };
  }

  loadState(s: { offset: number }): void {
    this.offset = s.offset;
  }
}

/**
 * The Llama feed-forward: w2(silu(w1 x) * w3 x), no biases.
 * Init: as Linear unless an Initializer is given.
 */
export class SwiGLU extends Module {
  readonly w1: Linear;
  readonly w2: Linear;
  readonly w3: Linear;
  /** std / outStd: N(0, std^2) init for w1, w3 and for the output projection w2 (GPT-2 scales the latter down). */
  constructor(readonly dim: number, readonly hiddenDim: number, opts: InitOptions & { init?: Initializer; std?: number; outStd?: number } = {}) {
    super();
    const init = opts.init ?? new Initializer(opts);
    this.w1 = this.registerModule('w1', new Linear(dim, hiddenDim, { init, std: opts.std, bias: false }));
    this.w2 = this.registerModule('w2', new Linear(hiddenDim, dim, { init, std: opts.outStd ?? opts.std, bias: false }));
    this.w3 = this.registerModule('w3', new Linear(dim, hiddenDim, { init, std: opts.std, bias: false }));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.w2.forward(g.mul(g.silu(this.w1.forward(x)), this.w3.forward(x))));
  }
}

function checkDims(op: string, dims: Record<string, number>): void {
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new ValueError(`kiln: ${op}: ${name} must be a positive integer, got ${String(v)}`);
  }
}
