import { keccak_256 } from '@noble/hashes/sha3.js'
import { describe, expect, it } from 'vitest'
import { keccak256Into as unrolled } from '../../src/trie/keccak-unrolled.js'
import { keccak256Into as wasm } from '../../src/trie/keccak-wasm.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'

// Both permutations: the WebAssembly one keccak.ts uses, and the JavaScript one it falls back to.
describe.each([
  ['unrolled JavaScript', unrolled],
  ['WebAssembly', wasm]
])('keccak256Into (%s)', (_name, keccak256Into) => {
  it('matches @noble/hashes keccak_256 on every length up to five blocks, around each block edge', () => {
    const prng = new Prng(1)
    const out = new Uint8Array(32)
    for (let length = 0; length <= 5 * 136 + 1; length++) {
      const data = prng.bytes(length)
      keccak256Into(data, out, 0)
      expect(toHex(out), `${length} bytes`).toBe(toHex(keccak_256(data)))
    }
  })

  it('gives the known digests of "" and "abc", written at an offset without touching the rest', () => {
    const out = new Uint8Array(40).fill(0xee)
    keccak256Into(new Uint8Array(0), out, 3)
    expect(toHex(out.subarray(3, 35))).toBe('0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470')
    expect([...out.subarray(0, 3), ...out.subarray(35)]).toEqual(new Array(8).fill(0xee))
    keccak256Into(new TextEncoder().encode('abc'), out, 0)
    expect(toHex(out.subarray(0, 32))).toBe('0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45')
  })
})
