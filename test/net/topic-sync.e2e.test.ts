import { afterEach, describe, expect, it } from 'vitest'
import type { Item } from '../../src/fsm/types.js'
import { createDsfgNode } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { itemsTopic } from '../../src/topic/gossip.js'
import { TopicServer } from '../../src/topic/topic-server.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { makeItems, storedItems } from '../helpers/topic-data.js'
import { MemoryTopicProvider, topicServerNode } from '../topic/net-helpers.js'
import { until } from '../helpers/wait.js'

const TOPIC = 'news'
/** The leaving server stops after this many contents replies: few enough that it always gets them (of about 80 batches) before the sync ends. */
const LEAVE_AFTER = 5

/**
 * Serves every item honestly except the data of contents replies, which it alters, and records the ranges it
 * served. Its content hashes stay honest: a rejected batch can then only be one of its own.
 */
class AlteringProvider extends MemoryTopicProvider {
  readonly served: { from: number; to: number }[] = []

  override async getContents(topic: string, from: number, amount: number): Promise<Item[]> {
    const items = await super.getContents(topic, from, amount)
    if (items.length > 0) this.served.push({ from: items[0]!.n, to: items[items.length - 1]!.n })
    return items.map((i) => ({ n: i.n, data: Uint8Array.of(...i.data, 0x55) }))
  }

  override async getContentHashes(topic: string, from: number, to: number): Promise<Uint8Array[]> {
    return (await super.getContents(topic, from, to - from + 1)).map((i) => keccak256(i.data))
  }
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

    const altering = new AlteringProvider({ [TOPIC]: items })
    const liar = await topicServerNode(new TopicServer({ provider: altering }))
    let leaverCalls = 0
    // The joiner's head when the leaver stopped: it left mid-sync only if that is short of the last item.
    let headWhenLeft: Promise<number> | undefined
    const leaverProvider = new MemoryTopicProvider({ [TOPIC]: items })
    const leaver = await topicServerNode(
      new TopicServer({
        provider: {
          getCurrentTopicState: (t) => leaverProvider.getCurrentTopicState(t),
          getContentHashes: (t, f, to) => leaverProvider.getContentHashes(t, f, to),
          getContents: async (t, f, a) => {
            if (++leaverCalls === LEAVE_AFTER) {
              headWhenLeft = joiner.services.dsfg.topicStore.head(TOPIC)
              setTimeout(() => void leaver.stop(), 0) // gone mid-sync
            }
            return leaverProvider.getContents(t, f, a)
          }
        }
      })
    )
    const limitedProvider = new MemoryTopicProvider({ [TOPIC]: items })
    let limitedServed = 0
    const limitedRefused: string[] = []
    const limited = await topicServerNode(
      new TopicServer({
        provider: {
          getCurrentTopicState: (t) => limitedProvider.getCurrentTopicState(t),
          getContentHashes: (t, f, to) => limitedProvider.getContentHashes(t, f, to),
          getContents: (t, f, a) => {
            limitedServed++
            return limitedProvider.getContents(t, f, a)
          }
        },
        inboundRatePerSecond: 5,
        inboundBurst: 5,
        onRateLimited: (peer) => limitedRefused.push(peer)
      })
    )
    running.push(liar, leaver, limited)

    // Created before the leaver's provider needs it (its first contents request comes from this joiner).
    const joiner = await createDsfgNode({ store: new MemoryStore(), topics: [TOPIC] })
    running.push(joiner)
    for (const server of [honest, liar, leaver, limited]) await joiner.dial(server.getMultiaddrs()[0]!)

    const topic = joiner.services.dsfg.topic(TOPIC)
    const rejected: { from: number; to: number }[] = []
    topic.events.addEventListener('batch:rejected', (e) => rejected.push({ from: e.detail.from, to: e.detail.to }))
    const controller = new AbortController()
    const following = topic.follow({ signal: controller.signal })
    await until(async () => (await topic.head()) === items.length - 1, 'the joiner to catch up', 60_000)

    expect(await storedItems(joiner.services.dsfg.topicStore, TOPIC, items.length - 1)).toEqual(items)
    // The liar's batches were caught, and only they: every rejected range lies in one the liar served.
    expect(rejected.length).toBeGreaterThan(0)
    for (const r of rejected) expect(altering.served.some((s) => s.from <= r.from && r.to <= s.to), `rejected ${r.from}..${r.to}`).toBe(true)
    // The leaver stopped while the joiner still had items to fetch, and the joiner finished without it.
    expect(leaverCalls).toBeGreaterThanOrEqual(LEAVE_AFTER)
    expect(await headWhenLeft).toBeLessThan(items.length - 1)
    expect(leaver.status).toBe('stopped')
    // The rate-limited server refused the joiner some requests, yet served it, and refused nobody else.
    expect(limitedRefused.length).toBeGreaterThan(0)
    expect(new Set(limitedRefused)).toEqual(new Set([joiner.peerId.toString()]))
    expect(limitedServed).toBeGreaterThan(0)

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
