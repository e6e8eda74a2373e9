import { describe, expect, it } from 'vitest'
import { FUZZ_TARGETS, runFuzz } from './decoders.fuzz.js'

/** Issue 8: every decoder takes at least 100k seeded random and mutated frames. */
const CASES = 100_000

describe('decoder fuzzing (soak)', () => {
  it.each(FUZZ_TARGETS.map((t) => [t.name, t] as const))('%s survives 100k frames', (name, fuzz) => {
    const started = performance.now()
    const report = runFuzz(fuzz, { cases: CASES, seed: 0x50a4 })
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    console.log(
      `${name}: ${report.cases} cases, ${report.accepted} accepted, ${report.rejected} rejected, ` +
        `slowest ${report.slowestMs.toFixed(2)} ms, heap ${(report.heapGrowthBytes / 2 ** 20).toFixed(1)} MiB, ${seconds} s`
    )
    expect(report.cases).toBe(CASES)
    expect(report.accepted).toBeGreaterThan(0)
  })

})
