import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError } from '../../src/errors.js'
import { type Dsfg, dsfg } from '../../src/service/index.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { connect, createDsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'

const TOPIC = 'setup'

/** A node with the transports and the services given, in the order given. */
function node(services: Record<string, (components: never) => unknown>): Promise<Libp2p<{ dsfg: Dsfg }>> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: services as never
  })
}

describe('the dsfg service in an application’s own node', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  it('runs without gossipsub: a joiner syncs a topic from a peer, and publishing stores the item', async () => {
    const source = await createDsfgNode({ store: new MemoryStore() })
    running.push(source)
    const published = source.services.dsfg.topic({ name: TOPIC, publisher: source.peerId })
    for (let i = 0; i < 50; i++) await published.publish(Uint8Array.of(i, 1))
    await published.checkpoint()

    const joiner = await node({ identify: identify(), dsfg: dsfg({ store: new MemoryStore() }) })
    running.push(joiner)
    await connect(joiner as never, source)
    const topic = joiner.services.dsfg.topic({ name: TOPIC, publisher: source.peerId })
    expect(await topic.syncOnce({ signal: AbortSignal.timeout(20_000) })).toBe(49)
    expect(await topic.root()).toEqual(await published.root())

    // Its own topic: stored, and nobody to gossip it to.
    const own = joiner.services.dsfg.topic('own')
    expect(await own.publish(Uint8Array.of(7))).toEqual({ n: 0, recipients: 0 })
    expect(await own.head()).toBe(0)
  })

  it('finds gossipsub declared after it, and applies the publisher’s live items', async () => {
    const publisher = await createDsfgNode({ store: new MemoryStore() })
    running.push(publisher)
    const source = publisher.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    await source.publish(Uint8Array.of(1))
    await source.checkpoint()
    const joiner = await node({
      identify: identify(),
      dsfg: dsfg({ store: new MemoryStore() }),
      pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true })
    })
    running.push(joiner)
    await connect(joiner as never, publisher)
    const topic = joiner.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    const controller = new AbortController()
    running.push({ stop: () => controller.abort() })
    const following = topic.follow({ signal: controller.signal })
    await until(async () => (await topic.head()) === 0, 'the first item')
    await until(() => publisher.services.pubsub.getSubscribers(`dsfg/${TOPIC}/items`).length > 0, 'the subscription')
    const { recipients } = await source.publish(Uint8Array.of(2))
    expect(recipients).toBeGreaterThan(0)
    await until(async () => (await topic.head()) === 1, 'the live item')
    controller.abort()
    await following
  })

  it('takes a signal on every async method of a topic handle and the service: an aborted one rejects with AbortError', async () => {
    const n = await createDsfgNode({ store: new MemoryStore() })
    running.push(n)
    const topic = n.services.dsfg.topic({ name: TOPIC, publisher: n.peerId })
    await topic.publish(Uint8Array.of(1))
    const signal = AbortSignal.abort()
    const calls: [string, () => Promise<unknown>][] = [
      ['publish', () => topic.publish(Uint8Array.of(2), { signal })],
      ['checkpoint', () => topic.checkpoint({ signal })],
      ['state', () => topic.state({ signal })],
      ['head', () => topic.head({ signal })],
      ['root', () => topic.root({ signal })],
      ['prove', () => topic.prove(0, undefined, { signal })],
      ['syncOnce', () => topic.syncOnce({ signal })],
      ['service publishCheckpoint', () => n.services.dsfg.publishCheckpoint(TOPIC, { number: 0, root: new Uint8Array(32), head: 0, headHash: new Uint8Array(32) }, { signal })],
      ['service syncRoot', () => n.services.dsfg.syncRoot(new Uint8Array(32).fill(1), { signal })]
    ]
    for (const [name, call] of calls) await expect(call(), name).rejects.toBeInstanceOf(AbortError)
    // Nothing was published by the aborted call.
    expect(await topic.head()).toBe(0)
  })

  it('refuses to start without identify, naming what it needs', async () => {
    await expect(node({ dsfg: dsfg({ store: new MemoryStore() }) })).rejects.toThrow(/@libp2p\/identify/)
  })
})
