import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EntrySorter } from '../../src/cli/entry-sorter.js'
import { compareBytes } from '../../src/util/bytes.js'
import { toHex } from '../../src/util/hex.js'

const hexPairs = (sorter: EntrySorter): [string, string][] =>
  Array.from(sorter.sorted(), ([key, value]) => [toHex(key), toHex(value)])

describe('EntrySorter', () => {
  it('yields nothing for no input', () => {
    expect(hexPairs(new EntrySorter())).toEqual([])
  })

  it('sorts by key bytes: prefixes first, 0x00 and 0xff bytes compared as bytes', () => {
    const sorter = new EntrySorter()
    for (const key of [[0xff], [0x01, 0x00], [0x01], [], [0x00], [0x00, 0x00], [0x80]]) {
      sorter.add(Uint8Array.from(key), Uint8Array.of(key.length))
    }
    expect(hexPairs(sorter).map(([key]) => key)).toEqual(['0x', '0x00', '0x0000', '0x01', '0x0100', '0x80', '0xff'])
  })

  it('keeps the last value of a repeated key', () => {
    const sorter = new EntrySorter()
    sorter.add(Uint8Array.of(2), Uint8Array.of(1))
    sorter.add(Uint8Array.of(1), Uint8Array.of(1))
    sorter.add(Uint8Array.of(2), Uint8Array.of(2))
    sorter.add(Uint8Array.of(2), Uint8Array.of(3))
    sorter.add(Uint8Array.of(1), Uint8Array.of(4, 4))
    expect(sorter.added).toBe(5)
    expect(hexPairs(sorter)).toEqual([
      ['0x01', '0x0404'],
      ['0x02', '0x03']
    ])
  })

  it('copies its input, so callers may reuse buffers', () => {
    const sorter = new EntrySorter()
    const key = Uint8Array.of(1)
    const value = Uint8Array.of(9)
    sorter.add(key, value)
    key[0] = 0
    value[0] = 0
    sorter.add(key, value)
    expect(hexPairs(sorter)).toEqual([
      ['0x00', '0x00'],
      ['0x01', '0x09']
    ])
  })

  it('grows past its initial capacity (many entries, large values)', () => {
    const sorter = new EntrySorter()
    const count = 40_000
    for (let i = count - 1; i >= 0; i--) {
      const key = Uint8Array.of(i >> 16, (i >> 8) & 0xff, i & 0xff)
      sorter.add(key, new Uint8Array(40).fill(i & 0xff))
    }
    sorter.add(Uint8Array.of(0xff, 0xff, 0xff), new Uint8Array(3 << 20).fill(7))
    let previous: Uint8Array | undefined
    let n = 0
    let unordered = 0
    let wrongValues = 0
    for (const [key, value] of sorter.sorted()) {
      if (previous !== undefined && compareBytes(previous, key) >= 0) unordered++
      if (value[0] !== (n < count ? n & 0xff : 7)) wrongValues++
      previous = key
      n++
    }
    expect({ n, unordered, wrongValues }).toEqual({ n: count + 1, unordered: 0, wrongValues: 0 })
  })

  it('agrees with a Map-and-sort reference on random input', () => {
    const bytes = fc.uint8Array({ maxLength: 4 })
    fc.assert(
      fc.property(fc.array(fc.tuple(bytes, bytes), { maxLength: 60 }), (pairs) => {
        const sorter = new EntrySorter()
        const reference = new Map<string, [Uint8Array, string]>()
        for (const [key, value] of pairs) {
          sorter.add(key, value)
          reference.set(toHex(key), [key, toHex(value)])
        }
        const expected = [...reference.values()]
          .sort((a, b) => compareBytes(a[0], b[0]))
          .map(([key, value]) => [toHex(key), value])
        expect(hexPairs(sorter)).toEqual(expected)
      }),
      { seed: 42, numRuns: 300 }
    )
  })
})
