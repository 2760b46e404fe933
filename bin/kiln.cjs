#!/usr/bin/env node
// The kiln command line: train, eval, generate, sched plot (lib/cli/main.ts).
'use strict';
const { main } = require('../dist/cjs/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(e);
    process.exitCode = 1;
  },
);
