// The README's first example (test/js/package.test.ts runs it).
import * as kiln from 'kiln'; // or: const kiln = require('kiln')

const x = kiln.tensor([[1, 2, 3], [4, 5, 6]]); // float32 [2, 3]
const w = kiln.randn([3], { seed: 42 }); // same numbers on CPU and CUDA
const y = kiln.tidy(() => x.mul(w).add(1).cast('bfloat16')); // temporaries freed
console.log(y.shape, y.dtype, y.toArray());
console.log(kiln.memory()); // { tensors: 3, bytes: { cpu: ..., cuda: 0 } }
const onGpu = kiln.devices().cuda.available ? y.to('cuda') : y;
console.log(kiln.devices().cuda.reason ?? `on ${onGpu.device}`);
[x, w, y, onGpu].forEach((t) => t.dispose());
