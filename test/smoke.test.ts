import { describe, expect, it } from 'vitest'
import { EMPTY_ROOT, keccak256, toHex } from '../src/index.js'

describe('keccak256', () => {
  it('hashes rlp("") to the empty trie root', () => {
    expect(toHex(keccak256(Uint8Array.of(0x80)))).toBe(toHex(EMPTY_ROOT))
  })
})
