import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream, streamPair } from '@libp2p/utils'
import { beforeAll, describe, expect, it } from 'vitest'
import { ReplyBudget } from '../../src/net/reply-budget.js'
import { type FrameViolation, frameHandler } from '../../src/net/rpc.js'

describe('ReplyBudget', () => {
  it('charges a peer and the server, refuses past either cap, and releases once', () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 60 })
    const a = budget.charge('a', 50)
    expect(a?.bytes).toBe(50)
    expect(budget.charge('a', 20)).toBeUndefined() // past a's share
    const b = budget.charge('b', 50)
    expect(budget.charge('c', 1)).toBeUndefined() // past the server's budget
    expect(budget.stats()).toEqual({ inFlight: 100, peak: 100, refused: 2, evicted: 0, peers: 2 })
    // A reservation shrunk to the reply's size gives the rest back.
    a?.resize(30)
    expect(budget.charge('a', 20)?.bytes).toBe(20)
    expect(budget.stats()).toEqual({ inFlight: 100, peak: 100, refused: 2, evicted: 0, peers: 2 })
    a?.release()
    a?.release()
    a?.resize(40) // released: no effect
    expect(budget.stats()).toEqual({ inFlight: 70, peak: 100, refused: 2, evicted: 0, peers: 2 })
    b?.release()
    expect(budget.stats()).toMatchObject({ inFlight: 20, peak: 100, refused: 2 })
  })

  it('gives a full budget\'s room to a peer from those holding more, their oldest replies first', () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 60 })
    const evicted: string[] = []
    // Stalled at once: their readers took nothing (see the next test for replies being read).
    const hold = (peer: string, bytes: number, name: string) => {
      const charge = budget.charge(peer, bytes, () => evicted.push(name))
      charge?.stalled(true)
      return charge
    }
    const a1 = hold('a', 30, 'a1')
    hold('b', 20, 'b1')
    hold('a', 30, 'a2')
    hold('b', 20, 'b2')
    expect(budget.stats().inFlight).toBe(100)
    // c holds nothing: 25 bytes need one reply, and a's first is the oldest.
    expect(hold('c', 25, 'c1')).toBeDefined()
    expect(evicted).toEqual(['a1'])
    expect(a1?.bytes).toBe(30)
    a1?.release() // already released by the eviction: no effect
    expect(budget.stats()).toEqual({ inFlight: 95, peak: 100, refused: 0, evicted: 1, peers: 3 })
    // d asks 25: b's first reply is now the oldest.
    expect(hold('d', 25, 'd1')).toBeDefined()
    expect(evicted).toEqual(['a1', 'b1'])
    // e asks 45: the oldest replies go until there is room (c's and d's are younger than a's and b's).
    expect(hold('e', 45, 'e1')).toBeDefined()
    expect(evicted).toEqual(['a1', 'b1', 'a2', 'b2'])
    // e now holds the most: it takes nothing from the others.
    expect(hold('e', 10, 'e2')).toBeUndefined()
    expect(budget.stats()).toEqual({ inFlight: 95, peak: 100, refused: 1, evicted: 4, peers: 3 })
    // d (25) asks 20: only e holds more, so e's reply goes although it is the youngest.
    expect(hold('d', 20, 'd2')).toBeDefined()
    expect(evicted).toEqual(['a1', 'b1', 'a2', 'b2', 'e1'])
    expect(budget.stats()).toEqual({ inFlight: 70, peak: 100, refused: 1, evicted: 5, peers: 2 })
  })

  it('evicts only charges that can be given up, and nothing when that would not make room', () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 100 })
    const evicted: string[] = []
    budget.charge('a', 50)?.stalled(true) // not evictable: no evict given
    budget.charge('b', 30, () => evicted.push('b1'))?.stalled(true)
    budget.charge('b', 20, () => evicted.push('b2'))?.stalled(true)
    // c needs 60 of room: b's 50 are not enough, and a's cannot be taken, so nothing goes.
    expect(budget.charge('c', 60, () => undefined)).toBeUndefined()
    expect(evicted).toEqual([])
    expect(budget.charge('c', 40, () => undefined)).toBeDefined()
    expect(evicted).toEqual(['b1', 'b2'])
    // Only a holds more than c now, and its charge cannot be taken.
    expect(budget.charge('c', 20, () => undefined)).toBeUndefined()
    expect(budget.stats()).toEqual({ inFlight: 90, peak: 100, refused: 2, evicted: 2, peers: 2 })
  })

  it('never evicts a reply its reader is taking, nor one not yet stalled: the request is refused instead', () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 100 })
    const evicted: string[] = []
    const reading = budget.charge('a', 60, () => evicted.push('a1'))
    const fresh = budget.charge('b', 40, () => evicted.push('b1'))
    expect(budget.charge('c', 30, () => undefined)).toBeUndefined()
    // Stalled a while, then read again: protected again.
    reading?.stalled(true)
    reading?.stalled(false)
    expect(budget.charge('c', 30, () => undefined)).toBeUndefined()
    expect(evicted).toEqual([])
    // b's reader stops: its reply goes, although a holds more.
    fresh?.stalled(true)
    expect(budget.charge('c', 30, () => undefined)).toBeDefined()
    expect(evicted).toEqual(['b1'])
    expect(budget.stats()).toMatchObject({ inFlight: 90, refused: 2, evicted: 1 })
  })

  it('never lets one peer take more than the whole budget', () => {
    const budget = new ReplyBudget({ maxBytes: 10, maxBytesPerPeer: 1000 })
    expect(budget.charge('a', 11)).toBeUndefined()
    expect(budget.charge('a', 10)).toBeDefined()
  })
})

describe('frameHandler with a reply budget', () => {
  let peer: PeerId
  beforeAll(async () => {
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  })

  const REFUSAL = Uint8Array.of(0xc1, 0x03)

  function server(answer: (frame: Uint8Array) => Promise<Uint8Array>, budget: ReplyBudget, reserveBytes = 200_000) {
    const violations: FrameViolation[] = []
    const handler = frameHandler(answer, {
      maxRequestBytes: 64,
      replyBudget: { budget, reserveBytes, refusal: REFUSAL },
      onViolation: (v) => violations.push(v)
    })
    const handled: Promise<void>[] = []
    const open = async (): Promise<Stream> => {
      const [outbound, inbound] = await streamPair()
      handled.push(handler(inbound, { remotePeer: peer } as Connection))
      return outbound
    }
    return { open, violations, handled }
  }

  async function request(stream: Stream, frame: Uint8Array, maxBytes = 1 << 22): Promise<Uint8Array> {
    const lp = lpStream(stream, { maxDataLength: maxBytes, maxBufferSize: maxBytes + 16 })
    await lp.write(frame)
    const reply = (await lp.read()).subarray()
    await stream.close() // the server waits for our side to end before it lets the stream go
    return reply
  }

  it('reserves a reply while it is built, charges its size while it is written, and releases it once out', async () => {
    const budget = new ReplyBudget({ maxBytes: 1 << 20, maxBytesPerPeer: 1 << 20 })
    const during: number[] = []
    const s = server(async () => {
      during.push(budget.stats().inFlight)
      return new Uint8Array(100_000)
    }, budget)
    const reply = await request(await s.open(), Uint8Array.of(1))
    expect(reply.byteLength).toBe(100_000)
    await Promise.all(s.handled)
    expect(during).toEqual([200_000])
    // Nothing is held now.
    expect(budget.stats()).toMatchObject({ inFlight: 0, peak: 200_000, refused: 0 })
    expect(s.violations).toEqual([])
  })

  it('answers the refusal, without building the reply, when the peer has no room', async () => {
    const budget = new ReplyBudget({ maxBytes: 1000, maxBytesPerPeer: 1000 })
    const held = budget.charge(peer.toString(), 500)
    let built = 0
    const s = server(
      async () => {
        built++
        return new Uint8Array(10)
      },
      budget,
      600
    )
    expect(await request(await s.open(), Uint8Array.of(1))).toEqual(REFUSAL)
    expect(built).toBe(0)
    held?.release()
    expect(await request(await s.open(), Uint8Array.of(1))).toEqual(new Uint8Array(10))
    expect(built).toBe(1)
    await Promise.all(s.handled)
    expect(budget.stats()).toMatchObject({ inFlight: 0, refused: 1 })
  })

  it('charges nothing when the answer fails', async () => {
    const budget = new ReplyBudget()
    const s = server(async () => {
      throw new Error('store failed')
    }, budget)
    const stream = await s.open()
    await expect(request(stream, Uint8Array.of(1))).rejects.toThrow()
    await Promise.all(s.handled)
    // The reservation was given back.
    expect(budget.stats()).toMatchObject({ inFlight: 0, peak: 200_000 })
  })
  // A reader that stalls needs a real muxer's flow control (an in-memory pair buffers whatever is sent): the
  // write deadline, and a client aborting its stream, are covered by test/net/slow-reader.e2e.test.ts.
})
