import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream, streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { beforeAll, describe, expect, it } from 'vitest'
import { Status } from '../../src/net/codec.js'
import { answerNodes, decodeNodesResponse } from '../../src/net/nodes-protocol.js'
import { type ChargeOptions, ReplyBudget } from '../../src/net/reply-budget.js'
import { type FrameViolation, frameHandler } from '../../src/net/rpc.js'
import { NODES_READ_CHUNK } from '../../src/constants.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { MAX_NODE_BYTES } from '../../src/trie/node.js'

describe('ReplyBudget', () => {
  it('charges a peer and the server, refuses past either cap, and releases once', () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 60 })
    const a = budget.charge('a', 50)
    expect(a?.bytes).toBe(50)
    expect(budget.charge('a', 20)).toBeUndefined() // past a's share: alone, half the budget (see the next test)
    const b = budget.charge('b', 50)
    // A reservation shrunk to the reply's size gives the rest back; with b sharing, a's share is a third.
    a?.resize(20)
    expect(budget.charge('a', 14)).toBeUndefined()
    expect(budget.charge('a', 13)?.bytes).toBe(13)
    expect(budget.charge('c', 18)).toBeUndefined() // past the server's budget
    expect(budget.stats()).toEqual({ inFlight: 83, peak: 100, refused: 3, evicted: 0, peers: 2, hosts: 2 })
    a?.release()
    a?.release()
    a?.resize(40) // released: no effect
    expect(budget.stats()).toEqual({ inFlight: 63, peak: 100, refused: 3, evicted: 0, peers: 2, hosts: 2 })
    b?.release()
    expect(budget.stats()).toMatchObject({ inFlight: 13, peak: 100, refused: 3 })
    // The peer's own cap, where the share is larger.
    const large = new ReplyBudget({ maxBytes: 1000, maxBytesPerPeer: 60 })
    expect(large.charge('a', 50)).toBeDefined()
    expect(large.charge('a', 20)).toBeUndefined()
  })

  it("holds a peer that holds nothing to its own cap too, even for a reply that cannot be cut below it", () => {
    const budget = new ReplyBudget({ maxBytes: 1000, maxBytesPerPeer: 60 })
    // A peer holding nothing may always ask for one reply of its least size, but not past its cap.
    expect(budget.charge('a', 100)).toBeUndefined()
    expect(budget.charge('a', 100, { minBytes: 80 })).toBeUndefined()
    expect(budget.charge('a', 100, { minBytes: 50 })?.bytes).toBe(60)
    expect(budget.stats()).toMatchObject({ inFlight: 60, refused: 2 })
  })

  it('lets peers holding part of the budget hold an equal share each, one share kept for a peer holding nothing', () => {
    // An outside tester's 10 peer ids that read every reply at once (never stalled) kept the budget full with
    // replies being built, and an honest client was refused until it gave up.
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 100 })
    const peers = [...'abcdefghij']
    for (let round = 0; round < 5; round++) for (const p of peers) budget.charge(p, 4)
    // Each holds 8: a ninth would pass 100 / 11.
    expect(budget.stats()).toMatchObject({ inFlight: 80, peers: 10 })
    const honest = budget.charge('k', 4)
    expect(honest).toBeDefined()
    honest?.release()
    // A peer holding nothing may always ask for one reply, up to the budget.
    expect(budget.charge('k', 20)).toBeDefined()
    expect(budget.charge('l', 1)).toBeUndefined()
  })

  it('reserves a reply that can be cut short only up to the share, so ids with one reply each leave room', () => {
    // An outside tester's 31 peer ids from one address each kept one nodes reply being built, every one
    // reserved at a whole frame (2 MiB + 64 KiB of a 64 MiB budget): together they filled it, and an honest
    // client was refused until it gave up. Scaled down: a budget of 6,400, replies of up to 210, cut to 25.
    let now = 0
    const budget = new ReplyBudget({ maxBytes: 6_400, maxBytesPerPeer: 1_200, now: () => now })
    const ids = Array.from({ length: 31 }, (_, i) => `id${i}`)
    const building = new Map<string, ReturnType<ReplyBudget['charge']>>()
    let grants: number[] = []
    for (let round = 0; round < 4; round++) {
      now += 150
      grants = []
      for (const id of ids) {
        // Its last reply is out, the next one is being built.
        building.get(id)?.release()
        const charge = budget.charge(id, 210, { minBytes: 25 })
        building.set(id, charge)
        if (charge !== undefined) grants.push(charge.bytes)
      }
    }
    // Each id is reserved its share among 31 (and one kept over), 200, not the whole 210.
    expect(grants).toEqual(ids.map(() => 200))
    // The honest peer is the 32nd sharer: its share among 32, one kept over, is 6,400 / 33.
    const honest = budget.charge('honest', 210, { minBytes: 25 })
    expect(honest?.bytes).toBe(193)
    // Past the least a reply can be cut to, nothing is reserved.
    expect(budget.charge('late', 210, { minBytes: 201 })).toBeUndefined()
    // A reply that cannot be cut short is reserved whole or not at all, as before.
    honest?.release()
    expect(budget.charge('whole', 210)).toBeUndefined()
    expect(budget.charge('whole', 200)?.bytes).toBe(200)
  })

  it('gives each host an equal part while peers of two or more share the budget, so ids of one address leave room', () => {
    // Peer ids are free, addresses are not: 31 ids from one address, each keeping one whole reply (a contents
    // reply cannot be cut short) being built, filled the budget, and a peer of another address was refused.
    let now = 0
    const budget = new ReplyBudget({ maxBytes: 6_400, maxBytesPerPeer: 1_200, now: () => now })
    const ids = Array.from({ length: 31 }, (_, i) => `id${i}`)
    const building = new Map<string, ReturnType<ReplyBudget['charge']>>()
    const round = (): void => {
      now += 150
      for (const id of ids) {
        building.get(id)?.release()
        building.set(id, budget.charge(id, 210, { host: '192.0.2.1' }))
      }
    }
    round()
    // Alone, one address's ids may fill the budget, a whole reply each.
    expect(budget.stats().inFlight).toBeGreaterThan(6_400 - 210)
    expect(budget.charge('honest', 210, { host: '192.0.2.2' })).toBeUndefined()
    round()
    round()
    // With a second address sharing it, the first holds at most a third: one part each, one kept over.
    expect(budget.stats()).toMatchObject({ hosts: 1 })
    expect(budget.stats().inFlight).toBeLessThanOrEqual(6_400 / 3)
    expect(budget.charge('honest', 210, { host: '192.0.2.2' })?.bytes).toBe(210)
    // Peers of one address alone share it by their own shares, as before.
    const one = new ReplyBudget({ maxBytes: 6_400, maxBytesPerPeer: 1_200 })
    for (const id of ids) one.charge(id, 200, { host: '192.0.2.1' })
    expect(one.stats()).toMatchObject({ inFlight: 6_200, peers: 31, hosts: 1 })
  })

  it('charges whole bytes, so a budget whose charges are all released holds nothing and counts no host', () => {
    // Shares are fractions of the budget: charges cut to them kept fractions, never summed back to 0, and an
    // outside tester's budget counted hosts that held nothing for good, shrinking every host's part.
    let seed = 7
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed / 2 ** 31
    }
    let now = 0
    const budget = new ReplyBudget({ now: () => now })
    const live: NonNullable<ReturnType<ReplyBudget['charge']>>[] = []
    for (let i = 0; i < 2_000; i++) {
      now += 10
      const host = `h${Math.floor(random() * 6)}`
      const charge = budget.charge(`${host}p${Math.floor(random() * 3)}`, 2 * 1024 * 1024 + 65_536, { minBytes: 256 * 1024, host })
      if (charge !== undefined) {
        expect(Number.isInteger(charge.bytes)).toBe(true)
        live.push(charge)
        if (random() < 0.4) charge.resize(Math.floor(charge.bytes * random()))
      }
      if (random() < 0.5 && live.length > 0) live.splice(Math.floor(random() * live.length), 1)[0]!.release()
    }
    for (const charge of live) charge.release()
    expect(budget.stats()).toMatchObject({ inFlight: 0, peers: 0, hosts: 0 })
  })

  it('reserves what is free, down to the least a reply can be cut to, when the whole reply does not fit', () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 100 })
    expect(budget.charge('a', 70)?.bytes).toBe(70)
    expect(budget.charge('b', 50, { minBytes: 20 })?.bytes).toBe(30)
    expect(budget.charge('c', 50, { minBytes: 1 })).toBeUndefined()
    expect(budget.stats()).toMatchObject({ inFlight: 100, refused: 1 })
  })

  it('does not count peers whose small replies were charged and are out: cheap requests from many ids shrink no share', () => {
    // An outside tester's 50 peer ids, each asking 2.5 times a second for the status of a topic the server does
    // not have (a few bytes answered UNAVAILABLE), had every asker of the last second counted as sharing: the
    // share fell below one 512 KiB item with its proof, and a topic of such items was served to nobody.
    // Scaled down: a budget of 6,400, a contents reply of up to 2,100 that may be cut to 256.
    let now = 0
    const budget = new ReplyBudget({ maxBytes: 6_400, maxBytesPerPeer: 6_400, now: () => now })
    for (let round = 0; round < 5; round++) {
      now += 150
      for (let id = 0; id < 60; id++) budget.charge(`status${id}`, 5)?.release()
    }
    expect(budget.charge('honest', 2_100, { minBytes: 256 })?.bytes).toBe(2_100)
  })

  it('counts an asker refused since the last count of sharers as one of them', () => {
    // Sharers are counted at most every 100 ms; a peer refused since then is in none of the counts, and once
    // took a share as if it were not sharing (an equal share among 2, not 3).
    let now = 0
    const budget = new ReplyBudget({ maxBytes: 120, maxBytesPerPeer: 120, now: () => now })
    expect(budget.charge('a', 40)).toBeDefined()
    expect(budget.charge('c', 40)).toBeDefined()
    now += 10
    expect(budget.charge('b', 60)).toBeUndefined()
    now += 10
    // a, c and b share it, one share kept over: 30, so b gets the least its reply may be cut to.
    expect(budget.charge('b', 60, { minBytes: 35 })?.bytes).toBe(35)
  })

  it('counts a peer refused within the last second among those sharing the budget', () => {
    // The ids refused for want of room ask again at once; counted as sharing, they shrink the holders' shares,
    // so room is left for a peer that asks less often.
    let now = 0
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 100, now: () => now })
    expect(budget.charge('a', 20)).toBeDefined()
    expect(budget.charge('b', 20)).toBeDefined()
    expect(budget.charge('c', 61)).toBeUndefined() // no room
    now += 200
    // a, b and c share the budget: a's share is a quarter, 25.
    expect(budget.charge('a', 8)).toBeUndefined()
    // Over a second later nobody else asked: a and b share it, a's share is a third.
    now += 1_100
    expect(budget.charge('a', 8)).toBeDefined()
  })

  it("gives a full budget's room to a peer from those holding more, their oldest replies first", () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 60 })
    const evicted: string[] = []
    // Stalled at once: their readers took nothing (see the next tests for replies being read).
    const hold = (peer: string, bytes: number, name: string) => {
      const charge = budget.charge(peer, bytes, { evict: () => evicted.push(name) })
      charge?.stalled(true)
      return charge
    }
    const a1 = hold('a', 30, 'a1')
    hold('b', 20, 'b1')
    hold('c', 30, 'c1')
    hold('d', 20, 'd1')
    expect(budget.stats().inFlight).toBe(100)
    // e holds nothing: 25 bytes need one reply, and a's is the oldest.
    expect(hold('e', 25, 'e1')).toBeDefined()
    expect(evicted).toEqual(['a1'])
    expect(a1?.bytes).toBe(30)
    a1?.release() // already released by the eviction: no effect
    expect(budget.stats()).toEqual({ inFlight: 95, peak: 100, refused: 0, evicted: 1, peers: 4, hosts: 4 })
    // f asks 25: b's reply is now the oldest.
    expect(hold('f', 25, 'f1')).toBeDefined()
    expect(evicted).toEqual(['a1', 'b1'])
    // g asks 45: the oldest replies go until there is room (e's and f's are younger than c's and d's).
    expect(hold('g', 45, 'g1')).toBeDefined()
    expect(evicted).toEqual(['a1', 'b1', 'c1', 'd1'])
    expect(budget.stats()).toEqual({ inFlight: 95, peak: 100, refused: 0, evicted: 4, peers: 3, hosts: 3 })
    // g holds the most: it takes nothing from the others (and is past its share).
    expect(hold('g', 5, 'g2')).toBeUndefined()
    // h holds nothing and asks 25: only stalled replies of peers holding more go, the oldest first (e's).
    expect(hold('h', 25, 'h1')).toBeDefined()
    expect(evicted).toEqual(['a1', 'b1', 'c1', 'd1', 'e1'])
    expect(budget.stats()).toEqual({ inFlight: 95, peak: 100, refused: 1, evicted: 5, peers: 3, hosts: 3 })
  })

  it('evicts only charges that can be given up, and nothing when that would not make room', () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 100 })
    const evicted: string[] = []
    budget.charge('a', 50)?.stalled(true) // not evictable: no evict given
    budget.charge('b', 30, { evict: () => evicted.push('b1') })?.stalled(true)
    budget.charge('x', 20, { evict: () => evicted.push('x1') })?.stalled(true)
    // c needs 60 of room: b's and x's 50 are not enough, and a's cannot be taken, so nothing goes.
    expect(budget.charge('c', 60, { evict: () => undefined })).toBeUndefined()
    expect(evicted).toEqual([])
    expect(budget.charge('c', 40, { evict: () => undefined })).toBeDefined()
    expect(evicted).toEqual(['b1', 'x1'])
    // Only a holds more than c now, and its charge cannot be taken (c is past its share besides).
    expect(budget.charge('c', 20, { evict: () => undefined })).toBeUndefined()
    expect(budget.stats()).toEqual({ inFlight: 90, peak: 100, refused: 2, evicted: 2, peers: 2, hosts: 2 })
  })

  it('never evicts a reply its reader is taking, nor one not yet stalled: the request is refused instead', () => {
    const budget = new ReplyBudget({ maxBytes: 100, maxBytesPerPeer: 100 })
    const evicted: string[] = []
    const reading = budget.charge('a', 60, { evict: () => evicted.push('a1') })
    const fresh = budget.charge('b', 40, { evict: () => evicted.push('b1') })
    expect(budget.charge('c', 30, { evict: () => undefined })).toBeUndefined()
    // Stalled a while, then read again: protected again.
    reading?.stalled(true)
    reading?.stalled(false)
    expect(budget.charge('c', 30, { evict: () => undefined })).toBeUndefined()
    expect(evicted).toEqual([])
    // b's reader stops: its reply goes, although a holds more.
    fresh?.stalled(true)
    expect(budget.charge('c', 30, { evict: () => undefined })).toBeDefined()
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

  it('tells the answer the room its reply got: what was free, when that is at least the least it may be cut to', async () => {
    const budget = new ReplyBudget({ maxBytes: 150_000, maxBytesPerPeer: 150_000 })
    const held = budget.charge('other', 100_000)
    const rooms: (number | undefined)[] = []
    const handler = frameHandler(
      async (_frame, _peer, maxReplyBytes) => {
        rooms.push(maxReplyBytes)
        return new Uint8Array(10)
      },
      { maxRequestBytes: 64, replyBudget: { budget, reserveBytes: 200_000, minReserveBytes: 40_000, refusal: REFUSAL } }
    )
    const [outbound, inbound] = await streamPair()
    const handled = handler(inbound, { remotePeer: peer } as Connection)
    expect(await request(outbound, Uint8Array.of(1))).toEqual(new Uint8Array(10))
    await handled
    // 50,000 free, less the 3 bytes of the frame's length prefix.
    expect(rooms).toEqual([49_997])
    held?.release()
  })

  it('cuts a nodes reply to the room it got, and answers busy when not even the first node fits', async () => {
    const store = new MemoryStore()
    const blobs = [new Uint8Array(300).fill(1), new Uint8Array(300).fill(2), new Uint8Array(300).fill(3)]
    const hashes = blobs.map((b) => keccak256(b))
    for (let i = 0; i < blobs.length; i++) await store.put(hashes[i]!, blobs[i]!)
    const cut = decodeNodesResponse(await answerNodes(store, hashes, { maxResponseBytes: 700 }), 3)
    expect(cut).toEqual({ code: Status.OK, nodes: blobs.slice(0, 2) })
    // A node that fills the room exactly is sent: refused, a first node of that size would never be served.
    expect(decodeNodesResponse(await answerNodes(store, hashes, { maxResponseBytes: 300 }), 3)).toEqual({ code: Status.OK, nodes: blobs.slice(0, 1) })
    // An empty OK reply says "none of them here", and the client would not ask this peer for them again.
    expect(decodeNodesResponse(await answerNodes(store, hashes, { maxResponseBytes: 299 }), 3)).toEqual({
      code: Status.RATE_LIMITED,
      nodes: []
    })
  })

  it('reads a nodes request from the store a chunk at a time, only until the reply is full', async () => {
    // Reading all 1,024 hashes at once held every value asked for: an outside tester's one peer id asking for
    // a trie's largest leaves took a server to 3.2 GB.
    const store = new MemoryStore()
    const big = Array.from({ length: 1_024 }, (_, i) => new Uint8Array(300 * 1024).fill(i % 256))
    const hashes = big.map((b, i) => keccak256(Uint8Array.of(i >> 8, i & 0xff, ...b.subarray(0, 8))))
    for (let i = 0; i < big.length; i++) await store.put(hashes[i]!, big[i]!)
    const reads: number[] = []
    const getMany = store.getMany.bind(store)
    const counted = async (keys: Uint8Array[]) => {
      reads.push(keys.length)
      return getMany(keys)
    }
    // A store that does not know its largest value: each could be the largest node (1 MiB), 16 at a time.
    const unknown = { getMany: counted }
    expect(decodeNodesResponse(await answerNodes(unknown, hashes), 1_024).nodes.length).toBe(6) // 2 MiB holds 6
    expect(reads).toEqual([NODES_READ_CHUNK])
    // A smaller room reads fewer at a time: 512 KiB, a quarter of a full reply, 4.
    reads.length = 0
    expect(decodeNodesResponse(await answerNodes(unknown, hashes, { maxResponseBytes: 512 * 1024 }), 1_024).nodes.length).toBe(1)
    expect(reads).toEqual([NODES_READ_CHUNK / 4])
    // A store that knows its largest value (300 KiB here) is read as many at a time as 16 of the largest node
    // make: 54.
    reads.length = 0
    const known = { getMany: counted, largestValueBytes: () => store.largestValueBytes() }
    expect(store.largestValueBytes()).toBe(300 * 1024)
    expect(decodeNodesResponse(await answerNodes(known, hashes), 1_024).nodes.length).toBe(6)
    expect(reads).toEqual([54])
    // Small nodes: the whole request at once.
    const small = new MemoryStore()
    const nodes = Array.from({ length: 1_024 }, (_, i) => Uint8Array.of(i >> 8, i & 0xff, 1, 2, 3))
    for (const node of nodes) await small.put(keccak256(node), node)
    reads.length = 0
    const smallReads = {
      getMany: async (keys: Uint8Array[]) => {
        reads.push(keys.length)
        return small.getMany(keys)
      },
      largestValueBytes: () => small.largestValueBytes()
    }
    expect(decodeNodesResponse(await answerNodes(smallReads, nodes.map((n) => keccak256(n))), 1_024).nodes.length).toBe(1_024)
    expect(reads).toEqual([1_024])
    // Unanswerable values (past the largest node a client accepts) are left out.
    const huge = new Uint8Array(MAX_NODE_BYTES + 1)
    await store.put(keccak256(huge), huge)
    expect(decodeNodesResponse(await answerNodes(store, [keccak256(huge), hashes[0]!]), 2).nodes).toEqual([big[0]])
    // And they count towards what is read: a request repeating a 2 MiB value 1,024 times stops after 16 of the
    // largest node (an outside tester's such requests cost a server 1.6 s of CPU each).
    const larger = new Uint8Array(2 * MAX_NODE_BYTES)
    await store.put(keccak256(larger), larger)
    reads.length = 0
    const repeated = { getMany: counted, largestValueBytes: () => store.largestValueBytes() }
    expect(decodeNodesResponse(await answerNodes(repeated, new Array(1_024).fill(keccak256(larger))), 1_024).nodes).toEqual([])
    expect(reads).toEqual([NODES_READ_CHUNK / 2])
  })

  it("charges a reply to the host of its connection's remote address", async () => {
    const hosts: (string | undefined)[] = []
    class Recording extends ReplyBudget {
      override charge(peer: string, bytes: number, options: ChargeOptions = {}) {
        hosts.push(options.host)
        return super.charge(peer, bytes, options)
      }
    }
    const handler = frameHandler(async () => new Uint8Array(10), {
      maxRequestBytes: 64,
      replyBudget: { budget: new Recording(), reserveBytes: 1_000, refusal: REFUSAL }
    })
    for (const remoteAddr of [multiaddr('/ip4/192.0.2.7/tcp/4001'), multiaddr('/ip6/2001:db8:1:2:3:4:5:6/tcp/4001/ws'), undefined]) {
      const [outbound, inbound] = await streamPair()
      const handled = handler(inbound, { remotePeer: peer, remoteAddr } as Connection)
      expect(await request(outbound, Uint8Array.of(1))).toEqual(new Uint8Array(10))
      await handled
    }
    // An IPv6 address counts as its /64; a connection with no IP address as its peer (no host given).
    expect(hosts).toEqual(['192.0.2.7', '2001:db8:1:2::/64', undefined])
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
