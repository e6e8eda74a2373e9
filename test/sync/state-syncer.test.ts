import { describe, expect, it } from 'vitest'
import { MAX_NODE_REQUESTS_PER_PEER } from '../../src/constants.js'
import { AbortError, InvalidNodeError, NodeUnavailableError, PeerBusyError } from '../../src/errors.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { type NodeFetcher, type PeerPenalty, StateSyncer, type StateSyncerInit } from '../../src/sync/state-syncer.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { decodeNode, nodeChildren } from '../../src/trie/node.js'
import { toHex } from '../../src/util/hex.js'
import type { AdversaryCall, Behaviour, Rule } from '../helpers/adversary-model.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { FakePeers } from '../helpers/fake-peers.js'
import { until } from '../helpers/wait.js'
import { buildSourceTrie, incompleteNodes, randomEntries, type SourceTrie } from '../helpers/trie-source.js'

/** Peers answering nodes requests from `source`, each by its behaviour (adversary-model.ts), on `clock`. */
function nodePeers(source: SourceTrie, clock: FakeClock): FakePeers<'nodes'> {
  return new FakePeers({ protocol: 'nodes', honest: ({ hashes }) => hashes.flatMap((h) => source.nodes.get(toHex(h)) ?? []), clock })
}

/** The syncer's `fetchNodes` over `peers`. */
function fetcherOf(peers: FakePeers<'nodes'>): NodeFetcher {
  return (peer, hashes, { signal }) => peers.answer(peer, { hashes }, { signal })
}

/** The hashes asked of any peer, as hex, in the order asked. */
function asked(calls: AdversaryCall<'nodes'>[]): string[] {
  return calls.flatMap((c) => c.request.hashes.map(toHex))
}

/** The hash (as hex) of a node blob. */
const hashOf = (blob: Uint8Array): string => toHex(keccak256(blob))

/** Runs a sync while moving the fake clock forward whenever the syncer is idle. */
async function syncWithClock<T>(clock: FakeClock, run: Promise<T>): Promise<T> {
  let done = false
  const result = run.finally(() => {
    done = true
  })
  result.catch(() => undefined)
  for (let i = 0; !done && i < 100_000; i++) {
    await new Promise((r) => setImmediate(r))
    clock.advance(100)
  }
  return result
}

/** Syncs `root` with `syncer` on `clock` (see `syncWithClock`); returns the fake time it ended at. */
async function syncedAt(clock: FakeClock, syncer: StateSyncer, root: Uint8Array): Promise<number> {
  let doneAt = 0
  await syncWithClock(
    clock,
    syncer.sync(root).then(() => {
      doneAt = clock.now()
    })
  )
  return doneAt
}

function newSyncer(store: MemoryStore, peers: FakePeers<'nodes'>, clock: FakeClock, extra: Partial<StateSyncerInit> = {}) {
  return new StateSyncer({ store, fetchNodes: fetcherOf(peers), clock, requestTimeoutMs: 1000, rttMinMs: 100, ...extra })
}

function expectSynced(store: MemoryStore, source: SourceTrie): void {
  expect(new Set(store.keys())).toEqual(new Set(source.nodes.keys()))
}

describe('StateSyncer', async () => {
  const source = await buildSourceTrie(randomEntries(1, 2000))

  /** Syncs `source` from peers behaving as `behaviours` (added in that order), checks the store; returns the peers. */
  async function syncedFrom(behaviours: Record<string, Behaviour<'nodes'>>, extra: Partial<StateSyncerInit> = {}): Promise<FakePeers<'nodes'>> {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    for (const [peer, behaviour] of Object.entries(behaviours)) peers.set(peer, behaviour)
    const syncer = newSyncer(store, peers, clock, extra)
    for (const peer of Object.keys(behaviours)) syncer.addPeer(peer)
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    return peers
  }

  it('syncs a trie from one peer', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('a')
    const syncer = newSyncer(store, peers, clock)
    syncer.addPeer('a')
    const result = await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    expect(result.nodes).toBe(source.nodes.size)
    expect(result.committed).toBe(source.nodes.size)
    expect(result.pending).toBe(0)
    // Requests grow from one node towards the cap as throughput is measured.
    expect(peers.calls[0]!.request.hashes.length).toBe(1)
    expect(Math.max(...peers.calls.map((c) => c.request.hashes.length))).toBeGreaterThan(50)
    expect(clock.pendingTimers).toBe(0)
  })

  it('never asks for a hash twice while it is pending, from honest peers, once each has answered', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    for (const p of ['a', 'b', 'c']) peers.set(p)
    const syncer = newSyncer(store, peers, clock)
    for (const p of ['a', 'b', 'c']) syncer.addPeer(p)
    await syncWithClock(clock, syncer.sync(source.root))
    // A peer's first request is a probe of one node that stays queued for the others (it may be silent).
    const firsts = ['a', 'b', 'c'].map((p) => peers.calls.find((c) => c.peer === p)!)
    for (const first of firsts) expect(first.request.hashes.length).toBe(1)
    const all = asked(peers.calls.filter((c) => !firsts.includes(c)))
    expect(new Set(all).size).toBe(all.length)
    expectSynced(store, source)
  })

  it('spreads the load across three peers', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // Each peer answers a turn of the event loop later, so all three are busy at once.
    for (const p of ['a', 'b', 'c']) peers.set(p, { hold: () => new Promise((r) => setImmediate(r)) })
    const syncer = newSyncer(store, peers, clock)
    for (const p of ['a', 'b', 'c']) syncer.addPeer(p)
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    for (const p of ['a', 'b', 'c']) expect(peers.requestsOf(p)).toBeGreaterThan(2)
  })

  it('completes from honest peers while a corrupting peer is blamed and cut off', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('honest')
    peers.set('liar', 'corrupt')
    const penalties: PeerPenalty[] = []
    // Small requests, so the liar is asked often enough to be left out before the sync ends.
    const syncer = newSyncer(store, peers, clock, { onPenalty: (p) => penalties.push(p), maxNodesPerRequest: 32 })
    syncer.addPeer('liar')
    syncer.addPeer('honest')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    expect(penalties.length).toBeGreaterThan(0)
    expect(penalties.every((p) => p.peer === 'liar')).toBe(true)
    expect(penalties.at(-1)!.excluded).toBe(true)
    // Left out after three offences: nothing is sent to it after that beyond the requests already in flight
    // beside the third. Whether it is disconnected is for the caller's peer ledger to say.
    const liarOffences = penalties.findIndex((p) => p.excluded) + 1
    expect(liarOffences).toBe(3)
    expect(peers.requestsOf('liar')).toBeLessThanOrEqual(3 + MAX_NODE_REQUESTS_PER_PEER - 1)
  })

  it('never probes a peer again once its lies left it out, though it had stalled before', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // Every reply comes after its request timed out, and fails its hash check: the peer is stalled first (only
    // probed), then left out for the late replies' lies.
    peers.set('liar', { fault: 'corrupt', delayMs: 1_500, lateAfterAbort: true })
    peers.set('honest', { delayMs: 300 })
    const sent: { peer: string; at: number }[] = []
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      sent.push({ peer, at: clock.now() })
      return fetcherOf(peers)(peer, hashes, options)
    }
    const penalties: (PeerPenalty & { at: number })[] = []
    const syncer = newSyncer(store, peers, clock, {
      fetchNodes,
      onPenalty: (p) => penalties.push({ ...p, at: clock.now() }),
      maxNodesPerRequest: 4,
      probeBackoffMs: 200,
      maxProbeBackoffMs: 400
    })
    syncer.addPeer('liar')
    syncer.addPeer('honest')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    const out = penalties.find((p) => p.peer === 'liar' && p.reason !== 'stalled' && p.excluded)
    expect(out).toBeDefined()
    expect(penalties.filter((p) => p.peer !== 'liar')).toEqual([])
    // The sync went on long after: probes would have been due every 400 ms.
    expect(clock.now() - out!.at).toBeGreaterThan(2_000)
    expect(sent.filter((c) => c.peer === 'liar' && c.at > out!.at)).toEqual([])
  })

  it('drops the requests still out to a peer the moment its lies leave it out, their nodes asked of others', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // Honest at first (so it is asked for several requests at once), then every reply fails its hash check,
    // the later ones slower: the third offence comes while requests sent with it are still out.
    peers.set('liar', ({ call }) => (call <= 3 ? 'honest' : { fault: 'corrupt', delayMs: call % 4 === 0 ? 100 : 600 }))
    peers.set('honest', { delayMs: 200 })
    const liarRequests: { sent: number; settled: number | null; aborted: number | null }[] = []
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      const pending = fetcherOf(peers)(peer, hashes, options)
      if (peer === 'liar') {
        const request = { sent: clock.now(), settled: null as number | null, aborted: null as number | null }
        liarRequests.push(request)
        options.signal.addEventListener('abort', () => (request.aborted = clock.now()))
        pending.then(() => (request.settled = clock.now()), () => undefined)
      }
      return pending
    }
    const penalties: (PeerPenalty & { at: number })[] = []
    const syncer = newSyncer(store, peers, clock, { fetchNodes, onPenalty: (p) => penalties.push({ ...p, at: clock.now() }), maxNodesPerRequest: 8 })
    syncer.addPeer('liar')
    syncer.addPeer('honest')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    const out = penalties.find((p) => p.peer === 'liar' && p.excluded)!
    expect(out.reason).not.toBe('stalled')
    // Some were out when it was left out: each ended then, not at its timeout.
    const open = liarRequests.filter((r) => r.sent <= out.at && (r.settled === null || r.settled > out.at))
    expect(open.length).toBeGreaterThan(0)
    for (const r of open) expect(r.aborted).toBe(out.at)
  })

  it('keeps MAX_NODE_REQUESTS_PER_PEER requests in flight to a peer, each for different nodes, and one when told to', async () => {
    for (const maxRequestsPerPeer of [1, 2, MAX_NODE_REQUESTS_PER_PEER]) {
      const store = new MemoryStore()
      const clock = new FakeClock()
      const peers = nodePeers(source, clock)
      let open = 0
      /** Requests already open when each request was sent. */
      const openAtSend: number[] = []
      const waiting: (() => void)[] = []
      // The peer answers its oldest open request one turn of the event loop at a time, so a pipelining
      // syncer has sent the next request before the one beside it is answered.
      peers.set('a', () => {
        openAtSend.push(open)
        open++
        return {
          hold: () =>
            new Promise<void>((r) => waiting.push(r)).then(() => {
              open--
            })
        }
      })
      let done = false
      const release = (): void => {
        waiting.shift()?.()
        if (!done) setImmediate(release)
      }
      release()
      // Small requests, so the pipeline runs for many of them.
      const syncer = newSyncer(store, peers, clock, maxRequestsPerPeer === MAX_NODE_REQUESTS_PER_PEER ? { maxNodesPerRequest: 16 } : { maxRequestsPerPeer, maxNodesPerRequest: 16 })
      syncer.addPeer('a')
      await syncWithClock(clock, syncer.sync(source.root)).finally(() => {
        done = true
      })
      expectSynced(store, source)
      expect(Math.max(...openAtSend) + 1).toBe(maxRequestsPerPeer)
      const all = asked(peers.calls)
      expect(new Set(all).size).toBe(all.length)
      if (maxRequestsPerPeer > 1) {
        // A steady pipeline: after the first ones, nearly every request goes out while the others are open.
        const later = openAtSend.slice(maxRequestsPerPeer)
        expect(later.filter((n) => n === maxRequestsPerPeer - 1).length / later.length).toBeGreaterThan(0.8)
      }
    }
  })

  /**
   * Syncs `source` from one honest peer answering after 150 ms of fake time and `silent` peers that never
   * answer, named to sort first so they get the first requests; returns the fake time the sync took, how much
   * of it the honest peer had no request to answer, and what each silent peer was asked.
   */
  async function syncPastSilentPeers(silent: string[]) {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // When each of a silent peer's requests was sent and when the syncer gave up on it (its signal aborted).
    const silentRequests = new Map<string, { size: number; sent: number; aborted: number | null }[]>(silent.map((p) => [p, []]))
    // When the honest peer had requests to answer: [sent, settled] for each.
    const honestBusy: [number, number][] = []
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      if (peer === 'honest') {
        const busy: [number, number] = [clock.now(), Number.POSITIVE_INFINITY]
        honestBusy.push(busy)
        const pending = fetcherOf(peers)(peer, hashes, options)
        pending.finally(() => (busy[1] = clock.now())).catch(() => undefined)
        return pending
      }
      const requests = silentRequests.get(peer)
      if (requests !== undefined) {
        const request = { size: hashes.length, sent: clock.now(), aborted: null as number | null }
        requests.push(request)
        options.signal.addEventListener('abort', () => {
          request.aborted = clock.now()
        })
      }
      return fetcherOf(peers)(peer, hashes, options)
    }
    const reported: PeerPenalty[] = []
    const syncer = newSyncer(store, peers, clock, { fetchNodes, onPenalty: (p) => reported.push(p) })
    peers.set('honest', () => ({ delayMs: 150 }))
    for (const p of silent) peers.set(p, 'stall')
    for (const p of [...silent, 'honest']) syncer.addPeer(p)
    const stalledEvents: unknown[] = []
    syncer.addEventListener('stalled', (e) => stalledEvents.push(e.detail))
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    expect(stalledEvents).toEqual([]) // the honest peer always answered
    expect(clock.pendingTimers).toBe(0)
    const elapsed = clock.now()
    return { elapsed, honestIdle: elapsed - covered(honestBusy), silentRequests, reported }
  }

  /** Total length of the union of the intervals. */
  function covered(intervals: [number, number][]): number {
    let total = 0
    let end = Number.NEGATIVE_INFINITY
    for (const [from, to] of [...intervals].sort((a, b) => a[0] - b[0])) {
      if (to > end) total += to - Math.max(from, end)
      end = Math.max(end, to)
    }
    return total
  }

  it('completes past silent peers with at most one request timeout of delay, however many they are', async () => {
    // The delay the silent peers cause is the time the honest peer waits with nothing to answer: the total
    // time also moves with the round-trip estimate, which more peers change.
    const alone = await syncPastSilentPeers([])
    expect(alone.honestIdle).toBeLessThanOrEqual(200)
    for (const silent of [['a-silent'], ['a-silent', 'b-silent', 'c-silent', 'd-silent']]) {
      const { honestIdle, silentRequests, reported } = await syncPastSilentPeers(silent)
      // The cap on the timeout is 1 s; the fake clock moves in steps of 100 ms. Waiting for each pipelined
      // request to time out in turn, or for three timeouts per peer, kept the honest peer idle for seconds per
      // silent peer.
      expect(honestIdle).toBeLessThanOrEqual(1000 + 200)
      for (const [peer, requests] of silentRequests) {
        expect(requests.length).toBeGreaterThan(0)
        // Each was ended by its timeout (the 1 s cap); none is left.
        for (const r of requests) expect(r.aborted! - r.sent).toBeLessThanOrEqual(1000)
        // A peer that has not answered gets probes only: one node, one request at a time, none pipelined.
        expect(requests.every((r) => r.size === 1)).toBe(true)
        for (let i = 1; i < requests.length; i++) expect(requests[i]!.sent).toBeGreaterThanOrEqual(requests[i - 1]!.aborted!)
        // Left out as stalled once, not for each unanswered probe, and never blamed for anything else.
        expect(reported.filter((p) => p.peer === peer)).toEqual([{ peer, reason: 'stalled', excluded: true }])
      }
      expect(reported.every((p) => silentRequests.has(p.peer))).toBe(true)
    }
  })

  it('ends every request still out to a peer when one of them times out, not each at its own timeout', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('steady', { delayMs: 100 })
    // Answers its probe, then one request late (so its next one goes out later than the others), then nothing.
    peers.set('fading', ({ call }) => (call === 1 ? 'honest' : call === 2 ? { delayMs: 250 } : 'stall'))
    const sent: { peer: string; at: number; answered: boolean; abortedAt?: number }[] = []
    const fetchNodes: NodeFetcher = (peer, hashes, { signal }) => {
      const request: (typeof sent)[number] = { peer, at: clock.now(), answered: false }
      sent.push(request)
      signal.addEventListener('abort', () => {
        request.abortedAt = clock.now()
      })
      return peers.answer(peer, { hashes }, { signal }).then((nodes) => {
        request.answered = true
        return nodes
      })
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, maxNodesPerRequest: 16 })
    syncer.addPeer('steady')
    syncer.addPeer('fading')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    const fading = sent.filter((r) => r.peer === 'fading' && !r.answered)
    const firstTimeout = Math.min(...fading.map((r) => r.abortedAt!))
    const outThen = fading.filter((r) => r.at < firstTimeout)
    // The scene: several requests out when the first timed out, not all sent at once.
    expect(outThen.length).toBeGreaterThan(1)
    expect(new Set(outThen.map((r) => r.at)).size).toBeGreaterThan(1)
    // All given up at the first timeout, their nodes free for the steady peer: left to time out one by one,
    // a silent peer holds its later requests' nodes a timeout each.
    for (const r of outThen) expect(r.abortedAt).toBe(firstTimeout)
  })

  it('gives a peer that stalled and then answers full work again, not probes only', async () => {
    // Its first request goes unanswered (a stall: only probed from then on), the later ones are answered.
    const peers = await syncedFrom(
      { flaky: ({ call }) => (call === 1 ? 'stall' : 'honest'), steady: { delayMs: 300 } },
      { probeBackoffMs: 200 }
    )
    const flaky = peers.calls.filter((c) => c.peer === 'flaky')
    expect(flaky.length).toBeGreaterThan(2)
    expect(Math.max(...flaky.map((c) => c.request.hashes.length))).toBeGreaterThan(1)
  })

  it('takes no notice of a request it gave up on failing later: the probe sent since is answered', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('steady', { delayMs: 100 })
    peers.set('x', { delayMs: 300 })
    const honest = fetcherOf(peers)
    const ofX: { answered: boolean; aborted: boolean }[] = []
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      if (peer !== 'x') return honest(peer, hashes, options)
      const request = { answered: false, aborted: false }
      ofX.push(request)
      options.signal.addEventListener('abort', () => {
        request.aborted = true
      })
      // Its first request goes unanswered, and its stream ends 400 ms after the syncer gave up on it.
      if (ofX.length === 1) {
        return new Promise((_, reject) => {
          options.signal.addEventListener('abort', () => clock.setTimeout(() => reject(new Error('stream reset')), 400))
        })
      }
      return honest(peer, hashes, options).then((nodes) => {
        request.answered = true
        return nodes
      })
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, maxNodesPerRequest: 16, probeBackoffMs: 200 })
    syncer.addPeer('steady')
    syncer.addPeer('x')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    expect(ofX[0]!.aborted).toBe(true)
    // The probe went out before the first request's failure came, and was answered: that failure, of a request
    // already given up on, was no news about the peer. Taken as news, it ended the probe in flight.
    expect(ofX.length).toBeGreaterThan(2)
    expect(ofX[1]).toEqual({ answered: true, aborted: false })
  })

  it('keeps probing only a peer whose every reply comes after its timeout', async () => {
    // Honest, but each reply lands after its request timed out (1 s): it never answers in time.
    const peers = await syncedFrom(
      { late: { delayMs: 1_500, lateAfterAbort: true }, steady: { delayMs: 300 } },
      { probeBackoffMs: 200, maxProbeBackoffMs: 400 }
    )
    const late = peers.calls.filter((c) => c.peer === 'late')
    expect(late.length).toBeGreaterThan(2)
    expect(late.every((c) => c.request.hashes.length === 1)).toBe(true)
  })

  it('keeps probing when every peer is silent, says so, and completes once a peer answers', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    const sent: { peer: string; size: number; at: number }[] = []
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      sent.push({ peer, size: hashes.length, at: clock.now() })
      return fetcherOf(peers)(peer, hashes, options)
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, probeBackoffMs: 500, maxProbeBackoffMs: 2000 })
    for (const p of ['s1', 's2']) {
      peers.set(p, 'stall')
      syncer.addPeer(p)
    }
    const stalled: { at: number; peers: number; stalled: number }[] = []
    syncer.addEventListener('stalled', (e) => stalled.push({ at: clock.now(), peers: e.detail.peers, stalled: e.detail.stalled }))
    peers.set('late', 'honest')
    // Not a failure: a library caller that wants to wait may (the CLI gives up after --wait).
    const run = syncWithClock(clock, syncer.sync(source.root))
    await until(() => clock.now() >= 20_000, 'twenty seconds of fake time')
    // Both silent peers got the root (the second as a hedge once the first was late) and let it time out.
    expect(stalled).toEqual([{ at: expect.any(Number), peers: 0, stalled: 2 }])
    expect(stalled[0]!.at).toBeLessThanOrEqual(2000 + 200)
    expect(syncer.stats()).toMatchObject({ peers: 0, stalled: 2, nodes: 0 })
    // Then probes of one node each, one at a time per peer (each waits out its timeout, 1 s, and the
    // backoff), further apart as they go unanswered.
    for (const p of ['s1', 's2']) {
      const probes = sent.filter((c) => c.peer === p && c.at >= stalled[0]!.at)
      expect(probes.every((c) => c.size === 1)).toBe(true)
      const gaps = probes.slice(1).map((c, i) => c.at - probes[i]!.at)
      expect(gaps.length).toBeGreaterThan(2)
      expect(gaps.every((g) => g >= 1000 + 500)).toBe(true)
      expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]!)
    }
    syncer.addPeer('late')
    await run
    expectSynced(store, source)
    expect(syncer.stats().stalled).toBe(2)
  })

  it('asks a peer that answers RATE_LIMITED again within the busy cap, never blames it nor calls it stalled', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // Refuses everything for 16 s (a server whose reply budget slow readers hold), then has room again.
    const roomAt = 16_000
    peers.set('a', () => (clock.now() < roomAt ? 'rate-limited' : 'honest'))
    const sent: number[] = []
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      sent.push(clock.now())
      return fetcherOf(peers)(peer, hashes, options)
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, busyBackoffMs: 500, maxBusyBackoffMs: 4_000 })
    syncer.addPeer('a')
    const penalties: PeerPenalty[] = []
    syncer.addEventListener('peer:penalised', (e) => penalties.push(e.detail))
    let stalled = 0
    syncer.addEventListener('stalled', () => stalled++)
    // Each refusal is reported as progress with the peer busy, so a watcher knows why nothing moves.
    const busyReports: number[] = []
    syncer.addEventListener('progress', (e) => {
      if (e.detail.busy > 0) busyReports.push(clock.now())
    })
    const doneAt = await syncedAt(clock, syncer, source.root)
    expectSynced(store, source)
    // Treated as silence, its probes went 1, 2, 4, 8, 16 s apart: the first after 16 s came at 31 s.
    expect(doneAt - roomAt).toBeLessThanOrEqual(4_000 + 1_000)
    expect(penalties).toEqual([])
    expect(stalled).toBe(0)
    expect(syncer.stats().stalled).toBe(0)
    // Asked again 500 ms, 1, 2 and 4 s after refusals, never longer: bounded, and cheap for the server.
    const refused = [...new Set(sent.filter((at) => at < roomAt))]
    const gaps = refused.slice(1).map((at, i) => at - refused[i]!)
    expect(Math.max(...gaps)).toBeLessThanOrEqual(4_000 + 100)
    expect(refused.length).toBeLessThan(12)
    expect(busyReports.length).toBeGreaterThanOrEqual(refused.length)
    expect(busyReports.every((at) => at < roomAt)).toBe(true)
  })

  it('keeps asking a peer that refuses some requests while it serves others, with fewer in flight, not after a wait', async () => {
    // A server sharing its reply budget among many clients lets each have one reply built at a time and answers
    // RATE_LIMITED to the rest (in order, after the reply). Backing off after each refusal, 50 joiners of one
    // server spent most of their time waiting.
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('a', () => 'honest')
    const honest = fetcherOf(peers)
    let building: Promise<unknown> | null = null
    let served = 0
    let refused = 0
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      if (building !== null) {
        return building.then(() => {
          refused++
          throw new PeerBusyError('the reply budget: one reply at a time')
        })
      }
      const reply = honest(peer, hashes, options).finally(() => {
        building = null
        served++
      })
      building = reply.catch(() => undefined)
      return reply
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, maxNodesPerRequest: 32, busyBackoffMs: 500 })
    syncer.addPeer('a')
    const doneAt = await syncedAt(clock, syncer, source.root)
    expectSynced(store, source)
    expect(served).toBeGreaterThan(40)
    // A refusal now and then as it tries two at once again, and no 500 ms wait after any of them.
    expect(refused).toBeLessThan(served)
    expect(doneAt).toBeLessThan(served * 200)
  })

  it('halves the requests in flight to a peer that refuses one while it serves others, and widens again as it answers', async () => {
    // A server with room for two replies at a time (its share of a reply budget): a third request is refused.
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('a', { delayMs: 100 })
    const honest = fetcherOf(peers)
    let open = 0
    let served = 0
    let refused = 0
    let twoAfterRefusal = false
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      if (open >= 2) {
        refused++
        // The refusal comes back a round trip later, as from a real server.
        return new Promise((_, reject) => clock.setTimeout(() => reject(new PeerBusyError('two replies at a time')), 50))
      }
      open++
      if (open === 2 && refused > 0) twoAfterRefusal = true
      return honest(peer, hashes, options).finally(() => {
        open--
        served++
      })
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, maxNodesPerRequest: 16, busyBackoffMs: 500 })
    syncer.addPeer('a')
    await syncedAt(clock, syncer, source.root)
    expectSynced(store, source)
    expect(served).toBeGreaterThan(100)
    // About one refusal for two replies; with four in flight after each refusal, about one for each reply (a
    // request sent for nothing, and a server's time spent refusing it).
    expect(refused).toBeLessThan(served * 0.75)
    // Not held to one at a time after a refusal: each answer lets one more out, up to what the server takes.
    expect(twoAfterRefusal).toBe(true)
  })

  it('leaves the other requests of a peer that refused one in flight: their answers count', async () => {
    // An outside tester's lone peer refused every other request. Dropping the peer's other requests at each
    // refusal threw away the answers on their way, and reset the stream they shared: the peer was never heard
    // to answer, its backoff doubled to 4 s, and `dsfg sync --root` gave up after 273 nodes.
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('alternating', ({ call }) => (call % 2 === 0 ? { fault: 'rate-limited', delayMs: 50 } : { delayMs: 150 }))
    const honest = fetcherOf(peers)
    let given = 0
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      // A request sent after another in the same turn starts later, as on a real clock: one sent beside the
      // answered one was not sent after an answer.
      clock.advance(1)
      let settled = false
      options.signal?.addEventListener('abort', () => {
        if (!settled) given++
      })
      return honest(peer, hashes, options).finally(() => {
        settled = true
      })
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, maxNodesPerRequest: 64, busyBackoffMs: 500 })
    syncer.addPeer('alternating')
    const doneAt = await syncedAt(clock, syncer, source.root)
    expectSynced(store, source)
    expect(peers.requestsOf('alternating')).toBeGreaterThan(20)
    // No request was given up on: each came back answered or refused.
    expect(given).toBe(0)
    expect(doneAt).toBeLessThan(peers.requestsOf('alternating') * 400)
  })

  it('requeues the request of a peer that disconnects mid-sync at once', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // Small requests, so the leaver gets its third before the sync ends.
    const syncer = newSyncer(store, peers, clock, { maxNodesPerRequest: 32 })
    peers.set('honest')
    peers.set('leaver', ({ call }) => {
      if (call < 3) return 'honest'
      // Third request: disconnect while it is in flight.
      setImmediate(() => syncer.removePeer('leaver'))
      return 'stall'
    })
    syncer.addPeer('leaver')
    syncer.addPeer('honest')
    const before = clock.now()
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    // Its third request and the ones pipelined beside it were the last it got.
    expect(peers.requestsOf('leaver')).toBeGreaterThanOrEqual(3)
    expect(peers.requestsOf('leaver')).toBeLessThanOrEqual(3 + MAX_NODE_REQUESTS_PER_PEER - 1)
    // No request had to time out: the dropped one went straight back.
    expect(clock.now() - before).toBeLessThan(1000)
  })

  it('completes when a peer holds only half the trie (empty replies do not abort)', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    const half = new Set([...source.nodes.keys()].filter((_k, i) => i % 2 === 0))
    peers.set('half', { forge: (nodes) => nodes.filter((blob) => half.has(hashOf(blob))) })
    peers.set('full')
    const syncer = newSyncer(store, peers, clock)
    syncer.addPeer('half')
    syncer.addPeer('full')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
  })

  it('completes when one peer has none of the trie and the only other is busy at first: one refusal is not all', async () => {
    // 'none' refuses the root while 'busy-first' waits out its busy backoff, with nothing in flight.
    const peers = await syncedFrom({ none: 'unavailable', 'busy-first': ({ call }) => (call === 1 ? 'rate-limited' : 'honest') })
    expect(peers.requestsOf('none')).toBeGreaterThan(0)
  })

  it('never asks a peer again for a node its own request for it still carries, when a hedge of that request is refused', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // One request in three is slow: late, so hedged, while the peer's other requests come and go.
    peers.set('uneven', ({ call }) => ({ delayMs: call % 3 === 0 ? 700 : 50 }))
    peers.set('quick')
    const honest = fetcherOf(peers)
    /** Requests of the uneven peer out for each node (by hash). */
    const out = new Map<string, number>()
    let hedges = 0
    let askedTwice = 0
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      const keys = hashes.map(toHex)
      if (peer === 'quick') {
        // A hedge of the uneven peer's late request: the quick peer says it has none of them.
        if (!keys.some((k) => (out.get(k) ?? 0) > 0)) return honest(peer, hashes, options)
        hedges++
        return Promise.resolve([])
      }
      for (const k of keys) {
        if ((out.get(k) ?? 0) > 0) askedTwice++
        out.set(k, (out.get(k) ?? 0) + 1)
      }
      return honest(peer, hashes, options).finally(() => {
        for (const k of keys) out.set(k, out.get(k)! - 1)
      })
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, maxNodesPerRequest: 64 })
    syncer.addPeer('uneven')
    syncer.addPeer('quick')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    expect(hedges).toBeGreaterThan(0)
    // A hedge is a copy: its nodes stay with the request it copies. Put back for asking when the hedge came back
    // empty, they went to the uneven peer again while its first request for them was still on its way.
    expect(askedTwice).toBe(0)
  })

  it('hedges a late request only at peers that have not refused its nodes', async () => {
    // 'none' answers at once that it has none of the trie; 'slow' has it all, and is late with every reply (within
    // the timeout).
    const peers = await syncedFrom({ none: 'unavailable', slow: { delayMs: 800 } }, { maxNodesPerRequest: 64 })
    // Each node is asked of 'none' once at most: after its refusal, no copy of a late request brings it back.
    const askedOfNone = asked(peers.calls.filter((c) => c.peer === 'none'))
    expect(askedOfNone.length).toBeGreaterThan(0)
    expect(new Set(askedOfNone).size).toBe(askedOfNone.length)
  })

  it('fails, rather than asking again for ever, when a node whose hash is right is not a node (the root commits to garbage)', async () => {
    const garbage = Uint8Array.of(0x01, 0x02, 0x03)
    const root = keccak256(garbage)
    const clock = new FakeClock()
    const fetchNodes: NodeFetcher = async (_peer, hashes) => hashes.filter((h) => toHex(h) === toHex(root)).map(() => garbage)
    const syncer = new StateSyncer({ store: new MemoryStore(), fetchNodes, clock, requestTimeoutMs: 1000, rttMinMs: 100 })
    syncer.addPeer('a')
    const hung = new Promise((r) => setTimeout(() => r('still syncing after 3 s'), 3_000))
    const outcome = await Promise.race([syncWithClock(clock, syncer.sync(root)).catch((e: unknown) => e), hung])
    expect(outcome).toBeInstanceOf(InvalidNodeError)
  })

  it('fails with NodeUnavailableError when every peer refuses a node', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    const missing = [...source.nodes.keys()].at(-1)!
    const partial: Rule<'nodes'> = { forge: (nodes) => nodes.filter((blob) => hashOf(blob) !== missing) }
    peers.set('a', partial)
    peers.set('b', partial)
    const syncer = newSyncer(store, peers, clock)
    syncer.addPeer('a')
    syncer.addPeer('b')
    const err = await syncWithClock(clock, syncer.sync(source.root)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NodeUnavailableError)
    expect(toHex((err as NodeUnavailableError).hash)).toBe(missing)
    expect(await incompleteNodes(store)).toEqual([])
  })

  it('does not give a node up while a probe that may bring it is out, though every answering peer refused it', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    const missing = [...source.nodes.keys()].at(-1)!
    // 'partial' lacks one node; 'late' leaves its first request unanswered (stalled at its timeout, probed at
    // once: no backoff), then answers its probe, the node 'partial' refused among what it may carry.
    peers.set('partial', { forge: (nodes) => nodes.filter((blob) => hashOf(blob) !== missing) })
    peers.set('late', ({ call }) => (call === 1 ? 'stall' : { delayMs: 100 }))
    const syncer = newSyncer(store, peers, clock, { probeBackoffMs: 0 })
    syncer.addPeer('partial')
    syncer.addPeer('late')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    // The scene: the node was refused by 'partial', then brought by the probe of 'late'. Given up on while that
    // probe was out, the sync failed with NodeUnavailableError at the moment 'late' went silent.
    const probe = peers.calls.find((c) => c.peer === 'late' && c.call === 2)!
    expect(probe.request.hashes.map(toHex)).toEqual([missing])
  })

  it('blames a peer whose reply breaks the protocol, and a peer sending nodes nobody asked for', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('garbled', 'garbage')
    const other = [...source.nodes.values()]
    peers.set('spammer', { forge: (nodes) => [...nodes, other[5]!, other[6]!] })
    peers.set('honest')
    const penalties: PeerPenalty[] = []
    const syncer = newSyncer(store, peers, clock, { onPenalty: (p) => penalties.push(p) })
    for (const p of ['garbled', 'spammer', 'honest']) syncer.addPeer(p)
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    expect(penalties.some((p) => p.peer === 'garbled' && p.reason === 'protocol-error')).toBe(true)
    expect(penalties.some((p) => p.peer === 'spammer' && p.reason === 'unrequested-node')).toBe(true)
    expect(penalties.some((p) => p.peer === 'honest')).toBe(false)
  })

  it('matches a reply by hash in any order: a reversed one is taken whole, a node sent twice is blamed', async () => {
    const reversedOnly = async (): Promise<{ asked: string[]; penalties: PeerPenalty[] }> => {
      const store = new MemoryStore()
      const clock = new FakeClock()
      const peers = nodePeers(source, clock)
      peers.set('reversed', { forge: (nodes) => [...nodes].reverse() })
      const penalties: PeerPenalty[] = []
      const syncer = newSyncer(store, peers, clock, { onPenalty: (p) => penalties.push(p) })
      syncer.addPeer('reversed')
      await syncWithClock(clock, syncer.sync(source.root))
      expectSynced(store, source)
      return { asked: asked(peers.calls), penalties }
    }
    // Every node a reversed reply brought was taken: none was asked for again.
    const reversed = await reversedOnly()
    expect(reversed.penalties).toEqual([])
    expect(new Set(reversed.asked).size).toBe(reversed.asked.length)

    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('gapped', { forge: (nodes) => nodes.filter((_, i) => i % 2 === 0) })
    // As many nodes as asked for, the last one replaced by the first again.
    peers.set('doubler', { forge: (nodes) => (nodes.length > 1 ? [...nodes.slice(0, -1), nodes[0]!].reverse() : nodes) })
    const penalties: PeerPenalty[] = []
    const syncer = newSyncer(store, peers, clock, { onPenalty: (p) => penalties.push(p), maxPeerOffences: 1_000 })
    for (const p of ['gapped', 'doubler']) syncer.addPeer(p)
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    expect(penalties.filter((p) => p.peer !== 'doubler')).toEqual([])
    expect(penalties.some((p) => p.peer === 'doubler' && p.reason === 'unrequested-node')).toBe(true)
  })

  it('waits while there are no peers, then completes when one joins', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    peers.set('late')
    const syncer = newSyncer(store, peers, clock)
    const run = syncWithClock(clock, syncer.sync(source.root))
    let settled = false
    run.then(
      () => (settled = true),
      () => (settled = true)
    )
    // The root is scheduled and ten seconds of fake time have passed without a peer: the sync still waits.
    await until(() => settled || (syncer.stats().pending > 0 && clock.now() >= 10_000), 'the sync to wait 10 s without peers')
    expect(settled).toBe(false)
    expect(syncer.stats().nodes).toBe(0)
    expect(peers.calls).toEqual([])
    syncer.addPeer('late')
    await run
    expectSynced(store, source)
  })

  it('shares a level out among the answering peers instead of handing it all to the peer measured first', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    const ids = ['a', 'b', 'c', 'd']
    for (const id of ids) peers.set(id)
    const syncer = newSyncer(store, peers, clock)
    for (const id of ids) syncer.addPeer(id)
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    // The root's 16 children go to the peer that answered first (the others are still answering their probes),
    // in shares of 4; the next two levels are shared out among all four. By capacity alone the peer that
    // answered first took each level whole, and the others waited for the level below.
    const children = (hashes: Set<string>): Set<string> =>
      new Set([...hashes].flatMap((h) => nodeChildren(decodeNode(source.nodes.get(h)!), new Uint8Array(), false).children.map((c) => toHex(c.hash))))
    const level1 = children(new Set([toHex(source.root)]))
    const level2 = children(level1)
    const level3 = children(level2)
    for (const level of [level2, level3]) {
      const requests = peers.calls.filter((c) => c.request.hashes.some((h) => level.has(toHex(h))))
      expect(new Set(requests.map((c) => c.peer))).toEqual(new Set(ids))
      expect(Math.max(...requests.map((c) => c.request.hashes.length))).toBeLessThanOrEqual(Math.ceil(level.size / ids.length))
    }
  })

  describe('beside a slow peer dialled first', () => {
    /**
     * A peer whose replies cross one link, one after another: 100 ms, then 30 ms a node (a node of 100 bytes at
     * 3.3 KB/s). With `quickUpTo`, requests for that many nodes or fewer are answered in 5 ms instead: its first
     * replies (probes and small requests) make it look fast.
     */
    function crawler(clock: FakeClock, quickUpTo = 0): Behaviour<'nodes'> {
      let linkFreeAt = 0
      return ({ request }) => {
        if (request.hashes.length <= quickUpTo) return { delayMs: 5 }
        linkFreeAt = Math.max(linkFreeAt, clock.now() + 100) + 30 * request.hashes.length
        return { delayMs: linkFreeAt - clock.now() }
      }
    }

    /**
     * Syncs from `fastPeers` fast peers (100 ms for anything) and, when given, `slow` dialled before them; what was
     * asked of `slow` in requests of more than `slowAbove` nodes, and of the fast peers (`fastAsked`: of the first).
     */
    async function run(slow?: (clock: FakeClock) => Behaviour<'nodes'>, slowAbove = 1, fastPeers = 1) {
      const store = new MemoryStore()
      const clock = new FakeClock()
      const peers = nodePeers(source, clock)
      if (slow !== undefined) peers.set('slow', slow(clock))
      const fast = Array.from({ length: fastPeers }, (_, i) => (i === 0 ? 'fast' : `fast${i}`))
      for (const id of fast) peers.set(id, { delayMs: 100 })
      const penalties: PeerPenalty[] = []
      // The production round-trip bounds: requests are sized to about a second's work at the least. Node by node:
      // these peers model links node for node, and never send subtries as their leaves (a sync taking subtries
      // sizes its requests to them: `state-syncer-subtries.test.ts`).
      const syncer = newSyncer(store, peers, clock, {
        requestTimeoutMs: 10_000,
        rttMinMs: 1_000,
        subtries: false,
        onPenalty: (p) => penalties.push(p)
      })
      if (slow !== undefined) syncer.addPeer('slow')
      for (const id of fast) syncer.addPeer(id)
      const doneAt = await syncedAt(clock, syncer, source.root)
      expectSynced(store, source)
      expect(penalties).toEqual([])
      const slowAsked = asked(peers.calls.filter((c) => c.peer === 'slow' && c.request.hashes.length > slowAbove))
      /** How many of the fast peers were asked for each hash asked of `slow`. */
      const fastAskedEach = slowAsked.map((hash) => fast.filter((id) => asked(peers.calls.filter((c) => c.peer === id)).includes(hash)).length)
      const duplicates = syncer.stats().duplicates
      return { doneAt, slowAsked, fastAsked: new Set(asked(peers.calls.filter((c) => c.peer === 'fast'))), fastAskedEach, duplicates }
    }

    it('asks an idle fast peer for the nodes a crawling peer would deliver much later, and blames nobody', async () => {
      const alone = await run()
      const beside = await run((clock) => crawler(clock))
      // The crawler took a share of the top levels (its first replies were quick probes) ...
      expect(beside.slowAsked.length).toBeGreaterThan(50)
      // ... and the fast peer, once idle, was asked for them too. Waiting for the crawler, the sync took 3.9 s
      // against 0.6 s from the fast peer alone; now 1.4 s.
      expect(beside.slowAsked.every((hash) => beside.fastAsked.has(hash))).toBe(true)
      expect(beside.doneAt - alone.doneAt).toBeLessThan(1_000)
    })

    it('also when the crawler answered its first small requests at once: its capacity looks high, its requests overdue', async () => {
      const alone = await run()
      // Quick for up to 16 nodes (its probe and its first small requests), crawling for more: its capacity,
      // taken from the quick replies, made its requests look short, and only the late rule (two round trips,
      // a second each at the least) asked the fast peer too.
      const beside = await run((clock) => crawler(clock, 16), 16)
      expect(beside.slowAsked.length).toBeGreaterThan(50)
      // Its larger requests are asked of the fast peer too once overdue (some were not, before).
      expect(beside.slowAsked.every((hash) => beside.fastAsked.has(hash))).toBe(true)
      // 8.1 s against 0.6 s from the fast peer alone before; now 3.1 s. It is still handed a share of each new
      // level while warming up, and each share waits until it is overdue.
      expect(beside.doneAt - alone.doneAt).toBeLessThan(3_000)
    })

    it('counts what is left of the crawler\'s queue from its last reply, not from its oldest request', async () => {
      const alone = await run(undefined, 1, 4)
      const beside = await run((clock) => crawler(clock), 1, 4)
      expect(beside.slowAsked.length).toBeGreaterThan(50)
      // Four requests sent together took it until 1.8 s, one after another, and those sent later queued behind
      // them. Counted from the oldest request still out, its queue looked nearly sent, and the fast peers, idle,
      // waited for it until overdue: 2.4 s against 0.8 s from the fast peers alone; now 1.5 s.
      expect(beside.doneAt - alone.doneAt).toBeLessThan(1_000)
    })

    it('gives a task\'s only copy to an idle peer that has answered copies in full, once one is idle', async () => {
      // Silent on requests of more than 16 nodes once its quick first replies made it look fast: its requests
      // become overdue while the four fast peers are idle. The first copies go to each idle peer; once fast
      // peers have answered copies in full, each task goes to one of them (each of the 136 tasks was asked of all
      // four before: 412 duplicate nodes, now 61; done at 2.9 s either way).
      const silent = await run(() => ({ request }) => (request.hashes.length <= 16 ? { delayMs: 5 } : 'stall'), 16, 4)
      expect(silent.slowAsked.length).toBeGreaterThan(100)
      expect(silent.fastAskedEach.filter((n) => n === 1).length).toBeGreaterThan(100)
      expect(silent.duplicates).toBeLessThan(150)
    })

    let source20k: SourceTrie | undefined

    /**
     * Syncs a 20k-key trie in fake time, with the production round-trip bounds, from the peers `behaviours` names
     * (added in that order; those in `later` at 1.5 s), checks the store and that nobody was blamed, and returns
     * when it ended. `isCopy(peer)` tells a behaviour whether the request it answers is a copy, from the syncer's
     * own record: a stand-in for a sybil that knows what its partner was asked.
     */
    async function syncBeside(
      behaviours: (clock: FakeClock, isCopy: (peer: string) => boolean) => Record<string, Behaviour<'nodes'>>,
      later: string[] = []
    ): Promise<number> {
      source20k ??= await buildSourceTrie(randomEntries(7, 20_000))
      const store = new MemoryStore()
      const clock = new FakeClock()
      const peers = nodePeers(source20k, clock)
      const penalties: PeerPenalty[] = []
      const syncer = newSyncer(store, peers, clock, { requestTimeoutMs: 10_000, rttMinMs: 1_000, onPenalty: (p) => penalties.push(p) })
      const isCopy = (peer: string): boolean => {
        const requests = (syncer as unknown as { active: Map<string, Set<{ copy: boolean }>> }).active.get(peer)
        return requests !== undefined && [...requests].at(-1)?.copy === true
      }
      for (const [id, behaviour] of Object.entries(behaviours(clock, isCopy))) {
        peers.set(id, behaviour)
        if (!later.includes(id)) syncer.addPeer(id)
      }
      clock.setTimeout(() => {
        for (const id of later) syncer.addPeer(id)
      }, 1_500)
      const doneAt = await syncedAt(clock, syncer, source20k.root)
      expectSynced(store, source20k)
      expect(penalties).toEqual([])
      return doneAt
    }

    const fastThree = { fast0: { delayMs: 100 }, fast1: { delayMs: 100 }, fast2: { delayMs: 100 } }

    it('does not let peers quick with other requests but silent on copies hold a task back', async () => {
      // 1.0 s from the fast peers alone. Beside the crawler, the liar answers other requests in 50 ms (so it is
      // idle first), never a copy of several nodes. With each task's copy given to the first idle peer alone,
      // it held them until late (twice the round-trip estimate): 7.5-8.0 s. Before that change, every idle peer
      // got every copy: 3.0 s; now 3.0 s, copies held back only by peers that answered copies in full before.
      const alone = await syncBeside(() => fastThree)
      const beside = await syncBeside((clock, isCopy) => ({
        slow: crawler(clock),
        liar: ({ peer, request }) => (isCopy(peer) && request.hashes.length > 1 ? 'stall' : { delayMs: 50 }),
        ...fastThree
      }))
      expect(beside - alone).toBeLessThan(3_000)
    }, 60_000)

    it('takes its trust with copies from a peer that answers a copy short, even empty', async () => {
      /**
       * Beside a peer quick on up to 16 nodes that answers larger requests in full after 9 s (under the
       * timeout: never stalled), `second` (answering anything in 50 ms, so it is idle first), and three fast
       * peers joining at 1.5 s. A refuser answers its first copy of several nodes in full (trusted with copies
       * from then on), and every later one at once with none ("I don't have them": legal, unblamed, never
       * late) or with one node.
       */
      const syncFrom = async (second: 'honest' | 'refuser' | 'one-node'): Promise<number> => {
        let earned = false
        const doneAt = await syncBeside(
          (_, isCopy) => ({
            slow: ({ request }) => ({ delayMs: request.hashes.length <= 16 ? 5 : 9_000 }),
            second: ({ peer, request }) => {
              if (second === 'honest' || !isCopy(peer) || request.hashes.length <= 1) return { delayMs: 50 }
              if (earned) return second === 'refuser' ? { fault: 'unavailable', delayMs: 5 } : { delayMs: 5, limit: 1 }
              earned = true
              return { delayMs: 50 }
            },
            ...fastThree
          }),
          Object.keys(fastThree)
        )
        // It did earn the trust it then abused.
        expect(earned).toBe(second !== 'honest')
        return doneAt
      }
      // 2.8 s beside an honest second peer. While the refuser was trusted and idle, the fast peers were given no
      // first copy, and what it refused waited for the slow peer (an outside tester's: 10.1 s); now 3.0 s. One
      // answering each copy with one node kept its trust, and was given each task's only copy again and again:
      // 4.4 s; now 3.4 s.
      const honest = await syncFrom('honest')
      expect(await syncFrom('refuser')).toBeLessThan(honest + 1_000)
      expect(await syncFrom('one-node')).toBeLessThan(honest + 1_000)
    }, 60_000)

    it('asks a peer whose replies are short for no more in a copy than in any other request', async () => {
      const store = new MemoryStore()
      const clock = new FakeClock()
      const peers = nodePeers(source, clock)
      // Quick for up to 16 nodes, crawling for more: its requests become overdue.
      peers.set('slow', crawler(clock, 16))
      // One node for any request, at once (its rate looks high): idle when the crawler holds all there is to
      // fetch, and given copies of its requests then.
      peers.set('short', { delayMs: 1, limit: 1 })
      const syncer = newSyncer(store, peers, clock, { requestTimeoutMs: 10_000, rttMinMs: 1_000 })
      syncer.addPeer('slow')
      syncer.addPeer('short')
      await syncWithClock(clock, syncer.sync(source.root))
      expectSynced(store, source)
      expect(syncer.stats().duplicates).toBeGreaterThan(0)
      const requests = peers.calls.filter((c) => c.peer === 'short').map((c) => c.request.hashes.length)
      // Its probe, then the requests sent together before its first reply; after that at most two nodes a
      // request, copies included (up to 11 when copies were sized by its rate alone).
      expect(Math.max(...requests.slice(1 + MAX_NODE_REQUESTS_PER_PEER))).toBeLessThanOrEqual(2)
    })
  })

  it('asks a peer whose replies are short for twice what its last one brought, not for what its rate would take', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // An outside tester's: one node for any request, at once (a legal short reply). Its rate looked high, so it
    // was asked for full requests: 11.8 times the trie's hashes in a 20k-key sync.
    peers.set('short', { delayMs: 1, limit: 1 })
    peers.set('fast', { delayMs: 100 })
    const syncer = newSyncer(store, peers, clock, { requestTimeoutMs: 10_000, rttMinMs: 1_000 })
    syncer.addPeer('short')
    syncer.addPeer('fast')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    const requests = peers.calls.filter((c) => c.peer === 'short').map((c) => c.request.hashes.length)
    // Its probe, then the requests sent together before its first reply; after that at most two nodes a request.
    const later = requests.slice(1 + MAX_NODE_REQUESTS_PER_PEER)
    expect(later.length).toBeGreaterThan(0)
    expect(Math.max(...later)).toBeLessThanOrEqual(2)
    // 74 hashes in all for a trie of 2,649 nodes; 1,410 before.
    expect(requests.reduce((a, b) => a + b, 0)).toBeLessThan(source.nodes.size / 10)
  })

  it('lets the requests of a peer whose reply was short grow back as it answers in full, doubling', async () => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    // At once, always (its rate looks high): one node for its first two requests past the probe, then
    // everything it is asked for.
    peers.set('once', ({ call }) => (call >= 2 && call <= 3 ? { delayMs: 1, limit: 1 } : { delayMs: 1 }))
    const syncer = newSyncer(store, peers, clock, { requestTimeoutMs: 10_000, rttMinMs: 1_000 })
    syncer.addPeer('once')
    await syncWithClock(clock, syncer.sync(source.root))
    expectSynced(store, source)
    const sizes = peers.calls.map((c) => c.request.hashes.length)
    // Capped at 2 after the short replies (its window of requests at each size), then 4, 8, … as it answers
    // in full, and past 100 in the end. With the cap dropped at its first full reply: 2, …, 2, 62, 40, 32, 453.
    const capped = sizes.indexOf(2)
    expect(capped).toBeGreaterThan(0)
    expect(Math.max(...sizes.slice(capped, capped + 8))).toBeLessThanOrEqual(4)
    expect(Math.max(...sizes.slice(capped))).toBeGreaterThan(100)
  })

  it('re-targets mid-sync: the new root completes and stored subtries of the old one are not fetched again', async () => {
    const entries = randomEntries(1, 2000)
    const b = await buildSourceTrie([...entries.slice(0, 1990), ...randomEntries(2, 20)])
    const both: SourceTrie = { ...source, nodes: new Map([...source.nodes, ...b.nodes]) }
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(both, clock)
    const syncer = newSyncer(store, peers, clock, { flushBytes: 1, maxNodesPerRequest: 32 })
    let storedAtRetarget: Set<string> | null = null
    peers.set('a', ({ call }) => {
      if (call === 20) {
        storedAtRetarget = new Set(store.keys())
        syncer.retarget(b.root)
      }
      return 'honest'
    })
    syncer.addPeer('a')
    const events: string[] = []
    syncer.addEventListener('retarget', (e) => events.push(toHex(e.detail.to)))
    const result = await syncWithClock(clock, syncer.sync(source.root))
    expect(events).toEqual([toHex(b.root)])
    expect(result.retargets).toBe(1)
    for (const k of b.nodes.keys()) expect(store.has(k)).toBe(true)
    expect(await incompleteNodes(store)).toEqual([])
    const stored = storedAtRetarget as Set<string> | null
    expect(stored!.size).toBeGreaterThan(0)
    const afterRetarget = asked(peers.calls.slice(20))
    expect(afterRetarget.filter((h) => stored!.has(h))).toEqual([])
  })

  it('re-targets once the requests out for the old root are answered, not while they are out', async () => {
    const b = await buildSourceTrie(randomEntries(3, 500))
    const both: SourceTrie = { ...source, nodes: new Map([...source.nodes, ...b.nodes]) }
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(both, clock)
    peers.set('a', { delayMs: 200 })
    const sent: { at: number; settledAt?: number; answered: boolean }[] = []
    let retargetAsked = -1
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      const request: (typeof sent)[number] = { at: clock.now(), answered: false }
      sent.push(request)
      if (sent.length === 12) {
        retargetAsked = clock.now()
        syncer.retarget(b.root)
      }
      return peers.answer(peer, { hashes }, options).then(
        (nodes) => {
          Object.assign(request, { settledAt: clock.now(), answered: true })
          return nodes
        },
        (err: unknown) => {
          request.settledAt = clock.now()
          throw err
        }
      )
    }
    const syncer = newSyncer(store, peers, clock, { fetchNodes, maxNodesPerRequest: 32 })
    syncer.addPeer('a')
    let retargetedAt = -1
    syncer.addEventListener('retarget', () => {
      retargetedAt = clock.now()
    })
    const result = await syncWithClock(clock, syncer.sync(source.root))
    expect(result.retargets).toBe(1)
    for (const k of b.nodes.keys()) expect(store.has(k)).toBe(true)
    const outThen = sent.filter((r) => r.at <= retargetAsked)
    expect(outThen.length).toBeGreaterThan(1)
    // Each came back with its nodes before the switch: a switch with requests out fed their replies to the
    // new root's scheduler, which had not asked for them.
    for (const r of outThen) {
      expect(r.answered).toBe(true)
      expect(r.settledAt).toBeLessThanOrEqual(retargetedAt)
    }
  })

  // Flushed after every turn, or only on the way out (the nodes completed since the last flush, however few).
  it.each([1, 1 << 30])('stops on abort keeping only complete subtries, and a restart on the same store fetches none of them again (flushBytes %i)', async (flushBytes) => {
    const store = new MemoryStore()
    const clock = new FakeClock()
    const peers = nodePeers(source, clock)
    const controller = new AbortController()
    peers.set('a', ({ call }) => {
      if (call === 20) controller.abort()
      return 'honest'
    })
    const signals: AbortSignal[] = []
    const fetchNodes: NodeFetcher = (peer, hashes, options) => {
      signals.push(options.signal)
      return fetcherOf(peers)(peer, hashes, options)
    }
    const first = newSyncer(store, peers, clock, { fetchNodes, flushBytes, maxNodesPerRequest: 32 })
    first.addPeer('a')
    const err = await syncWithClock(clock, first.sync(source.root, { signal: controller.signal })).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AbortError)
    // Nothing outlives it: the requests out were aborted with it, and their timers are gone.
    expect(signals.filter((s) => !s.aborted).length).toBeLessThan(signals.length)
    expect(clock.pendingTimers).toBe(0)
    expect(await incompleteNodes(store)).toEqual([])
    const committed = new Set(store.keys())
    expect(committed.size).toBeGreaterThan(0)
    expect(committed.size).toBeLessThan(source.nodes.size)

    const again = nodePeers(source, clock)
    again.set('a')
    const second = newSyncer(store, again, clock)
    second.addPeer('a')
    await syncWithClock(clock, second.sync(source.root))
    expectSynced(store, source)
    const refetched = asked(again.calls).filter((h) => committed.has(h))
    expect(refetched).toEqual([])
  })
})
