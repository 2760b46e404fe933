// Type-checks the published CommonJS types (dist/cjs/index.d.ts) as a user's
// CommonJS module sees them.
import kiln = require('kiln');

const t: kiln.Tensor<'int32'> = kiln.arange(5, { dtype: 'int32' });
const a: Int32Array = t.dataSync();
const y = kiln.tidy(() => t.add(1).mul(2));
export { a, y };
