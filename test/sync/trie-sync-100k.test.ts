import { describe, expect, it } from 'vitest'
import { IDEAL_BATCH_BYTES, MAX_NODES_PER_REQUEST } from '../../src/constants.js'
import { accountEntries } from '../../src/fixtures/generate.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { TrieSync } from '../../src/sync/trie-sync.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import { trieGet } from '../../src/trie/walk.js'

describe('TrieSync at scale', () => {
  it('syncs a 100k-key account trie through the scheduler alone, equal to the source', async () => {
    const entries = accountEntries(7, 100_000)
    const source = new MemoryStore()
    const { root, nodes } = await importSorted(source, entries)
    const target = new MemoryStore()
    const sync = new TrieSync(root, target)
    let requested = 0
    while (sync.pending > 0) {
      const hashes = sync.missing(MAX_NODES_PER_REQUEST)
      expect(hashes.length).toBeGreaterThan(0)
      requested += hashes.length
      // The in-process peer answers from the source store, in reverse order to exercise matching by hash.
      const blobs = (await source.getMany(hashes)).reverse() as Uint8Array[]
      const results = await sync.processMany(blobs)
      expect(results.every((r) => r.ok)).toBe(true)
      if (sync.memSize >= IDEAL_BATCH_BYTES) await sync.commit()
    }
    await sync.commit()
    expect(requested).toBe(nodes)
    expect(target.size).toBe(source.size)
    for (const key of source.keys()) expect(target.has(key)).toBe(true)
    // Every key reads back with its value from the synced store (a sample keeps the test quick).
    for (let i = 0; i < entries.length; i += 997) {
      expect(await trieGet(target, root, entries[i]![0])).toEqual(entries[i]![1])
    }
  }, 60_000)
})
