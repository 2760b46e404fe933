// A small randomized bad-input test: every op is called many times with
// random (often wrong) shapes, dtypes, values and arguments. Each call must
// either succeed or throw a KilnError — never another kind of error, a hang
// or a crash (a crash kills this worker and fails the run).
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { prng } from './reference';

type Arg = kiln.Tensor | number | boolean | null | undefined | string | number[] | object;

describe('randomized bad input', () => {
  it('every op either works or throws a KilnError', () => {
    const rnd = prng(2026);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const dims = [0, 1, 2, 3, 5];
    const dtypes = [...kiln.DTYPES, 'float64', 'int64'] as kiln.DType[];
    const randomShape = (): number[] => Array.from({ length: Math.floor(rnd() * 5) }, () => pick(dims));
    const disposed = kiln.ones([2]);
    disposed.dispose();

    const randomTensor = (): kiln.Tensor => {
      const shape = randomShape();
      const dtype = pick(kiln.DTYPES);
      const t = rnd() < 0.5 ? kiln.zeros(shape, { dtype }) : kiln.randn(shape, { seed: 1 }).cast(dtype);
      if (rnd() < 0.2 && t.ndim >= 2) return t.transpose();
      return t;
    };
    const randomArg = (): Arg =>
      pick<() => Arg>([
        randomTensor,
        randomTensor,
        randomTensor,
        () => disposed,
        () => pick([0, -1, 1.5, NaN, Infinity, 2, 3, -100]),
        () => pick([null, undefined, true, 'cuda', 'x']),
        () => randomShape(),
        () => pick([{}, { axis: 5 }, { causal: 'yes' }, { dtype: pick(dtypes) }, { labelSmoothing: -1 }, { theta: 0 }]),
      ])();

    const ops: [string, (a: Arg[]) => unknown][] = [
      ['add', (a) => kiln.add(a[0] as kiln.Tensor, a[1] as kiln.Tensor)],
      ['mul', (a) => kiln.mul(a[0] as kiln.Tensor, a[1] as number)],
      ['pow', (a) => kiln.pow(a[0] as kiln.Tensor, a[1] as kiln.Tensor)],
      ['where', (a) => kiln.where(a[0] as kiln.Tensor<'bool'>, a[1] as kiln.Tensor, a[2] as kiln.Tensor)],
      ['clamp', (a) => kiln.clamp(a[0] as kiln.Tensor, a[1] as number, a[2] as number)],
      ['exp', (a) => kiln.exp(a[0] as kiln.Tensor)],
      ['gelu', (a) => kiln.gelu(a[0] as kiln.Tensor, a[1] as kiln.GeluOptions)],
      ['sum', (a) => kiln.sum(a[0] as kiln.Tensor, a[1] as number, a[2] as boolean)],
      ['max', (a) => kiln.max(a[0] as kiln.Tensor, a[1] as number)],
      ['argmax', (a) => kiln.argmax(a[0] as kiln.Tensor, a[1] as number)],
      ['matmul', (a) => kiln.matmul(a[0] as kiln.Tensor, a[1] as kiln.Tensor)],
      ['softmax', (a) => kiln.softmax(a[0] as kiln.Tensor, a[1] as number)],
      ['crossEntropy', (a) => kiln.crossEntropy(a[0] as kiln.Tensor, a[1] as kiln.Tensor<'int32'>, a[2] as kiln.CrossEntropyOptions)],
      ['embedding', (a) => kiln.embedding(a[0] as kiln.Tensor, a[1] as kiln.Tensor<'int32'>)],
      ['rmsNorm', (a) => kiln.rmsNorm(a[0] as kiln.Tensor, a[1] as kiln.Tensor, a[2] as number)],
      ['layerNorm', (a) => kiln.layerNorm(a[0] as kiln.Tensor, a[1] as kiln.Tensor, a[2] as kiln.Tensor)],
      ['rope', (a) => kiln.rope(a[0] as kiln.Tensor, a[1] as kiln.Tensor<'int32'>, a[2] as kiln.RopeOptions)],
      ['attention', (a) => kiln.attention(a[0] as kiln.Tensor, a[1] as kiln.Tensor, a[2] as kiln.Tensor, a[3] as kiln.AttentionOptions)],
      ['transpose', (a) => kiln.transpose(a[0] as kiln.Tensor, a[1] as number[])],
      ['slice', (a) => kiln.slice(a[0] as kiln.Tensor, a[1] as number[], a[2] as number[])],
      ['split', (a) => kiln.split(a[0] as kiln.Tensor, a[1] as number, a[2] as number)],
      ['concat', (a) => kiln.concat([a[0], a[1]] as kiln.Tensor[], a[2] as number)],
      // methods: the receiver is a tensor (calling a method on a non-tensor is plain JS)
      ['reshape', (a) => (a[0] instanceof kiln.Tensor ? a[0].reshape(a[1] as number[]) : null)],
      ['cast', (a) => (a[0] instanceof kiln.Tensor ? a[0].cast(a[1] as kiln.DType) : null)],
      ['to', (a) => (a[0] instanceof kiln.Tensor ? a[0].to(a[1] as kiln.Device) : null)],
      ['tensor', (a) => kiln.tensor(a[0] as number[], a[1] as number[], a[2] as kiln.CreateOptions)],
      ['zeros', (a) => kiln.zeros(a[0] as number[], a[1] as kiln.CreateOptions)],
      ['full', (a) => kiln.full(a[0] as number[], a[1] as number, a[2] as kiln.CreateOptions)],
      ['arange', (a) => kiln.arange(a[0] as number, a[1] as number, a[2] as number)],
      ['randn', (a) => kiln.randn(a[0] as number[], a[1] as kiln.RandomOptions)],
      ['backward.attentionBackward', (a) => kiln.backward.attentionBackward(a[0] as kiln.Tensor, a[1] as kiln.Tensor, a[2] as kiln.Tensor, a[3] as kiln.Tensor, a[4] as kiln.Tensor<'float32'>, a[5] as kiln.Tensor)],
      ['backward.rmsNormBackward', (a) => kiln.backward.rmsNormBackward(a[0] as kiln.Tensor, a[1] as kiln.Tensor, a[2] as kiln.Tensor<'float32'>, a[3] as kiln.Tensor)],
      ['backward.embeddingBackward', (a) => kiln.backward.embeddingBackward(a[0] as kiln.Tensor<'int32'>, a[1] as kiln.Tensor, a[2] as number)],
    ];

    const before = kiln.memory().tensors;
    const failures: string[] = [];
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < 3000; ++i) {
      const [name, fn] = pick(ops);
      kiln.tidy(() => {
        const args = Array.from({ length: 6 }, randomArg);
        try {
          fn(args);
          ok += 1;
        } catch (e) {
          if (e instanceof kiln.KilnError && e.message.startsWith('kiln: ')) {
            refused += 1;
          } else if (failures.length < 10) {
            failures.push(`${name}(${args.map((x) => (x instanceof kiln.Tensor ? x.toString() : JSON.stringify(x))).join(', ')}): ${String(e)}`);
          }
        }
      });
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(500);
    expect(kiln.memory().tensors).toBe(before); // nothing leaked on the error paths
  });
});
