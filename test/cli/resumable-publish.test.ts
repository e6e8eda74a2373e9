import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors.js'
import { PublishInput, type ReadItems } from '../../src/cli/publish-input.js'
import { finishPublish, journalPath, type PublishedItems, type PublishItemsOptions, PublishPendingError, publishItems } from '../../src/cli/resumable-publish.js'
import type { BatchOp, KVStore } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { type PutManyOptions, TopicStore } from '../../src/topic/topic-store.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { storedItems } from '../helpers/topic-data.js'
import { WrappedStore } from '../helpers/wrapped-store.js'

/** A disk that fills up: every batch after the first `batches` fails, as LevelDB's would with ENOSPC. */
class FillingStore extends WrappedStore {
  constructor(
    inner: KVStore,
    private batches: number
  ) {
    super(inner)
  }

  override batch(ops: BatchOp[]): Promise<void> {
    if (this.batches-- <= 0) return Promise.reject(Object.assign(new Error('IO error: No space left on device'), { code: 'ENOSPC' }))
    return super.batch(ops)
  }
}

/** `publishItems` of an input read from `items`, as the CLI's is from a file. */
async function publish(topics: TopicStore, topic: string, items: readonly Uint8Array[], options?: PublishItemsOptions): Promise<PublishedItems> {
  return publishItems(topics, topic, await PublishInput.survey(() => iterate(items)), options)
}

async function* iterate(items: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* items
}

function inputItems(seed: number, count: number): Uint8Array[] {
  const prng = new Prng(seed)
  return Array.from({ length: count }, () => prng.bytes(1 + prng.int(200)))
}

/** The data of every item of `topic` in `store`, as hex. */
async function storedData(store: KVStore, topic: string): Promise<string[]> {
  return (await storedItems(new TopicStore(store), topic)).map((item) => toHex(item.data))
}

/** Publishes `items` to 'news' on a disk that fills after two small batches: it fails partway with ENOSPC. */
async function publishUntilFull(store: KVStore, items: Uint8Array[]): Promise<void> {
  await expect(
    publish(new TopicStore(new FillingStore(store, 2), { batchBytes: 16 * 1024 }), 'news', items, { journalDir: dir })
  ).rejects.toMatchObject({ code: 'ENOSPC' })
}

/** A topic store that counts the items stored through it. */
class CountingTopics extends TopicStore {
  stored = 0

  override async putMany(topic: string, from: number, datas: readonly Uint8Array[], options?: PutManyOptions): Promise<void> {
    await super.putMany(topic, from, datas, options)
    this.stored += datas.length
  }
}

/**
 * `inputItems(seed, count)` read from a ring of `slots` buffers that are reused, as a reader reusing its buffers
 * would: item k is written over item k - slots. Whatever still uses an item after `slots` more were read gets
 * another item's bytes, so a publisher holding more than `slots` items at once stores the wrong data. `onRead`
 * sees each item's index as it is read.
 */
function ringItems(seed: number, count: number, slots: number, onRead: (k: number) => void): ReadItems {
  return async function* () {
    const prng = new Prng(seed)
    const ring = Array.from({ length: slots }, () => new Uint8Array(200))
    for (let k = 0; k < count; k++) {
      onRead(k)
      const data = prng.bytes(1 + prng.int(200))
      const slot = ring[k % slots]!
      slot.set(data)
      yield slot.subarray(0, data.length)
    }
  }
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false)

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dsfg-publish-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('publishItems', () => {
  it('a store write failing midway, then a rerun of the same input: every item once, in order', async () => {
    const store = new MemoryStore()
    const before = inputItems(1, 10)
    await publish(new TopicStore(store), 'news', before, { journalDir: dir })
    await finishPublish(dir, 'news')
    const items = inputItems(2, 3000)
    // Small store batches, so the failure lands partway through the input.
    const failing = new TopicStore(new FillingStore(store, 5), { batchBytes: 16 * 1024 })
    await expect(publish(failing, 'news', items, { journalDir: dir })).rejects.toMatchObject({ code: 'ENOSPC' })
    const partial = (await storedData(store, 'news')).length - before.length
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThan(items.length)
    expect(await exists(journalPath(dir, 'news'))).toBe(true)

    const progress: number[] = []
    const rerun = await publish(new TopicStore(store), 'news', items, { journalDir: dir, onProgress: (n) => progress.push(n) })
    expect(rerun).toEqual({ from: before.length, resumed: partial })
    expect(progress[0]).toBe(partial)
    expect(progress.at(-1)).toBe(items.length)
    expect(await storedData(store, 'news')).toEqual([...before, ...items].map(toHex))
  })

  it('a rerun after every item was stored but before the journal was removed appends nothing', async () => {
    const store = new MemoryStore()
    const items = inputItems(3, 100)
    await publish(new TopicStore(store), 'news', items, { journalDir: dir })
    expect(await publish(new TopicStore(store), 'news', items, { journalDir: dir })).toEqual({ from: 0, resumed: 100 })
    expect(await storedData(store, 'news')).toEqual(items.map(toHex))
    // Once finished, the same input published again is a second publish: appended again.
    await finishPublish(dir, 'news')
    expect(await exists(journalPath(dir, 'news'))).toBe(false)
    expect(await publish(new TopicStore(store), 'news', items, { journalDir: dir })).toEqual({ from: 100, resumed: 0 })
    expect(await storedData(store, 'news')).toEqual([...items, ...items].map(toHex))
  })

  it('other input is refused while an interrupted publish is unfinished, and accepted once its items are all stored', async () => {
    const store = new MemoryStore()
    const first = inputItems(4, 3000)
    await publishUntilFull(store, first)
    const stored = await storedData(store, 'news')
    const other = inputItems(5, 10)
    const refused = await publish(new TopicStore(store), 'news', other, { journalDir: dir }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(PublishPendingError)
    expect((refused as Error).message).toMatch(/an interrupted publish of another input stored \d+ of its 3000 items/)
    expect(await storedData(store, 'news')).toEqual(stored)
    // Another topic has a journal of its own.
    await publish(new TopicStore(store), 'other', other, { journalDir: dir })

    await publish(new TopicStore(store), 'news', first, { journalDir: dir })
    // All of the first input stored, its journal still there (killed before the checkpoint): the next input goes on.
    expect(await publish(new TopicStore(store), 'news', other, { journalDir: dir })).toEqual({ from: 3000, resumed: 0 })
    expect(await storedData(store, 'news')).toEqual([...first, ...other].map(toHex))
  })

  it('refuses to resume when the topic changed under the interrupted publish', async () => {
    const store = new MemoryStore()
    const items = inputItems(6, 3000)
    await publishUntilFull(store, items)
    // Something else truncated the topic and appended items of its own.
    const topics = new TopicStore(store)
    await topics.truncate('news', 4)
    await topics.appendMany('news', inputItems(7, 20))
    await expect(publish(new TopicStore(store), 'news', items, { journalDir: dir })).rejects.toThrow(
      /changed since an interrupted publish of this input/
    )
  })
  it('holds at most one batch of the input: every item stored right from a source that reuses a batch of buffers', async () => {
    const batchItems = 64
    const count = 40 * batchItems + 17
    const store = new MemoryStore()
    const topics = new CountingTopics(store)
    let reads = 0
    let mostHeld = 0
    const read = ringItems(8, count, batchItems, (k) => {
      if (k === 0) reads++
      // The second read is the one that stores: items read minus items stored is what the publisher holds.
      if (reads === 2) mostHeld = Math.max(mostHeld, k + 1 - topics.stored)
    })
    const input = await PublishInput.survey(read, { batchItems })
    expect(input.count).toBe(count)
    expect(await publishItems(topics, 'news', input, { journalDir: dir })).toEqual({ from: 0, resumed: 0 })
    expect(reads).toBe(2)
    expect(mostHeld).toBe(batchItems)
    expect(await storedData(store, 'news')).toEqual(inputItems(8, count).map(toHex))
  })

  it('a batch also ends at its byte bound: 600 items of 1 to 200 bytes in batches of 4 KiB', async () => {
    const store = new MemoryStore()
    const topics = new CountingTopics(store)
    let mostHeld = 0
    let reads = 0
    const read = ringItems(9, 600, 4096, (k) => {
      if (k === 0) reads++
      if (reads === 2) mostHeld = Math.max(mostHeld, k + 1 - topics.stored)
    })
    await publishItems(topics, 'news', await PublishInput.survey(read, { batchBytes: 4096 }), { journalDir: dir })
    // 4 KiB of items of 100 bytes on average: about 41 a batch, far below the item bound of 4096.
    expect(mostHeld).toBeGreaterThan(20)
    expect(mostHeld).toBeLessThan(100)
    expect(await storedData(store, 'news')).toEqual(inputItems(9, 600).map(toHex))
  })

  it('an input that changes between its two reads fails before a changed batch is stored', async () => {
    const store = new MemoryStore()
    const items = inputItems(10, 300)
    let reads = 0
    const input = await PublishInput.survey(
      async function* () {
        reads++
        // The second read has item 150 edited.
        for (const [i, item] of items.entries()) yield reads === 2 && i === 150 ? new Uint8Array([1, 2, 3]) : item
      },
      { name: 'items.jsonl', batchItems: 100 }
    )
    const failed = await publishItems(new TopicStore(store), 'news', input, { journalDir: dir }).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(InvalidInputError)
    expect((failed as Error).message).toMatch(/^items\.jsonl changed while it was being published/)
    expect(await storedData(store, 'news')).toEqual(items.slice(0, 100).map(toHex))
  })
})
