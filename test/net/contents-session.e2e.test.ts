import { afterEach, describe, expect, it } from 'vitest'
import { PREPARED_SESSION_UNUSED_MS } from '../../src/constants.js'
import { CONTENTS_PROTOCOL } from '../../src/net/topic-protocols.js'
import { createDsfgNode } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { Fetcher } from '../../src/topic/fetcher.js'
import { createTestNode } from '../helpers/libp2p.js'
import { makeItems } from '../helpers/topic-data.js'
import { MemoryTopicProvider } from '../topic/net-helpers.js'
import { until } from '../helpers/wait.js'

describe('contents requests on one long-lived stream', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    for (const r of running.splice(0).reverse()) await r.stop()
  })

  it('sends a peer\'s concurrent contents requests on one stream, each answered with its own range', async () => {
    const items = makeItems(500, 7)
    const server = await createDsfgNode({ store: new MemoryStore(), provider: new MemoryTopicProvider({ app: items }) })
    running.push(server)
    const client = await createTestNode()
    running.push(client)
    await client.dial(server.getMultiaddrs()[0]!)
    const opened: string[] = []
    const fetcher = new Fetcher({
      openStream: (peer, protocol, options) => {
        opened.push(protocol)
        return client.dialProtocol(peer, protocol, options)
      }
    })
    const peer = server.peerId.toString()
    // Five at once (the Fetcher's concurrency at one peer): all written on the first stream before any reply.
    const ranges = await Promise.all([0, 1, 2, 3, 4].map((k) => fetcher.contents(peer, 'app', k * 100, 100)))
    expect(ranges.flat()).toEqual(items)
    // A stream a request opened five, each with its multistream-select round trip.
    expect(opened).toEqual([CONTENTS_PROTOCOL])
    // And the stream carries later requests too.
    expect(await fetcher.contents(peer, 'app', 250, 10)).toEqual(items.slice(250, 260))
    expect(opened).toEqual([CONTENTS_PROTOCOL])
    fetcher.closeSessions()
  }, 30_000)

  it('a joiner opens its contents stream beside its first status request; a node holding items does not, and an unused one closes', async () => {
    const items = makeItems(50, 3)
    const server = await createDsfgNode({ store: new MemoryStore(), provider: new MemoryTopicProvider({ app: items }) })
    running.push(server)
    const joiner = await createDsfgNode({ store: new MemoryStore(), topics: ['app'] })
    running.push(joiner)
    const holder = await createDsfgNode({ store: new MemoryStore(), topics: ['app'] })
    running.push(holder)
    await holder.services.dsfg.topicStore.append('app', items[0]!.data)
    const contentsStreams = (node: typeof joiner): number =>
      node.getConnections(server.peerId).flatMap((c) => c.streams).filter((s) => s.protocol === CONTENTS_PROTOCOL && s.direction === 'outbound').length
    await joiner.dial(server.getMultiaddrs()[0]!)
    await holder.dial(server.getMultiaddrs()[0]!)
    const joinerTopic = joiner.services.dsfg.topic('app')
    const holderTopic = holder.services.dsfg.topic('app')
    await until(() => joinerTopic.peerStates().size > 0 && holderTopic.peerStates().size > 0, 'both status replies')
    // No contents request was made, yet the joiner's stream is open (or was: it closes unused).
    await until(() => contentsStreams(joiner) === 1, 'the joiner\'s contents stream')
    expect(contentsStreams(holder)).toBe(0)
    // Unused, it is closed before a server's frame deadline would charge it.
    await until(() => contentsStreams(joiner) === 0, 'the unused stream to close', PREPARED_SESSION_UNUSED_MS + 3_000)
  }, 30_000)
})
