#!/usr/bin/env node
// `npm run prebuild`: compiles the addon and copies it to
// prebuilds/<platform>-<arch>/node.napi.node — the layout node-gyp-build (and
// prebuildify) use — so a published package installs without a compiler.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { stdio: 'inherit', cwd: root });
if (r.status !== 0) process.exit(r.status ?? 1);

const built = path.join(root, 'build', 'Release', 'kiln.node');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const target = path.join(dir, 'node.napi.node');
fs.copyFileSync(built, target);
console.log(`kiln: wrote ${path.relative(root, target)} (${fs.statSync(target).size} bytes)`);
