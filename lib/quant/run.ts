// Runs a quantization kernel with any number of outputs (runInto takes one).
import { dtypeCode, type DType } from '../dtype';
import { native } from '../native';
import type { Tensor } from '../tensor';

/** Runs kernel `op` (keyed by `key`) from inputs into the outputs; disposes the outputs if it throws. */
export function runKernel(op: string, key: DType, inputs: readonly Tensor[], outputs: readonly Tensor[], ints: number[] | null = null, floats: number[] | null = null): void {
  try {
    native.run(op, dtypeCode(key), inputs.map((t) => t.view(op)), outputs.map((t) => t.view(op)), ints, floats);
  } catch (e) {
    outputs.forEach((t) => t.dispose());
    throw e;
  }
}
