import { afterEach, describe, expect, it } from 'vitest'
import { createDsfgNode } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { itemsTopic } from '../../src/topic/gossip.js'
import { TopicServer } from '../../src/topic/topic-server.js'
import { makeItems, storedItems } from '../helpers/topic-data.js'
import { MemoryTopicProvider, topicServerNode } from '../topic/net-helpers.js'
import { createAdversary } from '../helpers/adversary.js'
import { until } from '../helpers/wait.js'

const TOPIC = 'news'
/** The leaving server stops after this many contents replies: few enough that it always gets them (of about 80 batches) before the sync ends. */
const LEAVE_AFTER = 5

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

    // Serves every item honestly except the data of contents replies, which it alters, and records the ranges
    // it served. Its content hashes stay honest: a rejected batch can then only be one of its own.
    const served: { from: number; to: number }[] = []
    const liar = await createAdversary({
      topics: new MemoryTopicProvider({ [TOPIC]: items }),
      behaviour: {
        contents: {
          forge: (held) => {
            if (held.length > 0) served.push({ from: held[0]!.n, to: held.at(-1)!.n })
            return held.map((i) => ({ n: i.n, data: Uint8Array.of(...i.data, 0x55) }))
          }
        }
      }
    })
    // The joiner's head when the leaver stopped: it left mid-sync only if that is short of the last item.
    let headWhenLeft: Promise<number> | undefined
    const leaver = await createAdversary({
      topics: new MemoryTopicProvider({ [TOPIC]: items }),
      behaviour: {
        contents: ({ call }) => {
          if (call === LEAVE_AFTER) {
            headWhenLeft = joiner.services.dsfg.topicStore.head(TOPIC)
            setTimeout(() => void leaver.stop(), 0) // gone mid-sync, after this reply
          }
          return 'honest'
        }
      }
    })
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
    for (const server of [honest, liar.node, leaver.node, limited]) await joiner.dial(server.getMultiaddrs()[0]!)

    const topic = joiner.services.dsfg.topic(TOPIC)
    const rejected: { from: number; to: number }[] = []
    topic.events.addEventListener('batch:rejected', (e) => rejected.push({ from: e.detail.from, to: e.detail.to }))
    const controller = new AbortController()
    const following = topic.follow({ signal: controller.signal })
    await until(async () => (await topic.head()) === items.length - 1, 'the joiner to catch up', 60_000)

    expect(await storedItems(joiner.services.dsfg.topicStore, TOPIC, items.length - 1)).toEqual(items)
    // The liar's batches were caught, and only they: every rejected range lies in one the liar served.
    expect(rejected.length).toBeGreaterThan(0)
    for (const r of rejected) expect(served.some((s) => s.from <= r.from && r.to <= s.to), `rejected ${r.from}..${r.to}`).toBe(true)
    // The leaver stopped while the joiner still had items to fetch, and the joiner finished without it.
    expect(leaver.calls('contents')).toBeGreaterThanOrEqual(LEAVE_AFTER)
    expect(await headWhenLeft).toBeLessThan(items.length - 1)
    expect(leaver.node.status).toBe('stopped')
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
