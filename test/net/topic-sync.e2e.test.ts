import { afterEach, describe, expect, it } from 'vitest'
import type { Item } from '../../src/fsm/types.js'
import { createDsfgNode, type DsfgLibp2p } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { itemsTopic } from '../../src/topic/gossip.js'
import { TopicServer } from '../../src/topic/topic-server.js'
import { makeItems, MemoryTopicProvider, topicServerNode } from '../topic/net-helpers.js'
import { until } from '../helpers/wait.js'

const TOPIC = 'news'
/** The leaving server stops after this many contents replies: few enough that it always gets them (of about 80 batches) before the sync ends. */
const LEAVE_AFTER = 5

/** Serves every item honestly except the data of contents replies, which it alters. */
class AlteringProvider extends MemoryTopicProvider {
  override async getContents(topic: string, from: number, amount: number): Promise<Item[]> {
    return (await super.getContents(topic, from, amount)).map((i) => ({ n: i.n, data: Uint8Array.of(...i.data, 0x55) }))
  }
}

async function storedItems(node: DsfgLibp2p, count: number): Promise<Item[]> {
  const out: Item[] = []
  for (let from = 0; from < count; from += 256) out.push(...(await node.services.dsfg.topicStore.getContents(TOPIC, from, 256)))
  return out
}

describe('topic sync over libp2p', () => {
  const running: { stop(): void | Promise<void> }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  it('a late joiner gets 20k items from 4 servers (one altering, one leaving, one rate-limited), then follows live', async () => {
    const items = makeItems(20_000, 9)
    // The honest full node, which also publishes live items later.
    const honest = await createDsfgNode({ topics: [TOPIC] })
    running.push(honest)
    await honest.services.dsfg.topicStore.appendMany(
      TOPIC,
      items.map((i) => i.data)
    )

    const liar = await topicServerNode(new TopicServer({ provider: new AlteringProvider({ [TOPIC]: items }) }))
    let leaverCalls = 0
    const leaverProvider = new MemoryTopicProvider({ [TOPIC]: items })
    const leaver = await topicServerNode(
      new TopicServer({
        provider: {
          getCurrentTopicState: (t) => leaverProvider.getCurrentTopicState(t),
          getContentHashes: (t, f, to) => leaverProvider.getContentHashes(t, f, to),
          getContents: async (t, f, a) => {
            if (++leaverCalls === LEAVE_AFTER) setTimeout(() => void leaver.stop(), 0) // gone mid-sync
            return leaverProvider.getContents(t, f, a)
          }
        }
      })
    )
    const limited = await topicServerNode(
      new TopicServer({ provider: new MemoryTopicProvider({ [TOPIC]: items }), inboundRatePerSecond: 5, inboundBurst: 5 })
    )
    running.push(liar, leaver, limited)

    const joiner = await createDsfgNode({ store: new MemoryStore(), topics: [TOPIC] })
    running.push(joiner)
    for (const server of [honest, liar, leaver, limited]) await joiner.dial(server.getMultiaddrs()[0]!)

    const topic = joiner.services.dsfg.topic(TOPIC)
    let rejected = 0
    topic.events.addEventListener('batch:rejected', () => rejected++)
    const controller = new AbortController()
    const following = topic.follow({ signal: controller.signal })
    await until(async () => (await topic.head()) === items.length - 1, 'the joiner to catch up', 60_000)

    expect(await storedItems(joiner, items.length)).toEqual(items)
    expect(rejected).toBeGreaterThan(0) // the liar's batches were caught
    expect(leaverCalls).toBeGreaterThanOrEqual(LEAVE_AFTER) // it did leave mid-sync

    // Live: the honest node publishes more; the joiner applies them in order, once each.
    await until(
      () => honest.services.pubsub.getSubscribers(itemsTopic(TOPIC)).some((p) => p.equals(joiner.peerId)),
      'the joiner to subscribe',
      30_000
    )
    const live = makeItems(5, 10).map((i) => i.data)
    for (const data of live) await honest.services.dsfg.topic(TOPIC).publish(data)
    await until(async () => (await topic.head()) === items.length + live.length - 1, 'live items', 30_000)
    const tail = await joiner.services.dsfg.topicStore.getContents(TOPIC, items.length, 10)
    expect(tail.map((i) => i.data)).toEqual(live)
    expect(topic.mode).toBe('synced')
    controller.abort()
    await following
  }, 120_000)
})
