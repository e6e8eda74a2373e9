import { describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors.js'
import { hashAt, hashesEqualAt, uint64BE } from '../../src/util/bytes.js'
import { toHex } from '../../src/util/hex.js'
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

describe('uint64BE', () => {
  it('encodes an item number in 8 bytes big-endian, the same for a number and a bigint', () => {
    for (const [n, hex] of [
      [0, '0x0000000000000000'],
      [1, '0x0000000000000001'],
      [0x1_0000_0000, '0x0000000100000000'],
      [Number.MAX_SAFE_INTEGER, '0x001fffffffffffff']
    ] as const) {
      expect(toHex(uint64BE(n))).toBe(hex)
      expect(toHex(uint64BE(BigInt(n)))).toBe(hex)
    }
    expect(toHex(uint64BE(2n ** 64n - 1n))).toBe('0xffffffffffffffff')
  })

  it('refuses a number that is not an integer from 0 to 2^64 - 1 rather than encode the key of another item', () => {
    // Before, -1 and -1n gave item 2^64 - 1's key and 2^64 item 0's: wrapped around, with no error.
    for (const n of [1.5, 0.5, Number.NaN, Number.POSITIVE_INFINITY, -1, -1n, 2n ** 64n, 2n ** 64n + 5n, 2 ** 64]) {
      expect(() => uint64BE(n), String(n)).toThrow(InvalidInputError)
    }
    // Not a number at all (from untyped JavaScript): the same error, naming the type, even for an object that
    // cannot be turned into a string.
    for (const n of ['5', [5], Object.create(null), Object(5n)]) {
      const refusal = new InvalidInputError(`an item number of type ${typeof n} is not an integer from 0 to 2^64 - 1`)
      expect(() => uint64BE(n as never)).toThrow(refusal)
    }
    // An integer past 2^53 is exact as a number when it is one: encoded as its bigint is.
    expect(toHex(uint64BE(2 ** 60))).toBe(toHex(uint64BE(2n ** 60n)))
  })
})
