import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_ITEM_BYTES, MAX_TOPIC_BYTES } from '../../src/constants.js'
import {
  AbortError,
  InvalidInputError,
  ItemOutOfOrderError,
  MissingNodeError,
  StoreError,
  TopicTrieError
} from '../../src/errors.js'
import { verifyProof } from '../../src/proof/proof.js'
import { LevelStore } from '../../src/store/level-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { EMPTY_ROOT, keccak256 } from '../../src/trie/keccak.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import { checkTrieComplete, walkTrie, type WalkedNode } from '../../src/trie/walk.js'
import { hashKey, itemKey, metaKey, topicId } from '../../src/topic/topic-keys.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { uint64BE } from '../../src/util/bytes.js'
import { fromHex, toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { referenceTrie } from '../trie/reference.js'
import { topicRoot, topicRoots } from '../helpers/topic-data.js'
import { copyTrie, FlakyStore, randomItems } from './store-helpers.js'

const hex = toHex

async function expectComplete(store: MemoryStore, root: Uint8Array, what: string): Promise<void> {
  const check = await checkTrieComplete(store, root)
  expect(check.complete, `${what}: missing ${check.missing.map(hex).join(', ')}`).toBe(true)
}

/** Every 32-byte key in the store is a trie node stored under its own hash: topic keys never take that shape. */
async function expectOnlyNodesAt32Bytes(store: MemoryStore): Promise<void> {
  for (const key of store.keys()) {
    if (key.length !== 2 + 64) continue
    const blob = (await store.get(fromHex(key)))!
    expect(hex(keccak256(blob))).toBe(key)
  }
}

describe('TopicStore: the topic trie', () => {
  it('root(k) after every append equals a fresh StackTrie (and mpt for small k), stored whole', async () => {
    const prng = new Prng(1)
    const items = randomItems(prng, 200)
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    expect(hex(await topics.root('t'))).toBe(hex(EMPTY_ROOT))
    for (let k = 0; k < items.length; k++) {
      expect(await topics.append('t', items[k]!)).toBe(k)
      const root = await topics.root('t')
      expect(hex(root), `root(${k})`).toBe(hex(topicRoot(items.slice(0, k + 1))))
      if (k < 24) {
        const reference = await referenceTrie(items.slice(0, k + 1).map((item, i) => [uint64BE(i), item] as const))
        expect(hex(root), `mpt root(${k})`).toBe(hex(reference.root))
      }
      await expectComplete(store, root, `root(${k})`)
    }
    await expectOnlyNodesAt32Bytes(store)
  })

  it('appendMany over several batches gives the same roots, heads and items as single appends', async () => {
    const items = randomItems(new Prng(2), 400)
    const store = new MemoryStore()
    // A small batch size so the 400 items take many batches.
    const topics = new TopicStore(store, { batchBytes: 2000 })
    expect(await topics.appendMany('t', items.slice(0, 150))).toBe(149)
    expect(await topics.appendMany('t', [])).toBe(149)
    const at149 = await topics.checkpoint('t')
    expect(at149).toEqual({ number: 149, root: topicRoot(items.slice(0, 150)) })
    expect(await topics.appendMany('t', items.slice(150))).toBe(399)
    const root = await topics.root('t')
    expect(hex(root)).toBe(hex(topicRoot(items)))
    await expectComplete(store, root, 'root(399)')
    await expectComplete(store, at149!.root, 'the older checkpoint root')
    expect((await topics.getContents('t', 0, 400)).map((i) => hex(i.data))).toEqual(items.map(hex))
  })

  it('proves random items against the current root and against an older checkpoint root', async () => {
    const prng = new Prng(3)
    const items = randomItems(prng, 300)
    const topics = new TopicStore(new MemoryStore())
    await topics.appendMany('t', items.slice(0, 120))
    const old = (await topics.checkpoint('t'))!
    await topics.appendMany('t', items.slice(120))
    const root = await topics.root('t')
    for (let i = 0; i < 40; i++) {
      const n = prng.int(300)
      expect(hex(verifyProof(root, uint64BE(n), await topics.proveItem('t', n))!), `item ${n}`).toBe(hex(items[n]!))
      const m = prng.int(120)
      const proof = await topics.proveItem('t', m, old.root)
      expect(hex(verifyProof(old.root, uint64BE(m), proof)!), `item ${m} at checkpoint 119`).toBe(hex(items[m]!))
    }
    // Past the head, and past the older checkpoint: proofs of absence.
    expect(verifyProof(root, uint64BE(300), await topics.proveItem('t', 300))).toBeNull()
    expect(verifyProof(old.root, uint64BE(200), await topics.proveItem('t', 200, old.root))).toBeNull()
    await expect(topics.proveItem('t', 0, keccak256(Uint8Array.of(1)))).rejects.toBeInstanceOf(MissingNodeError)
  })

  it('concurrent appends get distinct consecutive numbers, each holding its own item', async () => {
    const items = randomItems(new Prng(4), 150)
    const topics = new TopicStore(new MemoryStore())
    const numbers = await Promise.all(items.map((item) => topics.append('t', item)))
    expect([...numbers].sort((a, b) => a - b)).toEqual(items.map((_, i) => i))
    for (let i = 0; i < items.length; i++) expect(hex((await topics.getItem('t', numbers[i]!))!)).toBe(hex(items[i]!))
    const ordered = numbers.map((n, i) => [n, items[i]!] as const).sort((a, b) => a[0] - b[0])
    expect(hex(await topics.root('t'))).toBe(hex(topicRoot(ordered.map(([, item]) => item))))
  })

  it('keeps two topics in one store apart', async () => {
    const prng = new Prng(5)
    const a = randomItems(prng, 90)
    const b = randomItems(prng, 60)
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    const writes: Promise<number>[] = []
    for (let i = 0; i < 90; i++) {
      writes.push(topics.append('a', a[i]!))
      if (i < 60) writes.push(topics.append('b', b[i]!))
    }
    await Promise.all(writes)
    expect(await topics.head('a')).toBe(89)
    expect(await topics.head('b')).toBe(59)
    expect(await topics.head('c')).toBe(-1)
    expect(hex(await topics.root('a'))).toBe(hex(topicRoot(a)))
    expect(hex(await topics.root('b'))).toBe(hex(topicRoot(b)))
    expect((await topics.getContents('b', 0, 100)).map((i) => hex(i.data))).toEqual(b.map(hex))
    await topics.checkpoint('a')
    expect(await topics.getCheckpoint('b')).toBeNull()
    expect(await topics.getCurrentTopicState('c')).toBeNull()
    await expectOnlyNodesAt32Bytes(store)
  })
})

describe('TopicStore: serving', () => {
  const items = randomItems(new Prng(6), 50)

  async function filled(): Promise<TopicStore> {
    const topics = new TopicStore(new MemoryStore())
    await topics.appendMany('t', items)
    return topics
  }

  it('getContents: ranges, prefixes past the head, nothing from past the head', async () => {
    const topics = await filled()
    const numbers = async (from: number, amount: number) =>
      (await topics.getContents('t', from, amount)).map((item) => {
        expect(hex(item.data)).toBe(hex(items[item.n]!))
        return item.n
      })
    expect(await numbers(0, 3)).toEqual([0, 1, 2])
    expect(await numbers(10, 5)).toEqual([10, 11, 12, 13, 14])
    expect(await numbers(47, 10)).toEqual([47, 48, 49])
    expect(await numbers(49, Number.MAX_SAFE_INTEGER)).toEqual([49])
    expect(await numbers(50, 10)).toEqual([])
    expect(await numbers(5, 0)).toEqual([])
    expect(await new TopicStore(new MemoryStore()).getContents('t', 0, 10)).toEqual([])
  })

  it('getContentHashes: inclusive ranges of the stored hashes, prefixes past the head', async () => {
    const topics = await filled()
    const hashes = async (from: number, to: number) => (await topics.getContentHashes('t', from, to)).map(hex)
    const expected = (from: number, to: number) => items.slice(from, to + 1).map((i) => hex(keccak256(i)))
    expect(await hashes(0, 0)).toEqual(expected(0, 0))
    expect(await hashes(3, 9)).toEqual(expected(3, 9))
    expect(await hashes(40, 80)).toEqual(expected(40, 49))
    expect(await hashes(50, 60)).toEqual([])
    expect(await hashes(9, 3)).toEqual([])
  })

  it('getCurrentTopicState: null when empty, else head, head hash and checkpoint (EMPTY_ROOT for none)', async () => {
    const topics = new TopicStore(new MemoryStore())
    expect(await topics.getCurrentTopicState('t')).toBeNull()
    expect(await topics.checkpoint('t')).toBeNull()
    await topics.appendMany('t', items)
    expect(await topics.getCurrentTopicState('t')).toEqual({
      lowest: 0,
      head: 49,
      headHash: keccak256(items[49]!),
      checkpoint: { number: 0, root: EMPTY_ROOT }
    })
    const checkpoint = (await topics.checkpoint('t'))!
    await topics.append('t', Uint8Array.of(9))
    const state = (await topics.getCurrentTopicState('t'))!
    expect(state.head).toBe(50)
    expect(hex(state.headHash)).toBe(hex(keccak256(Uint8Array.of(9))))
    expect(state.checkpoint).toEqual({ number: 49, root: checkpoint.root })
    expect(await topics.getCheckpoint('t')).toEqual(checkpoint)
  })

  it('getItem: the item, or null outside 0..head', async () => {
    const topics = await filled()
    expect(hex((await topics.getItem('t', 7))!)).toBe(hex(items[7]!))
    expect(await topics.getItem('t', 50)).toBeNull()
    expect(await topics.getItem('other', 0)).toBeNull()
  })
})

describe('TopicStore: signed checkpoint records', () => {
  it('keeps the first record for a checkpoint number: another for the same number is refused, a newer one replaces it', async () => {
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    await topics.append('t', Uint8Array.of(1))
    const first = { number: 5, envelope: Uint8Array.of(0xa1) }
    expect(await topics.putCheckpointRecord('t', first)).toBe(true)
    expect(await topics.putCheckpointRecord('t', { number: 5, envelope: Uint8Array.of(0xb2) })).toBe(false)
    expect(await topics.putCheckpointRecord('t', { number: 4, envelope: Uint8Array.of(0xc3) })).toBe(false)
    // What status replies hand to peers, and what a restart finds, is still the first record.
    expect(await topics.getCheckpointRecord('t')).toEqual(first)
    expect((await topics.getCurrentTopicState('t'))?.record).toEqual(first.envelope)
    expect(await new TopicStore(store).getCheckpointRecord('t')).toEqual(first)
    const newer = { number: 6, envelope: Uint8Array.of(0xd4) }
    expect(await topics.putCheckpointRecord('t', newer)).toBe(true)
    expect(await topics.getCheckpointRecord('t')).toEqual(newer)
  })
})

describe('TopicStore: writes are checked and atomic', () => {
  it('put accepts exactly head + 1; any other number is rejected with nothing written', async () => {
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    const rejected = async (n: number, expected: number) => {
      const before = [...store.keys()].sort()
      const err = await topics.put('t', n, Uint8Array.of(1)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ItemOutOfOrderError)
      expect((err as ItemOutOfOrderError).expected).toBe(expected)
      expect((err as ItemOutOfOrderError).got).toBe(n)
      expect([...store.keys()].sort()).toEqual(before)
    }
    await rejected(1, 0)
    await topics.put('t', 0, Uint8Array.of(10))
    await topics.put('t', 1, Uint8Array.of(11))
    await rejected(1, 2)
    await rejected(0, 2)
    await rejected(5, 2)
    expect(await topics.head('t')).toBe(1)
    expect(hex(await topics.root('t'))).toBe(hex(topicRoot([Uint8Array.of(10), Uint8Array.of(11)])))
  })

  it('rejects bad topics and items with InvalidInputError, writing nothing', async () => {
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    const bad: [string, () => Promise<unknown>][] = [
      ['empty topic', () => topics.append('', Uint8Array.of(1))],
      ['long topic', () => topics.append('x'.repeat(MAX_TOPIC_BYTES + 1), Uint8Array.of(1))],
      ['long multi-byte topic', () => topics.head('é'.repeat(MAX_TOPIC_BYTES / 2 + 1))],
      ['lone surrogate', () => topics.getContents('\uD800', 0, 1)],
      ['empty item', () => topics.append('t', new Uint8Array(0))],
      ['large item', () => topics.append('t', new Uint8Array(MAX_ITEM_BYTES + 1))],
      ['not bytes', () => topics.append('t', 'abc' as unknown as Uint8Array)],
      ['one bad item of many', () => topics.appendMany('t', [Uint8Array.of(1), new Uint8Array(0)])],
      ['negative number', () => topics.put('t', -1, Uint8Array.of(1))],
      ['fractional number', () => topics.getItem('t', 1.5)],
      ['short root', () => topics.proveItem('t', 0, new Uint8Array(31))],
      ['bad batch size', async () => new TopicStore(store, { batchBytes: 0 })]
    ]
    for (const [what, call] of bad) await expect(call(), what).rejects.toBeInstanceOf(InvalidInputError)
    expect(store.size).toBe(0)
    // The longest names and the largest item are fine: each is stored as item 0 of its own topic.
    const longest = 'x'.repeat(MAX_TOPIC_BYTES)
    const largest = new Uint8Array(MAX_ITEM_BYTES).fill(0x5a)
    const multiByte = 'é'.repeat(MAX_TOPIC_BYTES / 2)
    expect(await topics.append(longest, largest)).toBe(0)
    expect(await topics.append(multiByte, Uint8Array.of(1))).toBe(0)
    expect(await topics.getItem(longest, 0)).toEqual(largest)
    expect(await topics.getItem(multiByte, 0)).toEqual(Uint8Array.of(1))
    expect(await topics.head(longest)).toBe(0)
    expect(await topics.head(multiByte)).toBe(0)
  })

  it('a failed batch loses only its own items; the next write rebuilds the trie from the store', async () => {
    const items = randomItems(new Prng(7), 300)
    const store = new FlakyStore()
    const topics = new TopicStore(store, { batchBytes: 3000 })
    await topics.appendMany('t', items.slice(0, 100))
    store.batchesLeft = 2
    await expect(topics.appendMany('t', items.slice(100))).rejects.toBeInstanceOf(StoreError)
    const head = await topics.head('t')
    expect(head).toBeGreaterThan(100)
    expect(head).toBeLessThan(299)
    // What a restart finds is what this store reports: a head with every item below it.
    const reopened = new TopicStore(store)
    expect(await reopened.head('t')).toBe(head)
    expect((await reopened.getContents('t', 0, 300)).length).toBe(head + 1)
    store.batchesLeft = Number.POSITIVE_INFINITY
    await topics.appendMany('t', items.slice(head + 1))
    expect(hex(await topics.root('t'))).toBe(hex(topicRoot(items)))
    await expectComplete(store, await topics.root('t'), 'after the retry')
  })

  it('an aborted signal rejects with AbortError and writes nothing', async () => {
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    const signal = AbortSignal.abort()
    await expect(topics.append('t', Uint8Array.of(1), { signal })).rejects.toBeInstanceOf(AbortError)
    await expect(topics.appendMany('t', [Uint8Array.of(1)], { signal })).rejects.toBeInstanceOf(AbortError)
    await expect(topics.root('t', { signal })).rejects.toBeInstanceOf(AbortError)
    expect(store.size).toBe(0)
    // A caller that gives up while queued leaves the queue; the others go on in order.
    const controller = new AbortController()
    const first = topics.append('t', Uint8Array.of(1))
    const gaveUp = topics.append('t', Uint8Array.of(2), { signal: controller.signal })
    const third = topics.append('t', Uint8Array.of(3))
    controller.abort()
    await expect(gaveUp).rejects.toBeInstanceOf(AbortError)
    expect([await first, await third]).toEqual([0, 1])
  })
})

describe('TopicStore: what it finds in the store', () => {
  it('keeps items, hashes and meta under keys of 41, 41 and 33 bytes, never 32', () => {
    const id = topicId('t')
    expect([itemKey(id, 0).length, hashKey(id, 0).length, metaKey(id).length]).toEqual([41, 41, 33])
    expect(new Set([itemKey(id, 0)[0], hashKey(id, 0)[0], metaKey(id)[0]]).size).toBe(3)
    expect(hex(itemKey(id, 258).subarray(33))).toBe(hex(uint64BE(258)))
  })

  it('refuses to build on stored items that no longer match the stored checkpoint', async () => {
    const items = randomItems(new Prng(10), 60)
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    await topics.appendMany('t', items)
    await topics.checkpoint('t')
    await topics.append('t', Uint8Array.of(1))
    await store.put(itemKey(topicId('t'), 17), Uint8Array.of(0xee))
    const restarted = new TopicStore(store)
    await expect(restarted.append('t', Uint8Array.of(2))).rejects.toBeInstanceOf(TopicTrieError)
    await expect(restarted.root('t')).rejects.toBeInstanceOf(TopicTrieError)
    expect(await restarted.head('t')).toBe(60)
  })

  it('keeps no state for topics that are only asked about and hold nothing', async () => {
    const topics = new TopicStore(new MemoryStore())
    const entries = (topics as unknown as { entries: Map<string, unknown> }).entries
    await topics.append('kept', Uint8Array.of(1))
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        expect(await topics.getCurrentTopicState(`asked-${i}`)).toBeNull()
        expect(await topics.getContents(`asked-${i}`, 0, 5)).toEqual([])
        expect(await topics.getContentHashes(`asked-${i}`, 0, 5)).toEqual([])
      })
    )
    expect([...entries.keys()]).toEqual(['kept'])
    // Reads racing a first write to a new topic still see it once it is committed.
    const write = topics.append('new', Uint8Array.of(2))
    const read = topics.head('new')
    await write
    expect([-1, 0]).toContain(await read)
    expect(await topics.head('new')).toBe(0)
    expect(await topics.append('new', Uint8Array.of(3))).toBe(1)
    expect(hex(await topics.root('new'))).toBe(hex(topicRoot([Uint8Array.of(2), Uint8Array.of(3)])))
  })

  it('reports a missing item below the head or a malformed meta record as StoreError', async () => {
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    await topics.appendMany('t', [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)])
    await store.del(itemKey(topicId('t'), 1))
    await expect(new TopicStore(store).root('t')).rejects.toBeInstanceOf(StoreError)
    await store.put(metaKey(topicId('u')), Uint8Array.of(1, 2, 3))
    await expect(topics.head('u')).rejects.toBeInstanceOf(StoreError)
    // A failed load is not cached.
    await store.del(metaKey(topicId('u')))
    expect(await topics.head('u')).toBe(-1)
  })
})

describe('TopicStore: restart on LevelDB', () => {
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsfg-topic-store-'))
  })

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('continues after reopening: head, checkpoint and items intact, the roots as if never restarted', async () => {
    const items = randomItems(new Prng(8), 500)
    const roots = topicRoots(items)
    let store = await LevelStore.open(dir)
    let topics = new TopicStore(store, { batchBytes: 10_000 })
    await topics.appendMany('t', items.slice(0, 300))
    const checkpoint = (await topics.checkpoint('t'))!
    expect(hex(checkpoint.root)).toBe(hex(roots[299]!))
    await topics.appendMany('t', items.slice(300, 350))
    await topics.appendMany('other', items.slice(0, 10))
    await store.close()

    for (const stop of [400, 500]) {
      store = await LevelStore.open(dir)
      topics = new TopicStore(store)
      const from = await topics.head('t')
      expect(await topics.getCheckpoint('t')).toEqual(checkpoint)
      const held = (await topics.getContents('t', 0, 1000)).map((i) => hex(i.data))
      expect(held).toEqual(items.slice(0, from + 1).map(hex))
      for (let n = from + 1; n < stop; n++) {
        expect(await topics.append('t', items[n]!)).toBe(n)
        if (n % 7 === 0 || n === stop - 1) expect(hex(await topics.root('t')), `root(${n})`).toBe(hex(roots[n]!))
      }
      await store.close()
    }
    store = await LevelStore.open(dir)
    topics = new TopicStore(store)
    expect(await topics.head('other')).toBe(9)
    expect(hex(await topics.root('other'))).toBe(hex(roots[9]!))
    const n = 123
    expect(hex(verifyProof(checkpoint.root, uint64BE(n), await topics.proveItem('t', n, checkpoint.root))!)).toBe(
      hex(items[n]!)
    )
    await store.close()
  })
})

describe('TopicStore: adopting a synced trie', () => {
  const items = randomItems(new Prng(9), 400)
  const roots = topicRoots(items)

  /** A publisher with items 0..k and checkpoint k, and a store holding only that checkpoint's trie nodes. */
  async function synced(k: number): Promise<{ nodes: MemoryStore; root: Uint8Array }> {
    const publisher = new TopicStore(new MemoryStore())
    await publisher.appendMany('t', items.slice(0, k + 1))
    const { root } = (await publisher.checkpoint('t'))!
    return { nodes: await copyTrie((publisher as unknown as { store: MemoryStore }).store, root), root }
  }

  it('takes the items from the leaves, records the checkpoint, and appends continue the same trie', async () => {
    const { nodes, root } = await synced(249)
    const topics = new TopicStore(nodes, { batchBytes: 5000 })
    await topics.adoptTrie('t', root, 249)
    expect(await topics.head('t')).toBe(249)
    expect(await topics.getCheckpoint('t')).toEqual({ number: 249, root })
    expect((await topics.getContents('t', 0, 300)).map((i) => hex(i.data))).toEqual(items.slice(0, 250).map(hex))
    expect((await topics.getCurrentTopicState('t'))!.headHash).toEqual(keccak256(items[249]!))
    expect(hex(await topics.root('t'))).toBe(hex(roots[249]!))
    for (let n = 250; n < 400; n++) {
      await topics.append('t', items[n]!)
      if (n % 5 === 0) expect(hex(await topics.root('t')), `root(${n})`).toBe(hex(roots[n]!))
    }
    await expectComplete(nodes, await topics.root('t'), 'root(399)')
    // A restart replays the adopted items and checks them against the adopted checkpoint.
    const restarted = new TopicStore(nodes)
    await restarted.append('t', Uint8Array.of(1))
    expect(hex(await restarted.root('t'))).toBe(hex(topicRoot([...items, Uint8Array.of(1)])))
  })

  it('extends a topic holding the same first items, and confirms a checkpoint at or below its head', async () => {
    const { nodes, root } = await synced(299)
    const topics = new TopicStore(nodes)
    await topics.appendMany('t', items.slice(0, 120))
    await topics.adoptTrie('t', root, 299)
    expect(await topics.head('t')).toBe(299)
    await topics.appendMany('t', items.slice(300))
    // Already held: nothing to read from a trie, only our own items checked against the root.
    await topics.adoptTrie('t', roots[350]!, 350)
    expect(await topics.getCheckpoint('t')).toEqual({ number: 350, root: roots[350] })
    await topics.adoptTrie('t', roots[100]!, 100)
    expect(await topics.getCheckpoint('t')).toEqual({ number: 350, root: roots[350] })
    await expect(topics.adoptTrie('t', roots[101]!, 100)).rejects.toBeInstanceOf(TopicTrieError)
    expect(hex(await topics.root('t'))).toBe(hex(roots[399]!))
  })

  it('an adoption cut short between batches leaves the topic as it was, and can be redone', async () => {
    const { nodes, root } = await synced(299)
    const store = new FlakyStore()
    for (const key of nodes.keys()) {
      const bytes = fromHex(key)
      await store.put(bytes, (await nodes.get(bytes))!)
    }
    const topics = new TopicStore(store, { batchBytes: 2000 })
    await topics.appendMany('t', items.slice(0, 20))
    store.batchesLeft = 3
    await expect(topics.adoptTrie('t', root, 299)).rejects.toBeInstanceOf(StoreError)
    expect(await topics.head('t')).toBe(19)
    expect(await new TopicStore(store).getCheckpoint('t')).toBeNull()
    expect(await new TopicStore(store).head('t')).toBe(19)
    store.batchesLeft = Number.POSITIVE_INFINITY
    await topics.adoptTrie('t', root, 299)
    expect(await topics.head('t')).toBe(299)
    await topics.append('t', items[300]!)
    expect(hex(await topics.root('t'))).toBe(hex(roots[300]!))
  })

  it('rejects tries that are not this topic trie, leaving the topic as it was', async () => {
    const { nodes, root } = await synced(149)
    const topics = new TopicStore(nodes)
    await expect(topics.adoptTrie('t', root, 148)).rejects.toBeInstanceOf(TopicTrieError)
    await expect(topics.adoptTrie('t', root, 150)).rejects.toBeInstanceOf(TopicTrieError)
    await expect(topics.adoptTrie('t', EMPTY_ROOT, 0)).rejects.toBeInstanceOf(TopicTrieError)
    // Keys that are not 0..n.
    const gap = await importSorted(nodes, [0, 1, 3].map((n) => [uint64BE(n), Uint8Array.of(n + 1)] as const))
    await expect(topics.adoptTrie('t', gap.root, 2)).rejects.toBeInstanceOf(TopicTrieError)
    const wide = await importSorted(nodes, [[new Uint8Array(9), Uint8Array.of(1)] as const])
    await expect(topics.adoptTrie('t', wide.root, 0)).rejects.toBeInstanceOf(TopicTrieError)
    // A trie we do not have.
    await expect(topics.adoptTrie('t', roots[200]!, 200)).rejects.toBeInstanceOf(MissingNodeError)
    expect(await topics.head('t')).toBe(-1)
    // A topic holding other items than the trie's first ones.
    const other = new TopicStore(nodes)
    await other.appendMany('u', [...items.slice(0, 10), Uint8Array.of(7)])
    await expect(other.adoptTrie('u', root, 149)).rejects.toBeInstanceOf(TopicTrieError)
    expect(await other.head('u')).toBe(10)
    await other.adoptTrie('t', root, 149)
    expect(await other.head('t')).toBe(149)
  })

  it('putMany stores the hashes a caller computed, and refuses hashes that do not fit', async () => {
    const topics = new TopicStore(new MemoryStore())
    const items = randomItems(new Prng(41), 5)
    const hashes = items.map((d) => keccak256(d))
    await expect(topics.putMany('t', 0, items, { hashes: hashes.slice(1) })).rejects.toBeInstanceOf(InvalidInputError)
    await expect(topics.putMany('t', 0, items, { hashes: [...hashes.slice(1), new Uint8Array(31)] })).rejects.toBeInstanceOf(
      InvalidInputError
    )
    await topics.putMany('t', 0, items, { hashes })
    expect((await topics.getContentHashes('t', 0, 4)).map(hex)).toEqual(hashes.map(hex))
    expect(hex(await topics.root('t'))).toBe(hex(topicRoot(items)))
  })

  it('putMany copies what the caller may still change, unless it hands the bytes over (owned)', async () => {
    const items = randomItems(new Prng(42), 4)
    const expected = items.map((d) => d.slice())
    const hashes = expected.map((d) => keccak256(d))
    const copied = new TopicStore(new MemoryStore())
    const mine = items.map((d) => d.slice())
    const myHashes = hashes.map((h) => h.slice())
    const pending = copied.putMany('t', 0, mine, { hashes: myHashes })
    // Changed after the call, before the write: the store keeps what it was given.
    for (const d of mine) d[0]! ^= 0xff
    for (const h of myHashes) h[0]! ^= 0xff
    await pending
    expect((await copied.getContents('t', 0, 4)).map((i) => hex(i.data))).toEqual(expected.map(hex))
    expect((await copied.getContentHashes('t', 0, 3)).map(hex)).toEqual(hashes.map(hex))
    expect(hex((await copied.getCurrentTopicState('t'))!.headHash)).toBe(hex(hashes[3]!))
    const owned = new TopicStore(new MemoryStore())
    await owned.putMany('t', 0, items, { hashes, owned: true })
    expect((await owned.getContents('t', 0, 4)).map((i) => hex(i.data))).toEqual(expected.map(hex))
    expect(hex(await owned.root('t'))).toBe(hex(topicRoot(expected)))
  })

  it('rejects a stored trie whose leaf was altered on disk (the rebuilt root differs)', async () => {
    const { nodes, root } = await synced(149)
    const leaves: WalkedNode[] = []
    for await (const n of walkTrie(nodes, root)) if (n.node.kind === 'leaf') leaves.push(n)
    const victim = leaves[77]!
    const corrupt = victim.blob.slice()
    corrupt[corrupt.length - 1]! ^= 1 // still decodes: the item's last byte changed
    await nodes.put(victim.hash, corrupt)
    const topics = new TopicStore(nodes)
    await expect(topics.adoptTrie('t', root, 149)).rejects.toBeInstanceOf(TopicTrieError)
    expect(await topics.head('t')).toBe(-1)
  })
})
