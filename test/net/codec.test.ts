import { RLP } from '@ethereumjs/rlp'
import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/errors.js'
import { Status } from '../../src/net/codec.js'
import {
  decodeNodesRequest,
  decodeNodesResponse,
  encodeNodesRequest,
  encodeNodesResponse
} from '../../src/net/nodes-protocol.js'
import {
  decodeContentsRequest,
  decodeContentsResponse,
  decodeHashesRequest,
  decodeHashesResponse,
  decodeStatusRequest,
  decodeStatusResponse,
  encodeContentsRequest,
  encodeContentsResponse,
  encodeHashesRequest,
  encodeHashesResponse,
  encodeStatusRequest,
  encodeStatusResponse,
  type TopicState
} from '../../src/net/topic-protocols.js'
import { randomBytes, rng } from '../helpers/trie-source.js'

const h = (b: number): Uint8Array => new Uint8Array(32).fill(b)

describe('wire codecs', () => {
  it('round-trip every request and response', () => {
    expect(decodeNodesRequest(encodeNodesRequest([h(1), h(2)]))).toEqual([h(1), h(2)])
    expect(decodeNodesResponse(encodeNodesResponse(Status.OK, [Uint8Array.of(1, 2)]), 5)).toEqual({
      code: Status.OK,
      nodes: [Uint8Array.of(1, 2)]
    })
    expect(decodeStatusRequest(encodeStatusRequest('news'))).toBe('news')
    const state: TopicState = { lowest: 0, head: 1000, headHash: h(3), checkpoint: { number: 512, root: h(4) } }
    expect(decodeStatusResponse(encodeStatusResponse(Status.OK, state))).toEqual({ code: Status.OK, state })
    expect(decodeStatusResponse(encodeStatusResponse(Status.UNAVAILABLE))).toEqual({ code: Status.UNAVAILABLE, state: null })
    expect(decodeContentsRequest(encodeContentsRequest('t', 0, 64))).toEqual({ topic: 't', from: 0, amount: 64 })
    const items = [
      { n: 10, data: Uint8Array.of(1) },
      { n: 12, data: Uint8Array.of(2, 3) }
    ]
    expect(decodeContentsResponse(encodeContentsResponse(Status.OK, items), 10, 5)).toEqual({ code: Status.OK, items })
    expect(decodeHashesRequest(encodeHashesRequest('t', 5, 9))).toEqual({ topic: 't', from: 5, to: 9 })
    expect(decodeHashesResponse(encodeHashesResponse(Status.OK, [h(7)]), 5, 9)).toEqual({ code: Status.OK, hashes: [h(7)] })
  })

  it('reject contents replies outside the range, unordered, duplicated or too long', () => {
    const reply = (ns: number[]) => encodeContentsResponse(Status.OK, ns.map((n) => ({ n, data: Uint8Array.of(1) })))
    expect(() => decodeContentsResponse(reply([9]), 10, 5)).toThrow(ProtocolError)
    expect(() => decodeContentsResponse(reply([15]), 10, 5)).toThrow(ProtocolError)
    expect(() => decodeContentsResponse(reply([11, 10]), 10, 5)).toThrow(ProtocolError)
    expect(() => decodeContentsResponse(reply([10, 10]), 10, 5)).toThrow(ProtocolError)
    expect(() => decodeContentsResponse(reply([10, 11, 12]), 10, 2)).toThrow(ProtocolError)
    expect(() => decodeContentsResponse(encodeContentsResponse(Status.OK, [{ n: 10, data: new Uint8Array(0) }]), 10, 2)).toThrow(
      ProtocolError
    )
  })

  it('reject malformed requests: wrong hash sizes, too many hashes, bad ranges, non-canonical integers', () => {
    expect(() => decodeNodesRequest(RLP.encode([[new Uint8Array(31)]]))).toThrow(ProtocolError)
    expect(() => decodeNodesRequest(encodeNodesRequest(Array.from({ length: 385 }, () => h(1))))).toThrow(ProtocolError)
    expect(() => decodeContentsRequest(encodeContentsRequest('t', 0, 0))).toThrow(ProtocolError)
    expect(() => decodeHashesRequest(encodeHashesRequest('t', 9, 5))).toThrow(ProtocolError)
    expect(() => decodeContentsRequest(RLP.encode([Uint8Array.of(0x74), Uint8Array.of(0, 1), 5]))).toThrow(ProtocolError)
    expect(() => decodeStatusRequest(RLP.encode([Uint8Array.of(0xff, 0xfe)]))).toThrow(ProtocolError)
    expect(() => decodeStatusResponse(RLP.encode([0, 5, 3, h(1), 0, h(2)]))).toThrow(ProtocolError) // lowest > head
  })

  it('turn any random or mutated frame into a ProtocolError or a valid value, never anything else', () => {
    const next = rng(99)
    const valid = [
      encodeNodesRequest([h(1)]),
      encodeNodesResponse(Status.OK, [Uint8Array.of(1, 2, 3)]),
      encodeStatusResponse(Status.OK, { lowest: 0, head: 5, headHash: h(1), checkpoint: { number: 2, root: h(2) } }),
      encodeContentsResponse(Status.OK, [{ n: 3, data: Uint8Array.of(9) }]),
      encodeHashesResponse(Status.OK, [h(5)])
    ]
    const decoders = [
      (f: Uint8Array) => decodeNodesRequest(f),
      (f: Uint8Array) => decodeNodesResponse(f, 10),
      (f: Uint8Array) => decodeStatusRequest(f),
      (f: Uint8Array) => decodeStatusResponse(f),
      (f: Uint8Array) => decodeContentsRequest(f),
      (f: Uint8Array) => decodeContentsResponse(f, 0, 10),
      (f: Uint8Array) => decodeHashesRequest(f),
      (f: Uint8Array) => decodeHashesResponse(f, 0, 10)
    ]
    let rejected = 0
    for (let i = 0; i < 3000; i++) {
      let frame: Uint8Array
      if (i % 2 === 0) {
        frame = randomBytes(next, Math.floor(next() * 64))
      } else {
        frame = valid[i % valid.length]!.slice()
        const flips = 1 + Math.floor(next() * 3)
        for (let j = 0; j < flips && frame.length > 0; j++) frame[Math.floor(next() * frame.length)] = Math.floor(next() * 256)
      }
      for (const decode of decoders) {
        try {
          decode(frame)
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError)
          rejected++
        }
      }
    }
    expect(rejected).toBeGreaterThan(20_000)
  })
})
