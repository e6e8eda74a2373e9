import type { Libp2p } from 'libp2p'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { AbortError, InvalidInputError, PeerBusyError, PeerFaultError, PeerRequestError, RequestRejectedError } from '../../src/errors.js'
import { Queue } from '../../src/fsm/queue.js'
import type { Item } from '../../src/fsm/types.js'
import { Status } from '../../src/net/codec.js'
import { encodeContentsResponse, encodeHashesResponse } from '../../src/net/topic-protocols.js'
import { Fetcher, type FetcherInit } from '../../src/topic/fetcher.js'
import { TopicStateManager } from '../../src/topic/topic-state-manager.js'
import { TopicServer } from '../../src/topic/topic-server.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { Prng } from '../../src/util/prng.js'
import {
  type Adversary,
  type AdversaryProtocol,
  type Behaviour,
  type Behaviours,
  createAdversary
} from '../helpers/adversary.js'
import { ruleFor } from '../helpers/adversary-model.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { createTestNode } from '../helpers/libp2p.js'
import { makeItems } from '../helpers/topic-data.js'
import { until } from '../helpers/wait.js'
import { Gate, MemoryTopicProvider, openStreamFrom, serveTopics } from './net-helpers.js'

const items = makeItems(300)
const hashes = items.map((i) => keccak256(i.data))
const provider = new MemoryTopicProvider({ news: items })
const honestServer = new TopicServer({ provider })
/** A status no honest peer sends: lowest above head. */
const badState = { lowest: 9, head: 5, headHash: new Uint8Array(32), checkpoint: { number: 0, root: new Uint8Array(32) } }

/** Answers contents requests with `change(items it should send, the request)`, everything else honestly. */
const contentsLie = (change: (held: Item[], req: { from: number; amount: number }) => Item[]): Behaviours => ({
  contents: { forge: change }
})

/** Answers every request of `protocol` with `frame`, everything else honestly. */
const answerWith = (protocol: AdversaryProtocol, reply: Uint8Array): Behaviours => ({ [protocol]: { reply } })

describe('Fetcher over libp2p', () => {
  let client: Libp2p
  let honest: Libp2p
  let adversary: Adversary
  let limited: Libp2p
  /** How the adversary answers now: each test sets it (the adversary asks it at every request). */
  let behaviour: Behaviours = {}
  let adversaryCalls = 0
  const gates: Gate[] = []
  const ids = { honest: '', adversary: '', limited: '' }

  beforeAll(async () => {
    ;[client, honest, limited] = await Promise.all([1, 2, 3].map(() => createTestNode()))
    const current =
      <P extends AdversaryProtocol>(protocol: P): Behaviour<P> =>
      (call) => {
        adversaryCalls++
        return ruleFor(behaviour[protocol] as Behaviour<P> | undefined, call)
      }
    adversary = await createAdversary({
      topics: provider,
      behaviour: { status: current('status'), contents: current('contents'), hashes: current('hashes') }
    })
    await serveTopics(honest, honestServer.handlers())
    await serveTopics(
      limited,
      new TopicServer({ provider, inboundBurst: 1, inboundRatePerSecond: 0.001 }).handlers()
    )
    for (const server of [honest, adversary.node, limited]) await client.dial(server.getMultiaddrs()[0]!)
    ids.honest = honest.peerId.toString()
    ids.adversary = adversary.node.peerId.toString()
    ids.limited = limited.peerId.toString()
  })

  afterEach(() => {
    for (const gate of gates.splice(0)) gate.open()
    behaviour = {}
    adversaryCalls = 0
  })

  afterAll(async () => {
    await Promise.all([client, honest, adversary, limited].map((n) => n?.stop()))
  })

  const fetcher = (init: Partial<FetcherInit> = {}) => new Fetcher({ openStream: openStreamFrom(client), ...init })

  /** A behaviour that holds every answer until the test ends (or opens the gate). */
  const held = (): { gate: Gate; behaviour: Behaviours } => {
    const gate = new Gate()
    gates.push(gate)
    const hold = (): Promise<void> => gate.wait()
    return { gate, behaviour: { status: { hold }, contents: { hold }, hashes: { hold } } }
  }

  async function faultOf(promise: Promise<unknown>): Promise<PeerFaultError> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e
    )
    expect(err).toBeInstanceOf(PeerFaultError)
    return err as PeerFaultError
  }

  describe('round trips', () => {
    it('status: the server state, null for a topic it holds nothing of', async () => {
      const f = fetcher()
      expect(await f.status(ids.honest, 'news')).toEqual(await provider.getCurrentTopicState('news'))
      expect(await f.status(ids.honest, 'other')).toBeNull()
    })

    it('contents: the items asked for, checked against expected hashes; empty past the head', async () => {
      const f = fetcher()
      expect(await f.contents(ids.honest, 'news', 10, 20)).toEqual(items.slice(10, 30))
      const expectedHashes = hashes.slice(100, 164)
      expect(await f.contents(ids.honest, 'news', 100, 64, { expectedHashes })).toEqual(items.slice(100, 164))
      // Expected hashes of other items: even an honest server's reply fails the check.
      const shifted = f.contents(ids.honest, 'news', 290, 64, { expectedHashes: hashes.slice(236, 300) })
      await expect(shifted).rejects.toBeInstanceOf(PeerFaultError)
      expect(await f.contents(ids.honest, 'news', 290, 64)).toEqual(items.slice(290))
      expect(await f.contents(ids.honest, 'news', 300, 64)).toEqual([])
    })

    it('hashes: the hashes of the range, a prefix at the head, empty past it', async () => {
      const f = fetcher()
      expect(await f.hashes(ids.honest, 'news', 0, 99)).toEqual(hashes.slice(0, 100))
      expect(await f.hashes(ids.honest, 'news', 250, 400)).toEqual(hashes.slice(250))
      expect(await f.hashes(ids.honest, 'news', 300, 400)).toEqual([])
    })

    it('rejects bad arguments before sending anything', async () => {
      const f = fetcher()
      await expect(f.contents(ids.honest, 'news', 0, 0)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(f.contents(ids.honest, 'news', -1, 5)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(f.contents(ids.honest, 'news', 0, 257)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(f.contents(ids.honest, 'news', 0, 4, { expectedHashes: hashes.slice(0, 3) })).rejects.toBeInstanceOf(
        InvalidInputError
      )
      await expect(f.hashes(ids.honest, 'news', 9, 5)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(f.status(ids.honest, '')).rejects.toBeInstanceOf(InvalidInputError)
      await expect(f.status('not-a-peer-id', 'news')).rejects.toBeInstanceOf(InvalidInputError)
      const unmapped = fetcher({ peerId: () => undefined })
      const err = await unmapped.status(ids.honest, 'news').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PeerRequestError)
      expect((err as PeerRequestError).reason).toBe('not-connected')
    })
  })

  describe('a lying server is blamed, by name', () => {
    it('items that do not match their expected hashes', async () => {
      behaviour = contentsLie((held) => held.map((i, k) => (k === 3 ? { n: i.n, data: Uint8Array.of(...i.data, 1) } : i)))
      const f = fetcher()
      const err = await faultOf(f.contents(ids.adversary, 'news', 0, 10, { expectedHashes: hashes.slice(0, 10) }))
      expect(err.peer).toBe(ids.adversary)
      expect(err.reason).toBe('hash-mismatch')
      expect(err.message).toContain('item 3')
    })

    it('item numbers outside the range, too many items, a garbage frame', async () => {
      const f = fetcher()
      const lies: [string, Behaviours][] = [
        ['out of range', contentsLie((held, req) => held.map((i) => ({ n: i.n + req.amount, data: i.data })))],
        ['too many', contentsLie((_held, req) => items.slice(req.from, req.from + req.amount + 1))],
        ['descending', { contents: 'reorder' }],
        ['garbage', answerWith('contents', new Prng(7).bytes(500))],
        ['status with items', answerWith('contents', encodeContentsResponse(Status.UNAVAILABLE, items.slice(0, 2)))]
      ]
      for (const [what, lie] of lies) {
        behaviour = lie
        const err = await faultOf(f.contents(ids.adversary, 'news', 20, 10))
        expect(err.peer, what).toBe(ids.adversary)
        expect(err.reason, what).toBe('malformed')
      }
      // Contents replies come on the peer's long-lived session: a frame past the cap there is its fault too.
      behaviour = { contents: 'oversized' }
      const oversized = await faultOf(f.contents(ids.adversary, 'news', 20, 10))
      expect([oversized.peer, oversized.reason]).toEqual([ids.adversary, 'oversized'])
    })

    it('a status with lowest above head, an oversized status, hashes of the wrong size', async () => {
      const f = fetcher()
      behaviour = { status: { state: () => badState } }
      expect((await faultOf(f.status(ids.adversary, 'news'))).reason).toBe('malformed')
      behaviour = answerWith('status', new Uint8Array(4000))
      const oversized = await faultOf(f.status(ids.adversary, 'news'))
      expect([oversized.peer, oversized.reason]).toEqual([ids.adversary, 'oversized'])
      behaviour = answerWith('hashes', encodeHashesResponse(Status.OK, [new Uint8Array(32), new Uint8Array(31)]))
      expect((await faultOf(f.hashes(ids.adversary, 'news', 0, 5))).reason).toBe('malformed')
      // More hashes than asked for is a frame longer than any legal reply: refused before it is decoded.
      behaviour = answerWith('hashes', encodeHashesResponse(Status.OK, hashes.slice(0, 7)))
      expect((await faultOf(f.hashes(ids.adversary, 'news', 0, 5))).reason).toBe('oversized')
    })
  })

  describe('failures that blame nobody', () => {
    it('a rate-limited server: PeerBusyError', async () => {
      const f = fetcher()
      expect((await f.status(ids.limited, 'news'))?.head).toBe(299)
      const err = await f.contents(ids.limited, 'news', 0, 5).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PeerBusyError)
      expect(err).not.toBeInstanceOf(PeerFaultError)
      await expect(f.hashes(ids.limited, 'news', 0, 5)).rejects.toBeInstanceOf(PeerBusyError)
    })

    it('a request the server calls invalid: RequestRejectedError', async () => {
      behaviour = answerWith('contents', encodeContentsResponse(Status.INVALID_REQUEST))
      await expect(fetcher().contents(ids.adversary, 'news', 0, 5)).rejects.toBeInstanceOf(RequestRejectedError)
    })

    it('no reply in time, or a reset stream: PeerRequestError', async () => {
      behaviour = held().behaviour
      // The configured deadline is the one applied: a request with a far later one, sent first to the same
      // silent server, is still waiting when this one times out (an order, not a wall-clock bound).
      const patient = new AbortController()
      let patientSettled = false
      const waiting = fetcher({ requestTimeoutMs: 60_000 })
        .contents(ids.adversary, 'news', 0, 5, { signal: patient.signal })
        .finally(() => (patientSettled = true))
      const timeout = await fetcher({ requestTimeoutMs: 300 })
        .contents(ids.adversary, 'news', 0, 5)
        .catch((e: unknown) => e)
      expect(timeout).toBeInstanceOf(PeerRequestError)
      expect((timeout as PeerRequestError).reason).toBe('timeout')
      expect((timeout as PeerRequestError).peer).toBe(ids.adversary)
      expect(patientSettled).toBe(false)
      patient.abort()
      await expect(waiting).rejects.toBeInstanceOf(AbortError)

      behaviour = { status: 'reset' }
      const reset = await fetcher()
        .status(ids.adversary, 'news')
        .catch((e: unknown) => e)
      expect(reset).toBeInstanceOf(PeerRequestError)
      expect((reset as PeerRequestError).reason).toBe('transport')
    })
  })

  describe('per-peer limits', () => {
    it('a slow peer holds only its own requests: the others go through', async () => {
      const slow = held()
      behaviour = slow.behaviour
      const f = fetcher({ maxConcurrentPerPeer: 2 })
      const pending = [0, 1, 2].map((k) => f.contents(ids.adversary, 'news', k * 10, 10))
      await until(() => adversaryCalls === 2, 'two requests at the slow peer')
      expect(f.load(ids.adversary)).toEqual({ active: 2, waiting: 1 })
      // The slow peer is saturated; the honest one answers at once.
      expect(await f.contents(ids.honest, 'news', 0, 10)).toEqual(items.slice(0, 10))
      expect(await f.status(ids.honest, 'news')).not.toBeNull()
      expect(adversaryCalls).toBe(2)
      slow.gate.open()
      expect(await Promise.all(pending)).toEqual([items.slice(0, 10), items.slice(10, 20), items.slice(20, 30)])
      expect(adversaryCalls).toBe(3)
      expect(f.load(ids.adversary)).toEqual({ active: 0, waiting: 0 })
    })

    it('paces each peer with its own token bucket on the injected clock', async () => {
      const clock = new FakeClock()
      const f = fetcher({ clock, outboundBurst: 1, outboundRatePerSecond: 1 })
      expect(await f.status(ids.honest, 'news')).not.toBeNull()
      let done = false
      const second = f.status(ids.honest, 'news').then((s) => {
        done = true
        return s
      })
      await until(() => clock.pendingTimers === 1, 'the second request to wait for a token')
      // Another peer has its own bucket.
      expect(await f.status(ids.adversary, 'news')).not.toBeNull()
      expect(done).toBe(false)
      expect(f.load(ids.honest)).toEqual({ active: 1, waiting: 0 })
      clock.advance(1_000)
      expect((await second)?.head).toBe(299)
      expect(clock.pendingTimers).toBe(0)
    })
  })

  describe('abort', () => {
    it('aborts a request waiting for a token, for a slot, or on the wire', async () => {
      const clock = new FakeClock()
      const paced = fetcher({ clock, outboundBurst: 1, outboundRatePerSecond: 1 })
      await paced.status(ids.honest, 'news')
      const tokenWait = new AbortController()
      const waiting = paced.status(ids.honest, 'news', { signal: tokenWait.signal })
      await until(() => clock.pendingTimers === 1, 'the request to wait for a token')
      tokenWait.abort()
      await expect(waiting).rejects.toBeInstanceOf(AbortError)
      expect(clock.pendingTimers).toBe(0)
      expect(paced.load(ids.honest)).toEqual({ active: 0, waiting: 0 })

      behaviour = held().behaviour
      // A request deadline past the test's own (30 s): an abort that did not end the request on the wire at once
      // would fail the test by timing it out, with no wall-clock bound here.
      const f = fetcher({ maxConcurrentPerPeer: 1, requestTimeoutMs: 60_000 })
      const onWire = new AbortController()
      const inSlot = new AbortController()
      const first = f.contents(ids.adversary, 'news', 0, 5, { signal: onWire.signal })
      const second = f.contents(ids.adversary, 'news', 5, 5, { signal: inSlot.signal })
      await until(() => adversaryCalls === 1, 'the first request on the wire')
      expect(f.load(ids.adversary)).toEqual({ active: 1, waiting: 1 })
      inSlot.abort()
      await expect(second).rejects.toBeInstanceOf(AbortError)
      expect(f.load(ids.adversary)).toEqual({ active: 1, waiting: 0 })
      onWire.abort()
      await expect(first).rejects.toBeInstanceOf(AbortError)
      expect(f.load(ids.adversary)).toEqual({ active: 0, waiting: 0 })
      await expect(f.status(ids.honest, 'news', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError)
    })
  })

  it('feeds the TopicStateManager: states of honest peers, the liar blamed', async () => {
    behaviour = { status: { state: () => badState } }
    const f = fetcher()
    const faults: [string, unknown][] = []
    const manager = new TopicStateManager({
      topics: ['news', 'other'],
      fetchStatus: (peer, topic, options) => f.status(peer, topic, options),
      onPeerFault: (peer, err) => faults.push([peer, err])
    })
    manager.start()
    manager.addPeer(ids.honest)
    manager.addPeer(ids.adversary)
    await until(() => faults.length === 2 && manager.peers('news').length === 1, 'the liar blamed and the honest state kept')
    expect(manager.peers('news')).toEqual([{ id: ids.honest, lowest: 0, head: 299 }])
    expect(manager.peers('other')).toEqual([])
    expect(faults.map(([peer]) => peer)).toEqual([ids.adversary, ids.adversary])
    await manager.stop()
  })

  it('feeds the FSM queue: every item delivered in order while a lying peer is reported', async () => {
    behaviour = contentsLie((held) => held.map((i) => ({ n: i.n, data: Uint8Array.of(...i.data, 0xee) })))
    const f = fetcher()
    const faults: PeerFaultError[] = []
    const delivered: Item[] = []
    // What the service does with a faulty peer: stop listing it, so the queue asks the others.
    const banned = new Set<string>()
    const queue = new Queue({
      start: 0,
      target: 299,
      batchSize: 25,
      io: {
        peers: () => [ids.honest, ids.adversary].filter((id) => !banned.has(id)).map((id) => ({ id, lowest: 0, head: 299 })),
        fetch: f.queueFetch('news', {
          expectedHashes: (from, amount) => hashes.slice(from, from + amount),
          onPeerFault: (e) => {
            faults.push(e)
            banned.add(e.peer)
          }
        }),
        deliver: async (batch) => {
          delivered.push(...batch)
          return { ok: true }
        }
      }
    })
    const result = await queue.run({ signal: AbortSignal.timeout(10_000) })
    expect(result.head).toBe(299)
    expect(delivered.map((i) => i.n)).toEqual(items.map((i) => i.n))
    expect(delivered.every((i) => keccak256(i.data).every((b, k) => b === hashes[i.n]![k]))).toBe(true)
    expect(faults.length).toBeGreaterThan(0)
    expect(new Set(faults.map((e) => [e.peer, e.reason].join()))).toEqual(new Set([`${ids.adversary},hash-mismatch`]))
  })
})
