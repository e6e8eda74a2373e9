import { afterEach, describe, expect, it } from 'vitest'
import type { Item } from '../../src/fsm/types.js'
import { createDsfgNode, type DsfgLibp2p } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { itemsTopic } from '../../src/topic/gossip.js'
import { makeItems } from '../helpers/topic-data.js'
import { until } from '../helpers/wait.js'

describe('topic.items()', () => {
  const running: DsfgLibp2p[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  it('yields stored history, then downloaded, then live items: in order, exactly once', async () => {
    const history = makeItems(600, 21)
    const live = makeItems(40, 22)
    const publisher = await createDsfgNode({ topics: ['news'] })
    running.push(publisher)
    const news = publisher.services.dsfg.topic('news')
    for (const item of history.slice(0, 500)) await news.publish(item.data)

    const reader = await createDsfgNode({ store: new MemoryStore(), topics: ['news'] })
    running.push(reader)
    // The reader already holds the first 100 items (its own history).
    await reader.services.dsfg.topicStore.appendMany(
      'news',
      history.slice(0, 100).map((i) => i.data)
    )
    await reader.dial(publisher.getMultiaddrs()[0]!)
    const topic = reader.services.dsfg.topic('news')
    const controller = new AbortController()
    const following = topic.follow({ signal: controller.signal })

    const seen: Item[] = []
    const consuming = (async () => {
      for await (const item of topic.items({ from: 50, signal: controller.signal })) {
        seen.push(item)
        if (item.n === 639) break
      }
    })()

    await until(() => seen.length >= 450, 'the downloaded history', 20_000)
    for (const item of history.slice(500)) await news.publish(item.data)
    await until(() => publisher.services.pubsub.getSubscribers(itemsTopic('news')).some((p) => p.equals(reader.peerId)), 'subscription', 20_000)
    for (const item of live) await news.publish(item.data)
    await consuming
    controller.abort()
    await following

    const expected = [...history, ...live.map((i, k) => ({ n: 600 + k, data: i.data }))].slice(50)
    expect(seen.map((i) => i.n)).toEqual(expected.map((i) => i.n))
    expect(seen.map((i) => i.data)).toEqual(expected.map((i) => i.data))
  }, 60_000)
})
