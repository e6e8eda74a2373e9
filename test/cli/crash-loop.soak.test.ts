import { describeCrashLoop } from './crash-loop.js'

// The long form of crash-loop.test.ts, run only by `npm run test:soak`: 20 kills over one sync of 50k accounts.
describeCrashLoop('dsfg sync SIGKILLed at seeded moments, soak', { seed: 29, kills: 20, accounts: 50_000 }, 900_000)
