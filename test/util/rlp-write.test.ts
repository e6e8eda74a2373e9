import { RLP } from '@ethereumjs/rlp'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { toHex } from '../../src/util/hex.js'
import { encodeRlpBytesList } from '../../src/util/rlp-write.js'

const bytes = fc.uint8Array({ minLength: 0, maxLength: 300 })

/**
 * The same bytes, compared as hex: `toEqual` walks a typed array element by element and took 12 s over the
 * 64 KiB encodings of the length-edge test, where comparing their hex takes milliseconds.
 */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array)
  expect(toHex(actual)).toBe(toHex(expected))
}

describe('encodeRlpBytesList', () => {
  it('writes exactly what @ethereumjs/rlp writes for [head…, [item…]]', () => {
    fc.assert(
      fc.property(fc.array(bytes, { maxLength: 3 }), fc.array(bytes, { maxLength: 40 }), (head, items) => {
        const expected = RLP.encode([...head, items])
        expect(encodeRlpBytesList(head.map((h) => RLP.encode(h)), items)).toEqual(expected)
      }),
      { numRuns: 500 }
    )
  })

  it('writes every header length across the one-, two- and three-byte length edges', () => {
    const lengths = [...Array.from({ length: 600 }, (_, i) => i), ...Array.from({ length: 12 }, (_, i) => 65_530 + i)]
    for (const length of lengths) {
      const items = [new Uint8Array(length).fill(0xaa)]
      expectSameBytes(encodeRlpBytesList([], items), RLP.encode([items]))
      expectSameBytes(encodeRlpBytesList([RLP.encode(0)], [new Uint8Array(0), ...items]), RLP.encode([0, [new Uint8Array(0), ...items]]))
    }
  })

  it('handles single bytes below 0x80, the 55-byte edge and lists past 64 KiB', () => {
    const items = [Uint8Array.of(0x7f), Uint8Array.of(0x80), new Uint8Array(0), new Uint8Array(55), new Uint8Array(56)]
    for (let i = 0; i < 2100; i++) items.push(new Uint8Array(32).fill(i & 0xff))
    const encoded = encodeRlpBytesList([RLP.encode(3)], items)
    expect(encoded).toEqual(RLP.encode([3, items]))
    expect(encoded.length).toBeGreaterThan(65_536)
  })
})
