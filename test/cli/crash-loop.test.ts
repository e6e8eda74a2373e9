import { describeCrashLoop } from './crash-loop.js'

// The short seeded slice in `npm test`; crash-loop.soak.test.ts runs 20 kills under `npm run test:soak`.
describeCrashLoop('dsfg sync SIGKILLed at seeded moments', { seed: 11, kills: 3, accounts: 10_000, runTimeoutMs: 20_000 }, 40_000)
