#!/usr/bin/env node
// `npm run test:native`: builds the native test binary in the addon's build
// tree (configuring it with cmake-js if needed) and runs it under ctest.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const build = path.join(root, 'build');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (!fs.existsSync(path.join(build, 'CMakeCache.txt'))) {
  run(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'configure']);
}
const jobs = String(Math.max(1, require('node:os').availableParallelism()));
run('cmake', ['--build', build, '--target', 'kiln_native_tests', '-j', jobs]);
run('ctest', ['--test-dir', build, '--output-on-failure']);
