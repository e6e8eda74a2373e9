import { describe, expect, it } from 'vitest'
import { TokenBuckets } from '../../src/net/rate-limiter.js'
import { FakeClock } from '../helpers/fake-clock.js'

describe('TokenBuckets', () => {
  it('allows a burst, then the rate, per key', () => {
    const clock = new FakeClock()
    const buckets = new TokenBuckets({ ratePerSecond: 10, burst: 5, clock })
    for (let i = 0; i < 5; i++) expect(buckets.take('a')).toBe(true)
    expect(buckets.take('a')).toBe(false)
    expect(buckets.take('b')).toBe(true) // another peer is not affected
    expect(buckets.waitTime('a')).toBe(100)
    clock.advance(100)
    expect(buckets.take('a')).toBe(true)
    expect(buckets.take('a')).toBe(false)
    clock.advance(10_000)
    for (let i = 0; i < 5; i++) expect(buckets.take('a')).toBe(true)
    expect(buckets.take('a')).toBe(false)
  })

  it('forgets the least recently used keys beyond maxKeys', () => {
    const clock = new FakeClock()
    const buckets = new TokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 2, clock })
    expect(buckets.take('a')).toBe(true)
    expect(buckets.take('b')).toBe(true)
    expect(buckets.take('c')).toBe(true) // evicts a
    expect(buckets.take('a')).toBe(true) // a starts afresh
    expect(buckets.take('c')).toBe(false)
  })

  it('counts a key used again as recent: a flood of new keys forgets the idle ones first, not an active one', () => {
    const clock = new FakeClock()
    const buckets = new TokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 2, clock })
    expect(buckets.take('abuser')).toBe(true)
    expect(buckets.take('idle')).toBe(true)
    expect(buckets.take('abuser')).toBe(false) // used last: the most recent key, with an empty bucket
    expect(buckets.take('new')).toBe(true) // forgets 'idle', the least recently used
    expect(buckets.take('abuser')).toBe(false) // still empty: a new key did not give it a fresh burst
    expect(buckets.take('idle')).toBe(true) // forgotten, so it starts afresh
  })
})
