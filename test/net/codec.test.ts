import { RLP } from '@ethereumjs/rlp'
import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/errors.js'
import { decodeFrame, expectBytes, expectItems, expectList, expectStatus, expectUint, Status } from '../../src/net/codec.js'
import { MAX_HASHES_PER_REQUEST, MAX_ITEM_BYTES, MAX_NODES_PER_REQUEST } from '../../src/constants.js'
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
import { toHex } from '../../src/util/hex.js'
import { SeededRandom } from '../helpers/random.js'

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
    const withRecord = { ...state, record: Uint8Array.of(1, 2, 3) }
    expect(decodeStatusResponse(encodeStatusResponse(Status.OK, withRecord))).toEqual({ code: Status.OK, state: withRecord })
    expect(decodeStatusResponse(encodeStatusResponse(Status.UNAVAILABLE))).toEqual({ code: Status.UNAVAILABLE, state: null })
    expect(decodeContentsRequest(encodeContentsRequest('t', 0, 64))).toEqual({ topic: 't', from: 0, amount: 64 })
    expect(decodeContentsRequest(encodeContentsRequest('t', 3, 64, h(4)))).toEqual({ topic: 't', from: 3, amount: 64, root: h(4) })
    const items = [
      { n: 10, data: Uint8Array.of(1) },
      { n: 12, data: Uint8Array.of(2, 3) }
    ]
    expect(decodeContentsResponse(encodeContentsResponse(Status.OK, items), 10, 5)).toEqual({ code: Status.OK, items, proof: [] })
    expect(decodeContentsResponse(encodeContentsResponse(Status.OK, items, [h(3)]), 10, 5)).toEqual({ code: Status.OK, items, proof: [h(3)] })
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
    expect(() => decodeNodesRequest(encodeNodesRequest(Array.from({ length: MAX_NODES_PER_REQUEST + 1 }, () => h(1))))).toThrow(ProtocolError)
    expect(decodeNodesRequest(encodeNodesRequest(Array.from({ length: MAX_NODES_PER_REQUEST }, () => h(1))))).toHaveLength(MAX_NODES_PER_REQUEST)
    expect(() => decodeContentsRequest(encodeContentsRequest('t', 0, 0))).toThrow(ProtocolError)
    expect(() => decodeHashesRequest(encodeHashesRequest('t', 9, 5))).toThrow(ProtocolError)
    expect(() => decodeContentsRequest(RLP.encode([Uint8Array.of(0x74), Uint8Array.of(0, 1), 5, new Uint8Array(0)]))).toThrow(ProtocolError)
    expect(() => decodeContentsRequest(RLP.encode([Uint8Array.of(0x74), 1, 5, new Uint8Array(31)]))).toThrow(/root/)
    expect(() => decodeContentsRequest(RLP.encode([Uint8Array.of(0x74), 1, 5]))).toThrow(ProtocolError)
    expect(() => decodeStatusRequest(RLP.encode([Uint8Array.of(0xff, 0xfe)]))).toThrow(ProtocolError)
    expect(() => decodeStatusResponse(RLP.encode([0, 5, 3, h(1), 0, h(2), new Uint8Array(0)]))).toThrow(ProtocolError) // lowest > head
    expect(() => decodeStatusResponse(RLP.encode([0, 0, 3, h(1), 0, h(2), new Uint8Array(2049)]))).toThrow(/record too large/)
  })

  it('turn any random or mutated frame into a ProtocolError or a valid value, never anything else', () => {
    const rng = new SeededRandom(99)
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
        frame = rng.bytes(rng.int(64))
      } else {
        frame = valid[i % valid.length]!.slice()
        const flips = 1 + rng.int(3)
        for (let j = 0; j < flips && frame.length > 0; j++) frame[rng.int(frame.length)] = rng.int(256)
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

describe('contents reply codec (written and read in place)', () => {
  /** The generic decoder the in-place one replaced, as the reference for what is accepted. */
  function referenceDecode(
    frame: Uint8Array,
    from: number,
    amount: number
  ): { code: number; items: { n: number; data: Uint8Array }[]; proof: Uint8Array[] } {
    const [code, list, proofList] = expectList(decodeFrame(frame, 'ref'), 3, 'ref')
    const proof = expectItems(proofList!, 64, 'ref proof').map((node) => expectBytes(node, 'proof node'))
    const status = expectStatus(code, 'ref')
    const items = expectItems(list!, amount, 'ref').map((entry) => {
      const [n, data] = expectList(entry, 2, 'ref item')
      return { n: expectUint(n, 'n'), data: expectBytes(data, 'data') }
    })
    let last = from - 1
    for (const item of items) {
      if (item.n < from || item.n >= from + amount || item.n <= last) throw new ProtocolError('range')
      if (item.data.length === 0 || item.data.length > MAX_ITEM_BYTES) throw new ProtocolError('size')
      last = item.n
    }
    if (status !== Status.OK && (items.length > 0 || proof.length > 0)) throw new ProtocolError('status with items')
    return { code: status, items, proof }
  }

  /** 4,000 frames: each a seed with one to three bytes changed, a fifth of them cut short. */
  function mutations(seeds: Uint8Array[], rng: SeededRandom): Uint8Array[] {
    const frames: Uint8Array[] = []
    for (let i = 0; i < 4000; i++) {
      const frame = seeds[i % seeds.length]!.slice()
      const flips = 1 + rng.int(3)
      for (let j = 0; j < flips; j++) frame[rng.int(frame.length)] = rng.int(256)
      frames.push(rng.float() < 0.2 ? frame.subarray(0, rng.int(frame.length)) : frame)
    }
    return frames
  }

  function outcome(decode: () => unknown): unknown {
    try {
      return decode()
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolError)
      return 'rejected'
    }
  }

  it('encodes exactly as @ethereumjs/rlp, for every size class of numbers and items', () => {
    const rng = new SeededRandom(7)
    const sizes = [1, 2, 55, 56, 255, 256, 1024, 65_536, 70_000]
    for (let round = 0; round < 40; round++) {
      const count = rng.int(6)
      let n = Math.floor(rng.float() * 2 ** rng.int(40))
      const items = Array.from({ length: count }, () => {
        const data = rng.bytes(sizes[rng.int(sizes.length)]!)
        if (data.length === 1 && rng.float() < 0.5) data[0] = rng.int(0x80)
        return { n: n++, data }
      })
      const code = rng.int(4) as Status
      const proof = Array.from({ length: rng.int(3) }, () => rng.bytes(sizes[rng.int(5)]!))
      const frame = encodeContentsResponse(code, items, proof)
      // Compared as hex: the same bytes, without vitest's deep equality walking every byte of a 70 kB item.
      expect(toHex(frame)).toBe(toHex(RLP.encode([code, items.map((i) => [i.n, i.data]), proof])))
      const decode = () => decodeContentsResponse(frame, items[0]?.n ?? 0, Math.max(1, count))
      const inHex = (reply: { code: Status; items: { n: number; data: Uint8Array }[]; proof: Uint8Array[] }) => ({
        code: reply.code,
        items: reply.items.map((i) => [i.n, toHex(i.data)]),
        proof: reply.proof.map(toHex)
      })
      if (code === Status.OK || (count === 0 && proof.length === 0)) expect(inHex(decode())).toEqual(inHex({ code, items, proof }))
      else expect(decode).toThrow(ProtocolError)
    }
  })

  it('hashes replies, written the same way, encode exactly as @ethereumjs/rlp for every list size class', () => {
    const rng = new SeededRandom(8)
    for (const count of [0, 1, 2, 3, 1985, 1986, MAX_HASHES_PER_REQUEST]) {
      const hashes = Array.from({ length: count }, () => rng.bytes(32))
      for (const code of [Status.OK, Status.UNAVAILABLE, Status.RATE_LIMITED]) {
        expect(toHex(encodeHashesResponse(code, hashes))).toBe(toHex(RLP.encode([code, hashes])))
      }
    }
  })

  it('returns views into the frame, not copies', () => {
    const frame = encodeContentsResponse(Status.OK, [{ n: 4, data: new Uint8Array(300).fill(5) }])
    const [item] = decodeContentsResponse(frame, 4, 1).items
    expect(item!.data.buffer).toBe(frame.buffer)
  })

  it('accepts and rejects exactly what the generic decoder did, on mutated and non-canonical frames', () => {
    const rng = new SeededRandom(11)
    const seeds = [
      encodeContentsResponse(Status.OK, [{ n: 3, data: Uint8Array.of(9) }, { n: 4, data: new Uint8Array(60).fill(1) }]),
      encodeContentsResponse(Status.OK, [{ n: 200, data: Uint8Array.of(0x80) }], [Uint8Array.of(1, 2), Uint8Array.of(0x7f)]),
      encodeContentsResponse(Status.UNAVAILABLE),
      RLP.encode([0, [[3, Uint8Array.of(1)]], []])
    ]
    const handmade = [
      Uint8Array.of(0xc5, 0x80, 0xc2, 0xc1, 0x03, 0xc0), // an item of one element
      Uint8Array.of(0xc4, 0x80, 0xc0, 0xc0, 0x00), // a byte after the reply list
      Uint8Array.of(0xc6, 0x80, 0xc3, 0xc2, 0x03, 0x81, 0x05, 0xc0), // 0x05 with a needless prefix
      Uint8Array.of(0xc7, 0x80, 0xc4, 0xc3, 0x03, 0xb8, 0x01, 0x07, 0xc0), // a long form for one byte
      Uint8Array.of(0xc6, 0x00, 0xc3, 0xc2, 0x03, 0x01, 0xc0), // status 0 written as 0x00
      Uint8Array.of(0xc7, 0x80, 0xc4, 0xc3, 0x82, 0x00, 0x03, 0x01, 0xc0), // an item number with a leading zero
      Uint8Array.of(0xf8, 0x04, 0x80, 0xc1, 0xc0, 0xc0), // a long list form for a short list
      Uint8Array.of(0xc3, 0x80, 0xc0, 0xc1, 0xc0), // a list among the proof nodes
      Uint8Array.of(0xc2, 0x80, 0xc0), // no proof list (the 1.0.0 reply)
      new Uint8Array(0)
    ]
    const frames = [...seeds, ...handmade, ...mutations(seeds, rng)]
    let rejected = 0
    for (const frame of frames) {
      const expected = outcome(() => referenceDecode(frame, 0, 300))
      expect(outcome(() => decodeContentsResponse(frame, 0, 300)), toHex(frame)).toEqual(expected)
      if (expected === 'rejected') rejected++
    }
    expect(rejected).toBeGreaterThan(frames.length / 2)
  })

  it('decodes nodes replies in place exactly as the generic decoder did, accepting and rejecting the same frames', () => {
    const rng = new SeededRandom(11)
    /** The decoder before it read replies in place: decodeFrame, then the expect* checks. */
    const referenceDecode = (frame: Uint8Array, maxNodes: number) => {
      const [code, list] = expectList(decodeFrame(frame, 'nodes response'), 2, 'nodes response')
      const status = expectStatus(code, 'nodes response')
      const nodes = expectItems(list!, maxNodes, 'nodes response').map((n) => expectBytes(n, 'node'))
      if (status !== Status.OK && nodes.length > 0) throw new ProtocolError('error status with nodes')
      return { code: status, nodes }
    }
    const seeds = [
      encodeNodesResponse(Status.OK, [Uint8Array.of(1, 2, 3), new Uint8Array(60).fill(7), Uint8Array.of(0x80)]),
      encodeNodesResponse(Status.OK, [new Uint8Array(300).fill(9)]),
      encodeNodesResponse(Status.UNAVAILABLE),
      encodeNodesResponse(Status.RATE_LIMITED),
      RLP.encode([0, [Uint8Array.of(1), [Uint8Array.of(2)]]]),
      RLP.encode([5, []])
    ]
    const frames = [...seeds, new Uint8Array(0), Uint8Array.of(0xc2, 0x80, 0xc0, 0x00), ...mutations(seeds, rng)]
    let rejected = 0
    for (const frame of frames) {
      const expected = outcome(() => referenceDecode(frame, 2))
      expect(outcome(() => decodeNodesResponse(frame, 2)), toHex(frame)).toEqual(expected)
      if (expected === 'rejected') rejected++
    }
    expect(rejected).toBeGreaterThan(frames.length / 2)
  })
})
