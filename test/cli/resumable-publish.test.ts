import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { finishPublish, journalPath, PublishPendingError, publishItems } from '../../src/cli/resumable-publish.js'
import type { BatchOp, KVStore } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { TopicStore } from '../../src/topic/topic-store.js'
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
    publishItems(new TopicStore(new FillingStore(store, 2), { batchBytes: 16 * 1024 }), 'news', items, { journalDir: dir })
  ).rejects.toMatchObject({ code: 'ENOSPC' })
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
    await publishItems(new TopicStore(store), 'news', before, { journalDir: dir })
    await finishPublish(dir, 'news')
    const items = inputItems(2, 3000)
    // Small store batches, so the failure lands partway through the input.
    const failing = new TopicStore(new FillingStore(store, 5), { batchBytes: 16 * 1024 })
    await expect(publishItems(failing, 'news', items, { journalDir: dir })).rejects.toMatchObject({ code: 'ENOSPC' })
    const partial = (await storedData(store, 'news')).length - before.length
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThan(items.length)
    expect(await exists(journalPath(dir, 'news'))).toBe(true)

    const progress: number[] = []
    const rerun = await publishItems(new TopicStore(store), 'news', items, { journalDir: dir, onProgress: (n) => progress.push(n) })
    expect(rerun).toEqual({ from: before.length, resumed: partial })
    expect(progress[0]).toBe(partial)
    expect(progress.at(-1)).toBe(items.length)
    expect(await storedData(store, 'news')).toEqual([...before, ...items].map(toHex))
  })

  it('a rerun after every item was stored but before the journal was removed appends nothing', async () => {
    const store = new MemoryStore()
    const items = inputItems(3, 100)
    await publishItems(new TopicStore(store), 'news', items, { journalDir: dir })
    expect(await publishItems(new TopicStore(store), 'news', items, { journalDir: dir })).toEqual({ from: 0, resumed: 100 })
    expect(await storedData(store, 'news')).toEqual(items.map(toHex))
    // Once finished, the same input published again is a second publish: appended again.
    await finishPublish(dir, 'news')
    expect(await exists(journalPath(dir, 'news'))).toBe(false)
    expect(await publishItems(new TopicStore(store), 'news', items, { journalDir: dir })).toEqual({ from: 100, resumed: 0 })
    expect(await storedData(store, 'news')).toEqual([...items, ...items].map(toHex))
  })

  it('other input is refused while an interrupted publish is unfinished, and accepted once its items are all stored', async () => {
    const store = new MemoryStore()
    const first = inputItems(4, 3000)
    await publishUntilFull(store, first)
    const stored = await storedData(store, 'news')
    const other = inputItems(5, 10)
    const refused = await publishItems(new TopicStore(store), 'news', other, { journalDir: dir }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(PublishPendingError)
    expect((refused as Error).message).toMatch(/an interrupted publish of another input stored \d+ of its 3000 items/)
    expect(await storedData(store, 'news')).toEqual(stored)
    // Another topic has a journal of its own.
    await publishItems(new TopicStore(store), 'other', other, { journalDir: dir })

    await publishItems(new TopicStore(store), 'news', first, { journalDir: dir })
    // All of the first input stored, its journal still there (killed before the checkpoint): the next input goes on.
    expect(await publishItems(new TopicStore(store), 'news', other, { journalDir: dir })).toEqual({ from: 3000, resumed: 0 })
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
    await expect(publishItems(new TopicStore(store), 'news', items, { journalDir: dir })).rejects.toThrow(
      /changed since an interrupted publish of this input/
    )
  })
})
