import { describe, it } from 'vitest'
import { runScenario, SCENARIOS } from './trust-scenarios.js'

/**
 * Issue 12's adversarial scenarios, three seeds each (dial orders and delays differ by seed); the soak run
 * (`npm run test:soak`, trust.soak.test.ts) runs each of them with 20 seeds.
 */
describe('trust: no forged item is stored or yielded, the honest publisher is never blamed', () => {
  for (const scenario of SCENARIOS) {
    for (const seed of [1, 2, 3]) {
      it(`${scenario}, seed ${seed}`, async () => {
        await runScenario(scenario, seed)
      }, 30_000)
    }
  }
})
