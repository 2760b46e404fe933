// Float64 reference steps for LAMB, LARS and SGD, written from
// ../shared/specs/optim.md (and torch.optim.SGD for SGD), independent of the
// kernels: plain float64 arithmetic on arrays, no float32 rounding anywhere.

export type Vec = Float64Array;

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; ++i) s += x[i] * x[i];
  return Math.sqrt(s);
}

// ---- LAMB (optim.md "LAMB") -----------------------------------------------------------------

export interface LambRefOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  biasCorrection: boolean;
  gradAveraging: boolean;
  maxGradNorm: number | null;
  decay: 'update' | 'l2' | 'decoupled';
  trustClip: boolean;
  minCoeff: number | null;
  maxCoeff: number | null;
}

export interface RefTensor {
  p: Vec;
  wd: number;
  adapt: boolean;
  m?: Vec;
  v?: Vec;
  buf?: Vec;
  step?: number;
}

export interface LambRefGroup {
  o: LambRefOptions;
  t: RefTensor[];
  g: Vec[]; // raw gradients (divided by gradScale here)
}

/** One LAMB step over every group (the global gradient norm is taken over all of them). */
export function lambRef(groups: LambRefGroup[], gradScale = 1): void {
  let sumsq = 0;
  for (const gr of groups) for (const g of gr.g) for (const x of g) sumsq += (x / gradScale) ** 2;
  const G = Math.sqrt(sumsq);
  for (const gr of groups) {
    const o = gr.o;
    const clip = o.maxGradNorm !== null && o.maxGradNorm > 0 && G > o.maxGradNorm ? G / o.maxGradNorm : 1;
    const [b1, b2] = o.betas;
    gr.t.forEach((t, i) => {
      const n = t.p.length;
      t.m ??= new Float64Array(n);
      t.v ??= new Float64Array(n);
      t.step = (t.step ?? 0) + 1;
      const bc1 = o.biasCorrection ? 1 - b1 ** t.step : 1;
      const bc2 = o.biasCorrection ? 1 - b2 ** t.step : 1;
      const u = new Float64Array(n);
      for (let k = 0; k < n; ++k) {
        let g = gr.g[i][k] / gradScale / clip;
        if (o.decay === 'l2') g += t.wd * t.p[k];
        t.m[k] = b1 * t.m[k] + (o.gradAveraging ? 1 - b1 : 1) * g;
        t.v[k] = b2 * t.v[k] + (1 - b2) * g * g;
        u[k] = t.m[k] / bc1 / (Math.sqrt(t.v[k] / bc2) + o.eps);
        if (o.decay === 'update') u[k] += t.wd * t.p[k];
      }
      const wn = norm(t.p);
      const un = norm(u);
      // r = 1 unless adapted with both norms > 0; the clip and the clamp act on wn / un only (DeepSpeed's reading)
      let r = 1;
      if (t.adapt && wn > 0 && un > 0) {
        r = wn / un;
        if (o.trustClip) r = Math.min(r, 1);
        if (o.maxCoeff !== null) r = Math.min(r, o.maxCoeff);
        if (o.minCoeff !== null) r = Math.max(r, o.minCoeff);
      }
      for (let k = 0; k < n; ++k) {
        if (o.decay === 'decoupled') t.p[k] *= 1 - o.lr * t.wd;
        t.p[k] -= o.lr * r * u[k];
      }
    });
  }
}

// ---- LARS (optim.md "LARS") -------------------------------------------------------------------

export interface LarsRefOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  trustCoefficient: number;
  eps: number;
  trustClip: boolean;
  momentumStyle: 'sgd' | 'paper';
  norm: 'sum' | 'combined';
  maximize: boolean;
}

/** One LARS step of one group. */
export function larsRef(o: LarsRefOptions, ts: RefTensor[], grads: Vec[], gradScale = 1): void {
  ts.forEach((t, i) => {
    const n = t.p.length;
    const g = grads[i].map((x) => (o.maximize ? -1 : 1) * (x / gradScale));
    const wn = norm(t.p);
    const gn = o.norm === 'combined' ? norm(g.map((x, k) => x + t.wd * t.p[k])) : norm(g);
    let a = 1; // the LARC clip acts on the adapted factor only (Apex LARC)
    if (t.adapt && wn > 0 && gn > 0) {
      a = o.norm === 'combined' ? (o.trustCoefficient * wn) / (gn + o.eps) : (o.trustCoefficient * wn) / (gn + t.wd * wn + o.eps);
      if (o.trustClip) a = Math.min(a / o.lr, 1);
    }
    const first = t.buf === undefined;
    if (o.momentum > 0) t.buf ??= new Float64Array(n);
    for (let k = 0; k < n; ++k) {
      const d = (g[k] + t.wd * t.p[k]) * a;
      if (o.momentum === 0) {
        t.p[k] -= o.lr * d;
      } else if (o.momentumStyle === 'sgd') {
        const buf = t.buf as Vec;
        buf[k] = first ? d : o.momentum * buf[k] + (1 - o.dampening) * d;
        t.p[k] -= o.lr * (o.nesterov ? d + o.momentum * buf[k] : buf[k]);
      } else {
        const buf = t.buf as Vec;
        buf[k] = o.momentum * buf[k] + o.lr * d;
        t.p[k] -= o.nesterov ? o.momentum * buf[k] + o.lr * d : buf[k];
      }
    }
  });
}

/** torch.optim.SGD (1.13, single-tensor): maximize negates g, then d = g + wd p, momentum buffer, nesterov. */
export function sgdRef(o: { lr: number; momentum: number; dampening: number; nesterov: boolean; maximize: boolean }, ts: RefTensor[], grads: Vec[]): void {
  ts.forEach((t, i) => {
    const first = t.buf === undefined;
    if (o.momentum > 0) t.buf ??= new Float64Array(t.p.length);
    for (let k = 0; k < t.p.length; ++k) {
      let d = (o.maximize ? -grads[i][k] : grads[i][k]) + t.wd * t.p[k];
      if (o.momentum > 0) {
        const buf = t.buf as Vec;
        buf[k] = first ? d : o.momentum * buf[k] + (1 - o.dampening) * d;
        d = o.nesterov ? d + o.momentum * buf[k] : buf[k];
      }
      t.p[k] -= o.lr * d;
    }
  });
}
