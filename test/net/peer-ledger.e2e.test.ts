import { afterEach, describe, expect, it } from 'vitest'
import { OFFENCE_WEIGHT_MALFORMED } from '../../src/constants.js'
import { encodeStatusRequest } from '../../src/net/topic-protocols.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { Prng } from '../../src/util/prng.js'
import { type Adversary, type AdversaryInit, createAdversary } from '../helpers/adversary.js'
import { BlameLog, penaltyOf, untilTagged } from '../helpers/blame.js'
import { connect, createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'

const TOPIC = 'ledger'
const COUNT = 500
const HEAD = COUNT - 1

describe('one peer ledger: every offence adds to one score', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  async function node(init: Parameters<typeof createDsfgNode>[0] = {}): Promise<DsfgNode> {
    const n = await createDsfgNode({ store: new MemoryStore(), ...init })
    running.push(n)
    return n
  }

  async function adversary(init: AdversaryInit): Promise<Adversary> {
    const a = await createAdversary(init)
    running.push(a)
    return a
  }

  const connected = (from: DsfgNode, to: Adversary): boolean => from.getConnections(to.node.peerId).length > 0

  it('adds a malformed status reply and refused requests of one peer into one dsfg-penalty tag', async () => {
    // One request a second, two at once: a handful of requests in a row are refused.
    const j = await node({ topics: [TOPIC], inboundRatePerSecond: 1, inboundBurst: 2 })
    const liar = await adversary({ behaviour: { status: 'garbage' } })
    await connect(j, liar.node)
    // The joiner asks the liar for its state at once, and its garbled reply is the first offence.
    await untilTagged(j, [liar.node.peerId])
    expect(await penaltyOf(j, liar.node.peerId)).toBe(OFFENCE_WEIGHT_MALFORMED)

    const flood = await liar.flood(j.peerId, 'status', encodeStatusRequest(TOPIC), { requests: 12, concurrency: 1 })
    const refused = flood.codes.rateLimited
    expect(refused).toBeGreaterThanOrEqual(5)
    // The two kinds add up (less what a few seconds of decay took): neither count overwrote the other.
    await until(async () => (await penaltyOf(j, liar.node.peerId)) >= OFFENCE_WEIGHT_MALFORMED + refused - 1, 'both offences in the tag')
    const tag = await penaltyOf(j, liar.node.peerId)
    expect(tag).toBeLessThanOrEqual(OFFENCE_WEIGHT_MALFORMED + refused)
    // Below the threshold: still connected.
    expect(connected(j, liar)).toBe(true)
  })

  it('asks a peer blamed once again after the cool-down, so a sync whose only peer it is completes', async () => {
    const source = await node()
    const prng = new Prng(7)
    await source.services.dsfg.topicStore.appendMany(
      TOPIC,
      Array.from({ length: COUNT }, () => prng.bytes(10 + prng.int(40)))
    )
    // Its first contents reply is out of order; every other reply is honest.
    const once = await adversary({
      store: source.services.dsfg.store,
      topics: source.services.dsfg.topicStore,
      behaviour: { contents: ({ call }) => (call === 1 ? 'reorder' : 'honest') }
    })
    const coolDownMs = 300
    const j = await node({ peerScoring: { coolDownMs } })
    const topic = j.services.dsfg.topic({ name: TOPIC, checkpointSync: false })
    const blame = new BlameLog()
    topic.addEventListener('peer:penalised', blame.listener)
    await connect(j, once.node)
    const controller = new AbortController()
    running.push({ stop: () => controller.abort() })
    const following = topic.follow({ signal: controller.signal })
    await until(async () => (await topic.head()) === HEAD, 'the joiner to catch up from the peer it blamed', 10_000)
    expect(blame.reasonsOf(once.node.peerId)).toHaveLength(1)
    expect(await penaltyOf(j, once.node.peerId)).toBe(OFFENCE_WEIGHT_MALFORMED)
    expect(connected(j, once)).toBe(true)
    controller.abort()
    await following
  })
})
