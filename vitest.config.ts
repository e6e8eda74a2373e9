import { fileURLToPath } from 'node:url'
import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    // The examples import the package by name, as users do; tests run them against the sources, no build needed.
    alias: { dsfg: fileURLToPath(new URL('./src/index.ts', import.meta.url)) }
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Long runs live in `*.soak.test.ts` and run only under `npm run test:soak` (vitest.soak.config.ts).
    exclude: [...configDefaults.exclude, 'test/**/*.soak.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // One scratch directory per run, where the first CLI test compiles the CLI for all (test/helpers/built-cli.ts).
    globalSetup: ['test/helpers/built-cli.global.ts']
  }
})
