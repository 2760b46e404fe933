#!/usr/bin/env node
// `npm install` hook: use a prebuilt addon from prebuilds/ when one matches
// this platform and loads; otherwise compile with cmake-js.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

function prebuiltLoads() {
  if (process.env.KILN_BUILD_FROM_SOURCE) return false;
  if (!fs.existsSync(dir)) return false;
  for (const file of fs.readdirSync(dir)) {
    if (!file.endsWith('.node')) continue;
    try {
      require(path.join(dir, file));
      console.log(`kiln: using prebuilt addon ${path.relative(root, path.join(dir, file))}`);
      return true;
    } catch (e) {
      console.log(`kiln: prebuilt ${file} does not load here (${e.message.split('\n')[0]}); compiling from source`);
    }
  }
  return false;
}

if (!prebuiltLoads()) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    console.error('kiln: building the native addon failed. It needs cmake >= 3.24 and a C++17 compiler (g++ or clang);');
    console.error('      CUDA is optional (KILN_CUDA=OFF to skip it). Retry with: npx cmake-js compile');
    process.exit(r.status ?? 1);
  }
}
