import { describe, expect, it } from 'vitest'
import { HEDGES_PER_REQUEST } from '../../src/fsm/constants.js'
import { harness, honest, honestAfter, range } from './helpers.js'

describe('Queue: hedges against peers that answer short, lie, fail or are busy (an outside review)', () => {
  it('a peer answering hedges with one valid item does not get an honest peer\'s head request aborted again and again', async () => {
    // 'h' is honest and answers every request in full in 3 s (within the 10 s timeout). 'z' answers every request
    // at once with the first item only: a legal short reply. Its fast replies set the median, so the head is
    // hedged after 1 s; the hedge asks 'z', whose 1-item reply used to win and abort 'h''s request, again and
    // again (34 s; 6 s without hedges). A hedge wins only with the whole range now.
    const h = harness({ start: 0, target: 255, batchSize: 32, window: 4, fetchTimeoutMs: 10_000 })
    h.net.add('h', { behaviour: honestAfter(3_000) })
    h.net.add('z', { behaviour: { limit: 1, delayMs: 10 } })
    const started = h.clock.now()
    await h.run({ stepMs: 10 })
    expect(h.consumer.sequence).toEqual(range(0, 255))
    const aborted = h.net.requests.map((r, i) => ({ r, s: h.net.signals[i]! })).filter(({ r, s }) => r.peer === 'h' && s.aborted)
    expect(h.faults).toEqual([])
    expect(h.clock.now() - started).toBeLessThan(13_000)
    expect(aborted.length).toBeLessThanOrEqual(2)
  })

  it('hedges one request of a batch at HEDGES_PER_REQUEST peers at most, however many answer its hedges short', async () => {
    // 'h' holds the head batch for 3 s; each 'z' answers every request at once with its first item only.
    const h = harness({ start: 0, target: 127, batchSize: 32, window: 4, fetchTimeoutMs: 10_000 })
    h.net.add('h', { behaviour: honestAfter(3_000) })
    for (const z of ['z1', 'z2', 'z3', 'z4']) h.net.add(z, { behaviour: { limit: 1, delayMs: 10 } })
    await h.run({ stepMs: 10 })
    expect(h.consumer.sequence).toEqual(range(0, 127))
    const hedges = h.net.requests.filter((r) => r.from === 0 && r.peer !== 'h')
    expect(hedges.length).toBeGreaterThan(0)
    expect(hedges.length).toBeLessThanOrEqual(HEDGES_PER_REQUEST)
  })

  it("a peer whose hedge of a batch was invalid is not the batch's next choice over an untried honest peer", async () => {
    // batch 0 at 'a' (resets after 1001 ms), batch 1 at 'b' (honest once, 50 ms: the median), batch 2 at 'c'
    // (honest, slow: c stays at its cap of 1). At 1 s batch 0 is hedged at 'b', which now lies at once and is
    // blamed. At 1001 ms 'a' fails; the retry must not go to the peer that just lied about this very range.
    const h = harness({ start: 0, target: 95, batchSize: 32, window: 8, maxInFlightPerPeer: 1, fetchTimeoutMs: 10_000 })
    h.net.add('a', { behaviour: ({ call }) => (call === 1 ? { fault: 'reset', delayMs: 1001 } : 'honest') })
    h.net.add('b', { behaviour: ({ call }) => (call === 1 ? { delayMs: 50 } : { fault: 'reorder' }) })
    h.net.add('c', { behaviour: honestAfter(5_000) })
    await h.run({ stepMs: 1 })
    expect(h.consumer.sequence).toEqual(range(0, 95))
    const askedB0 = h.net.asked('b').filter((r) => r.from === 0)
    expect(askedB0.length).toBe(1) // the hedge only
  })

  it('a hedge in flight is not thrown away when the batch request fails on its last attempt', async () => {
    // maxDownloadAttempts 1: before the hedge existed, the first failure failed the run. Now a second, honest
    // peer is already downloading the same range (the hedge, sent at 1 s) when 'a' sends garbage at 1.5 s; the
    // hedge answers at 1.6 s, and becomes the batch's request instead of the run failing.
    const h = harness({ start: 0, target: 63, batchSize: 32, window: 8, maxDownloadAttempts: 1, fetchTimeoutMs: 10_000 })
    h.net.add('a', { behaviour: ({ call }) => (call === 1 ? { fault: 'reorder', delayMs: 1_500 } : 'honest') })
    // 'b' answers batch 1 in 300 ms (the median: hedge after 1 s), and the hedge of batch 0 in 600 ms.
    h.net.add('b', { behaviour: ({ call }) => ({ delayMs: call === 1 ? 300 : 600 }) })
    let error: unknown
    try {
      await h.run({ stepMs: 10 })
    } catch (e) {
      error = e
    }
    expect(error).toBeUndefined()
    expect(h.consumer.sequence).toEqual(range(0, 63))
  })

  it("a peer whose own request of a batch failed while a hedge was out is not the batch's next choice over an untried peer", async () => {
    // 'b' answers batch 1 in 300 ms (the median: hedge after 1 s) and is asked to hedge batch 0 at 1 s; 'a' fails
    // batch 0 at 1.5 s, so the hedge becomes the batch's request, and fails at 1.6 s. Both have failed the range
    // once now: the retry goes to 'c', which has not, and not back to 'a' as if its failure had never happened.
    const h = harness({ start: 0, target: 63, batchSize: 32, window: 8, fetchTimeoutMs: 10_000 })
    h.net.add('a', { behaviour: ({ call }) => (call === 1 ? { fault: 'reset', delayMs: 1_500 } : 'honest') })
    h.net.add('b', { behaviour: ({ call }) => (call === 1 ? { delayMs: 300 } : { fault: 'reset', delayMs: 600 }) })
    h.net.add('c', { behaviour: honest })
    await h.run({ stepMs: 10 })
    expect(h.consumer.sequence).toEqual(range(0, 63))
    expect(h.net.asked().filter((r) => r.from === 0).map((r) => r.peer)).toEqual(['a', 'b', 'c'])
  })

  it("a hedge's RATE_LIMITED answer is reported as 'refused' like any other", async () => {
    const h = harness({ start: 0, target: 63, batchSize: 32, window: 8, fetchTimeoutMs: 10_000 })
    h.net.add('a', { behaviour: honestAfter(3_000) })
    h.net.add('b', { behaviour: ({ call }) => (call === 1 ? { delayMs: 50 } : { fault: 'rate-limited' }) })
    const refused: unknown[] = []
    h.queue.addEventListener('refused', (e) => refused.push(e.detail))
    await h.run({ stepMs: 10 })
    expect(h.net.asked('b').length).toBeGreaterThan(1)
    expect(refused.length).toBeGreaterThan(0)
  })
})
