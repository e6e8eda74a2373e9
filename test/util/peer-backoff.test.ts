import { describe, expect, it } from 'vitest'
import { PeerBackoff } from '../../src/util/peer-backoff.js'

describe('PeerBackoff', () => {
  it('doubles the wait with each failure in a row, up to the cap, and starts over once the peer answers', () => {
    const backoff = new PeerBackoff({ initialMs: 500, maxMs: 4_000 })
    const ends: number[] = []
    let now = 0
    for (let i = 0; i < 6; i++) {
      const until = backoff.failed('a', now)
      ends.push(until - now)
      now = until
    }
    expect(ends).toEqual([500, 1_000, 2_000, 4_000, 4_000, 4_000])
    backoff.clear('a')
    expect(backoff.has('a')).toBe(false)
    expect(backoff.failed('a', now) - now).toBe(500)
  })

  it('a failure while the peer still waits (a request sent before the wait began) does not double it', () => {
    const backoff = new PeerBackoff({ initialMs: 500, maxMs: 4_000 })
    expect(backoff.failed('a', 0)).toBe(500)
    expect(backoff.failed('a', 10)).toBe(500)
    expect(backoff.failed('a', 499)).toBe(500)
    expect(backoff.failed('a', 500)).toBe(1_500)
  })

  it('says who waits at a time, and when the earliest wait ends', () => {
    const backoff = new PeerBackoff({ initialMs: 1_000, maxMs: 60_000 })
    expect(backoff.nextEnd(0)).toBe(Number.POSITIVE_INFINITY)
    backoff.failed('a', 0)
    backoff.failed('b', 300)
    expect(backoff.waiting('a', 999)).toBe(true)
    expect(backoff.waiting('a', 1_000)).toBe(false)
    // Its wait is over, but it has not answered since: it is still there (a silent peer gets probes only).
    expect(backoff.has('a')).toBe(true)
    expect(backoff.until('a')).toBe(1_000)
    expect(backoff.nextEnd(0)).toBe(1_000)
    expect(backoff.nextEnd(1_000)).toBe(1_300)
    expect(backoff.nextEnd(1_300)).toBe(Number.POSITIVE_INFINITY)
    expect([...backoff.peers()]).toEqual(['a', 'b'])
  })

  it('a cap below the first wait gives way to it', () => {
    const backoff = new PeerBackoff({ initialMs: 2_000, maxMs: 500 })
    expect(backoff.failed('a', 0)).toBe(2_000)
    expect(backoff.failed('a', 2_000)).toBe(4_000)
  })
})
