import { describe, expect, it } from 'vitest'
import { RateTracker } from '../../src/sync/msgrate.js'
import { FakeClock } from '../helpers/fake-clock.js'

describe('RateTracker', () => {
  it('starts a new peer at one item and grows its capacity with measured throughput', () => {
    const tracker = new RateTracker({ now: () => 0 })
    tracker.track('a')
    expect(tracker.capacity('a', 1000)).toBe(1)
    // 100 items in 100 ms = 1000 items/s; the moving average takes a tenth of it per measurement.
    tracker.update('a', 100, 100)
    expect(tracker.capacity('a', 1000)).toBe(Math.ceil(1 + 1.01 * 100))
    for (let i = 0; i < 50; i++) tracker.update('a', 100, 100)
    expect(tracker.capacity('a', 1000)).toBeGreaterThan(990)
    expect(tracker.capacity('a', 1000)).toBeLessThan(1100)
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
})
