import { describe, expect, it } from 'vitest'
import type { Item } from '../../src/fsm/types.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { equalBytes } from '../../src/util/bytes.js'
import { Prng } from '../../src/util/prng.js'
import { createAdversary } from '../helpers/adversary.js'
import { createDsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'

const TOPIC = 't'

function datas(seed: number, count: number): Uint8Array[] {
  const prng = new Prng(seed)
  return Array.from({ length: count }, () => prng.bytes(16 + prng.int(32)))
}

/**
 * A store first synced by quorum (default 1) from a liar, then followed trusting the publisher: what the
 * quorum took in must not pass as the publisher's (found by an attack on the signed-checkpoint change, where
 * the forged items were yielded as verified and a later checkpoint sent the sync into an endless loop).
 */
async function quorumThenPublisher(variant: 'forged-tail' | 'forged-checkpoint'): Promise<void> {
  const stops: (() => unknown)[] = []
  try {
    const honest = datas(1, 600)
    const publisher = await createDsfgNode({ store: new MemoryStore() })
    stops.push(() => publisher.stop())
    const published = publisher.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    await publisher.services.dsfg.topicStore.appendMany(TOPIC, honest)
    await published.checkpoint()
    // The liar: the honest items and 100 forged ones after them, or a whole forged history of 1200, with a
    // checkpoint of its own (unsigned: quorum mode takes it on the liar's word).
    const liarStore = new MemoryStore()
    const liarTopics = new TopicStore(liarStore)
    const forged = variant === 'forged-tail' ? [...honest, ...datas(666, 100)] : datas(666, 1200)
    await liarTopics.appendMany(TOPIC, forged)
    await liarTopics.checkpoint(TOPIC)
    const liar = await createAdversary({ store: liarStore, topics: liarTopics })
    stops.push(() => liar.stop())

    const store = new MemoryStore()
    const first = await createDsfgNode({ store })
    stops.push(() => first.stop())
    const quorumTopic = first.services.dsfg.topic({ name: TOPIC })
    const quorumFollow = new AbortController()
    const quorumFollowing = quorumTopic.follow({ signal: quorumFollow.signal })
    await first.dial(liar.node.getMultiaddrs()[0]!)
    await until(async () => (await quorumTopic.head()) === forged.length - 1, 'the quorum-mode sync from the liar', 20_000)
    quorumFollow.abort()
    await quorumFollowing
    await first.stop()

    const joiner = await createDsfgNode({ store })
    stops.push(() => joiner.stop())
    const topic = joiner.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    let mismatches = 0
    topic.events.addEventListener('checkpoint:mismatch', () => mismatches++)
    const follow = new AbortController()
    stops.push(() => follow.abort())
    const yielded: Item[] = []
    const consuming = (async () => {
      for await (const item of topic.items({ signal: follow.signal })) yielded.push(item)
    })().catch(() => undefined)
    const following = topic.follow({ signal: follow.signal })
    await joiner.dial(publisher.getMultiaddrs()[0]!)
    await until(async () => topic.mode === 'synced' && (await topic.head()) === honest.length - 1, 'the publisher-mode sync', 10_000)

    // The publisher moves on, past the forged head: the joiner follows, without a loop of mismatches.
    const more = datas(2, 700)
    await publisher.services.dsfg.topicStore.appendMany(TOPIC, more)
    await published.checkpoint()
    const all = [...honest, ...more]
    await until(async () => topic.mode === 'synced' && (await topic.head()) === all.length - 1, 'the joiner to follow the publisher', 10_000)
    await until(() => yielded.length >= all.length, 'items() to yield the publisher\'s items', 5_000)
    const stored = await joiner.services.dsfg.topicStore.getContents(TOPIC, 0, all.length)
    expect(stored.map((i) => i.data)).toEqual(all)
    const notSigned = yielded.filter((item) => !equalBytes(item.data, all[item.n]!))
    expect(notSigned.map((i) => i.n)).toEqual([])
    expect(mismatches).toBeLessThanOrEqual(1)
    follow.abort()
    await following
    await consuming
  } finally {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined)
  }
}

describe('a store synced by quorum, then followed trusting a publisher', () => {
  it('drops a forged tail past the signed checkpoint instead of serving and yielding it', async () => {
    await quorumThenPublisher('forged-tail')
  }, 60_000)

  it('drops a forged history under a checkpoint the quorum took on a liar\'s word, and follows the publisher', async () => {
    await quorumThenPublisher('forged-checkpoint')
  }, 60_000)
})
