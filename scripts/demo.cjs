#!/usr/bin/env node
// npm run demo: trains the default config (examples/demo.json: a small
// Llama-style LM on the Brown corpus with LAMB + a WSD schedule) into
// runs/demo, then generates a sample from it. Re-running starts over.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { main } = require('../dist/cjs/cli/main.js');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'runs', 'demo');

(async () => {
  if (fs.existsSync(out)) fs.rmSync(out, { recursive: true, force: true });
  const t0 = Date.now();
  let code = await main(['train', '--config', path.join(root, 'examples', 'demo.json'), '--out', out]);
  if (code !== 0) process.exit(code);
  console.log('\nA sample (temperature 0.8, top-p 0.95):\n');
  code = await main(['generate', '--run', out, '--prompt', 'The jury said', '--max-tokens', '120']);
  console.log(`\ndemo finished in ${((Date.now() - t0) / 1e3).toFixed(0)} s; plots: ${['loss.svg', 'lr.svg', 'grad-norm.svg'].map((f) => path.relative(process.cwd(), path.join(out, f))).join(', ')}`);
  process.exit(code);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
