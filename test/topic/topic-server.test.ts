import { describe, expect, it } from 'vitest'
import { MAX_FRAME_BYTES, MAX_HASHES_PER_REQUEST, MAX_ITEMS_PER_REQUEST, MAX_RESPONSE_BYTES } from '../../src/constants.js'
import { encodeFrame, Status } from '../../src/net/codec.js'
import {
  CONTENTS_PROTOCOL,
  decodeContentsResponse,
  decodeHashesResponse,
  decodeStatusResponse,
  encodeContentsRequest,
  encodeHashesRequest,
  encodeStatusRequest,
  HASHES_PROTOCOL,
  type Item,
  STATUS_PROTOCOL,
  type TopicState
} from '../../src/net/topic-protocols.js'
import type { TopicProvider } from '../../src/topic/provider.js'
import { answerContents, answerHashes, answerStatus, TopicServer } from '../../src/topic/topic-server.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { equalBytes } from '../../src/util/bytes.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { makeItems } from '../helpers/topic-data.js'
import { MemoryTopicProvider } from './net-helpers.js'

const items = makeItems(300)
const provider = new MemoryTopicProvider({ news: items })

/** Frames no request codec accepts: not RLP, the wrong shape, bad topic names, non-canonical integers. */
const garbage: Record<string, Uint8Array> = {
  empty: new Uint8Array(0),
  'not rlp': Uint8Array.of(0xf8, 0xff, 1),
  'a byte string': encodeFrame(Uint8Array.of(1, 2, 3)),
  'an empty list': encodeFrame([]),
  'too many fields': encodeFrame([Uint8Array.of(0x61), Uint8Array.of(1), Uint8Array.of(1), Uint8Array.of(1)]),
  'empty topic': encodeFrame([new Uint8Array(0), Uint8Array.of(1), Uint8Array.of(1)]),
  'leading zero': encodeFrame([Uint8Array.of(0x61), Uint8Array.of(0, 1), Uint8Array.of(1)])
}

/** A provider that throws, or returns what the protocol cannot carry. */
function brokenProvider(over: Partial<TopicProvider>): TopicProvider {
  return {
    getCurrentTopicState: async () => {
      throw new Error('store down')
    },
    getContents: async () => {
      throw new Error('store down')
    },
    getContentHashes: async () => {
      throw new Error('store down')
    },
    ...over
  }
}

describe('answerStatus', () => {
  it('answers our state of the topic', async () => {
    const reply = decodeStatusResponse(await answerStatus(provider, encodeStatusRequest('news'), 'p'))
    expect(reply).toEqual({ code: Status.OK, state: await provider.getCurrentTopicState('news') })
    expect(reply.state?.head).toBe(299)
  })

  it('answers UNAVAILABLE for a topic we hold nothing of', async () => {
    expect(decodeStatusResponse(await answerStatus(provider, encodeStatusRequest('other'), 'p'))).toEqual({
      code: Status.UNAVAILABLE,
      state: null
    })
  })

  it('answers INVALID_REQUEST to malformed frames', async () => {
    for (const [what, frame] of Object.entries(garbage)) {
      const reply = decodeStatusResponse(await answerStatus(provider, frame, 'p'))
      expect(reply.code, what).toBe(Status.INVALID_REQUEST)
    }
    const longTopic = encodeFrame([new Uint8Array(257).fill(0x61)])
    expect(decodeStatusResponse(await answerStatus(provider, longTopic, 'p')).code).toBe(Status.INVALID_REQUEST)
  })

  it('answers UNAVAILABLE, and reports, when the provider fails or returns a state the wire cannot carry', async () => {
    const errors: [unknown, string][] = []
    const onProviderError = (err: unknown, peer: string) => errors.push([err, peer])
    const failing = brokenProvider({})
    const reply = await answerStatus(failing, encodeStatusRequest('news'), 'peer-a', { onProviderError })
    expect(decodeStatusResponse(reply).code).toBe(Status.UNAVAILABLE)
    const bad: TopicState = { ...(await provider.getCurrentTopicState('news'))!, lowest: 300 }
    const lying = brokenProvider({ getCurrentTopicState: async () => bad })
    const reply2 = await answerStatus(lying, encodeStatusRequest('news'), 'peer-b', { onProviderError })
    expect(decodeStatusResponse(reply2).code).toBe(Status.UNAVAILABLE)
    expect(errors.map(([, peer]) => peer)).toEqual(['peer-a', 'peer-b'])
  })
})

describe('answerContents', () => {
  const ask = async (from: number, amount: number, p: TopicProvider = provider, options = {}) =>
    decodeContentsResponse(await answerContents(p, encodeContentsRequest('news', from, amount), 'p', options), from, amount)

  it('reads no more of the provider than one reply holds, and ends the reply where the next item does not fit', async () => {
    // 300 items of 64 KiB: a full request used to read all 256 it asked for (16 MiB) to send 31 of them.
    const items = Array.from({ length: 300 }, (_v, n) => ({ n, data: new Uint8Array(64 * 1024).fill(n % 256) }))
    const provider = new MemoryTopicProvider({ news: items })
    const asked: number[] = []
    const counting: TopicProvider = {
      getCurrentTopicState: (topic) => provider.getCurrentTopicState(topic),
      getContentHashes: (topic, from, to) => provider.getContentHashes(topic, from, to),
      getContents: (topic, from, amount) => {
        asked.push(amount)
        return provider.getContents(topic, from, amount)
      }
    }
    const reply = decodeContentsResponse(
      await answerContents(counting, encodeContentsRequest('news', 10, MAX_ITEMS_PER_REQUEST), 'p'),
      10,
      MAX_ITEMS_PER_REQUEST
    )
    expect(reply.items.map((i) => i.n)).toEqual(items.slice(10, 10 + Math.floor(MAX_RESPONSE_BYTES / (64 * 1024))).map((i) => i.n))
    expect(asked.reduce((a, b) => a + b, 0) * 64 * 1024).toBeLessThanOrEqual(MAX_RESPONSE_BYTES + 64 * 1024)
  })

  it('answers the items asked for', async () => {
    expect(await ask(10, 20)).toEqual({ code: Status.OK, items: items.slice(10, 30), proof: [] })
  })

  it('answers a prefix at the head, and UNAVAILABLE past it or for an unknown topic', async () => {
    expect((await ask(290, 64)).items).toEqual(items.slice(290))
    expect(await ask(300, 64)).toEqual({ code: Status.UNAVAILABLE, items: [], proof: [] })
    const unknown = await answerContents(provider, encodeContentsRequest('other', 0, 1), 'p')
    expect(decodeContentsResponse(unknown, 0, 1).code).toBe(Status.UNAVAILABLE)
  })

  it('caps a reply by item count', async () => {
    expect((await ask(0, 100, provider, { maxItems: 7 })).items).toEqual(items.slice(0, 7))
    const many = new MemoryTopicProvider({ news: makeItems(1000, 2, 4) })
    const reply = await ask(0, MAX_ITEMS_PER_REQUEST, many)
    expect(reply.items).toHaveLength(MAX_ITEMS_PER_REQUEST)
    // A request for more than the protocol allows is malformed.
    const tooMany = await answerContents(many, encodeContentsRequest('news', 0, MAX_ITEMS_PER_REQUEST + 1), 'p')
    expect(decodeContentsResponse(tooMany, 0, 1).code).toBe(Status.INVALID_REQUEST)
  })

  it('caps a reply by bytes, stopping before the limit', async () => {
    const big: Item[] = Array.from({ length: 30 }, (_v, n) => ({ n, data: new Uint8Array(100 * 1024).fill(n) }))
    const p = new MemoryTopicProvider({ news: big })
    const frame = await answerContents(p, encodeContentsRequest('news', 0, 30), 'p')
    const reply = decodeContentsResponse(frame, 0, 30)
    // 20 items of 100 KiB are 2,000 KiB, the 21st would pass MAX_RESPONSE_BYTES (2 MiB). (Compared by hand:
    // a deep equality over megabytes is slow.)
    expect(reply.items.map((i) => i.n)).toEqual(big.slice(0, 20).map((i) => i.n))
    expect(reply.items.every((i) => equalBytes(i.data, big[i.n]!.data))).toBe(true)
    expect(reply.items.reduce((s, i) => s + i.data.length, 0)).toBeLessThanOrEqual(MAX_RESPONSE_BYTES)
    expect(frame.length).toBeLessThanOrEqual(MAX_FRAME_BYTES)
    expect((await ask(0, 30, p, { maxResponseBytes: 250 * 1024 })).items.map((i) => i.n)).toEqual([0, 1])
  })

  it('cuts a reply to the room the reply budget gave it, and answers busy, not UNAVAILABLE, when no item fits', async () => {
    const big: Item[] = Array.from({ length: 30 }, (_v, n) => ({ n, data: new Uint8Array(100 * 1024).fill(n) }))
    const p = new MemoryTopicProvider({ news: big })
    const withRoom = async (room: number) =>
      decodeContentsResponse(await answerContents(p, encodeContentsRequest('news', 0, 30), 'p', {}, room), 0, 30)
    // The room less the frame's 64 KiB for headers: 256 KiB leaves 192 KiB, one item of 100 KiB.
    expect((await withRoom(256 * 1024)).items.map((i) => i.n)).toEqual([0])
    expect((await withRoom(MAX_FRAME_BYTES - 5)).items).toHaveLength(20)
    // The items are there: a reply with none of them would tell the client this peer lacks them.
    expect(await withRoom(64 * 1024 + 100 * 1024 - 1)).toEqual({ code: Status.RATE_LIMITED, items: [], proof: [] })
    // Past the head it is still UNAVAILABLE, whatever the room.
    const past = decodeContentsResponse(await answerContents(p, encodeContentsRequest('news', 30, 5), 'p', {}, 64 * 1024), 30, 5)
    expect(past.code).toBe(Status.UNAVAILABLE)
  })

  it('answers INVALID_REQUEST to malformed frames and a zero amount', async () => {
    for (const [what, frame] of Object.entries(garbage)) {
      const reply = decodeContentsResponse(await answerContents(provider, frame, 'p'), 0, 1)
      expect(reply.code, what).toBe(Status.INVALID_REQUEST)
    }
    const zero = await answerContents(provider, encodeFrame([Uint8Array.of(0x61), Uint8Array.of(1), new Uint8Array(0)]), 'p')
    expect(decodeContentsResponse(zero, 0, 1).code).toBe(Status.INVALID_REQUEST)
  })

  it('never sends what the client would reject, whatever the provider returns', async () => {
    const seen: unknown[] = []
    const failing = brokenProvider({})
    const reply = await ask(0, 5, failing, { onProviderError: (e: unknown) => seen.push(e) })
    expect(reply).toEqual({ code: Status.UNAVAILABLE, items: [], proof: [] })
    expect(seen).toHaveLength(1)
    const d = Uint8Array.of(1)
    const cases: [string, Item[], number][] = [
      ['out of range', [{ n: 3, data: d }, { n: 9, data: d }], 1],
      ['descending', [{ n: 4, data: d }, { n: 3, data: d }], 1],
      ['duplicate', [{ n: 3, data: d }, { n: 3, data: d }], 1],
      ['empty item', [{ n: 3, data: d }, { n: 4, data: new Uint8Array(0) }], 1],
      ['oversized item', [{ n: 3, data: d }, { n: 4, data: new Uint8Array(512 * 1024 + 1) }], 1],
      ['below the range', [{ n: 2, data: d }], 0]
    ]
    for (const [what, held, kept] of cases) {
      const reply = await ask(3, 5, brokenProvider({ getContents: async () => held }))
      expect(reply.items, what).toEqual(held.slice(0, kept))
      expect(reply.code, what).toBe(kept === 0 ? Status.UNAVAILABLE : Status.OK)
    }
  })
})

describe('answerHashes', () => {
  const ask = async (from: number, to: number, p: TopicProvider = provider, options = {}) =>
    decodeHashesResponse(await answerHashes(p, encodeHashesRequest('news', from, to), 'p', options), from, to)

  it('answers the hashes of the items asked for, a prefix at the head, UNAVAILABLE past it', async () => {
    expect(await ask(5, 9)).toEqual({ code: Status.OK, hashes: items.slice(5, 10).map((i) => keccak256(i.data)) })
    expect((await ask(295, 400)).hashes).toHaveLength(5)
    expect(await ask(300, 310)).toEqual({ code: Status.UNAVAILABLE, hashes: [] })
  })

  it('caps a reply by count', async () => {
    expect((await ask(0, 299, provider, { maxHashes: 10 })).hashes).toHaveLength(10)
    const tooWide = await answerHashes(provider, encodeHashesRequest('news', 0, MAX_HASHES_PER_REQUEST), 'p')
    expect(decodeHashesResponse(tooWide, 0, 0).code).toBe(Status.INVALID_REQUEST)
    const provided = brokenProvider({ getContentHashes: async () => Array.from({ length: 50 }, () => new Uint8Array(32)) })
    expect((await ask(0, 9, provided)).hashes).toHaveLength(10)
  })

  it('answers INVALID_REQUEST to malformed frames and a reversed range', async () => {
    for (const [what, frame] of Object.entries(garbage)) {
      expect(decodeHashesResponse(await answerHashes(provider, frame, 'p'), 0, 0).code, what).toBe(Status.INVALID_REQUEST)
    }
    const reversed = await answerHashes(provider, encodeHashesRequest('news', 9, 5), 'p')
    expect(decodeHashesResponse(reversed, 0, 0).code).toBe(Status.INVALID_REQUEST)
  })

  it('answers UNAVAILABLE when the provider fails, and stops at a hash of the wrong size', async () => {
    expect((await ask(0, 3, brokenProvider({}))).code).toBe(Status.UNAVAILABLE)
    const short = brokenProvider({ getContentHashes: async () => [new Uint8Array(32), new Uint8Array(31)] })
    expect((await ask(0, 3, short)).hashes).toHaveLength(1)
  })
})

describe('TopicServer', () => {
  it('routes each protocol id to its answer', async () => {
    const server = new TopicServer({ provider })
    const handlers = server.handlers()
    expect(Object.keys(handlers).sort()).toEqual([CONTENTS_PROTOCOL, HASHES_PROTOCOL, STATUS_PROTOCOL].sort())
    expect(decodeStatusResponse(await handlers[STATUS_PROTOCOL](encodeStatusRequest('news'), 'p')).state?.head).toBe(299)
    const contents = await handlers[CONTENTS_PROTOCOL](encodeContentsRequest('news', 0, 2), 'p')
    expect(decodeContentsResponse(contents, 0, 2).items).toEqual(items.slice(0, 2))
    const hashes = await handlers[HASHES_PROTOCOL](encodeHashesRequest('news', 0, 1), 'p')
    expect(decodeHashesResponse(hashes, 0, 1).hashes).toHaveLength(2)
  })

  it('limits a flooding peer while an honest peer keeps being answered', async () => {
    const clock = new FakeClock()
    const server = new TopicServer({ provider, clock, inboundRatePerSecond: 2, inboundBurst: 5 })
    const h = server.handlers()
    const codes = async (peer: string, n: number): Promise<Status[]> => {
      const out: Status[] = []
      for (let i = 0; i < n; i++) {
        // The three protocols draw on one bucket per peer.
        const reply = await h[CONTENTS_PROTOCOL](encodeContentsRequest('news', i, 1), peer)
        out.push(decodeContentsResponse(reply, i, 1).code)
      }
      return out
    }
    const flood = await codes('flooder', 20)
    expect(flood.slice(0, 5)).toEqual(Array(5).fill(Status.OK))
    expect(flood.slice(5)).toEqual(Array(15).fill(Status.RATE_LIMITED))
    const status = await h[STATUS_PROTOCOL](encodeStatusRequest('news'), 'flooder')
    expect(decodeStatusResponse(status).code).toBe(Status.RATE_LIMITED)
    const hashes = await h[HASHES_PROTOCOL](encodeHashesRequest('news', 0, 0), 'flooder')
    expect(decodeHashesResponse(hashes, 0, 0).code).toBe(Status.RATE_LIMITED)
    // Garbage costs a token too, and is answered RATE_LIMITED before it is even parsed.
    expect(decodeStatusResponse(await h[STATUS_PROTOCOL](garbage['not rlp']!, 'flooder')).code).toBe(Status.RATE_LIMITED)

    expect(await codes('honest', 3)).toEqual(Array(3).fill(Status.OK))

    // Time refills the flooder's bucket at its rate, and only that.
    clock.advance(1_000)
    expect(await codes('flooder', 3)).toEqual([Status.OK, Status.OK, Status.RATE_LIMITED])
    for (let s = 0; s < 10; s++) {
      clock.advance(500)
      expect(await codes('honest', 1)).toEqual([Status.OK]) // a peer within its rate is always answered
    }
  })
})
