import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Item } from '../../src/fsm/types.js'
import type { TopicConfig } from '../../src/service/dsfg-service.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { recordSignedCheckpoint, type SignedCheckpoint } from '../../src/topic/checkpoint-record.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { StackTrie } from '../../src/trie/stack-trie.js'
import { uint64BE } from '../../src/util/bytes.js'
import { Prng } from '../../src/util/prng.js'

/** Items `0 .. count-1` with seeded random contents of 1 to `maxBytes` bytes. */
export function makeItems(count: number, seed = 1, maxBytes = 40): Item[] {
  const prng = new Prng(seed)
  return Array.from({ length: count }, (_v, n) => ({ n, data: prng.bytes(1 + prng.int(maxBytes)) }))
}

/**
 * The topic trie root over `items`: item `i` under `uint64BE(i)`, built in a fresh `StackTrie`, independently
 * of the `TopicStore` under test. Callers holding `Item`s pass `items.map((i) => i.data)`: a topic's items are
 * numbered from 0 without gaps, so the index is the number.
 */
export function topicRoot(items: readonly Uint8Array[]): Uint8Array {
  const trie = new StackTrie()
  for (let i = 0; i < items.length; i++) trie.insert(uint64BE(i), items[i]!)
  return trie.root()
}

/** The topic trie roots over items `0..k` for every `k`, in one pass (each a peek of one growing trie). */
export function topicRoots(items: readonly Uint8Array[]): Uint8Array[] {
  const trie = new StackTrie()
  return items.map((item, i) => {
    trie.insert(uint64BE(i), item)
    return trie.peekRoot(() => {})
  })
}

/** Items per `getContents` call when reading a whole topic back. */
const READ_PAGE = 1024

/**
 * Every item of `topic` that `topics` holds, `0..head` (by default its own head), read back a page at a time.
 * A short page ends the read: what a store missing items in the middle returns is then visibly short.
 */
export async function storedItems(
  topics: Pick<TopicStore, 'head' | 'getContents'>,
  topic: string,
  head?: number
): Promise<Item[]> {
  const last = head ?? (await topics.head(topic))
  const out: Item[] = []
  for (let from = 0; from <= last; from += READ_PAGE) {
    const page = await topics.getContents(topic, from, Math.min(READ_PAGE, last - from + 1))
    out.push(...page)
    if (page.length < Math.min(READ_PAGE, last - from + 1)) break
  }
  return out
}

/**
 * A source for the items-only downloader over links: `count` seeded random items of `itemBytes` in a fresh
 * `MemoryStore`, a checkpoint of them signed by a new key, and the topic's config trusting that key without
 * checkpoint sync.
 */
export async function signedItemsSource(
  topic: string,
  count: number,
  itemBytes: number,
  seed: number
): Promise<{ store: MemoryStore; items: Uint8Array[]; record: SignedCheckpoint; config: TopicConfig }> {
  const store = new MemoryStore()
  const prng = new Prng(seed)
  const items = Array.from({ length: count }, () => prng.bytes(itemBytes))
  await new TopicStore(store).appendMany(topic, items)
  const record = (await recordSignedCheckpoint(new TopicStore(store), topic, await generateKeyPair('Ed25519')))!
  return { store, items, record, config: { name: topic, publisher: record.signer, checkpointSync: false } }
}
