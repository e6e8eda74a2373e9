import { afterEach, describe, expect, it } from 'vitest'
import { createDsfgNode } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { makeItems } from '../helpers/topic-data.js'
import { MemoryTopicProvider } from '../topic/net-helpers.js'

describe('a service that serves from the application\'s own TopicProvider', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    for (const r of running.splice(0).reverse()) await r.stop()
  })

  it('answers status, contents and hashes from the provider, and a joiner syncs the topic from it', async () => {
    const items = makeItems(700, 31)
    const provider = new MemoryTopicProvider({ app: items })
    // The serving node's own TopicStore stays empty: everything it serves comes from the provider.
    const server = await createDsfgNode({ store: new MemoryStore(), provider })
    running.push(server)
    const joiner = await createDsfgNode({ store: new MemoryStore(), topics: ['app'] })
    running.push(joiner)
    await joiner.dial(server.getMultiaddrs()[0]!)
    const topic = joiner.services.dsfg.topic('app')
    const head = await topic.syncOnce({ signal: AbortSignal.timeout(30_000) })
    expect(head).toBe(699)
    expect(await joiner.services.dsfg.topicStore.getContents('app', 0, 1000)).toEqual(items)
    expect(await server.services.dsfg.topicStore.head('app')).toBe(-1)
  }, 60_000)
})
