import { describe, expect, it } from 'vitest'
import { hashAt, hashesEqualAt } from '../../src/util/bytes.js'
import { SeededRandom } from '../helpers/random.js'

describe('hashes inside larger buffers', () => {
  it('hashesEqualAt compares all 32 bytes at each offset: a difference in the first or the last byte is seen', () => {
    const rng = new SeededRandom(4)
    const hash = rng.bytes(32)
    const buffer = new Uint8Array(100)
    buffer.set(hash, 40)
    expect(hashesEqualAt(hash, 0, buffer, 40)).toBe(true)
    expect(hashesEqualAt(buffer, 40, hash, 0)).toBe(true)
    expect(hashesEqualAt(hash, 0, buffer, 39)).toBe(false)
    for (const at of [0, 31]) {
      const other = buffer.slice()
      other[40 + at]! ^= 1
      expect(hashesEqualAt(hash, 0, other, 40)).toBe(false)
    }
  })

  it('hashAt is hash i of hashes laid one after another, as a view', () => {
    const hashes = new SeededRandom(5).bytes(96)
    expect(hashAt(hashes, 2)).toEqual(hashes.slice(64, 96))
    expect(hashAt(hashes, 1).buffer).toBe(hashes.buffer)
    expect(hashAt(hashes, 1).byteOffset).toBe(hashes.byteOffset + 32)
  })
})
