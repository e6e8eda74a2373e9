import { describe, expect, it } from 'vitest'
import { HashFilter } from '../../src/util/hash-filter.js'
import { SeededRandom } from '../helpers/random.js'

describe('HashFilter', () => {
  it('holds every key added, across the layers it grows, and few it was never given', () => {
    const rng = new SeededRandom(1)
    const filter = new HashFilter()
    const added: Uint8Array[] = []
    // Past the first layer (65,536 keys) and into the third.
    for (let i = 0; i < 200_000; i++) {
      const key = rng.bytes(32)
      filter.add(key)
      added.push(key)
    }
    expect(filter.size).toBe(200_000)
    expect(added.filter((key) => !filter.mayHold(key))).toEqual([])
    let wrong = 0
    for (let i = 0; i < 20_000; i++) if (filter.mayHold(rng.bytes(32))) wrong++
    // 1.2% per layer at most, three layers.
    expect(wrong / 20_000).toBeLessThan(0.04)
  })

  it('reads a key at an offset into larger bytes as the key itself', () => {
    const rng = new SeededRandom(2)
    const filter = new HashFilter()
    const bytes = rng.bytes(1000)
    for (let at = 0; at + 32 <= 500; at += 7) filter.add(bytes.slice(at, at + 32))
    for (let at = 0; at + 32 <= 500; at += 7) expect(filter.mayHoldAt(bytes, at)).toBe(true)
    let held = 0
    for (let at = 500; at + 32 <= 1000; at++) if (filter.mayHoldAt(bytes, at)) held++
    expect(held).toBeLessThan(20)
    for (let at = 500; at + 32 <= 1000; at++) expect(filter.mayHoldAt(bytes, at)).toBe(filter.mayHold(bytes.slice(at, at + 32)))
  })

  it('adds a key at an offset into larger bytes as the key itself', () => {
    const rng = new SeededRandom(3)
    const bytes = rng.bytes(32 * 100)
    const filter = new HashFilter()
    for (let i = 0; i < 50; i++) filter.addAt(bytes, i * 32)
    expect(filter.size).toBe(50)
    for (let i = 0; i < 50; i++) expect(filter.mayHold(bytes.slice(i * 32, i * 32 + 32))).toBe(true)
    let held = 0
    for (let i = 50; i < 100; i++) if (filter.mayHold(bytes.slice(i * 32, i * 32 + 32))) held++
    expect(held).toBeLessThan(5)
  })

  it('reports about 0.24% of keys never added as maybe held, with one layer full', () => {
    const rng = new SeededRandom(4)
    const filter = new HashFilter()
    // The first layer's 65,536 keys. Its bits are rounded up to a power of two, 16 a key: with 4 probes
    // (1 - e^(-4/16))^4 = 0.24% (3 probes: 0.49%).
    for (let i = 0; i < 65_536; i++) filter.add(rng.bytes(32))
    let wrong = 0
    for (let i = 0; i < 50_000; i++) if (filter.mayHold(rng.bytes(32))) wrong++
    expect(wrong / 50_000).toBeGreaterThan(0.0015)
    expect(wrong / 50_000).toBeLessThan(0.0035)
  })

  it('holds nothing while empty', () => {
    expect(new HashFilter().mayHold(new Uint8Array(32))).toBe(false)
  })
})
