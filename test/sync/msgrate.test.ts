import { describe, expect, it } from 'vitest'
import { CAPACITY_WARMUP_REPLIES } from '../../src/constants.js'
import { RateTracker } from '../../src/sync/msgrate.js'
import { FakeClock } from '../helpers/fake-clock.js'

describe('RateTracker', () => {
  it('starts a new peer at one item, takes faster measurements whole while warming up, then averages', () => {
    const tracker = new RateTracker({ now: () => 0 })
    tracker.track('a')
    expect(tracker.capacity('a', 1000)).toBe(1)
    // 100 items in 100 ms = 1000 items/s, taken whole during the warm-up (a slow start).
    tracker.update('a', 100, 100)
    expect(tracker.capacity('a', 1000)).toBe(Math.ceil(1 + 1.01 * 1000))
    // A slower measurement is averaged, warm-up or not: a tenth of the way down.
    tracker.update('a', 100, 50)
    expect(tracker.capacity('a', 1000)).toBe(Math.ceil(1 + 1.01 * 950))
    for (let i = 2; i < CAPACITY_WARMUP_REPLIES; i++) tracker.update('a', 100, 10)
    const warmed = tracker.capacity('a', 1000)
    // After the warm-up a faster measurement moves it a tenth of the way up too.
    tracker.update('a', 100, 1000)
    const after = tracker.capacity('a', 1000)
    expect(after).toBeGreaterThan(warmed)
    // (Taken whole, 1000 items in 100 ms would make it 10,101.)
    expect(after).toBeLessThan(warmed + 0.11 * 10_000)
    for (let i = 0; i < 80; i++) tracker.update('a', 100, 100)
    expect(tracker.capacity('a', 1000)).toBeGreaterThan(990)
    expect(tracker.capacity('a', 1000)).toBeLessThan(1100)
  })

  it('lets an idle peer outpace only a peer of under half its capacity, and only with much of its queue left', () => {
    const tracker = new RateTracker({ now: () => 0 })
    for (const peer of ['fast', 'even', 'crawler', 'unmeasured']) tracker.track(peer)
    // 1000 items/s and 900 items/s with 100 ms replies; the crawler 50 items/s.
    tracker.update('fast', 100, 100)
    tracker.update('even', 100, 90)
    tracker.update('crawler', 1000, 50)
    // 100 items behind 400 more of the crawler's: 10 s of its link left; 0.1 s + 0.1 s for the fast peer.
    expect(tracker.outpaces('fast', 'crawler', 100, 500, 0, 0)).toBe(true)
    // Nearly all sent already: 0.4 s left, under twice the fast peer's 0.2 s.
    expect(tracker.outpaces('fast', 'crawler', 100, 500, 9_600, 9_600)).toBe(false)
    // A peer of about the same speed is not outpaced by capacity, however long its queue (its copies would be
    // waste); only once overdue (next test).
    expect(tracker.outpaces('fast', 'even', 100, 100_000, 0, 0)).toBe(false)
    // Nor one not measured yet (the late rule's), nor by one not measured.
    expect(tracker.outpaces('fast', 'unmeasured', 100, 500, 0, 0)).toBe(false)
    expect(tracker.outpaces('unmeasured', 'crawler', 100, 500, 0, 0)).toBe(false)
  })

  it('lets an idle peer outpace any measured peer whose requests are far later than its capacity says', () => {
    const tracker = new RateTracker({ now: () => 0 })
    for (const peer of ['fast', 'looksFast', 'fresh']) tracker.track(peer)
    tracker.update('fast', 100, 100) // 1000 items/s; its quickest reply 100 ms
    // 16 items in 5 ms, taken whole in the warm-up: 3200 items/s, more than the fast peer's.
    tracker.update('looksFast', 5, 16)
    // 64 items should take it 20 ms: overdue for `fast` after twice that and twice fast's 100 ms.
    expect(tracker.overdueAfter('fast', 'looksFast', 64)).toBe(240)
    expect(tracker.outpaces('fast', 'looksFast', 64, 64, 240, 240)).toBe(false)
    expect(tracker.outpaces('fast', 'looksFast', 64, 64, 241, 241)).toBe(true)
    // Not for a peer without a reply yet (its quickest unknown), nor over one.
    tracker.update('fresh', 0, 0)
    expect(tracker.overdueAfter('fresh', 'looksFast', 64)).toBe(Number.POSITIVE_INFINITY)
    expect(tracker.outpaces('fresh', 'looksFast', 64, 64, 10_000, 10_000)).toBe(false)
    expect(tracker.overdueAfter('fast', 'fresh', 64)).toBe(Number.POSITIVE_INFINITY)
  })

  it('drops a peer to one item after a timeout or an empty reply', () => {
    const tracker = new RateTracker({ now: () => 0 })
    tracker.track('a')
    for (let i = 0; i < 20; i++) tracker.update('a', 10, 384)
    expect(tracker.capacity('a', 1000)).toBeGreaterThan(384)
    tracker.update('a', 5000, 0)
    expect(tracker.capacity('a', 1000)).toBe(1)
  })

  it('sorts peers by capacity, fastest first, ties by id', () => {
    const tracker = new RateTracker({ now: () => 0 })
    for (const p of ['c', 'a', 'b']) tracker.track(p)
    tracker.update('b', 100, 50)
    expect(tracker.sortByCapacity(['a', 'b', 'c'], 1000)).toEqual(['b', 'a', 'c'])
  })

  it('gives new peers the mean capacity of the others', () => {
    const tracker = new RateTracker({ now: () => 0 })
    tracker.track('a')
    tracker.update('a', 100, 100)
    tracker.track('b')
    expect(tracker.capacity('b', 1000)).toBe(tracker.capacity('a', 1000))
  })

  it('caps the timeout, and tunes the round trip towards what peers measure', () => {
    const clock = new FakeClock()
    const tracker = new RateTracker({ now: () => clock.now(), ttlLimitMs: 10_000, rttMinMs: 100, rttMaxMs: 20_000 })
    expect(tracker.targetTimeout()).toBeLessThanOrEqual(10_000)
    tracker.track('a')
    tracker.track('b') // a second peer lowers confidence, which lengthens the timeout (still capped)
    for (let i = 0; i < 100; i++) {
      tracker.update('a', 150, 10)
      tracker.update('b', 150, 10)
      clock.advance(5_000)
      tracker.targetRoundTrip()
    }
    // Tuned down from the pessimistic start towards the measured ~150 ms (bounded below by rttMinMs).
    expect(tracker.targetRoundTrip()).toBeLessThan(1000)
    expect(tracker.targetTimeout()).toBeLessThan(3000)
  })

  it('lengthens the timeout while a new peer is unmeasured, and shortens it again as time passes', () => {
    const clock = new FakeClock()
    // A cap far above the timeouts here, so it hides nothing.
    const tracker = new RateTracker({ now: () => clock.now(), ttlLimitMs: 1_000_000, rttMinMs: 100, rttMaxMs: 20_000 })
    tracker.track('a')
    const one = tracker.targetTimeout()
    tracker.track('b')
    const two = tracker.targetTimeout()
    expect(two).toBeGreaterThan(one)
    // A round trip later the confidence is restored half the way (the estimate itself unchanged: nobody replied).
    clock.advance(tracker.roundTrip())
    const later = tracker.targetTimeout()
    expect(later).toBeLessThan(two)
    expect(later).toBeGreaterThan(one)
  })

  it('is not warming once a reply failed, even within the warm-up', () => {
    const tracker = new RateTracker({ now: () => 0 })
    tracker.track('a')
    tracker.update('a', 100, 100)
    expect(tracker.warming('a')).toBe(true)
    tracker.update('a', 5_000, 0)
    expect(tracker.warming('a')).toBe(false)
  })

  it('tunes the round trip towards a low percentile of the peers, not their slowest', () => {
    const clock = new FakeClock()
    const tracker = new RateTracker({ now: () => clock.now(), ttlLimitMs: 100_000, rttMinMs: 10, rttMaxMs: 20_000 })
    const rtts = { a: 100, b: 200, c: 300 }
    for (const p of Object.keys(rtts)) tracker.track(p)
    for (let i = 0; i < 300; i++) {
      for (const [p, rtt] of Object.entries(rtts)) tracker.update(p, rtt, 10)
      clock.advance(1_000)
      tracker.roundTrip()
    }
    // Of three peers, the second fastest (index ⌊√3⌋ = 1).
    expect(tracker.roundTrip()).toBeGreaterThan(180)
    expect(tracker.roundTrip()).toBeLessThan(220)
  })
})
