import { InvalidInputError } from '../errors.js'

/**
 * A small seeded PRNG (xoshiro128**, Blackman and Vigna 2018) for deterministic test data, fixtures and
 * benchmarks. Not for anything secret. The same seed gives the same stream on every platform: all arithmetic
 * is 32-bit (`Math.imul`, `>>> 0`), so no floating-point rounding enters the output.
 */
export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  /** `seed` is any non-negative safe integer; its high bits matter too. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new InvalidInputError(`PRNG seed must be a non-negative safe integer, got ${seed}`)
    }
    // xoshiro's state must not be all zero and should not start out sparse: fill it from splitmix32, which
    // spreads even seeds 0, 1, 2 over all 128 bits.
    let s = (seed ^ Math.floor(seed / 0x1_0000_0000)) >>> 0
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1
  }

  /** A uniform integer in `[0, 2^32)`. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return result
  }

  /** A uniform integer in `[0, max)`, without modulo bias; `max` is in `[1, 2^32]`. */
  int(max: number): number {
    if (!Number.isInteger(max) || max < 1 || max > 0x1_0000_0000) {
      throw new InvalidInputError(`PRNG bound must be an integer in [1, 2^32], got ${max}`)
    }
    // Reject draws from the incomplete last block of `max` values so every result is equally likely.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % max)
    for (;;) {
      const x = this.nextU32()
      if (x < limit) return x % max
    }
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidInputError(`byte count must be >= 0, got ${n}`)
    const out = new Uint8Array(n)
    let i = 0
    for (; i + 4 <= n; i += 4) {
      const x = this.nextU32()
      out[i] = x >>> 24
      out[i + 1] = x >>> 16
      out[i + 2] = x >>> 8
      out[i + 3] = x
    }
    if (i < n) {
      const x = this.nextU32()
      for (let shift = 24; i < n; i++, shift -= 8) out[i] = x >>> shift
    }
    return out
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}
