import { TopicValidatorResult } from '@libp2p/gossipsub'
import { afterEach, describe, expect, it } from 'vitest'
import type { PeerId } from '@libp2p/interface'
import {
  MAX_FRAME_BYTES,
  MAX_LIMIT_VIOLATIONS,
  MAX_NODE_REQUESTS_PER_PEER,
  MAX_NODES_PER_REQUEST,
  MAX_RESPONSE_BYTES,
  MAX_SUBTRIE_READS
} from '../../src/constants.js'
import { accountEntries } from '../../src/fixtures/generate.js'
import { decodeNodesResponse, encodeNodesRequest, NODES_PROTOCOL, SubtrieLeaves } from '../../src/net/nodes-protocol.js'
import { requestFrame } from '../../src/net/rpc.js'
import { requestTokens } from '../../src/net/rate-limiter.js'
import type { KVStore } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { StateSyncHandle } from '../../src/service/state-sync-handle.js'
import { checkpointsTopic } from '../../src/topic/gossip.js'
import { decodeNode, nodeChildren } from '../../src/trie/node.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import { checkTrieComplete } from '../../src/trie/walk.js'
import { toHex } from '../../src/util/hex.js'
import { type Adversary, type AdversaryInit, createAdversary, type Fault } from '../helpers/adversary.js'
import { BlameLog, penaltyOf, recordVerdicts, untilTagged, untilVerdict } from '../helpers/blame.js'
import { connect, createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { incompleteNodes } from '../helpers/trie-source.js'
import { until } from '../helpers/wait.js'
import { WrappedStore } from '../helpers/wrapped-store.js'
import { Gate } from '../topic/net-helpers.js'

/** Deadline of one request: short, so stalling peers cost little, yet far above an honest reply on loopback. */
const REQUEST_TIMEOUT_MS = 1_500
/** The deadline of the client a flood shares its process with (see the test). */
const FLOODED_REQUEST_TIMEOUT_MS = 5_000

/** A KVStore whose reads take `delayMs` and which counts how many reads run at once (a busy server). */
class SlowStore extends WrappedStore {
  active = 0
  maxActive = 0
  private readonly delayMs: number

  constructor(inner: KVStore, delayMs: number) {
    super(inner)
    this.delayMs = delayMs
  }

  override async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.active++
    this.maxActive = Math.max(this.maxActive, this.active)
    try {
      await new Promise((r) => setTimeout(r, this.delayMs))
      return await this.inner.getMany(keys)
    } finally {
      this.active--
    }
  }
}

describe('trie sync against adversarial peers', async () => {
  // 5k account-like keys: about 6.7k nodes, built bottom-up in a few tens of milliseconds.
  const source = new MemoryStore()
  const { root } = await importSorted(source, accountEntries(808, 5_000))
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  async function client(requestTimeoutMs = REQUEST_TIMEOUT_MS): Promise<{ node: DsfgNode; store: MemoryStore }> {
    const store = new MemoryStore()
    const node = await createDsfgNode({ store, requestTimeoutMs })
    running.push(node)
    return { node, store }
  }

  async function adversary(init: AdversaryInit = {}): Promise<Adversary> {
    const a = await createAdversary({ store: source, ...init })
    running.push(a)
    return a
  }

  /** The synced trie is whole, and every stored node has its whole subtrie (the sync invariant, store-wide). */
  async function expectVerified(store: MemoryStore): Promise<void> {
    const check = await checkTrieComplete(store, root)
    expect(check).toMatchObject({ complete: true, missing: [], incomplete: [] })
    expect(await incompleteNodes(store)).toEqual([])
  }

  function start(node: DsfgNode, options: Parameters<DsfgNode['services']['dsfg']['startStateSync']>[1] = {}) {
    const handle: StateSyncHandle = node.services.dsfg.startStateSync(root, { signal: AbortSignal.timeout(20_000), ...options })
    const blame = new BlameLog()
    handle.events.addEventListener('peer:penalised', blame.listener)
    let settled = false
    void handle.done.then(
      () => (settled = true),
      () => (settled = true)
    )
    return { handle, blame, settled: () => settled }
  }

  it('completes from 1 honest peer among 4 liars (corrupt, duplicating, oversized, stalling) and blames only the liars', async () => {
    const honest = await adversary()
    const corrupt = await adversary({ behaviour: { nodes: 'corrupt' } })
    const duplicate = await adversary({ behaviour: { nodes: 'duplicate' } })
    const oversized = await adversary({ behaviour: { nodes: 'oversized' } })
    const stall = await adversary({ behaviour: { nodes: 'stall' } })
    const liars = [corrupt, duplicate, oversized]
    const { node, store } = await client()
    for (const peer of [corrupt, duplicate, oversized, stall, honest]) await connect(node, peer.node)

    // One timeout leaves the staller out until it answers a probe.
    const { handle, blame } = start(node)
    const result = await handle.done
    expect(toHex(result.root)).toBe(toHex(root))
    await expectVerified(store)

    for (const liar of [...liars, stall]) expect(liar.calls('nodes')).toBeGreaterThan(0)
    expect(blame.reasonsOf(corrupt.node.peerId)).toContain('unrequested-node') // its blobs hash to nothing asked for
    expect(blame.reasonsOf(duplicate.node.peerId)).toContain('protocol-error') // more nodes than hashes asked for
    expect(blame.reasonsOf(oversized.node.peerId)).toContain('protocol-error')
    // The staller sent no data: at most it is left out as stalled, never blamed for bad data.
    expect(blame.reasonsOf(stall.node.peerId).every((r) => r === 'stalled')).toBe(true)
    expect(blame.reasonsOf(honest.node.peerId)).toEqual([])
    await untilTagged(
      node,
      liars.map((l) => l.node.peerId)
    )
    expect(await penaltyOf(node, honest.node.peerId)).toBe(0)
  })

  it('waits while every peer is gone, then completes from an honest peer that joins later', async () => {
    // Two servers answer a few small requests each and then vanish for good, mid-request.
    const leaving: AdversaryInit['behaviour'] = { nodes: ({ call }) => (call <= 4 ? 'honest' : 'stop') }
    const first = await adversary({ behaviour: leaving })
    const second = await adversary({ behaviour: leaving })
    const { node, store } = await client()
    await connect(node, first.node)
    await connect(node, second.node)

    // Node by node: with subtries sent as their leaves, four requests of each server would be the whole sync.
    const { handle, blame, settled } = start(node, { signal: AbortSignal.timeout(25_000), subtries: false })
    await until(() => node.services.dsfg.nodePeers().length === 0, 'both servers to be gone', 10_000)
    // No peer left and nothing in flight: nothing can happen until a peer comes. The sync neither fails nor
    // finishes; it waits.
    await until(() => handle.stats().peers === 0 && handle.stats().inFlight === 0, 'the sync to be idle without peers')
    expect(settled()).toBe(false)
    const waiting = handle.stats()
    expect(waiting.nodes).toBeGreaterThan(0)
    expect(waiting.pending).toBeGreaterThan(0)
    expect(waiting.peers).toBe(0)

    const late = await adversary()
    await connect(node, late.node)
    const result = await handle.done
    expect(toHex(result.root)).toBe(toHex(root))
    await expectVerified(store)
    expect(first.calls('nodes') + second.calls('nodes')).toBeGreaterThanOrEqual(8)
    expect(late.calls('nodes')).toBeGreaterThan(0)
    expect(Object.fromEntries(blame.reasons)).toEqual({})
  })

  it('completes while honest peers keep disconnecting and reconnecting', async () => {
    // Slow honest servers and requests of at most 64 nodes: about 105 requests of 25 ms, 3 at a time, make the
    // sync last at least 0.9 s however fast the machine, long enough for several rounds of churn.
    const servers = await Promise.all([1, 2, 3].map(() => adversary({ behaviour: { nodes: { delayMs: 25 } } })))
    const { node, store } = await client()
    for (const s of servers) await connect(node, s.node)

    // Node by node: with subtries sent as their leaves the sync is a few requests, over before any churn.
    const { handle, blame, settled } = start(node, { maxNodesPerRequest: 64, subtries: false })
    let churns = 0
    while (!settled()) {
      await new Promise((r) => setTimeout(r, 150))
      if (settled()) break
      // Drop one server (its requests in flight fail) and bring back the one dropped before.
      const server = servers[churns % servers.length]!
      await node.hangUp(server.node.peerId)
      if (churns > 0) await node.dial(servers[(churns - 1) % servers.length]!.node.getMultiaddrs()[0]!).catch(() => undefined)
      churns++
    }
    const result = await handle.done
    expect(toHex(result.root)).toBe(toHex(root))
    await expectVerified(store)
    expect(churns).toBeGreaterThanOrEqual(3)
    expect(Object.fromEntries(blame.reasons)).toEqual({})
  })

  it('ignores a checkpoint forged by a non-publisher: the sync target does not move', async () => {
    const gate = new Gate() // holds every nodes reply until the forgery has been dealt with
    const server = await adversary({
      behaviour: {
        nodes: async (): Promise<Fault> => {
          await gate.wait()
          return 'honest'
        }
      }
    })
    const publisher = await createDsfgNode()
    const forger = await adversary()
    running.push(publisher)
    const { node, store } = await client()
    for (const peer of [server.node, publisher, forger.node]) await connect(node, peer)

    const topic = checkpointsTopic('ledger')
    const { handle } = start(node, { follow: { topic: 'ledger', publisher: publisher.peerId } })
    const retargets: string[] = []
    handle.events.addEventListener('retarget', (e) => retargets.push(toHex(e.detail.to)))
    const verdicts = recordVerdicts(node.services.pubsub, topic)
    for (const from of [forger.node, publisher]) {
      await until(() => from.services.pubsub.getSubscribers(topic).some((p) => p.equals(node.peerId)), 'the subscription')
    }

    // Signed by the forger: a newer number and a root nobody serves. Accepted, it would re-target the sync.
    const forged = { number: 9_999, root: new Uint8Array(32).fill(0xee), head: 9_999, headHash: new Uint8Array(32) }
    expect(await forger.publishCheckpoint('ledger', forged)).toBeGreaterThan(0)
    await untilVerdict(verdicts, forger.node.peerId, TopicValidatorResult.Reject)
    // The publisher's own checkpoint of the root being synced passes the same validator, and moves nothing.
    const own = { number: 1, root, head: 1, headHash: new Uint8Array(32) }
    await until(async () => (await publisher.services.dsfg.publishCheckpoint('ledger', own)) > 0, 'the checkpoint to go out')
    await untilVerdict(verdicts, publisher.peerId, TopicValidatorResult.Accept)

    gate.open()
    const result = await handle.done
    expect(toHex(result.root)).toBe(toHex(root))
    expect(result.retargets).toBe(0)
    expect(retargets).toEqual([])
    expect(verdicts.filter((v) => v.from === forger.node.peerId.toString()).map((v) => v.result)).not.toContain(
      TopicValidatorResult.Accept
    )
    await expectVerified(store)
  })

  it('bounds a flood of nodes requests by the inbound stream limit and keeps serving an honest sync', async () => {
    // The server is a DSFG node with default limits; its store is slow, so flooded streams pile up.
    const slow = new SlowStore(source, 10)
    const server = await createDsfgNode({ store: slow })
    running.push(server)
    const flooder = await adversary()
    await flooder.node.dial(server.getMultiaddrs()[0]!)
    // A longer deadline than this file's 1.5 s: the server, its flooder and the client share one process. With
    // 1.5 s the test failed in 2 of 3 full CI runs on a loaded 2-vCPU machine, the server blamed once (never here,
    // alone or beside CPU burners). The likeliest cause, not confirmed: the event loop busy with the flood, an
    // honest reply past 1.5 s read as 'stalled' (the flood has a connection of its own). An outside run at a load
    // of 4.5 saw gaps of up to 0.83 s between the honest sync's progress events. An honest reply that waits 5 s
    // still fails the test, and any blame now prints its reasons.
    const { node, store } = await client(FLOODED_REQUEST_TIMEOUT_MS)
    await connect(node, server)

    // A flood this size is held back by MAX_INBOUND_STREAMS (16) as much as by the rate (500 tokens a second).
    const flooding = flooder.flood(server.peerId, 'nodes', encodeNodesRequest([root]), { requests: 300, concurrency: 64 })
    const { handle, blame } = start(node)
    const [flood, result] = await Promise.all([flooding, handle.done])
    expect(toHex(result.root)).toBe(toHex(root))
    await expectVerified(store)
    expect(Object.fromEntries(blame.reasons)).toEqual({})
    expect(flood.codes.ok).toBeGreaterThan(0)
    expect(flood.refused).toBeGreaterThan(0) // streams past the limit were reset
    // 16 of the flooder's streams at most, plus the honest client's requests in flight (two per peer).
    expect(slow.maxActive).toBeLessThanOrEqual(16 + MAX_NODE_REQUESTS_PER_PEER)
    // And the flood did reach the store several requests at a time. Its streams past the limit were reset and its
    // tokens ran out after 15-30 answers, so how many overlap depends on timing: 6 to 8 in runs on 2 vCPUs.
    expect(slow.maxActive).toBeGreaterThanOrEqual(4)
  })

  it(`reads subtries for at most ${MAX_SUBTRIE_READS} replies at once and answers the others with nodes`, async () => {
    // Slow reads, so the requests overlap on the server.
    const server = await createDsfgNode({ store: new SlowStore(source, 20) })
    running.push(server)
    // Three clients of four requests each: a peer's share of the reply budget holds about five whole frames.
    const clients = [(await client()).node, (await client()).node, (await client()).node]
    for (const node of clients) await connect(node, server)
    // Nodes two levels down: each one's subtrie fits a reply.
    const level1 = nodeChildren(decodeNode((await source.get(root))!), new Uint8Array(0), false).children
    const level2 = (await source.getMany(level1.map((c) => c.hash))).flatMap(
      (blob) => nodeChildren(decodeNode(blob!), new Uint8Array(0), false).children
    )
    const requests = 12
    const replies = await Promise.all(
      Array.from({ length: requests }, (_, i) => {
        const node = clients[i % clients.length]!
        const open = (peer: PeerId, protocol: string, options: { signal: AbortSignal }) => node.dialProtocol(peer, protocol, options)
        const hashes = level2.slice(i * 4, i * 4 + 4).map((c) => c.hash)
        return requestFrame(open, server.peerId, NODES_PROTOCOL, encodeNodesRequest(hashes, MAX_RESPONSE_BYTES), {
          timeoutMs: 10_000,
          maxResponseBytes: MAX_FRAME_BYTES
        }).then((reply) => decodeNodesResponse(reply, hashes.length, true).nodes)
      })
    )
    const withSubtries = replies.filter((items) => items.some((item) => item instanceof SubtrieLeaves)).length
    expect(withSubtries).toBeGreaterThan(0)
    expect(withSubtries).toBeLessThanOrEqual(MAX_SUBTRIE_READS)
    // The others answered in full, with nodes.
    for (const items of replies) expect(items).toHaveLength(4)
    expect(replies.filter((items) => items.every((item) => item instanceof Uint8Array)).length).toBe(requests - withSubtries)
  })

  it('answers a nodes flood past the per-peer rate with RATE_LIMITED and keeps serving an honest sync', async () => {
    // Tokens, a full nodes request costing six: the honest sync (~6.7k nodes, ~150 tokens) fits the burst, the
    // flood (300 full requests, 1,800 tokens) does not.
    const rate = { inboundRatePerSecond: 100, inboundBurst: 200 }
    const server = await createDsfgNode({ store: source, ...rate })
    running.push(server)
    const flooder = await adversary()
    await flooder.node.dial(server.getMultiaddrs()[0]!)
    const { node, store } = await client()
    await connect(node, server)

    let cutOff = false
    server.addEventListener('peer:disconnect', (e) => {
      if (e.detail.equals(flooder.node.peerId)) cutOff = true
    })
    // The service's token buckets read the system clock (Date.now) and DsfgInit takes no clock: every reading
    // they make for this flood falls between these two, so the bound below holds exactly, with no slack, however
    // slow the machine (a bound from another clock, or with slack, would be a guess).
    const started = Date.now()
    const full = encodeNodesRequest(Array.from({ length: MAX_NODES_PER_REQUEST }, () => root))
    const flood = await flooder.flood(server.peerId, 'nodes', full, { requests: 300, concurrency: 8 })
    const spanMs = Date.now() - started
    expect(flood.codes.rateLimited).toBeGreaterThan(0)
    const tokens = flood.codes.ok * requestTokens(MAX_NODES_PER_REQUEST)
    expect(tokens).toBeLessThanOrEqual(rate.inboundBurst + (rate.inboundRatePerSecond * spanMs) / 1000)
    // Past MAX_LIMIT_VIOLATIONS refusals the flooder is tagged and its connections closed (it may dial again:
    // the service cannot ban, only cut off each time).
    expect(flood.codes.rateLimited + flood.refused).toBeGreaterThanOrEqual(MAX_LIMIT_VIOLATIONS)
    await until(() => cutOff, 'the flooder to be cut off')
    await untilTagged(server, [flooder.node.peerId])
    // The honest client has a bucket of its own.
    const { handle, blame } = start(node)
    const result = await handle.done
    expect(toHex(result.root)).toBe(toHex(root))
    await expectVerified(store)
    expect(Object.fromEntries(blame.reasons)).toEqual({})
  })
})
