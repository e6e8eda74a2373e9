import { compareBytes } from '../../src/util/bytes.js'
import { toHex } from '../../src/util/hex.js'
import type { Prng } from '../../src/util/prng.js'

/** The shape of a random trie for property tests. */
export interface TrieShape {
  name: string
  /** Exact key length, or a range; with a small `alphabet`, short ranges make keys that prefix each other. */
  keyBytes: number | [min: number, max: number]
  /** Bytes keys are drawn from; any byte when absent. */
  alphabet?: number[]
  valueBytes: [min: number, max: number]
}

export const SHAPES: TrieShape[] = [
  { name: 'accounts: 32-byte keys, ~70-byte values', keyBytes: 32, valueBytes: [68, 80] },
  { name: 'tiny values: 32-byte keys, 1-3 byte values', keyBytes: 32, valueBytes: [1, 3] },
  { name: 'short keys, tiny values (embedded nodes)', keyBytes: [1, 3], valueBytes: [1, 4] },
  {
    name: 'variable keys with prefixes, empty key included',
    keyBytes: [0, 5],
    alphabet: [0x00, 0x01, 0x10, 0x7f, 0x80, 0xff],
    valueBytes: [1, 40]
  },
  { name: 'topic-like: 8-byte keys, mixed values', keyBytes: 8, alphabet: [0, 1, 2, 3], valueBytes: [1, 64] },
  { name: 'large values: multi-block nodes, some past a slab share', keyBytes: [1, 4], valueBytes: [100, 5000] }
]

/** Up to `count` distinct entries of `shape` in ascending key order (fewer when the key space is small). */
export function randomEntries(prng: Prng, shape: TrieShape, count: number): [Uint8Array, Uint8Array][] {
  const byKey = new Map<string, [Uint8Array, Uint8Array]>()
  // Bounded attempts: a small alphabet with short keys has fewer distinct keys than some counts ask for.
  for (let attempt = 0; attempt < count * 4 && byKey.size < count; attempt++) {
    const [minKey, maxKey] = typeof shape.keyBytes === 'number' ? [shape.keyBytes, shape.keyBytes] : shape.keyBytes
    const key = new Uint8Array(minKey + prng.int(maxKey - minKey + 1))
    for (let i = 0; i < key.length; i++) {
      key[i] = shape.alphabet === undefined ? prng.int(256) : shape.alphabet[prng.int(shape.alphabet.length)]!
    }
    const [minValue, maxValue] = shape.valueBytes
    const value = prng.bytes(minValue + prng.int(maxValue - minValue + 1))
    byKey.set(toHex(key), [key, value])
  }
  return [...byKey.values()].sort((a, b) => compareBytes(a[0], b[0]))
}
