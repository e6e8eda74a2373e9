import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Long runs live in `*.soak.test.ts` and run only under `npm run test:soak` (vitest.soak.config.ts); the
    // tests that drive Chromium (`test/browser/`) only under `npm run test:browser` (vitest.browser.config.ts).
    exclude: [...configDefaults.exclude, 'test/**/*.soak.test.ts', 'test/browser/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two test files at a time. Vitest's default on a 2-vCPU machine is one, and most files spend their time
    // waiting on child processes and sockets: two took the suite from 334 s to 206 s with every test passing.
    maxWorkers: 2,
    // Each worker runs its files one after another in one process, loading libp2p and the rest once, instead of a
    // new process per file: 449 s with isolation, 402 s and 395 s without (the second with the files in a
    // shuffled order), every test passing. No test file mocks a module; the two that fake timers restore them.
    isolate: false,
    // One scratch directory per run, where the first CLI test compiles the CLI for all (test/helpers/built-cli.ts).
    globalSetup: ['test/helpers/built-cli.global.ts'],
    // Ends a test process whose event loop a synchronous loop has blocked, naming the test (vitest's timeout cannot).
    setupFiles: ['test/helpers/spin-guard.setup.ts']
  }
})
