import { describe, expect, it } from 'vitest'
import { LANE_BYTES_PER_SECOND, MAX_LANES_PER_PEER } from '../../../src/constants.js'
import { LinkRates } from '../../../src/topic/sync/link-rates.js'

/** A LinkRates on a clock the test moves. */
function rates(maxInFlight = 4, targetMs = 4_000): { links: LinkRates; advance: (ms: number) => void } {
  let now = 0
  return { links: new LinkRates({ maxInFlight, targetMs, now: () => now }), advance: (ms) => (now += ms) }
}

const KIB = 1024

describe('LinkRates', () => {
  it('keeps at most 1,024 peers, dropping idle ones, however many come and go', () => {
    const { links, advance } = rates()
    links.started('busy')
    for (let i = 0; i < 3_000; i++) {
      links.started(`p${i}`)
      advance(300)
      links.ended(`p${i}`, 64 * KIB)
    }
    expect((links as unknown as { peers: Map<string, unknown> }).peers.size).toBeLessThanOrEqual(1_024)
    // A peer with a request in flight is never the one dropped.
    links.ended('busy', 300 * KIB)
    expect(links.bytesPerSecond('busy')).toBeGreaterThan(0)
  })

  it('starts a peer with two requests', () => {
    const { links } = rates()
    expect(links.inFlight('a', 2 * 1024 * KIB)).toBe(2)
    expect(links.bytesPerSecond('a')).toBe(0)
  })

  it('measures the bytes a peer delivers over the time it has requests in flight, however many overlap', () => {
    const { links, advance } = rates()
    // Two requests of 1 MB sharing a 250 kB/s link: both end after 8 s.
    links.started('a')
    links.started('a')
    advance(8_000)
    links.ended('a', 1_000_000)
    advance(5)
    links.ended('a', 1_000_000)
    // 1.75 MB over 6 s: the first reply's sums have faded by a quarter.
    expect(links.bytesPerSecond('a')).toBeGreaterThan(250_000)
    expect(links.bytesPerSecond('a')).toBeLessThan(300_000)
    // Idle time between spells is not the link's.
    advance(60_000)
    for (let i = 0; i < 10; i++) {
      links.started('a')
      advance(4_000)
      links.ended('a', 1_000_000)
    }
    expect(Math.abs(links.bytesPerSecond('a') - 250_000)).toBeLessThan(2_500)
  })

  // One reply of 1 MB measures the link; then batches of 32 items of 64 KiB (2 MiB) and of 256 KiB.
  const sizing = [
    // 1 MB in 4 s: two requests (the second on its way while the first ends).
    { link: 'a thin link (250 kB/s) gets two requests', ms: 4_000, inFlight: 2, small: 4 },
    // 4 MB in 4 s: one of 2 MiB and the next on its way; the most of 256 KiB.
    { link: 'a fast link (1 MB/s) gets more requests of small batches', ms: 1_000, inFlight: 2, small: 4 }
  ]
  for (const { link, ms, inFlight, small } of sizing) {
    it(link, () => {
      const { links, advance } = rates()
      links.started('p')
      advance(ms)
      links.ended('p', 1_000_000)
      expect(links.inFlight('p', 32 * 64 * KIB)).toBe(inFlight)
      expect(links.inFlight('p', 256 * KIB)).toBe(small)
    })
  }

  it('takes a failed request as time without bytes: the peer gets fewer requests, never none', () => {
    const { links, advance } = rates()
    links.started('a')
    advance(1_000)
    links.ended('a', 1_000_000)
    for (let i = 0; i < 20; i++) {
      links.started('a')
      advance(10_000)
      links.ended('a', 0)
    }
    expect(links.bytesPerSecond('a')).toBeLessThan(10_000)
    expect(links.inFlight('a', 32 * 64 * KIB)).toBe(2)
  })

  it('does not measure cancelled requests, nor spans too short to mean anything', () => {
    const { links, advance } = rates()
    links.started('a')
    advance(30_000)
    links.cancelled('a')
    expect(links.bytesPerSecond('a')).toBe(0)
    links.started('a')
    advance(50)
    links.ended('a', 1_000_000)
    expect(links.bytesPerSecond('a')).toBe(0)
    links.started('a')
    advance(950)
    links.ended('a', 0)
    // About 1 MB over the 1 s the two replies took together (the first faded by a quarter).
    expect(links.bytesPerSecond('a')).toBeGreaterThan(700_000)
    expect(links.bytesPerSecond('a')).toBeLessThan(1_000_000)
  })

  it('measures a peer whose replies come more often than every 50 ms', () => {
    // Two requests in flight, a reply of 256 KiB every 20 ms: 13 MB/s. The decaying sum of busy time settles
    // at four times the time between replies (80 ms), under the 200 ms a rate needs; counted so, this peer
    // was never measured and kept two requests and one stream.
    const { links, advance } = rates()
    links.started('fast')
    links.started('fast')
    for (let i = 0; i < 50; i++) {
      advance(20)
      links.ended('fast', 256 * KIB)
      links.started('fast')
    }
    expect(links.bytesPerSecond('fast')).toBeGreaterThan(12_000_000)
    expect(links.bytesPerSecond('fast')).toBeLessThan(14_000_000)
    expect(links.inFlight('fast', 256 * KIB)).toBe(4)
    expect(links.lanes('fast')).toBe(MAX_LANES_PER_PEER)
  })

  it('gives a peer one stream until it has delivered a stream for each LANE_BYTES_PER_SECOND of its rate', () => {
    const lanesAt = (bytesPerSecond: number): number => {
      const { links, advance } = rates()
      for (let i = 0; i < 8; i++) {
        links.started('p')
        advance(250)
        links.ended('p', bytesPerSecond / 4)
      }
      return links.lanes('p')
    }
    expect(rates().links.lanes('unmeasured')).toBe(1)
    // 2 Mbit/s and 8 Mbit/s links keep one stream; each stream of a faster peer carries at least the lane rate.
    expect(lanesAt(250_000)).toBe(1)
    expect(lanesAt(1_000_000)).toBe(1)
    expect(lanesAt(2.2 * LANE_BYTES_PER_SECOND)).toBe(2)
    expect(lanesAt(3.2e6)).toBe(MAX_LANES_PER_PEER)
    for (const rate of [1e5, 1e6, 2e6, 3e6, 1e8]) expect(rate / lanesAt(rate)).toBeGreaterThanOrEqual(Math.min(rate, LANE_BYTES_PER_SECOND))
    // A peer that stops delivering loses its streams with its rate.
    const { links, advance } = rates()
    for (let i = 0; i < 8; i++) {
      links.started('p')
      advance(100)
      links.ended('p', 500_000)
    }
    expect(links.lanes('p')).toBe(MAX_LANES_PER_PEER)
    for (let i = 0; i < 8; i++) {
      links.started('p')
      advance(10_000)
      links.ended('p', 0)
    }
    expect(links.lanes('p')).toBe(1)
  })
})
