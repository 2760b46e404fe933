// Type-checks the published ESM types (dist/esm/index.d.mts) as a user's ESM
// module sees them: `npm run typecheck` compiles this with node16 resolution.
import * as kiln from 'kiln';
import kilnDefault from 'kiln';

const t: kiln.Tensor<'float32'> = kiln.zeros([2, 3]);
const h: kiln.Tensor<'float16'> = t.cast('float16');
const bits: Uint16Array = h.dataSync();
const f: Float32Array = t.dataSync();
const info: kiln.DevicesInfo = kilnDefault.devices();
const m: kiln.MemoryInfo = kiln.memory();
const e: kiln.KilnError = new kiln.ShapeError('kiln: x: y');
export { bits, f, info, m, e };
