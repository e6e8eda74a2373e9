import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { AbortError, PeerBusyError, ProtocolError, RequestRejectedError, StreamEndedError } from '../../src/errors.js'
import { FrameSession, FrameSessions } from '../../src/net/frame-session.js'
import { MAX_LANES_PER_PEER, REPLY_PIECE_BYTES } from '../../src/constants.js'
import { Status } from '../../src/net/codec.js'
import { decodeNodesResponse, encodeNodesResponse, requestNodes } from '../../src/net/nodes-protocol.js'
import { type FrameViolation, frameHandler, lengthPrefix } from '../../src/net/rpc.js'
import { until } from '../helpers/wait.js'

const PROTOCOL = '/test/echo/1.0.0'
const MAX_REQUEST = 64
const FRAME_TIMEOUT_MS = 150

describe('FrameSession: many requests on one stream against frameHandler', () => {
  let peer: PeerId
  beforeAll(async () => {
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  })

  /**
   * A server answering each frame with its bytes reversed, after `delayMs`, on the inbound end of each stream
   * `open()` makes; `pipelined` frames a stream.
   */
  function server(pipelined: number, delayMs: number | ((frame: Uint8Array) => number) = 0) {
    const violations: FrameViolation[] = []
    const handled: Promise<void>[] = []
    let streams = 0
    const handler = frameHandler(
      async (frame) => {
        await new Promise((r) => setTimeout(r, typeof delayMs === 'number' ? delayMs : delayMs(frame)))
        return frame.slice().reverse()
      },
      {
        maxRequestBytes: MAX_REQUEST,
        maxPipelinedRequests: pipelined,
        frameTimeoutMs: FRAME_TIMEOUT_MS,
        onViolation: (v) => violations.push(v)
      }
    )
    const open = async (): Promise<Stream> => {
      const [outbound, inbound] = await streamPair()
      streams++
      handled.push(handler(inbound, { remotePeer: peer } as Connection))
      return outbound
    }
    return { open, violations, handled, streams: () => streams }
  }

  const init = { protocol: PROTOCOL, maxResponseBytes: 1024, maxUnanswered: 4, timeoutMs: 2000 }

  it('answers pipelined requests in order on one stream, and the server closes the stream once idle', async () => {
    const s = server(4, 5)
    const session = new FrameSession(await s.open(), init)
    const replies = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => session.request(Uint8Array.of(n, 0))))
    expect(replies).toEqual([1, 2, 3, 4, 5, 6].map((n) => Uint8Array.of(0, n)))
    expect(s.streams()).toBe(1)
    await Promise.all(s.handled)
    expect(s.violations).toEqual([])
    expect(session.closed).toBe(true)
  })

  it('goes on against a server that answers one request a stream, with a stream a request from then on', async () => {
    const s = server(1)
    const sessions = new FrameSessions(() => s.open(), init)
    const replies = await Promise.all([1, 2, 3, 4, 5].map((n) => sessions.request(peer, Uint8Array.of(n, 9))))
    expect(replies).toEqual([1, 2, 3, 4, 5].map((n) => Uint8Array.of(9, n)))
    expect(s.streams()).toBe(5)
    sessions.close()
    await Promise.all(s.handled)
    expect(s.violations).toEqual([])
  })

  it('spreads a peer\'s requests over at most `lanes` streams (and MAX_LANES_PER_PEER), each to the least loaded', async () => {
    const s = server(4, 40)
    const sessions = new FrameSessions(() => s.open(), init)
    const ask = (n: number, lanes?: number) => sessions.request(peer, Uint8Array.of(n, 7), lanes === undefined ? {} : { lanes })
    // Without lanes, or with one, every request shares one stream.
    await Promise.all([ask(1), ask(2, 1), ask(3, 1)])
    expect(s.streams()).toBe(1)
    // Three lanes, four requests at once: one on each stream, the fourth on the first (the earliest of equals).
    const replies = await Promise.all([10, 11, 12, 13].map((n) => ask(n, 3)))
    expect(replies).toEqual([10, 11, 12, 13].map((n) => Uint8Array.of(7, n)))
    expect(s.streams()).toBe(3)
    // A lone request goes on the first stream, still open: no stream is opened for it.
    await ask(20, 3)
    expect(s.streams()).toBe(3)
    // However many lanes are asked for, a peer has at most MAX_LANES_PER_PEER streams.
    await Promise.all([30, 31, 32, 33, 34, 35, 36, 37].map((n) => ask(n, 100)))
    expect(s.streams()).toBe(MAX_LANES_PER_PEER)
    sessions.close()
    await Promise.all(s.handled)
    expect(s.violations).toEqual([])
  })

  it('prepares a session ahead of its first request, which then goes on it; one left unused is closed in time and blamed for nothing', async () => {
    const s = server(4)
    const sessions = new FrameSessions(() => s.open(), init)
    sessions.prepare(peer, FRAME_TIMEOUT_MS / 3)
    sessions.prepare(peer, FRAME_TIMEOUT_MS / 3) // once is enough
    await until(() => s.streams() === 1, 'the prepared stream')
    expect(await sessions.request(peer, Uint8Array.of(1, 2))).toEqual(Uint8Array.of(2, 1))
    expect(s.streams()).toBe(1)
    sessions.close()
    await Promise.all(s.handled)
    expect(s.violations).toEqual([])

    // Unused: closed before the server's frame deadline, which would charge a stream that brought no frame.
    const idle = server(4)
    const unused = new FrameSessions(() => idle.open(), init)
    unused.prepare(peer, FRAME_TIMEOUT_MS / 3)
    await until(() => idle.streams() === 1, 'the prepared stream')
    await Promise.all(idle.handled)
    expect(idle.violations).toEqual([])
    // A request afterwards opens a stream again.
    expect(await unused.request(peer, Uint8Array.of(3, 4))).toEqual(Uint8Array.of(4, 3))
    expect(idle.streams()).toBe(2)
    unused.close()
  })

  it('forgets a closed prepared session, so a later prepare opens another (none is held for a peer gone)', async () => {
    const s = server(4)
    const sessions = new FrameSessions(() => s.open(), init)
    sessions.prepare(peer, 20)
    await until(() => s.streams() === 1, 'the first prepared stream')
    await Promise.all(s.handled) // closed unused
    sessions.prepare(peer, 20)
    await until(() => s.streams() === 2, 'the second prepared stream')
    sessions.close()
    await Promise.all(s.handled)
    expect(s.violations).toEqual([])
  })

  it("holds a request's own abort while it waits for an opening another request or prepare started", async () => {
    let opened = 0
    // The peer never finishes negotiating: the opening hangs until its own deadline.
    const sessions = new FrameSessions(() => {
      opened++
      return new Promise<Stream>(() => undefined)
    }, { ...init, timeoutMs: 60_000 })
    sessions.prepare(peer, 1_000)
    const controller = new AbortController()
    const request = sessions.request(peer, Uint8Array.of(1), { signal: controller.signal })
    setTimeout(() => controller.abort(), 20)
    const started = Date.now()
    await expect(request).rejects.toBeInstanceOf(AbortError)
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(opened).toBe(1)
    sessions.close()
  })

  it('drops the reply of an abandoned request and still answers the next one', async () => {
    const s = server(4, 30)
    const session = new FrameSession(await s.open(), init)
    const controller = new AbortController()
    const first = session.request(Uint8Array.of(1), { signal: controller.signal })
    const second = session.request(Uint8Array.of(2, 3))
    controller.abort()
    await expect(first).rejects.toBeInstanceOf(AbortError)
    expect(await second).toEqual(Uint8Array.of(3, 2))
    session.close()
  })

  it('resets a stream once every request written on it was given up, and sends the next on a new stream', async () => {
    const s = server(4, 300)
    const sessions = new FrameSessions(() => s.open(), init)
    const gaveUp = [1, 2].map((n) => sessions.request(peer, Uint8Array.of(n), { signal: AbortSignal.timeout(50) }))
    for (const request of gaveUp) await expect(request).rejects.toBeInstanceOf(AbortError)
    expect(await sessions.request(peer, Uint8Array.of(3, 4))).toEqual(Uint8Array.of(4, 3))
    expect(s.streams()).toBe(2)
    sessions.close()
  })

  it('blames only the request whose reply passes the size cap, and ends the session', async () => {
    const [outbound, inbound] = await streamPair()
    const session = new FrameSession(outbound, init)
    const first = session.request(Uint8Array.of(1))
    const second = session.request(Uint8Array.of(2))
    inbound.send(lengthPrefix(init.maxResponseBytes + 1))
    await expect(first).rejects.toBeInstanceOf(ProtocolError)
    await expect(second).rejects.toBeInstanceOf(StreamEndedError)
    expect(session.closed).toBe(true)
    // Reset, not left open: the peer that broke the rules keeps no stream (and no slot of ours).
    expect(outbound.status).toBe('aborted')
  })

  it('refuses a reply with a length prefix past 8 bytes, even one that pads a small length with zeros', async () => {
    const [outbound, inbound] = await streamPair()
    const session = new FrameSession(outbound, init)
    const reply = session.request(Uint8Array.of(1))
    // 5 as a 10-byte varint (0x85, eight 0x80, 0x00), then 5 bytes.
    inbound.send(Uint8Array.of(0x85, ...new Uint8Array(8).fill(0x80), 0x00, 1, 2, 3, 4, 5))
    const err = await reply.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProtocolError)
    expect((err as { fault?: string }).fault).toBe('malformed')
    expect(outbound.status).toBe('aborted')
  })

  it('ends the session on a reply nobody asked for', async () => {
    const [outbound, inbound] = await streamPair()
    const session = new FrameSession(outbound, init)
    const first = session.request(Uint8Array.of(1))
    inbound.send(Uint8Array.of(1, 9))
    expect(await first).toEqual(Uint8Array.of(9))
    inbound.send(Uint8Array.of(1, 8))
    await until(() => session.closed, 'the session to end')
    expect(outbound.status).toBe('aborted')
    await expect(session.request(Uint8Array.of(2))).rejects.toBeInstanceOf(StreamEndedError)
  })

  it('writes at most maxUnanswered requests ahead of their replies', async () => {
    const [outbound, inbound] = await streamPair()
    let received = 0
    inbound.addEventListener('message', (e) => {
      received += e.data.byteLength
    })
    const session = new FrameSession(outbound, { ...init, maxUnanswered: 2 })
    const replies = [1, 2, 3].map((n) => session.request(Uint8Array.of(n)))
    await until(() => received >= 4, 'the first two requests')
    await new Promise((r) => setTimeout(r, 50))
    expect(received).toBe(4) // two frames of a 1-byte prefix and 1 byte, and no third
    inbound.send(Uint8Array.of(1, 7))
    expect(await replies[0]).toEqual(Uint8Array.of(7))
    await until(() => received === 6, 'the third request, written once the first was answered')
    session.close()
    await Promise.allSettled(replies)
  })

  it('fails the requests of a server that ends each stream without answering, instead of opening streams in a loop', async () => {
    let streams = 0
    const sessions = new FrameSessions(async () => {
      const [outbound, inbound] = await streamPair()
      streams++
      // Reads the request, then ends its side cleanly: no reply.
      inbound.addEventListener('message', () => void inbound.close().catch(() => undefined), { once: true })
      return outbound
    }, init)
    await expect(sessions.request(peer, Uint8Array.of(1))).rejects.toBeInstanceOf(StreamEndedError)
    await new Promise((r) => setTimeout(r, 100))
    expect(streams).toBe(1)
    sessions.close()
  })

  it('resets a stream that pipelines more frames than the server answers and reads ahead, and reports it', async () => {
    const s = server(2, 50)
    const stream = await s.open()
    // Two being answered, two waiting in the read buffer, and two more.
    for (let i = 0; i < 6; i++) stream.send(new Uint8Array([...lengthPrefix(MAX_REQUEST), ...new Uint8Array(MAX_REQUEST)]))
    await Promise.all(s.handled)
    expect(s.violations).toEqual(['oversized'])
  })

  it.each([1, 4])('ends a stream (%i frames a stream) whose client read its reply and never ended its side, blaming nobody', async (pipelined) => {
    const s = server(pipelined)
    const stream = await s.open()
    const replies: number[] = []
    stream.addEventListener('message', (e) => replies.push(e.data.byteLength))
    stream.send(Uint8Array.of(2, 7, 8))
    const ended = new Promise<number>((resolve) => stream.addEventListener('close', () => resolve(Date.now()), { once: true }))
    const started = Date.now()
    await Promise.all(s.handled)
    // Before the bound the server only ended its own side, and the stream (and its slot) stayed open for ever.
    const endedAt = await Promise.race([ended, new Promise<number>((r) => setTimeout(() => r(Number.NaN), 20 * FRAME_TIMEOUT_MS))])
    expect(endedAt - started).toBeGreaterThanOrEqual(pipelined === 1 ? FRAME_TIMEOUT_MS : 2 * FRAME_TIMEOUT_MS)
    expect(stream.status).not.toBe('open')
    expect(replies.reduce((a, b) => a + b, 0)).toBe(3)
    expect(s.violations).toEqual([])
  })

  it('reports a later frame left unfinished at the deadline as late', async () => {
    const s = server(4)
    const stream = await s.open()
    stream.send(Uint8Array.of(1, 7))
    stream.send(lengthPrefix(MAX_REQUEST))
    await Promise.all(s.handled)
    expect(s.violations).toEqual(['late'])
  })

  describe('with transfer deadlines (minBytesPerSecond)', () => {
    const transfer = { ...init, timeoutMs: 700, minBytesPerSecond: 1 }

    /** Sends `frame` length-prefixed on `stream` in pieces of 100 bytes, `gapMs` apart. */
    async function trickle(stream: Stream, frame: Uint8Array, gapMs: number): Promise<void> {
      const framed = Uint8Array.of(...lengthPrefix(frame.byteLength), ...frame)
      for (let at = 0; at < framed.byteLength; at += 100) {
        stream.send(framed.subarray(at, at + 100))
        await new Promise((r) => setTimeout(r, gapMs))
      }
    }

    it('does not cut a request for the time it waits behind a reply still coming', async () => {
      const body = new Uint8Array(1000).fill(7)
      const answer = async (inbound: Stream): Promise<void> => {
        // The first reply takes 11 × 120 ms = 1.3 s, far past the 700 ms timeout; the second follows at once.
        await trickle(inbound, body, 120)
        inbound.send(Uint8Array.of(...lengthPrefix(3), 1, 2, 3))
      }
      const [outbound, inbound] = await streamPair()
      const session = new FrameSession(outbound, transfer)
      const replies = Promise.all([session.request(Uint8Array.of(1)), session.request(Uint8Array.of(2))])
      await answer(inbound)
      expect(await replies).toEqual([body, Uint8Array.of(1, 2, 3)])
      session.close()
      // With a deadline a request, both time out.
      const [fixedOut, fixedIn] = await streamPair()
      const fixed = new FrameSession(fixedOut, { ...init, timeoutMs: transfer.timeoutMs })
      const settled = Promise.allSettled([fixed.request(Uint8Array.of(1)), fixed.request(Uint8Array.of(2))])
      await answer(fixedIn).catch(() => undefined)
      expect((await settled).map((r) => r.status)).toEqual(['rejected', 'rejected'])
    })

    it('cuts a reply that starts well after the one before it once its request waited past the timeout', async () => {
      const [outbound, inbound] = await streamPair()
      const session = new FrameSession(outbound, { ...transfer, replyGapMs: 200 })
      const first = session.request(Uint8Array.of(1))
      const second = session.request(Uint8Array.of(2)).catch((e: unknown) => e)
      // The first reply 600 ms after the requests, the second 450 ms after that: 1,050 ms after it was asked for,
      // and no byte came meanwhile (an outside tester's server answered each request 9.5 s after the last).
      await new Promise((r) => setTimeout(r, 600))
      inbound.send(Uint8Array.of(...lengthPrefix(1), 9))
      expect(await first).toEqual(Uint8Array.of(9))
      setTimeout(() => {
        if (inbound.status === 'open') inbound.send(Uint8Array.of(...lengthPrefix(1), 8))
      }, 450)
      expect(((await second) as Error).name).toBe('TimeoutError')
    })

    it('counts the start of a reply that came with the end of the one before as its first bytes', async () => {
      const [outbound, inbound] = await streamPair()
      const session = new FrameSession(outbound, { ...transfer, replyGapMs: 200 })
      const replies = Promise.all([session.request(Uint8Array.of(1)), session.request(Uint8Array.of(2))])
      const second = Uint8Array.of(...lengthPrefix(20), ...new Uint8Array(20).fill(5))
      // The first reply and half the second in one chunk 500 ms after the requests, the rest 500 ms later: the
      // second's first bytes are in, so only the 700 ms between bytes applies, not its 200 ms to a first byte.
      await new Promise((r) => setTimeout(r, 500))
      inbound.send(Uint8Array.of(...lengthPrefix(1), 9, ...second.subarray(0, 11)))
      await new Promise((r) => setTimeout(r, 500))
      inbound.send(second.subarray(11))
      expect(await replies).toEqual([Uint8Array.of(9), new Uint8Array(20).fill(5)])
    })

    it('leaves no timer running once the replies asked for are in, however many came', async () => {
      const [outbound, inbound] = await streamPair()
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
      try {
        const session = new FrameSession(outbound, transfer)
        const replies = Promise.all([1, 2, 3].map((n) => session.request(Uint8Array.of(n))))
        for (const n of [1, 2, 3]) inbound.send(Uint8Array.of(...lengthPrefix(1), n))
        // The stream pair hands each chunk over on a timer of its own (0 ms).
        await vi.advanceTimersByTimeAsync(1)
        expect(await replies).toEqual([1, 2, 3].map((n) => Uint8Array.of(n)))
        // Each reply's deadline stopped with its reply: an idle session wakes nothing (left running, each woke
        // the process every 175 ms until it cut a transfer that had ended, 700 ms after its last byte).
        expect(vi.getTimerCount()).toBe(0)
        expect(session.closed).toBe(false)
      } finally {
        vi.useRealTimers()
      }
    })

    it('fails the request whose reply stops coming as a timeout, and the requests behind it as ended', async () => {
      const [outbound, inbound] = await streamPair()
      const session = new FrameSession(outbound, { ...transfer, timeoutMs: 150 })
      const first = session.request(Uint8Array.of(1)).catch((e: unknown) => e)
      const second = session.request(Uint8Array.of(2)).catch((e: unknown) => e)
      // 3 bytes of a 100-byte reply, then nothing.
      inbound.send(Uint8Array.of(...lengthPrefix(100), 1, 2, 3))
      const [a, b] = await Promise.all([first, second])
      expect((a as Error).name).toBe('TimeoutError')
      expect(b).toBeInstanceOf(StreamEndedError)
      expect(session.closed).toBe(true)
    })
  })
})

describe('frameHandler: a reply handed to the stream in pieces', () => {
  it('writes REPLY_PIECE_BYTES at a time, each once the last left the write buffer', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const reply = new Uint8Array(3 * REPLY_PIECE_BYTES + 1000).map((_, i) => i % 251)
    const handler = frameHandler(async () => reply, { maxRequestBytes: MAX_REQUEST })
    const [outbound, inbound] = await streamPair()
    const sends: { bytes: number; buffered: number }[] = []
    const send = inbound.send.bind(inbound)
    inbound.send = (data) => {
      sends.push({ bytes: data.byteLength, buffered: inbound.writeBufferLength })
      return send(data)
    }
    const session = new FrameSession(outbound, { protocol: PROTOCOL, maxResponseBytes: reply.byteLength, maxUnanswered: 1 })
    const handled = handler(inbound, { remotePeer: peer } as Connection)
    expect(await session.request(Uint8Array.of(1))).toEqual(reply)
    // A yamux sender sends what it holds as one frame of up to the whole window: a piece at a time, its reader's
    // window grants come back while the rest is on its way.
    const prefix = lengthPrefix(reply.byteLength).byteLength
    expect(sends.map((s) => s.bytes)).toEqual([REPLY_PIECE_BYTES + prefix, REPLY_PIECE_BYTES, REPLY_PIECE_BYTES, 1000])
    expect(sends.every((s) => s.buffered === 0)).toBe(true)
    session.close()
    await handled
  })
})

describe("requestNodes: what a reply's status means to the client", () => {
  it('reads busy as "later", an invalid request as refused, "none here" as no nodes, and a status with nodes as a fault', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const node = Uint8Array.of(0xc2, 0x80, 0x80)
    const ask = async (reply: Uint8Array): Promise<unknown> => {
      const handler = frameHandler(async () => reply, { maxRequestBytes: 1024 })
      const sessions = new FrameSessions(
        async () => {
          const [outbound, inbound] = await streamPair()
          void handler(inbound, { remotePeer: peer } as Connection)
          return outbound
        },
        { protocol: PROTOCOL, maxResponseBytes: 1024, maxUnanswered: 1 }
      )
      try {
        return await requestNodes(sessions, peer, [new Uint8Array(32)]).catch((e: unknown) => e)
      } finally {
        sessions.close()
      }
    }
    // Read as "none here", a busy peer would never be asked for these nodes again.
    expect(await ask(encodeNodesResponse(Status.RATE_LIMITED))).toBeInstanceOf(PeerBusyError)
    expect(await ask(encodeNodesResponse(Status.INVALID_REQUEST))).toBeInstanceOf(RequestRejectedError)
    expect(await ask(encodeNodesResponse(Status.UNAVAILABLE))).toEqual([])
    expect(await ask(encodeNodesResponse(Status.OK, [node]))).toEqual([node])
    expect(await ask(encodeNodesResponse(Status.UNAVAILABLE, [node]))).toBeInstanceOf(ProtocolError)
    expect(() => decodeNodesResponse(encodeNodesResponse(Status.RATE_LIMITED, [node]), 1)).toThrow(ProtocolError)
  })
})
