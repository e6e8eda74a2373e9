import { readFileSync } from 'node:fs'
import { keccak256 } from '../../src/trie/keccak.js'
import { compareBytes } from '../../src/util/bytes.js'
import { fromHex, toHex } from '../../src/util/hex.js'

/** Loading the conformance vectors of `fixtures/vectors/` (formats in its SOURCES.md). */

const VECTORS = new URL('../../fixtures/vectors/', import.meta.url)

export function readVector<T>(path: string): T {
  return JSON.parse(readFileSync(new URL(path, VECTORS), 'utf8')) as T
}

export interface GethStackTrieVectors {
  groups: { comment: string; steps: { key: string; valueUtf8: string; rootAfter: string }[] }[]
}

export const ROOT_TEST_FILES = [
  'trietest.json',
  'trietest_secureTrie.json',
  'trieanyorder.json',
  'trieanyorder_secureTrie.json',
  'hex_encoded_securetrie_test.json'
] as const

interface TrieTestCase {
  in: [string, string | null][] | Record<string, string>
  root: string
  hexEncoded?: boolean
}

export interface RootCase {
  name: string
  /** The final contents, ascending by trie key (already hashed for the secure variants). */
  entries: [Uint8Array, Uint8Array][]
  root: string
}

/**
 * Every case of an ethereum/tests trie file, reduced to its final contents: ordered lists are replayed
 * into a map (a `null` or empty value deletes), then sorted, which is all a bottom-up builder needs.
 */
export function rootCases(file: (typeof ROOT_TEST_FILES)[number]): RootCase[] {
  const secure = file.includes('secure')
  const cases = readVector<Record<string, TrieTestCase>>(`trietests/${file}`)
  return Object.entries(cases).map(([name, test]) => {
    const decode = (s: string): Uint8Array =>
      test.hexEncoded === true || s.startsWith('0x') ? fromHex(s) : new TextEncoder().encode(s)
    const ops: [string, string | null][] = Array.isArray(test.in) ? test.in : Object.entries(test.in)
    const state = new Map<string, [Uint8Array, Uint8Array]>()
    for (const [k, v] of ops) {
      const key = secure ? keccak256(decode(k)) : decode(k)
      const value = v === null ? new Uint8Array(0) : decode(v)
      if (value.length === 0) state.delete(toHex(key))
      else state.set(toHex(key), [key, value])
    }
    const entries = [...state.values()].sort((a, b) => compareBytes(a[0], b[0]))
    return { name, entries, root: test.root }
  })
}
