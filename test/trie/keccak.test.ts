import { keccak_256 } from '@noble/hashes/sha3.js'
import { describe, expect, it } from 'vitest'
import { keccak256 } from '../../src/trie/keccak.js'
import { equalBytes } from '../../src/util/bytes.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'

/** keccak256 is the one entry point the library hashes through; @noble/hashes is the reference. */
describe('keccak256', () => {
  it('matches @noble/hashes on every length up to eight blocks', () => {
    const prng = new Prng(2)
    for (let length = 0; length <= 1100; length++) {
      const data = prng.bytes(length)
      expect(toHex(keccak256(data)), `${length} bytes`).toBe(toHex(keccak_256(data)))
    }
  })

  it('matches @noble/hashes on random inputs that are views at an offset into a larger buffer', () => {
    const prng = new Prng(3)
    for (let i = 0; i < 300; i++) {
      const buffer = prng.bytes(4200)
      const start = prng.int(100)
      const view = buffer.subarray(start, start + prng.int(4097))
      const before = view.slice()
      expect(toHex(keccak256(view)), `${view.length} bytes at offset ${start}`).toBe(toHex(keccak_256(before)))
      expect(equalBytes(view, before), 'input left unchanged').toBe(true)
    }
  })

  it('returns a fresh 32-byte array that the next call leaves alone', () => {
    const first = keccak256(new TextEncoder().encode('abc'))
    const second = keccak256(new Uint8Array(0))
    expect(first).not.toBe(second)
    expect(first.byteLength).toBe(32)
    expect(first.buffer.byteLength).toBe(32)
    expect(toHex(first)).toBe('0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45')
    expect(toHex(second)).toBe('0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470')
  })
})
