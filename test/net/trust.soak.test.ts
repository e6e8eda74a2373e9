import { describe, it } from 'vitest'
import { runScenario, SCENARIOS } from './trust-scenarios.js'

/** Every trust scenario with 20 seeds (the acceptance of issue 12); the short run is in trust.e2e.test.ts. */
describe('trust soak: 20 seeded runs of each adversarial scenario', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario}: 20 seeds`, async () => {
      for (let seed = 100; seed < 120; seed++) await runScenario(scenario, seed)
    }, 600_000)
  }
})
