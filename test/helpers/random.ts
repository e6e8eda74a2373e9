import { Prng } from '../../src/util/prng.js'

/**
 * The tests' one seeded generator: the project's `Prng` (xoshiro128**), with the draws tests ask for on top.
 * Every random choice in a test comes from one of these, so that a seed names a run.
 */
export class SeededRandom extends Prng {
  /** A float in `[0, 1)` (32 random bits). */
  float(): number {
    return this.nextU32() / 0x1_0000_0000
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p
  }

  pick<T>(values: readonly T[]): T {
    return values[this.int(values.length)]!
  }

  /** A shuffled copy of `values` (Fisher–Yates). */
  shuffle<T>(values: readonly T[]): T[] {
    const out = [...values]
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      ;[out[i], out[j]] = [out[j]!, out[i]!]
    }
    return out
  }
}
