import { createMPT } from '@ethereumjs/mpt'
import { EMPTY_ROOT, MemoryStore } from '../../src/index.js'
import { decodeNode, nodeChildren } from '../../src/trie/node.js'
import { compareBytes } from '../../src/util/bytes.js'
import { toHex } from '../../src/util/hex.js'
import type { SeededRandom } from '../helpers/random.js'

/** The project's PRNG, for `bench/proof.ts`, which imports it from here. */
export { Prng } from '../../src/util/prng.js'

export interface Entry {
  key: Uint8Array
  value: Uint8Array
}

export interface BuiltTrie {
  root: Uint8Array
  store: MemoryStore
  /** The trie's entries in ascending key order. */
  entries: Entry[]
}

/**
 * Builds the trie of `entries` with @ethereumjs/mpt (an independent implementation) and copies the nodes
 * reachable from its root into a MemoryStore, each under its hash: the root always (mpt keeps it under the
 * keccak of its RLP even when it is shorter than 32 bytes), other nodes only when referenced by hash.
 * Later entries overwrite earlier ones with the same key.
 */
export async function buildTrie(entries: Entry[]): Promise<BuiltTrie> {
  const mpt = await createMPT()
  const byKey = new Map<string, Entry>()
  for (const e of entries) {
    await mpt.put(e.key, e.value)
    byKey.set(toHex(e.key), e)
  }
  const root = mpt.root()
  const store = new MemoryStore()
  const sorted = [...byKey.values()].sort((x, y) => compareBytes(x.key, y.key))
  if (sorted.length === 0) return { root: EMPTY_ROOT, store, entries: sorted }
  const db = mpt.database()
  const pending: { hash: Uint8Array; path: Uint8Array }[] = [{ hash: root, path: new Uint8Array(0) }]
  while (pending.length > 0) {
    const { hash, path } = pending.pop()!
    const blob = (await db.get(hash)) as Uint8Array | undefined
    if (blob === undefined) throw new Error(`mpt lost node ${toHex(hash)}`)
    await store.put(hash, blob)
    pending.push(...nodeChildren(decodeNode(blob), path).children)
  }
  return { root, store, entries: sorted }
}

/**
 * go-ethereum's `randomTrie(n)` from trie/proof_test.go: 200 small entries (keys 0..109 left-padded to 32
 * bytes, one-byte values, which makes embedded nodes) and `n` random 32-byte keys with 20-byte values.
 */
export function gethRandomEntries(rng: SeededRandom, n: number): Entry[] {
  const entries: Entry[] = []
  for (let i = 0; i < 100; i++) {
    entries.push({ key: leftPad32(i), value: Uint8Array.of(i) })
    entries.push({ key: leftPad32(i + 10), value: Uint8Array.of(i) })
  }
  for (let i = 0; i < n; i++) entries.push({ key: rng.bytes(32), value: rng.bytes(20) })
  return entries
}

/**
 * Short keys of varying length over a small alphabet (so they share prefixes and some are prefixes of others,
 * putting values into branch nodes) and values from 1 to 40 bytes (so many nodes are embedded).
 */
export function variableEntries(rng: SeededRandom, n: number): Entry[] {
  const entries: Entry[] = []
  for (let i = 0; i < n; i++) {
    const key = new Uint8Array(rng.int(5))
    for (let j = 0; j < key.length; j++) key[j] = rng.pick([0x00, 0x01, 0x10, 0x11, 0xab, 0xff])
    entries.push({ key, value: rng.bytes(1 + rng.int(40)) })
  }
  return entries
}

export function leftPad32(n: number): Uint8Array {
  const out = new Uint8Array(32)
  out[31] = n
  return out
}

/** The next key of the same length (wrapping around at the top), as go-ethereum's `increaseKey`. */
export function increaseKey(key: Uint8Array): Uint8Array {
  const out = key.slice()
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = (out[i]! + 1) & 0xff
    if (out[i] !== 0) break
  }
  return out
}

/** The previous key of the same length (wrapping around at the bottom), as go-ethereum's `decreaseKey`. */
export function decreaseKey(key: Uint8Array): Uint8Array {
  const out = key.slice()
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = (out[i]! - 1) & 0xff
    if (out[i] !== 0xff) break
  }
  return out
}

/** The value the sorted `entries` hold for `key`, or `null`. */
export function lookup(entries: Entry[], key: Uint8Array): Uint8Array | null {
  let lo = 0
  let hi = entries.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const c = compareBytes(entries[mid]!.key, key)
    if (c === 0) return entries[mid]!.value
    if (c < 0) lo = mid + 1
    else hi = mid
  }
  return null
}
