import { describe, expect, it } from 'vitest'
import { MAX_CACHED_ITEM_BYTES } from '../../src/constants.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { ItemCache } from '../../src/topic/item-cache.js'
import { HASH_RUN } from '../../src/topic/topic-keys.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { CountingStore, GatedStore, randomItems } from './store-helpers.js'

const ITEM_PREFIX = 0x69

const hex = (items: { data: Uint8Array }[]): string[] => items.map((i) => toHex(i.data))

describe('ItemCache', () => {
  it('keeps at most its bytes, dropping the least recently used, and never shares its copies', () => {
    const cache = new ItemCache(100, 40)
    const item = (byte: number, length: number) => new Uint8Array(length).fill(byte)
    cache.put(1, 0, item(1, 40))
    cache.put(1, 1, item(2, 40))
    expect(cache.get(1, 0)).toEqual(item(1, 40)) // 0 is now the most recent
    cache.put(1, 2, item(3, 40)) // 120 bytes: the least recent, 1, goes
    expect(cache.get(1, 1)).toBeUndefined()
    expect(cache.get(1, 0)).toEqual(item(1, 40))
    expect(cache.size).toBe(80)
    // Too large to cache; another generation's item is another entry.
    cache.put(1, 3, item(4, 41))
    expect(cache.get(1, 3)).toBeUndefined()
    expect(cache.get(2, 0)).toBeUndefined()
    // Changing what was put, or what was got, changes nothing cached.
    const given = item(5, 10)
    cache.put(1, 4, given)
    given.fill(0)
    const got = cache.get(1, 4)!
    got.fill(0)
    expect(cache.get(1, 4)).toEqual(item(5, 10))
  })
})

describe('TopicStore item cache', () => {
  it('serves a range read again from memory, not the store', async () => {
    const store = new CountingStore()
    const topics = new TopicStore(store)
    const items = randomItems(new Prng(1), 600)
    await topics.appendMany('t', items)
    const first = await topics.getContents('t', 100, 256)
    const before = store.keysRead
    const again = await topics.getContents('t', 100, 256)
    expect(hex(again)).toEqual(hex(first))
    expect(store.keysRead).toBe(before)
    // A range that overlaps reads only what is not cached.
    await topics.getContents('t', 300, 256)
    expect(store.keysRead).toBe(before + 200)
    expect(hex(await topics.getContents('t', 0, 600))).toEqual(items.map(toHex))
  })

  it('never serves a cached item after a truncate put other data under its number', async () => {
    const topics = new TopicStore(new CountingStore())
    const prng = new Prng(2)
    const first = randomItems(prng, 50)
    await topics.appendMany('t', first)
    expect(hex(await topics.getContents('t', 0, 50))).toEqual(first.map(toHex))
    await topics.truncate('t', 19)
    const second = randomItems(prng, 30)
    await topics.appendMany('t', second)
    expect(hex(await topics.getContents('t', 0, 50))).toEqual([...first.slice(0, 20), ...second].map(toHex))
  })

  it('does not cache what a read took from the store before a truncate finished', async () => {
    const store = new GatedStore()
    const topics = new TopicStore(store)
    const prng = new Prng(3)
    const first = randomItems(prng, 40)
    await topics.appendMany('t', first)
    // The read takes items 10..39 from the store, then waits while they are truncated and replaced.
    const holding = store.holdNextRead(ITEM_PREFIX)
    const reading = topics.getContents('t', 10, 30)
    const release = await holding
    await topics.truncate('t', 9)
    const second = randomItems(prng, 30)
    await topics.appendMany('t', second)
    release()
    expect(hex(await reading)).toEqual(first.slice(10).map(toHex))
    expect(hex(await topics.getContents('t', 10, 30))).toEqual(second.map(toHex))
  })

  it('returns items the caller may change, and caches nothing with itemCacheBytes 0', async () => {
    const store = new CountingStore()
    const topics = new TopicStore(store)
    const items = randomItems(new Prng(4), 10)
    await topics.appendMany('t', items)
    for (const item of await topics.getContents('t', 0, 10)) item.data.fill(0)
    for (const item of await topics.getContents('t', 0, 10)) item.data.fill(0)
    expect(hex(await topics.getContents('t', 0, 10))).toEqual(items.map(toHex))

    const uncached = new CountingStore()
    const plain = new TopicStore(uncached, { itemCacheBytes: 0 })
    await plain.appendMany('t', items)
    await plain.getContents('t', 0, 10)
    const before = uncached.keysRead
    await plain.getContents('t', 0, 10)
    expect(uncached.keysRead).toBe(before + 10)
    expect(() => new TopicStore(uncached, { itemCacheBytes: -1 })).toThrow(/itemCacheBytes/)
  })

  it('reads the full hash runs of a hashes request again from memory, and none of a truncated run', async () => {
    const store = new CountingStore()
    const topics = new TopicStore(store)
    const prng = new Prng(6)
    const items = Array.from({ length: 3 * HASH_RUN + 10 }, () => prng.bytes(1 + prng.int(40)))
    await topics.appendMany('t', items)
    const first = await topics.getContentHashes('t', 0, 3 * HASH_RUN - 1)
    const before = store.keysRead
    expect((await topics.getContentHashes('t', 0, 3 * HASH_RUN - 1)).map(toHex)).toEqual(first.map(toHex))
    expect(store.keysRead).toBe(before)
    // Run 2 is truncated and its items replaced: its new hashes, not the cached run.
    await topics.truncate('t', 2 * HASH_RUN + 9)
    const replaced = Array.from({ length: HASH_RUN }, () => prng.bytes(1 + prng.int(40)))
    await topics.appendMany('t', replaced)
    const expected = [...items.slice(0, 2 * HASH_RUN + 10), ...replaced].slice(0, 3 * HASH_RUN).map((i) => toHex(keccak256(i)))
    expect((await topics.getContentHashes('t', 0, 3 * HASH_RUN - 1)).map(toHex)).toEqual(expected)
  })

  it('reads items larger than MAX_CACHED_ITEM_BYTES from the store each time', async () => {
    const store = new CountingStore()
    const topics = new TopicStore(store)
    const prng = new Prng(5)
    await topics.appendMany('t', [prng.bytes(MAX_CACHED_ITEM_BYTES + 1), prng.bytes(10)])
    await topics.getContents('t', 0, 2)
    const before = store.keysRead
    await topics.getContents('t', 0, 2)
    expect(store.keysRead).toBe(before + 1)
  })
})
