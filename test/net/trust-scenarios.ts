import { generateKeyPair } from '@libp2p/crypto/keys'
import { expect } from 'vitest'
import type { Item } from '../../src/fsm/types.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { TopicConfig } from '../../src/service/dsfg-service.js'
import type { TopicHandle } from '../../src/topic/topic-handle.js'
import { recordSignedCheckpoint } from '../../src/topic/checkpoint-record.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { equalBytes } from '../../src/util/bytes.js'
import { Prng } from '../../src/util/prng.js'
import { type Adversary, type AdversaryInit, createAdversary } from '../helpers/adversary.js'
import { BlameLog } from '../helpers/blame.js'
import { createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'

/**
 * The adversarial trust scenarios of issue 12, on real libp2p nodes on 127.0.0.1, each run with a seeded dial
 * order and seeded delays: a consistent liar dialled before or after the publisher, a liar forging a sub-range,
 * a liar relaying the publisher's genuine records while serving forged items, a quorum of honest peers beside
 * a forger, and a joiner whose only peer is a liar. Shared by the short run in `npm test` and the 20-seed soak.
 */

export const TOPIC = 'trust'
export const COUNT = 600
export const HEAD = COUNT - 1
/** How long an honest sync may take once an honest peer is reachable (the bound). */
export const HONEST_SYNC_MS = 10_000
const PENALTY_TAG = 'dsfg-penalty'

export type Scenario = 'liar-first' | 'liar-after' | 'sub-range' | 'relaying-liar' | 'quorum' | 'only-liar'
export const SCENARIOS: readonly Scenario[] = ['liar-first', 'liar-after', 'sub-range', 'relaying-liar', 'quorum', 'only-liar']

function itemsOf(seed: number): Uint8Array[] {
  const prng = new Prng(seed)
  return Array.from({ length: COUNT }, () => prng.bytes(16 + prng.int(48)))
}

/** Everything a run started, stopped whatever happens. */
class Running {
  private readonly stoppers: (() => unknown)[] = []

  add<T extends { stop(): unknown }>(thing: T): T {
    this.stoppers.push(() => thing.stop())
    return thing
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled(this.stoppers.splice(0).map((stop) => stop()))
  }
}

/**
 * A consistent forger: a store holding a whole other history of the topic, with its checkpoint, and a record of
 * that checkpoint signed by the forger's own key, higher numbered than any the publisher signed. Served
 * honestly, it proves its items against its own root, and its status hands out its own record.
 */
async function forgedTopics(): Promise<TopicStore> {
  const topics = new TopicStore(new MemoryStore())
  await topics.appendMany(TOPIC, itemsOf(666))
  await recordSignedCheckpoint(topics, TOPIC, await generateKeyPair('Ed25519'))
  return topics
}

/**
 * Runs one scenario with `seed`: asserts that no forged item is stored or yielded by `items()`, that the honest
 * publisher (or honest peers) are never penalised, and that the sync completes within `HONEST_SYNC_MS` of an
 * honest peer being reachable, or (with only the liar) never claims to be synced.
 */
export async function runScenario(scenario: Scenario, seed: number): Promise<void> {
  const prng = new Prng(seed)
  const running = new Running()
  try {
    const honestItems = itemsOf(31)
    const publisher = running.add(await createDsfgNode({ store: new MemoryStore() }))
    const published = publisher.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    await publisher.services.dsfg.topicStore.appendMany(TOPIC, honestItems)
    await published.checkpoint()
    // The publisher keeps announcing its checkpoint, as a live one does.
    const announcing = setInterval(() => void published.checkpoint().catch(() => undefined), 300)
    running.add({ stop: () => clearInterval(announcing) })

    // Replies of the sub-range liar that held a forged item (its other replies are the publisher's own data).
    let forgedReplies = 0
    const liarInit = async (): Promise<AdversaryInit> => {
      switch (scenario) {
        case 'sub-range':
          // The publisher's own data, with items 200..259 forged (proofs kept): the one range it lies about.
          return {
            store: publisher.services.dsfg.store,
            topics: publisher.services.dsfg.topicStore,
            behaviour: {
              contents: {
                forge: (items) => {
                  if (items.some((i) => i.n >= 200 && i.n < 260)) forgedReplies++
                  return items.map((i) => (i.n >= 200 && i.n < 260 ? { n: i.n, data: Uint8Array.of(...i.data, 1) } : i))
                }
              }
            }
          }
        case 'relaying-liar': {
          // Forged items, and the publisher's genuine record in its status replies.
          const topics = await forgedTopics()
          const record = await publisher.services.dsfg.topicStore.getCheckpointRecord(TOPIC)
          await topics.putCheckpointRecord(TOPIC, record!)
          return { topics, behaviour: { contents: { unproven: true } } }
        }
        case 'liar-first':
        case 'only-liar':
          // Serves its own history, and proves it against its own (self-signed) root when asked for that.
          return { topics: await forgedTopics() }
        default:
          return { topics: await forgedTopics(), behaviour: { contents: { unproven: true } } }
      }
    }
    const liar: Adversary = running.add(await createAdversary(await liarInit()))

    const quorum = scenario === 'quorum'
    const config: Omit<TopicConfig, 'name'> = quorum ? { quorum: 2 } : { publisher: publisher.peerId }
    const joiner = running.add(await createDsfgNode({ store: new MemoryStore(), requestTimeoutMs: 2_000 }))
    const topic: TopicHandle = joiner.services.dsfg.topic({ name: TOPIC, ...config })
    const blame = new BlameLog()
    topic.addEventListener('peer:penalised', blame.listener)
    const follow = new AbortController()
    running.add({ stop: () => follow.abort() })
    const following = topic.follow({ signal: follow.signal })
    const yielded: Item[] = []
    const consuming = (async () => {
      for await (const item of topic.items({ signal: follow.signal })) yielded.push(item)
    })().catch(() => undefined)

    // The honest peers: the publisher, and for the quorum a second server of its data.
    const honest: DsfgNode[] = [publisher]
    if (quorum) {
      const second = running.add(await createDsfgNode({ store: publisher.services.dsfg.store }))
      second.services.dsfg.topic(TOPIC)
      honest.push(second)
    }
    const liarFirst = scenario === 'liar-first' || scenario === 'relaying-liar' || (scenario !== 'liar-after' && prng.int(2) === 0)
    const order: { node: { getMultiaddrs(): ReturnType<DsfgNode['getMultiaddrs']> }; honest: boolean }[] = [
      { node: liar.node, honest: false },
      ...(scenario === 'only-liar' ? [] : honest.map((node) => ({ node, honest: true })))
    ]
    if (!liarFirst) order.push(order.shift()!)
    let honestReachable = 0
    for (const peer of order) {
      await new Promise((resolve) => setTimeout(resolve, prng.int(200)))
      await joiner.dial(peer.node.getMultiaddrs()[0]!)
      if (peer.honest && honestReachable === 0) honestReachable = Date.now()
    }

    if (scenario === 'only-liar') {
      // Nothing it can verify: it waits, and never says it is synced.
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      expect(topic.mode).not.toBe('synced')
      expect(await topic.head()).toBe(-1)
      expect(yielded).toEqual([])
    } else {
      const deadline = honestReachable + HONEST_SYNC_MS
      await until(async () => (await topic.head()) === HEAD, 'the joiner to catch up', Math.max(1, deadline - Date.now()))
      const stored = await joiner.services.dsfg.topicStore.getContents(TOPIC, 0, COUNT)
      expect(stored.map((i) => i.data)).toEqual(honestItems)
      await until(() => yielded.length === COUNT, 'items() to yield every item', 5_000)
    }
    // Nothing forged was ever yielded, in any scenario.
    for (const item of yielded) expect(equalBytes(item.data, honestItems[item.n]!), `item ${item.n}`).toBe(true)
    // The honest peers were never penalised, on the events nor in the peer store.
    for (const node of honest) {
      expect(blame.blamed(node.peerId), `${scenario}: honest ${node.peerId.toString()} blamed`).toBe(false)
      if (scenario !== 'only-liar') {
        const peer = await joiner.peerStore.get(node.peerId)
        expect(peer.tags.get(PENALTY_TAG)).toBeUndefined()
      }
    }
    const servedForgeries = scenario === 'sub-range' ? forgedReplies > 0 : scenario === 'liar-after' || scenario === 'relaying-liar'
    if (servedForgeries && liar.calls('contents') > 0) {
      // It served forged items: they failed their proofs, and it alone is blamed for them.
      expect(blame.blamed(liar.node.peerId)).toBe(true)
    }
    follow.abort()
    await following
    await consuming
  } finally {
    await running.stopAll()
  }
}
