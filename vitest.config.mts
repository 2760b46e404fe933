import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import 'kiln' — the built package (dist/esm -> dist/cjs -> the addon),
// exactly what users get. `npm test` builds dist/ first.
export default defineConfig({
  resolve: {
    alias: { kiln: fileURLToPath(new URL('./dist/esm/index.mjs', import.meta.url)) },
  },
  test: {
    include: ['test/js/**/*.test.ts'],
    pool: 'forks',
    // --expose-gc lets the lifetime tests check the FinalizationRegistry safety net.
    execArgv: ['--expose-gc'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
