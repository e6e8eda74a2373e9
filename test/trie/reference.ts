import { createMPT } from '@ethereumjs/mpt'

/**
 * The reference implementation, @ethereumjs/mpt, over a database we can list. With `useNodePruning` it
 * deletes every node an update makes stale, so what its database holds afterwards is exactly the live
 * node set of the final trie. Slow (a few thousand puts a second): small tries only.
 */
export async function referenceTrie(
  entries: Iterable<readonly [Uint8Array, Uint8Array]>
): Promise<{ root: Uint8Array; nodes: Map<string, Uint8Array> }> {
  const db = new ListableDb()
  const trie = await createMPT({ db, useNodePruning: true, valueEncoding: 'view' })
  for (const [key, value] of entries) await trie.put(key, value)
  const nodes = new Map<string, Uint8Array>()
  for (const [key, value] of db.map) nodes.set(`0x${key}`, value)
  return { root: trie.root(), nodes }
}

/** The smallest `DB` mpt accepts: keys are unprefixed hex strings, values bytes (`valueEncoding: 'view'`). */
class ListableDb {
  readonly map = new Map<string, Uint8Array>()

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.map.get(key)
  }

  async put(key: string, value: string | Uint8Array): Promise<void> {
    this.map.set(key, asBytes(value))
  }

  async del(key: string): Promise<void> {
    this.map.delete(key)
  }

  async batch(ops: ({ type: 'put'; key: string; value: string | Uint8Array } | { type: 'del'; key: string })[]) {
    for (const op of ops) {
      if (op.type === 'put') this.map.set(op.key, asBytes(op.value))
      else this.map.delete(op.key)
    }
  }

  shallowCopy(): ListableDb {
    return this
  }

  async open(): Promise<void> {}
}

function asBytes(value: string | Uint8Array): Uint8Array {
  if (typeof value !== 'string') return value
  throw new Error(`mpt wrote a string value (${value.slice(0, 16)}…), expected bytes`)
}

/** Hex keys of a map, sorted: for comparing node sets. */
export function sortedKeys(map: { keys(): Iterable<string> }): string[] {
  return [...map.keys()].sort()
}

