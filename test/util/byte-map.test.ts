import { describe, expect, it } from 'vitest'
import { ByteMap } from '../../src/util/byte-map.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'

describe('ByteMap', () => {
  it('behaves like a Map keyed by hex, under random operations with colliding and structured keys', () => {
    const prng = new Prng(5)
    const ours = new ByteMap<number>()
    const reference = new Map<string, number>()
    // Keys that share leading bytes force bucket collisions; several lengths include the empty key.
    const pool: Uint8Array[] = []
    for (let i = 0; i < 300; i++) {
      const len = [0, 1, 8, 32, 32, 32, 41][prng.int(7)]!
      const key = prng.bytes(len)
      if (len === 32 && i % 3 === 0) key.set([1, 2, 3, 4], 0)
      pool.push(key)
    }
    for (let step = 0; step < 20_000; step++) {
      const key = pool[prng.int(pool.length)]!.slice()
      const op = prng.int(4)
      if (op < 2) {
        ours.set(key, step)
        reference.set(toHex(key), step)
      } else if (op === 2) {
        expect(ours.delete(key)).toBe(reference.delete(toHex(key)))
      } else {
        expect(ours.get(key)).toBe(reference.get(toHex(key)))
        expect(ours.has(key)).toBe(reference.has(toHex(key)))
      }
      expect(ours.size).toBe(reference.size)
    }
    const entries = new Map([...ours.entries()].map(([k, v]) => [toHex(k), v]))
    expect(entries).toEqual(reference)
    ours.clear()
    expect(ours.size).toBe(0)
    expect([...ours.keys()]).toEqual([])
  })

  it('holds a 32-byte key whose first 30 bits are zero (its tag must not read as an empty slot)', () => {
    const map = new ByteMap<number>()
    const zero = new Uint8Array(32)
    const small = Uint8Array.of(0, 0, 0, 3, ...new Uint8Array(28).fill(9))
    map.set(zero, 1).set(small, 2)
    expect([map.get(zero), map.get(small), map.size]).toEqual([1, 2, 2])
    expect(map.has(new Uint8Array(32))).toBe(true)
  })
})
