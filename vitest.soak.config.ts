import { configDefaults, defineConfig } from 'vitest/config'
import base from './vitest.config.js'

/**
 * `npm run test:soak`: the long runs `npm test` leaves out, every file named `*.soak.test.ts`. Spread rather
 * than `mergeConfig`, which would concatenate `include` and `exclude` with the base's and so run nothing.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/**/*.soak.test.ts'],
    exclude: configDefaults.exclude,
    testTimeout: 30 * 60_000,
    // The spin guard (test/helpers/spin-guard.setup.ts) allows a soak test's long synchronous steps.
    env: { DSFG_SPIN_LIMIT_MS: String(10 * 60_000) }
  }
})
