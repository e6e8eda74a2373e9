import { describe, expect, it } from 'vitest'
import { MAX_HASHES_PER_REQUEST } from '../../src/constants.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { HASH_RUN, hashRunKey, topicId } from '../../src/topic/topic-keys.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { until } from '../helpers/wait.js'
import { CountingStore, copyTrie, GatedStore, randomItems } from './store-helpers.js'

const hashesOf = (items: Uint8Array[], from: number, to: number): string[] =>
  items.slice(from, to + 1).map((i) => toHex(keccak256(i)))

async function stored(topics: TopicStore, from: number, to: number): Promise<string[]> {
  return (await topics.getContentHashes('t', from, to)).map(toHex)
}

/** Every range that starts or ends at a run boundary, next to one, or in the middle of a run, checked against keccak. */
async function expectEveryRange(topics: TopicStore, items: Uint8Array[]): Promise<void> {
  const head = items.length - 1
  const edges = [0, 1, HASH_RUN - 1, HASH_RUN, HASH_RUN + 1, 2 * HASH_RUN - 1, 2 * HASH_RUN, 3 * HASH_RUN + 100, head - 1, head]
  for (const from of edges.filter((n) => n >= 0 && n <= head)) {
    for (const to of [...edges, head + 50].filter((n) => n >= from)) {
      expect(await stored(topics, from, to), `hashes ${from}..${to}`).toEqual(hashesOf(items, from, Math.min(to, head)))
    }
  }
}

describe('TopicStore: item hashes read through hash runs', () => {
  const items = randomItems(new Prng(31), 4 * HASH_RUN + 77)

  it('serves the right hashes for every range, written in batches that cross run boundaries', async () => {
    const topics = new TopicStore(new MemoryStore(), { batchBytes: 3000 })
    for (let n = 0; n < items.length; ) {
      const size = 1 + ((n * 7) % 301)
      await topics.appendMany('t', items.slice(n, n + size))
      n += size
    }
    await expectEveryRange(topics, items)
  })

  it('reads a full hashes request in one key per run, not one per item', async () => {
    const many = randomItems(new Prng(32), MAX_HASHES_PER_REQUEST + 300).map((item) => item.subarray(0, 8))
    const store = new CountingStore()
    // Without the cache, so each read below counts its keys (the cache is tested in topic-store-item-cache).
    const topics = new TopicStore(store, { itemCacheBytes: 0 })
    await topics.appendMany('t', many)
    store.keysRead = 0
    const hashes = await topics.getContentHashes('t', 100, 100 + MAX_HASHES_PER_REQUEST - 1)
    expect(hashes.map(toHex)).toEqual(hashesOf(many, 100, 100 + MAX_HASHES_PER_REQUEST - 1))
    // The 33 runs it touches, the partial ones at either end included (all are full: the head is past them).
    expect(store.keysRead).toBe(MAX_HASHES_PER_REQUEST / HASH_RUN + 1)
    // Up to the head, the open run past the last full one is read item by item.
    store.keysRead = 0
    const head = many.length - 1
    expect((await topics.getContentHashes('t', head - 300, head)).map(toHex)).toEqual(hashesOf(many, head - 300, head))
    expect(store.keysRead).toBe(2 + (head - Math.floor((head + 1) / HASH_RUN) * HASH_RUN + 1))
  })

  it('never serves a run written before a truncate: the items that replace it write it again', async () => {
    const topics = new TopicStore(new MemoryStore())
    await topics.appendMany('t', items)
    await topics.truncate('t', HASH_RUN + 10)
    const prng = new Prng(33)
    const replaced = [...items.slice(0, HASH_RUN + 11), ...Array.from({ length: 3 * HASH_RUN }, () => prng.bytes(1 + prng.int(40)))]
    // Appended one at a time across the truncated runs, then checked on fresh entries (a restart) as well.
    for (const item of replaced.slice(HASH_RUN + 11)) await topics.append('t', item)
    await expectEveryRange(topics, replaced)
    const store = (topics as unknown as { store: MemoryStore }).store
    await expectEveryRange(new TopicStore(store), replaced)
  })

  it('falls back to the per-item hashes in a store written before hash runs, and writes runs as it goes on', async () => {
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    await topics.appendMany('t', items.slice(0, 3 * HASH_RUN + 5))
    const id = topicId('t')
    for (let run = 0; run < 3; run++) await store.del(hashRunKey(id, run))
    const reopened = new TopicStore(store)
    await reopened.appendMany('t', items.slice(3 * HASH_RUN + 5))
    expect(await store.get(hashRunKey(id, 3))).toBeDefined()
    await expectEveryRange(reopened, items)
    // Those reads wrote the missing runs back, in the background: the next full read is one key a run.
    await until(async () => (await store.get(hashRunKey(id, 2))) !== undefined, 'the missing runs to be written back')
    for (let run = 0; run < 3; run++) expect(await store.get(hashRunKey(id, run)), `run ${run}`).toBeDefined()
    await expectEveryRange(new TopicStore(store), items)
  })

  it('a run written back for a read never outlives a truncate and append that came between the read and the write', async () => {
    const store = new GatedStore()
    const topics = new TopicStore(store)
    await topics.appendMany('t', items.slice(0, 2 * HASH_RUN))
    const id = topicId('t')
    for (let run = 0; run < 2; run++) await store.del(hashRunKey(id, run))
    const reopened = new TopicStore(store)
    await reopened.head('t')
    // The read's item-by-item hashes are read now and handed over only after the truncate and the append.
    const holding = store.holdNextRead(0x68)
    const read = reopened.getContentHashes('t', HASH_RUN, 2 * HASH_RUN - 1)
    const release = await holding
    await reopened.truncate('t', HASH_RUN + 9)
    const prng = new Prng(35)
    const replaced = [...items.slice(0, HASH_RUN + 10), ...Array.from({ length: HASH_RUN - 10 }, () => prng.bytes(1 + prng.int(40)))]
    await reopened.appendMany('t', replaced.slice(HASH_RUN + 10))
    release()
    await read
    await new Promise((r) => setTimeout(r, 50))
    await expectEveryRange(new TopicStore(store), replaced)
  })

  it('adopting a synced trie writes the runs of the adopted items', async () => {
    const publisher = new TopicStore(new MemoryStore())
    await publisher.appendMany('t', items)
    const { root } = (await publisher.checkpoint('t'))!
    const nodes = await copyTrie((publisher as unknown as { store: MemoryStore }).store, root)
    const topics = new TopicStore(nodes, { batchBytes: 5000 })
    await topics.appendMany('t', items.slice(0, HASH_RUN + 3))
    await topics.adoptTrie('t', root, items.length - 1)
    const id = topicId('t')
    for (let run = 0; run < Math.floor(items.length / HASH_RUN); run++) {
      expect(await nodes.get(hashRunKey(id, run)), `run ${run}`).toBeDefined()
    }
    await expectEveryRange(topics, items)
    const more = randomItems(new Prng(34), HASH_RUN)
    await topics.appendMany('t', more)
    await expectEveryRange(topics, [...items, ...more])
  })
})
