import { describe, expect, it } from 'vitest'
import {
  DEFAULT_INBOUND_REQUEST_BURST,
  MAX_HASHES_PER_REQUEST,
  MAX_ITEMS_PER_REQUEST,
  REQUEST_COST_UNIT
} from '../../src/constants.js'
import { Status } from '../../src/net/codec.js'
import { requestTokens, TokenBuckets } from '../../src/net/rate-limiter.js'
import {
  decodeContentsResponse,
  decodeHashesResponse,
  decodeStatusResponse,
  encodeContentsRequest,
  encodeHashesRequest,
  encodeStatusRequest
} from '../../src/net/topic-protocols.js'
import type { TopicProvider } from '../../src/topic/provider.js'
import { TopicServer } from '../../src/topic/topic-server.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { makeItems } from '../helpers/topic-data.js'
import { MemoryTopicProvider } from './net-helpers.js'

const TOPIC = 'news'
const OLD_LIMITS = { inboundRatePerSecond: 1000, inboundBurst: 1000 }
const items = makeItems(MAX_HASHES_PER_REQUEST + 100)

/** The provider, counting the store reads the server makes for each protocol. */
function countingProvider(): { provider: TopicProvider; reads: { contents: number; hashes: number } } {
  const inner = new MemoryTopicProvider({ [TOPIC]: items })
  const reads = { contents: 0, hashes: 0 }
  const provider: TopicProvider = {
    getCurrentTopicState: (t) => inner.getCurrentTopicState(t),
    getContents: (t, from, amount) => {
      reads.contents++
      return inner.getContents(t, from, amount)
    },
    getContentHashes: (t, from, to) => {
      reads.hashes++
      return inner.getContentHashes(t, from, to)
    }
  }
  return { provider, reads }
}

describe('requestTokens', () => {
  it('charges one token per REQUEST_COST_UNIT asked for, at least one', () => {
    expect(requestTokens(0)).toBe(1)
    expect(requestTokens(1)).toBe(1)
    expect(requestTokens(REQUEST_COST_UNIT)).toBe(1)
    expect(requestTokens(REQUEST_COST_UNIT + 1)).toBe(2)
    expect(requestTokens(MAX_ITEMS_PER_REQUEST)).toBe(4)
    expect(requestTokens(MAX_HASHES_PER_REQUEST)).toBe(128)
  })

  it('a cost above the burst is charged as the whole burst, so a large request still passes once the bucket is full', () => {
    const clock = new FakeClock()
    const buckets = new TokenBuckets({ ratePerSecond: 10, burst: 5, clock })
    expect(buckets.waitTime('a', 50)).toBe(0)
    expect(buckets.take('a', 50)).toBe(true)
    expect(buckets.take('a', 1)).toBe(false)
    expect(buckets.waitTime('a', 50)).toBe(500)
  })
})

describe('TopicServer limits each peer by the work it asks for', () => {
  it('engages against a flood of the largest hashes requests, which a count of requests let through', async () => {
    const clock = new FakeClock()
    const { provider, reads } = countingProvider()
    let refusals = 0
    // The limits that used to count requests: 1000 a second, a burst of 1000.
    const server = new TopicServer({ provider, clock, ...OLD_LIMITS, onRateLimited: () => refusals++ })
    const frame = encodeHashesRequest(TOPIC, 0, MAX_HASHES_PER_REQUEST - 1)
    const codes: Status[] = []
    for (let i = 0; i < 100; i++) codes.push(decodeHashesResponse(await server.answerHashes(frame, 'flooder'), 0, MAX_HASHES_PER_REQUEST - 1).code)
    // 128 tokens each from a burst of 1000: seven are served, the rest refused without a store read.
    const served = Math.floor(OLD_LIMITS.inboundBurst / requestTokens(MAX_HASHES_PER_REQUEST))
    expect(served).toBe(7)
    expect(codes.slice(0, served)).toEqual(Array(served).fill(Status.OK))
    expect(codes.slice(served)).toEqual(Array(100 - served).fill(Status.RATE_LIMITED))
    expect(reads.hashes).toBe(served)
    expect(refusals).toBe(100 - served)

    // Another peer has a bucket of its own; time refills the flooder's at the rate: one more second, seven more.
    expect(decodeHashesResponse(await server.answerHashes(frame, 'honest'), 0, MAX_HASHES_PER_REQUEST - 1).code).toBe(Status.OK)
    clock.advance(1_000)
    let again = 0
    for (let i = 0; i < 20; i++) {
      if (decodeHashesResponse(await server.answerHashes(frame, 'flooder'), 0, MAX_HASHES_PER_REQUEST - 1).code === Status.OK) again++
    }
    expect(again).toBe(served)
  })

  it('still answers a burst\'s worth of small requests, and charges full contents batches four tokens', async () => {
    const clock = new FakeClock()
    const { provider, reads } = countingProvider()
    const server = new TopicServer({ provider, clock })
    let ok = 0
    for (let i = 0; i < DEFAULT_INBOUND_REQUEST_BURST + 10; i++) {
      if (decodeHashesResponse(await server.answerHashes(encodeHashesRequest(TOPIC, i, i), 'a'), i, i).code === Status.OK) ok++
    }
    expect(ok).toBe(DEFAULT_INBOUND_REQUEST_BURST)

    ok = 0
    for (let i = 0; i < 300; i++) {
      const reply = await server.answerContents(encodeContentsRequest(TOPIC, 0, MAX_ITEMS_PER_REQUEST), 'b')
      if (decodeContentsResponse(reply, 0, MAX_ITEMS_PER_REQUEST).code === Status.OK) ok++
    }
    expect(ok).toBe(Math.floor(DEFAULT_INBOUND_REQUEST_BURST / 4))
    // Each answered request reads the store twice (a first chunk of one reply's worth at the largest item size,
    // then the rest); a refused one not at all.
    expect(reads.contents).toBe(2 * ok)
  })

  it('charges a malformed request one token and a status request one', async () => {
    const clock = new FakeClock()
    const { provider } = countingProvider()
    const server = new TopicServer({ provider, clock, inboundRatePerSecond: 1, inboundBurst: 2 })
    const garbage = new Uint8Array([0xc3, 0x01, 0x02])
    expect(decodeHashesResponse(await server.answerHashes(garbage, 'p'), 0, 0).code).toBe(Status.INVALID_REQUEST)
    expect(decodeStatusResponse(await server.answerStatus(encodeStatusRequest(TOPIC), 'p')).code).toBe(Status.OK)
    expect(decodeStatusResponse(await server.answerStatus(encodeStatusRequest(TOPIC), 'p')).code).toBe(Status.RATE_LIMITED)
    expect(decodeContentsResponse(await server.answerContents(garbage, 'p'), 0, 1).code).toBe(Status.RATE_LIMITED)
  })
})
