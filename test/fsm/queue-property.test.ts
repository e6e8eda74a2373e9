import { describe, expect, it } from 'vitest'
import type { ConsumerResult, PeerFaultReason } from '../../src/fsm/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { SeededRandom } from '../helpers/random.js'
import type { Item } from '../../src/fsm/types.js'
import type { Rule } from '../helpers/adversary-model.js'
import { type Behaviour, harness, item, range, SimConsumer } from './helpers.js'

// Random peer behaviours, random peer churn and random consumer faults, seeded: whatever happens, the consumer
// ends up holding start..target exactly once, in order, and every invalid reply, and nothing else, is blamed on
// the peer that sent it, for what is wrong with it.

const SEEDS = Number(process.env.FSM_SEEDS ?? 200)

/**
 * A reply that breaks the protocol, chosen at random, and the fault it is: every one of them is invalid,
 * whatever `amount` is. `held` is what the honest reply would carry.
 */
function invalidReply(rng: SeededRandom, amount: number): { lie: Rule<'contents'>; fault: PeerFaultReason } {
  switch (rng.int(7)) {
    case 0:
      return { lie: { fault: 'too-many' }, fault: 'too-many' }
    case 1: {
      const beyond = rng.int(50)
      return { lie: { forge: (held) => [item(held[0]!.n + amount + beyond)] }, fault: 'out-of-range' }
    }
    case 2:
      return amount > 1 ? { lie: { fault: 'reorder' }, fault: 'not-ascending' } : { lie: { fault: 'duplicate' }, fault: 'too-many' }
    case 3:
      return amount > 1
        ? { lie: { forge: (held) => [held[0]!, ...held.slice(0, -1)] }, fault: 'duplicate' }
        : { lie: { fault: 'duplicate' }, fault: 'too-many' }
    case 4:
      return amount > 1 ? { lie: { forge: (held) => held.slice(1) }, fault: 'gap' } : { lie: { limit: 0 }, fault: 'empty' }
    case 5:
      return { lie: { limit: 0 }, fault: 'empty' }
    default:
      return { lie: { forge: (held) => [{ n: held[0]!.n, data: null } as unknown as Item] }, fault: 'malformed' }
  }
}

/** A valid reply, an error, a hang or a delay, chosen at random: what an honest but imperfect peer does. */
function honestReply(rng: SeededRandom, amount: number): Rule<'contents'> {
  const roll = rng.float()
  if (roll < 0.1) return { limit: 1 + rng.int(amount), delayMs: rng.int(300) } // short
  if (roll < 0.15) return { fault: 'reset', delayMs: rng.int(2000) }
  if (roll < 0.17) return { fault: 'stall' }
  if (roll < 0.3) return { delayMs: 100 + rng.int(12_000) }
  return { delayMs: rng.int(200) }
}

describe('Queue under random peers (property)', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    it(`seed ${seed}: delivers start..target exactly once, in order`, async () => {
      const rng = new SeededRandom(seed * 7919)
      const start = rng.int(200)
      const target = start + rng.int(1500)
      const window = rng.pick([1, 2, 3, 8])
      const maxInFlightPerPeer = rng.pick([1, 2, 3])
      const clock = new FakeClock()
      const faultRate = rng.pick([0, 0.02, 0.05])
      const consumer = new SimConsumer((): ConsumerResult => {
        const roll = rng.float()
        if (roll < faultRate) return { ok: false, fault: 'local' }
        if (roll < faultRate * 1.6) return { ok: false, fault: 'this' }
        if (roll < faultRate * 2) return { ok: false, fault: 'previous' }
        if (roll < faultRate * 2.2) return { ok: false, fault: 'both' }
        return { ok: true }
      })
      const h = harness(
        {
          start,
          target,
          window,
          maxInFlightPerPeer,
          batchSize: rng.pick([7, 16, 64]),
          maxDownloadAttempts: 40,
          maxProcessAttempts: 40,
          holdTimeoutMs: 2_000,
          noPeerTimeoutMs: Number.POSITIVE_INFINITY
        },
        { consumer, clock }
      )

      const liars = new Set<string>()
      /** The fault of each invalid reply each peer sent. */
      const sentInvalid = new Map<string, PeerFaultReason[]>()
      const peerCount = 2 + rng.int(4)
      const optional: string[] = []
      const config = new Map<string, { lowest: number; head: number; behaviour: Behaviour }>()
      for (let p = 0; p < peerCount; p++) {
        const id = `p${p}`
        const lying = p > 0 && rng.chance(0.5)
        if (lying) liars.add(id)
        // p0 holds everything; the others may be pruned below or lag behind
        const lowest = p === 0 || rng.chance(0.5) ? 0 : start + rng.int(target - start + 1)
        const head = p === 0 || rng.chance(0.5) ? target + 100 : start + rng.int(target - start + 1)
        const behaviour: Behaviour = ({ request: r }) => {
          if (lying && rng.chance(0.3)) {
            const { lie, fault } = invalidReply(rng, r.amount)
            sentInvalid.set(id, [...(sentInvalid.get(id) ?? []), fault])
            return lie
          }
          return honestReply(rng, r.amount)
        }
        h.net.add(id, { lowest, head, behaviour })
        config.set(id, { lowest, head, behaviour })
        if (p > 0) optional.push(id)
      }

      const removed = new Set<string>()
      const result = await h.run({
        stepMs: 500,
        maxMs: 6 * 3_600_000,
        onStep: () => {
          // peer churn: drop a peer, or bring a dropped one back
          if (!rng.chance(0.02)) return
          const back = [...removed]
          if (back.length > 0 && rng.chance(0.5)) {
            const id = rng.pick(back)
            removed.delete(id)
            h.net.add(id, config.get(id))
            h.queue.peersUpdated()
          } else if (optional.length > 0) {
            const id = rng.pick(optional)
            if (removed.has(id)) return
            removed.add(id)
            h.net.remove(id)
            h.queue.removePeer(id)
          }
        }
      })

      expect(result.head).toBe(target)
      expect(h.consumer.sequence).toEqual(range(start, target))
      expect(h.consumer.violations).toEqual([])
      expect(h.consumer.allHonest).toBe(true)
      expect(h.net.violations).toEqual([])
      expect(h.windowViolations).toEqual([])
      for (const [peer, max] of h.net.maxActive) expect(max, peer).toBeLessThanOrEqual(maxInFlightPerPeer)
      for (const fault of h.faults) {
        expect(sentInvalid.has(fault.peer), `${fault.peer} blamed for ${fault.reason}`).toBe(true)
        expect(fault.reason).not.toBe('rejected-content')
      }
      // Blamed once for every invalid reply it sent, for what was wrong with it (each is answered at once, while
      // its request is open), except a reply whose request was dropped before it was read: a second request for
      // the head batch (a hedge) and the batch's own, answered in one tick, where the valid one won.
      const blamed = new Map<string, PeerFaultReason[]>()
      for (const fault of h.faults) blamed.set(fault.peer, [...(blamed.get(fault.peer) ?? []), fault.reason])
      for (const [peer, sent] of sentInvalid) {
        const unblamed = [...sent]
        for (const reason of blamed.get(peer) ?? []) {
          const at = unblamed.indexOf(reason)
          expect(at, `${peer} blamed for ${reason} it did not send`).toBeGreaterThanOrEqual(0)
          unblamed.splice(at, 1)
        }
        const dropped = h.net.requests.filter((r, i) => r.peer === peer && h.net.signals[i]!.aborted).length
        expect(unblamed.length, `${peer}: invalid replies not blamed`).toBeLessThanOrEqual(dropped)
      }
      for (const peer of sentInvalid.keys()) expect(liars.has(peer), peer).toBe(true)
      expect(h.clock.pendingTimers).toBe(0)
    })
  }
})
