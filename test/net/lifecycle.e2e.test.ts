import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, ServiceConfigError } from '../../src/errors.js'
import type { Item } from '../../src/fsm/types.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { sleep } from '../../src/util/abort.js'
import { Prng } from '../../src/util/prng.js'
import { connect, createDsfgNode } from '../helpers/libp2p.js'
import { buildSourceTrie, randomEntries } from '../helpers/trie-source.js'
import { until } from '../helpers/wait.js'
import { WrappedStore } from '../helpers/wrapped-store.js'

const TOPIC = 'lifecycle'

/**
 * A store whose reads and writes can be made slow, which counts the writes that start after `closed` is set and
 * tells when a batch starts.
 */
class WatchedStore extends WrappedStore {
  closed = false
  writesAfterClose = 0
  readDelayMs = 0
  /** Batches started and not yet finished. */
  writing = 0
  private batchStarted: () => void = () => undefined
  private readonly writeDelayMs: number

  constructor(inner: MemoryStore, writeDelayMs = 2) {
    super(inner)
    this.writeDelayMs = writeDelayMs
  }

  /** Resolves the next time a batch starts. */
  watchNextBatch(): Promise<void> {
    return new Promise((resolve) => (this.batchStarted = resolve))
  }

  override async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.readDelayMs > 0) await sleep(this.readDelayMs)
    return super.get(key)
  }

  override async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (this.readDelayMs > 0) await sleep(this.readDelayMs)
    return super.getMany(keys)
  }

  override async batch(ops: Parameters<WrappedStore['batch']>[0]): Promise<void> {
    this.countWrite()
    this.writing++
    this.batchStarted()
    try {
      await sleep(this.writeDelayMs)
      return await super.batch(ops)
    } finally {
      this.writing--
    }
  }

  override async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.countWrite()
    return super.put(key, value)
  }

  override async del(key: Uint8Array): Promise<void> {
    this.countWrite()
    return super.del(key)
  }

  private countWrite(): void {
    if (this.closed) this.writesAfterClose++
  }
}

/** `promise`, or a rejection saying it was still pending after `ms` (so a hang fails fast, not at the test's timeout). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

describe('stopping a node', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  it('ends follow() and items() with AbortError mid-sync, and nothing writes the store once stop() resolved', async () => {
    const publisher = await createDsfgNode({ store: new MemoryStore() })
    running.push(publisher)
    const prng = new Prng(5)
    await publisher.services.dsfg.topicStore.appendMany(TOPIC, Array.from({ length: 4000 }, () => prng.bytes(200)))
    await publisher.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId }).checkpoint()

    const store = new WatchedStore(new MemoryStore())
    const joiner = await createDsfgNode({ store })
    running.push(joiner)
    const topic = joiner.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId, checkpointSync: false })
    await connect(joiner, publisher)
    const following = topic.follow({ signal: new AbortController().signal })
    following.catch(() => undefined)
    const seen: Item[] = []
    const reading = (async () => {
      for await (const item of topic.items()) seen.push(item)
    })()
    reading.catch(() => undefined)
    await until(async () => (await topic.head()) >= 500, 'the download to be under way', 20_000)

    await joiner.stop()
    store.closed = true
    await expect(within(following, 10_000)).rejects.toBeInstanceOf(AbortError)
    await expect(within(reading, 10_000)).rejects.toBeInstanceOf(AbortError)
    const head = await topic.head()
    expect(head).toBeLessThan(3999)
    // Give anything still running a chance to write: nothing may.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(store.writesAfterClose).toBe(0)
    expect(await topic.head()).toBe(head)
    expect(seen.map((i) => i.n)).toEqual(Array.from({ length: seen.length }, (_v, n) => n))
  }, 60_000)

  it('aborts a running state sync and waits for its last write before stop() resolves', async () => {
    const source = await buildSourceTrie(randomEntries(3, 3000))
    const server = await createDsfgNode({ store: source.store })
    running.push(server)
    // Slow writes: the sync's last flush is still going when it is told to stop.
    const store = new WatchedStore(new MemoryStore(), 400)
    const joiner = await createDsfgNode({ store })
    running.push(joiner)
    await connect(joiner, server)
    // Node by node: with subtries sent as their leaves this trie comes in a few replies and a write or two.
    const run = joiner.services.dsfg.startStateSync(source.root, { subtries: false })
    const settled = run.done.then(
      () => 'completed',
      (error: unknown) => error
    )
    await until(() => run.stats().nodes > 200, 'the sync to be under way')
    // Stop while a write of the sync is in progress: stop() must wait for it.
    await store.watchNextBatch()
    await joiner.stop()
    expect(store.writing).toBe(0)
    store.closed = true
    expect(await within(settled, 10_000)).toBeInstanceOf(Error)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(store.writesAfterClose).toBe(0)
  }, 30_000)

  it('stop() while follow() is still bringing stored items under the publisher: no write after stop() resolved', async () => {
    const publisher = await createDsfgNode({ store: new MemoryStore() })
    running.push(publisher)
    const store = new WatchedStore(new MemoryStore())
    const joiner = await createDsfgNode({ store })
    running.push(joiner)
    // Items stored before a publisher was configured: follow() drops them (truncate) before it syncs.
    const prng = new Prng(1)
    await joiner.services.dsfg.topicStore.appendMany(TOPIC, Array.from({ length: 50 }, () => prng.bytes(40)))
    const topic = joiner.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    store.readDelayMs = 150
    const following = topic.follow({ signal: new AbortController().signal })
    const outcome = following.then(
      () => 'resolved',
      (e: unknown) => e
    )
    await joiner.stop()
    store.closed = true
    const result = await outcome
    // The trust check's reads take 150 ms each: give a write that would follow them time to land.
    await new Promise((r) => setTimeout(r, 600))
    expect(result).toBeInstanceOf(AbortError)
    expect(store.writesAfterClose).toBe(0)
  }, 30_000)

  it('after stop(), follow() on an old handle ends with AbortError, and topic() hands out no new handle', async () => {
    const joiner = await createDsfgNode({ store: new MemoryStore() })
    running.push(joiner)
    const before = joiner.services.dsfg.topic(TOPIC)
    await joiner.stop()
    await expect(before.follow({ signal: AbortSignal.timeout(3000) })).rejects.toBeInstanceOf(AbortError)
    await expect(async () => before.items().next()).rejects.toBeInstanceOf(AbortError)
    expect(() => joiner.services.dsfg.topic(TOPIC)).toThrow(ServiceConfigError)
  }, 30_000)

  it('a handle closed by stop() stays deaf after a restart (no second writer of the topic)', async () => {
    const publisher = await createDsfgNode({ store: new MemoryStore() })
    running.push(publisher)
    const pubTopic = publisher.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    for (let i = 0; i < 10; i++) await pubTopic.publish(Uint8Array.of(i))
    await pubTopic.checkpoint()
    const store = new MemoryStore()
    const joiner = await createDsfgNode({ store })
    running.push(joiner)
    const old = joiner.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    await connect(joiner, publisher)
    await old.syncOnce({ signal: AbortSignal.timeout(10_000) })
    await joiner.stop()
    let oldEvents = 0
    old.addEventListener('checkpoint', () => oldEvents++)
    await joiner.start()
    const fresh = joiner.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    expect(fresh).not.toBe(old)
    for (let i = 10; i < 20; i++) await pubTopic.publish(Uint8Array.of(i))
    await pubTopic.checkpoint()
    await connect(joiner, publisher)
    await fresh.syncOnce({ signal: AbortSignal.timeout(10_000) })
    await until(() => (fresh.checkpointReceived?.number ?? -1) === 19, 'fresh handle sees checkpoint 19', 5000)
    // Status replies and gossip keep coming: give them a moment to reach a handle that still listens.
    await new Promise((r) => setTimeout(r, 500))
    expect(oldEvents).toBe(0)
    expect(old.checkpointReceived?.number).toBe(9)
  }, 30_000)
})
