import { defineConfig } from 'vitest/config'

/**
 * `npm run test:browser`: the tests that drive a headless Chromium (Debian's `chromium`, through
 * playwright-core), left out of `npm test` so that it stays green on a machine without one.
 */
export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One Chromium at a time: with the servers it syncs from, one is all two vCPUs carry.
    maxWorkers: 1
  }
})
