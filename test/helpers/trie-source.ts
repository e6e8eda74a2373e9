import { createMPT } from '@ethereumjs/mpt'
import { MemoryStore } from '../../src/store/memory-store.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { decodeNode, nodeChildren } from '../../src/trie/node.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { checkStoredSubtries } from '../../src/trie/walk.js'

export interface SourceTrie {
  root: Uint8Array
  /** Every node reachable from the root, by hex hash. */
  nodes: Map<string, Uint8Array>
  store: MemoryStore
}

/**
 * Builds a trie with @ethereumjs/mpt (the reference implementation) and keeps exactly the nodes reachable
 * from its root. Slow (a few thousand puts a second): for small test tries only.
 */
export async function buildSourceTrie(entries: Iterable<[Uint8Array, Uint8Array]>): Promise<SourceTrie> {
  const trie = await createMPT({ useNodePruning: true })
  for (const [k, v] of entries) await trie.put(k, v)
  const root = trie.root()
  const db = trie.database()
  const nodes = new Map<string, Uint8Array>()
  const stack = [root]
  while (stack.length > 0) {
    const hash = stack.pop()!
    const key = toHex(hash)
    if (nodes.has(key)) continue
    const blob = (await db.get(hash)) as Uint8Array | undefined
    if (blob === undefined) {
      if (nodes.size === 0 && trie.root().length === 32) break // empty trie
      throw new Error(`reference trie lacks node ${key}`)
    }
    if (toHex(keccak256(blob)) !== key) throw new Error(`reference trie node ${key} has the wrong hash`)
    nodes.set(key, blob)
    for (const c of nodeChildren(decodeNode(blob), new Uint8Array(0)).children) stack.push(c.hash)
  }
  const store = new MemoryStore()
  for (const [k, blob] of nodes) await store.put(hexKey(k), blob)
  return { root, nodes, store }
}

function hexKey(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.slice(2), 'hex'))
}

/**
 * The store-wide form of the sync invariant, through the library's own checker: the stored nodes whose
 * subtrie is not wholly stored (empty exactly when every stored node's subtrie is complete), as hex hashes.
 */
export async function incompleteNodes(store: MemoryStore): Promise<string[]> {
  const check = await checkStoredSubtries(
    store,
    [...store.keys()].map((key) => hexKey(key))
  )
  return check.incomplete.map(toHex)
}

/** Random key/value pairs; `valueBytes` small (≤ 4) makes embedded nodes appear. */
export function randomEntries(seed: number, count: number, keyBytes = 32, valueBytes = 40): [Uint8Array, Uint8Array][] {
  const prng = new Prng(seed)
  const out: [Uint8Array, Uint8Array][] = []
  for (let i = 0; i < count; i++) {
    const v = prng.bytes(valueBytes)
    v[0] = v[0]! | 1 // never an all-zero-length/empty value
    out.push([prng.bytes(keyBytes), v])
  }
  return out
}

/** A store holding the nodes of every one of `tries`: a server of several roots. */
export async function storeOfTries(...tries: SourceTrie[]): Promise<MemoryStore> {
  const store = new MemoryStore()
  for (const trie of tries) for (const [k, blob] of trie.nodes) await store.put(hexKey(k), blob)
  return store
}
