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
    expect(budget.stats()).toEqual({ inFlight: 100, peak: 100, refused: 2, peers: 2 })
    // A reservation shrunk to the reply's size gives the rest back.
    a?.resize(30)
    expect(budget.charge('a', 20)?.bytes).toBe(20)
    expect(budget.stats()).toEqual({ inFlight: 100, peak: 100, refused: 2, peers: 2 })
    a?.release()
    a?.release()
    a?.resize(40) // released: no effect
    expect(budget.stats()).toEqual({ inFlight: 70, peak: 100, refused: 2, peers: 2 })
    b?.release()
    expect(budget.stats()).toMatchObject({ inFlight: 20, peak: 100, refused: 2 })
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
    return (await lp.read()).subarray()
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
