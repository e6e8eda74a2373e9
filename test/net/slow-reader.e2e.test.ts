import type { Libp2p, Stream } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_INBOUND_STREAMS } from '../../src/constants.js'
import { penaltyOf } from '../helpers/blame.js'
import { connect, type DsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'
import { budgetedServer, connectedAttackers, honestJoiner, openSlowRead } from './half-open-attack.js'

const TOPIC = 'big'

/** 64 KiB items: a full contents request (amount 256) is answered with a reply of about 2 MiB. */
const ITEM_BYTES = 64 * 1024
const COUNT = 64

/** Smaller than the defaults (64 MiB, 12 MiB, 10 s), to keep the test short; the server's behaviour is the same. */
const BUDGET = 32 * 1024 * 1024
const PER_PEER = 5 * 1024 * 1024
const DEADLINE_MS = 3_000

/** Peer ids that each open the most streams a connection may (16) and never read their replies. */
const ATTACKERS = 4

/**
 * 8 peer ids × one reply of about 2 MiB hold more than a whole 16 MiB budget. (A peer holding part of the budget
 * may hold only an equal share of it, one share kept for a peer holding nothing: 6 ids with two replies each
 * no longer fill it, and a joiner found room without taking any.)
 */
const SYBILS = 8
const SYBIL_BUDGET = 16 * 1024 * 1024
/** Longer than the test: the sybils' replies stay stalled, not freed by the write deadline, while the joiner syncs. */
const SYBIL_DEADLINE_MS = 60_000

interface SlowRead {
  stream: Stream
  /** When the server ended the stream, in ms after the attack started. */
  endedAtMs?: number
}

/** `MAX_INBOUND_STREAMS` contents streams from `attacker`, each asking for 256 items with its reader paused. */
async function openSlowReads(attacker: Libp2p, server: DsfgNode, started: number): Promise<SlowRead[]> {
  const connection = attacker.getConnections(server.peerId)[0]!
  const out: SlowRead[] = []
  for (let i = 0; i < MAX_INBOUND_STREAMS; i++) {
    const entry: SlowRead = { stream: await openSlowRead(connection, TOPIC, (i * 4) % COUNT) }
    entry.stream.addEventListener('close', () => {
      entry.endedAtMs = Date.now() - started
    })
    out.push(entry)
  }
  return out
}

describe('replies to peers that do not read them', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  /** A budgeted server holding `COUNT` items of 64 KiB, `attackers` plain nodes connected to it, and an honest joiner. */
  async function attack(options: { seed: number; attackers: number; deadlineMs: number; budget: number }) {
    const server = await budgetedServer({
      topic: TOPIC,
      count: COUNT,
      itemBytes: ITEM_BYTES,
      seed: options.seed,
      deadlineMs: options.deadlineMs,
      budget: options.budget,
      perPeer: PER_PEER
    })
    running.push(server)
    const attackers = await connectedAttackers(options.attackers, server.getMultiaddrs()[0]!)
    running.push(...attackers)
    const joiner = await honestJoiner(TOPIC)
    running.push(joiner)
    return { server, attackers, joiner }
  }

  it(`${ATTACKERS} peer ids × 16 unread 2 MiB replies: bytes in flight stay within the budget, stalled streams are aborted at the deadline, an honest joiner syncs`, async () => {
    const { server, attackers, joiner } = await attack({ seed: 21, attackers: ATTACKERS, deadlineMs: DEADLINE_MS, budget: BUDGET })

    // Sampled throughout: what the server holds never passes the budget.
    let sampledPeak = 0
    const sampler = setInterval(() => {
      sampledPeak = Math.max(sampledPeak, server.services.dsfg.replyStats().inFlight)
    }, 20)
    try {
      const started = Date.now()
      const streams = (await Promise.all(attackers.map((a) => openSlowReads(a, server, started)))).flat()
      expect(streams).toHaveLength(ATTACKERS * MAX_INBOUND_STREAMS)
      // Each attacker holds its share (two replies of about 2 MiB fit in 5 MiB), and the rest of its requests
      // were refused.
      await until(() => server.services.dsfg.replyStats().inFlight >= ATTACKERS * 4_000_000, 'the attackers to fill their shares')

      // The honest joiner dials in the middle of the attack and catches up, within what the attackers left.
      await connect(joiner.node, server)
      const following = joiner.follow()
      await until(async () => (await joiner.topic.head()) === COUNT - 1, 'the honest joiner to catch up during the attack', 15_000)

      // Every reply charged to an attacker is aborted at the write deadline (not before), which frees it.
      await until(() => server.services.dsfg.replyStats().inFlight === 0, 'the stalled replies to be released', DEADLINE_MS + 5_000)
      const reset = streams.filter((s) => s.stream.status === 'reset')
      expect(reset.length).toBeGreaterThanOrEqual(ATTACKERS)
      for (const s of reset) expect(s.endedAtMs!).toBeGreaterThanOrEqual(DEADLINE_MS - 100)

      const stats = server.services.dsfg.replyStats()
      expect(stats.peak).toBeLessThanOrEqual(BUDGET)
      expect(sampledPeak).toBeLessThanOrEqual(BUDGET)
      expect(stats.refused).toBeGreaterThanOrEqual((ATTACKERS * MAX_INBOUND_STREAMS) / 2)
      // An unread reply is a limit violation of its reader's.
      for (const attacker of attackers) {
        await until(async () => (await penaltyOf(server, attacker.peerId)) >= 1, 'each attacker to be charged for its stalled streams')
      }
      expect(await penaltyOf(server, joiner.node.peerId)).toBe(0)
      await joiner.stop()
      await following.catch(() => undefined)
    } finally {
      clearInterval(sampler)
    }
  }, 30_000)

  it(`${SYBILS} peer ids fill the whole budget with unread replies: an honest joiner takes its room from them and syncs long before their deadlines`, async () => {
    const { server, attackers, joiner } = await attack({ seed: 23, attackers: SYBILS, deadlineMs: SYBIL_DEADLINE_MS, budget: SYBIL_BUDGET })

    let sampledPeak = 0
    const sampler = setInterval(() => {
      sampledPeak = Math.max(sampledPeak, server.services.dsfg.replyStats().inFlight)
    }, 20)
    try {
      const streams = (await Promise.all(attackers.map((a) => openSlowReads(a, server, Date.now())))).flat().map((s) => s.stream)
      // The budget is full: whatever the attackers asked that did not fit was refused.
      await until(() => server.services.dsfg.replyStats().inFlight >= SYBIL_BUDGET - 4_200_000, 'the attackers to fill the budget')
      await until(() => server.services.dsfg.replyStats().refused > 0, 'a refusal')
      const started = Date.now()

      await connect(joiner.node, server)
      const following = joiner.follow()
      await until(async () => (await joiner.topic.head()) === COUNT - 1, 'the honest joiner to catch up during the attack', 20_000)
      // Well before any deadline: the joiner's replies took room from the attackers'.
      expect(Date.now() - started).toBeLessThan(SYBIL_DEADLINE_MS / 2)
      const stats = server.services.dsfg.replyStats()
      expect(stats.evicted).toBeGreaterThan(0)
      expect(stats.peak).toBeLessThanOrEqual(SYBIL_BUDGET)
      expect(sampledPeak).toBeLessThanOrEqual(SYBIL_BUDGET)
      // An evicted reply's stream is reset; the attackers' others still wait.
      expect(streams.filter((s) => s.status === 'reset').length).toBeGreaterThan(0)
      // An evicted reply was unread: a limit violation of its reader's. The joiner did nothing wrong.
      const charged = await Promise.all(attackers.map((a) => penaltyOf(server, a.peerId)))
      expect(charged.filter((p) => p > 0).length).toBeGreaterThan(0)
      expect(await penaltyOf(server, joiner.node.peerId)).toBe(0)
      await joiner.stop()
      await following.catch(() => undefined)
    } finally {
      clearInterval(sampler)
    }
  }, 45_000)
})
