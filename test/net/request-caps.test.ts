import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream, streamPair } from '@libp2p/utils'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  MAX_CONTENTS_REQUEST_BYTES,
  MAX_HASHES_PER_REQUEST,
  MAX_HASHES_REQUEST_BYTES,
  MAX_ITEMS_PER_REQUEST,
  MAX_NODES_PER_REQUEST,
  MAX_NODES_REQUEST_BYTES,
  MAX_RESPONSE_BYTES,
  MAX_STATUS_REQUEST_BYTES,
  MAX_TOPIC_BYTES
} from '../../src/constants.js'
import { ProtocolError } from '../../src/errors.js'
import { decodeNodesRequest, decodeNodesRequestWhole, encodeNodesRequest } from '../../src/net/nodes-protocol.js'
import { type FrameViolation, frameHandler } from '../../src/net/rpc.js'
import {
  decodeContentsRequest,
  decodeHashesRequest,
  decodeStatusRequest,
  encodeContentsRequest,
  encodeHashesRequest,
  encodeStatusRequest
} from '../../src/net/topic-protocols.js'
import { lengthPrefix } from './half-open-attack.js'

/** The longest topic name, the largest item number and a full root: every field at its widest. */
const topic = 'é'.repeat(MAX_TOPIC_BYTES / 2)
const last = Number.MAX_SAFE_INTEGER
const root = new Uint8Array(32).fill(0xff)

describe('request frame caps: each is the largest request its decoder accepts', () => {
  it('status: a 256-byte topic name', () => {
    const frame = encodeStatusRequest(topic)
    expect(decodeStatusRequest(frame)).toBe(topic)
    expect(frame.length).toBe(MAX_STATUS_REQUEST_BYTES)
  })

  it('contents: the widest topic, from and amount, and a root', () => {
    const frame = encodeContentsRequest(topic, last, MAX_ITEMS_PER_REQUEST, root)
    expect(decodeContentsRequest(frame).amount).toBe(MAX_ITEMS_PER_REQUEST)
    expect(frame.length).toBe(MAX_CONTENTS_REQUEST_BYTES)
    // Anything longer is not a legal request: one more item, or a longer topic, fails to decode.
    expect(() => decodeContentsRequest(encodeContentsRequest(topic, last, MAX_ITEMS_PER_REQUEST + 1, root))).toThrow(ProtocolError)
  })

  it('hashes: the widest topic and the widest from and to', () => {
    const frame = encodeHashesRequest(topic, last - MAX_HASHES_PER_REQUEST + 1, last)
    expect(decodeHashesRequest(frame).to).toBe(last)
    expect(frame.length).toBe(MAX_HASHES_REQUEST_BYTES)
  })

  it('nodes: MAX_NODES_PER_REQUEST hashes, and one more does not decode', () => {
    const hashes = Array.from({ length: MAX_NODES_PER_REQUEST }, () => root)
    const frame = encodeNodesRequest(hashes, MAX_RESPONSE_BYTES)
    expect(decodeNodesRequestWhole(frame)).toEqual({ hashes, subtrieBytes: MAX_RESPONSE_BYTES })
    expect(frame.length).toBe(MAX_NODES_REQUEST_BYTES)
    expect(() => decodeNodesRequest(encodeNodesRequest([...hashes, root]))).toThrow(ProtocolError)
    expect(() => decodeNodesRequest(encodeNodesRequest(hashes, MAX_RESPONSE_BYTES + 1))).toThrow(ProtocolError)
  })
})

describe('frameHandler bounds the request frame by size and by time', () => {
  let peer: PeerId
  beforeAll(async () => {
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  })

  const MAX = 300
  const FRAME_TIMEOUT_MS = 150

  /** Runs a handler on one end of a stream pair; `client` plays the peer on the other end. */
  async function serve(client: (stream: Stream) => Promise<void>) {
    const [outbound, inbound] = await streamPair()
    const violations: FrameViolation[] = []
    const answered: Uint8Array[] = []
    const handler = frameHandler(
      async (frame) => {
        answered.push(frame)
        return new Uint8Array([1, 2, 3])
      },
      { maxRequestBytes: MAX, frameTimeoutMs: FRAME_TIMEOUT_MS, onViolation: (v) => violations.push(v) }
    )
    const started = Date.now()
    const handled = handler(inbound, { remotePeer: peer } as Connection)
    await client(outbound)
    await handled
    return { violations, answered, inbound, elapsedMs: Date.now() - started }
  }

  it('answers a frame of exactly the cap', async () => {
    let reply: Uint8Array | undefined
    const { violations, answered } = await serve(async (stream) => {
      const lp = lpStream(stream)
      await lp.write(new Uint8Array(MAX))
      reply = (await lp.read()).subarray()
    })
    expect(answered).toHaveLength(1)
    expect(answered[0]).toHaveLength(MAX)
    expect(reply).toEqual(new Uint8Array([1, 2, 3]))
    expect(violations).toEqual([])
  })

  it('resets a stream whose length prefix passes the cap before reading the frame, and reports it', async () => {
    const { violations, answered, inbound } = await serve(async (stream) => {
      // A prefix claiming 2 MiB, then the first bytes of it.
      stream.send(lengthPrefix(2 * 1024 * 1024))
      stream.send(new Uint8Array(100))
    })
    expect(violations).toEqual(['oversized'])
    expect(answered).toEqual([])
    expect(inbound.status).toBe('aborted')
  })

  it('resets a stream whose frame is unfinished at the deadline, and reports it as late', async () => {
    const { violations, answered, inbound, elapsedMs } = await serve(async (stream) => {
      stream.send(lengthPrefix(MAX))
      stream.send(new Uint8Array(10))
    })
    expect(violations).toEqual(['late'])
    expect(answered).toEqual([])
    expect(inbound.status).toBe('aborted')
    expect(elapsedMs).toBeGreaterThanOrEqual(FRAME_TIMEOUT_MS - 10)
  })

  it('reports a stream that sends nothing until the deadline', async () => {
    const { violations } = await serve(async () => undefined)
    expect(violations).toEqual(['late'])
  })

  it('reports a frame cut short by the end of the stream as unfinished', async () => {
    const { violations, answered } = await serve(async (stream) => {
      stream.send(lengthPrefix(MAX))
      stream.send(new Uint8Array(10))
      await stream.close()
    })
    expect(violations).toEqual(['unfinished'])
    expect(answered).toEqual([])
  })

  it('does not blame a client that closes before sending anything', async () => {
    const { violations, elapsedMs } = await serve(async (stream) => {
      await stream.close()
    })
    expect(violations).toEqual([])
    expect(elapsedMs).toBeLessThan(FRAME_TIMEOUT_MS)
  })
})
