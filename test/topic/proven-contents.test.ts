import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_FRAME_BYTES, MAX_RESPONSE_BYTES } from '../../src/constants.js'
import { PeerFaultError } from '../../src/errors.js'
import { Status } from '../../src/net/codec.js'
import { decodeContentsResponse, encodeContentsRequest, type Item } from '../../src/net/topic-protocols.js'
import { verifyRangeProof } from '../../src/proof/range-proof.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { Fetcher } from '../../src/topic/fetcher.js'
import { answerContents, TopicServer } from '../../src/topic/topic-server.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { uint64BE } from '../../src/util/bytes.js'
import { Prng } from '../../src/util/prng.js'
import { type Adversary, type Behaviour, createAdversary, type Rule } from '../helpers/adversary.js'
import { ruleFor } from '../helpers/adversary-model.js'
import { createTestNode } from '../helpers/libp2p.js'
import { makeItems } from '../helpers/topic-data.js'
import { openStreamFrom, serveTopics } from './net-helpers.js'

/** A topic store holding `items`, with a checkpoint at `checkpointAt`; returns the checkpoint's root. */
async function storeWith(items: Item[], checkpointAt: number): Promise<{ topics: TopicStore; root: Uint8Array }> {
  const topics = new TopicStore(new MemoryStore())
  await topics.appendMany('news', items.slice(0, checkpointAt + 1).map((i) => i.data))
  const cp = await topics.checkpoint('news')
  await topics.appendMany('news', items.slice(checkpointAt + 1).map((i) => i.data))
  return { topics, root: cp!.root }
}

const items = makeItems(300)

describe('answerContents with a proof', () => {
  it('proves the items it serves against the named checkpoint root, also below a newer head', async () => {
    const { topics, root } = await storeWith(items, 199)
    const reply = decodeContentsResponse(await answerContents(topics, encodeContentsRequest('news', 120, 50, root), 'p'), 120, 50)
    expect(reply.code).toBe(Status.OK)
    expect(reply.items).toEqual(items.slice(120, 170))
    const keys = reply.items.map((i) => uint64BE(i.n))
    expect(() => verifyRangeProof(root, uint64BE(120), uint64BE(169), keys, reply.items.map((i) => i.data), reply.proof)).not.toThrow()
  })

  it('answers UNAVAILABLE for a root it does not hold, or whose items are not its own', async () => {
    const { topics } = await storeWith(items, 199)
    const unknown = decodeContentsResponse(await answerContents(topics, encodeContentsRequest('news', 0, 10, new Uint8Array(32).fill(3)), 'p'), 0, 10)
    expect(unknown).toEqual({ code: Status.UNAVAILABLE, items: [], proof: [] })
    // Another history in the same store (trie nodes are shared by hash): its trie is here, its items are not ours.
    const shared = new MemoryStore()
    const ours = new TopicStore(shared)
    await ours.appendMany('news', items.map((i) => i.data))
    await ours.appendMany('other', makeItems(300, 9).map((i) => i.data))
    const otherRoot = (await ours.checkpoint('other'))!.root
    await expect(ours.getContentsProof('news', otherRoot, 0, 9)).resolves.not.toHaveLength(0)
    const foreign = decodeContentsResponse(await answerContents(ours, encodeContentsRequest('news', 0, 10, otherRoot), 'p'), 0, 10)
    expect(foreign.code).toBe(Status.UNAVAILABLE)
  })

  it('keeps items and proof of large items within one reply\'s budget, the proof holding both edge leaves whole', async () => {
    const prng = new Prng(3)
    const large = Array.from({ length: 64 }, (_v, n) => ({ n, data: prng.bytes(64 * 1024) }))
    const { topics, root } = await storeWith(large, 63)
    const frame = await answerContents(topics, encodeContentsRequest('news', 0, 64, root), 'p')
    expect(frame.length).toBeLessThanOrEqual(MAX_FRAME_BYTES)
    const reply = decodeContentsResponse(frame, 0, 64)
    expect(reply.code).toBe(Status.OK)
    const itemBytes = reply.items.reduce((sum, i) => sum + i.data.length, 0)
    const proofBytes = reply.proof.reduce((sum, node) => sum + node.length, 0)
    expect(proofBytes).toBeGreaterThan(2 * 64 * 1024)
    expect(itemBytes + proofBytes).toBeLessThanOrEqual(MAX_RESPONSE_BYTES)
    // Short of the 32 items that fit without a proof, and still proven.
    expect(reply.items.length).toBeLessThan(32)
    const last = reply.items.at(-1)!.n
    const keys = reply.items.map((i) => uint64BE(i.n))
    expect(() => verifyRangeProof(root, uint64BE(0), uint64BE(last), keys, reply.items.map((i) => i.data), reply.proof)).not.toThrow()
  })

  it('keeps items and proof within a smaller room the reply budget gave, and answers busy when one item and its proof do not fit', async () => {
    const prng = new Prng(4)
    const large = Array.from({ length: 64 }, (_v, n) => ({ n, data: prng.bytes(64 * 1024) }))
    const { topics, root } = await storeWith(large, 63)
    const room = 512 * 1024
    const frame = await answerContents(topics, encodeContentsRequest('news', 0, 64, root), 'p', {}, room)
    expect(frame.length).toBeLessThanOrEqual(room)
    const reply = decodeContentsResponse(frame, 0, 64)
    expect(reply.code).toBe(Status.OK)
    expect(reply.items.length).toBeGreaterThan(0)
    const last = reply.items.at(-1)!.n
    const keys = reply.items.map((i) => uint64BE(i.n))
    expect(() => verifyRangeProof(root, uint64BE(0), uint64BE(last), keys, reply.items.map((i) => i.data), reply.proof)).not.toThrow()
    // 64 KiB for headers and 100 KiB more: the first item fits, but not with its proof (both edge leaves whole).
    const tight = decodeContentsResponse(await answerContents(topics, encodeContentsRequest('news', 0, 64, root), 'p', {}, 164 * 1024), 0, 64)
    expect(tight).toEqual({ code: Status.RATE_LIMITED, items: [], proof: [] })
  })

  it('answers UNAVAILABLE when its provider cannot prove', async () => {
    const { topics, root } = await storeWith(items, 199)
    const noProofs = {
      getCurrentTopicState: (t: string) => topics.getCurrentTopicState(t),
      getContents: (t: string, f: number, a: number) => topics.getContents(t, f, a),
      getContentHashes: (t: string, f: number, to: number) => topics.getContentHashes(t, f, to)
    }
    const reply = decodeContentsResponse(await answerContents(noProofs, encodeContentsRequest('news', 0, 10, root), 'p'), 0, 10)
    expect(reply.code).toBe(Status.UNAVAILABLE)
  })
})

describe('Fetcher.contents with a proof, over libp2p', () => {
  let client: Libp2p
  let honest: Libp2p
  let liar: Adversary
  let root: Uint8Array
  let topics: TopicStore
  /** How the liar answers contents requests now (status and hashes it answers honestly). */
  let lie: Behaviour<'contents'> = 'honest'
  const ids = { honest: '', liar: '' }

  beforeAll(async () => {
    const stored = await storeWith(items, 199)
    root = stored.root
    topics = stored.topics
    const server = new TopicServer({ provider: stored.topics })
    ;[client, honest] = await Promise.all([1, 2].map(() => createTestNode()))
    await serveTopics(honest, server.handlers())
    liar = await createAdversary({ topics: stored.topics, behaviour: { contents: (call) => ruleFor(lie, call) } })
    for (const server of [honest, liar.node]) await client.dial(server.getMultiaddrs()[0]!)
    ids.honest = honest.peerId.toString()
    ids.liar = liar.node.peerId.toString()
  })

  afterAll(async () => {
    await Promise.all([client, honest, liar].map((n) => n?.stop()))
  })

  const fetcher = (): Fetcher => new Fetcher({ openStream: openStreamFrom(client) })

  async function proofFault(promise: Promise<unknown>): Promise<PeerFaultError> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e
    )
    expect(err).toBeInstanceOf(PeerFaultError)
    return err as PeerFaultError
  }

  it('accepts proven items from an honest peer', async () => {
    expect(await fetcher().contents(ids.honest, 'news', 40, 60, { root })).toEqual(items.slice(40, 100))
  })

  it('blames the sender of a changed item, a dropped item, a shifted range or a bare reply', async () => {
    const cases: [string, Rule<'contents'>][] = [
      ['a changed item', { forge: (held) => held.map((i, k) => (k === 3 ? { n: i.n, data: Uint8Array.of(1, 2, 3) } : i)) }],
      ['a dropped item', { forge: (held) => held.filter((_i, k) => k !== 5) }],
      ['a missing first item', { forge: (held) => held.slice(1) }],
      ['no proof', { proof: () => [] }],
      ['a proof of another range', { proof: () => otherProof }]
    ]
    const otherProof = await topics.getContentsProof('news', root, 0, 59)
    for (const [what, change] of cases) {
      lie = change
      const fault = await proofFault(fetcher().contents(ids.liar, 'news', 40, 60, { root }))
      expect([fault.peer, fault.reason], what).toEqual([ids.liar, 'bad-proof'])
    }
  })

  it('through queueFetch: asks no further than the checkpoint, and reports a bad proof as its sender\'s fault', async () => {
    lie = 'honest'
    const faults: string[] = []
    const fetch = fetcher().queueFetch('news', { onPeerFault: (e) => faults.push(e.peer) })
    const proveAgainst = { number: 199, root }
    const got = await fetch(ids.liar, 190, 64, { signal: new AbortController().signal, proveAgainst })
    expect(got.map((i) => i.n)).toEqual(Array.from({ length: 10 }, (_v, k) => 190 + k))
    lie = { proof: () => [] }
    await expect(fetch(ids.liar, 190, 64, { signal: new AbortController().signal, proveAgainst })).rejects.toThrow(PeerFaultError)
    expect(faults).toEqual([ids.liar])
  })
})
