import { afterEach, describe, expect, it } from 'vitest'
import { CONTENTS_PROTOCOL } from '../../src/net/topic-protocols.js'
import { createDsfgNode } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { Fetcher } from '../../src/topic/fetcher.js'
import { createTestNode } from '../helpers/libp2p.js'
import { makeItems } from '../helpers/topic-data.js'
import { MemoryTopicProvider } from '../topic/net-helpers.js'

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
})
