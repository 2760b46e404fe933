#!/usr/bin/env node
// `npm run bench`: runs every benchmark and writes its table under bench/results/.
'use strict';
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const date = new Date().toISOString().slice(0, 10);
for (const name of ['elementwise']) {
  const out = path.join(__dirname, 'results', `${date}-${name}.md`);
  execFileSync(process.execPath, [path.join(__dirname, `${name}.cjs`), '--out', out], { stdio: 'inherit' });
}
