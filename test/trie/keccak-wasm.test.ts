import { keccak_256 } from '@noble/hashes/sha3.js'
import { describe, expect, it } from 'vitest'
import { keccak256Into, keccakUsesWasm } from '../../src/trie/keccak-wasm.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'

describe('keccak256Into (WebAssembly)', () => {
  it('runs the WebAssembly permutation here', () => {
    expect(keccakUsesWasm()).toBe(true)
  })

  it('matches @noble/hashes around the chunk edges (400 blocks per call) and on inputs of several chunks', () => {
    const prng = new Prng(2)
    const out = new Uint8Array(32)
    const chunk = 400 * 136
    for (const length of [chunk - 1, chunk, chunk + 1, chunk + 135, chunk + 136, 2 * chunk, 2 * chunk + 1, 512 * 1024 + 77]) {
      const data = prng.bytes(length)
      keccak256Into(data, out, 0)
      expect(toHex(out), `${length} bytes`).toBe(toHex(keccak_256(data)))
    }
  })

  it('hashes a view into a larger buffer by its own bytes only', () => {
    const prng = new Prng(3)
    const backing = prng.bytes(4096)
    const out = new Uint8Array(32)
    for (const [start, end] of [[1, 300], [17, 17], [100, 4000]] as const) {
      const view = backing.subarray(start, end)
      keccak256Into(view, out, 0)
      expect(toHex(out)).toBe(toHex(keccak_256(backing.slice(start, end))))
    }
  })
})
