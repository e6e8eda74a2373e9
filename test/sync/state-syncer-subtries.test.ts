import { RLP } from '@ethereumjs/rlp'
import { describe, expect, it } from 'vitest'
import { MAX_NODE_REQUESTS_PER_PEER } from '../../src/constants.js'
import { ProtocolError, RequestRejectedError } from '../../src/errors.js'
import { answerNodes, decodeNodesResponse } from '../../src/net/nodes-protocol.js'
import type { KVStore } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { type NodeFetcher, type PeerPenalty, StateSyncer, type StateSyncerInit } from '../../src/sync/state-syncer.js'
import { type NodesReplyItem, SubtrieLeaves } from '../../src/trie/subtrie.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { toHex } from '../../src/util/hex.js'
import { encodeRlpStrings } from '../../src/util/rlp-write.js'
import { until } from '../helpers/wait.js'
import { WrappedStore } from '../helpers/wrapped-store.js'
import { buildSourceTrie, incompleteNodes, randomEntries, type SourceTrie } from '../helpers/trie-source.js'

/** One call a fetcher answered: who, how many hashes, whether subtries were allowed, and what came back. */
interface Call {
  peer: string
  asked: number
  subtrieBytes: number | undefined
  items: NodesReplyItem[]
}

/** Peers answering as a `dsfg serve` does (`answerNodes` on the source's store, through the reply's encoding), each reply changed by `lie[peer]` if any. */
function servingFetcher(source: SourceTrie, calls: Call[], lie: Record<string, (items: NodesReplyItem[]) => NodesReplyItem[]> = {}): NodeFetcher {
  return async (peer, hashes, { subtrieBytes }) => {
    const reply = await answerNodes(source.store, hashes, { subtrieBytes })
    let items = decodeNodesResponse(reply, hashes.length, (subtrieBytes ?? 0) > 0).nodes
    items = lie[peer]?.(items) ?? items
    calls.push({ peer, asked: hashes.length, subtrieBytes, items })
    return items
  }
}

function syncer(store: KVStore, fetchNodes: NodeFetcher, extra: Partial<StateSyncerInit> = {}): StateSyncer {
  return new StateSyncer({ store, fetchNodes, requestTimeoutMs: 5000, rttMinMs: 10, ...extra })
}

/** The leaves list of `leaves` (its payload span), a subtrie as a reply carries it. */
function leavesItem(rlp: Uint8Array): SubtrieLeaves {
  const header = rlp[0]! <= 0xf7 ? 1 : 1 + rlp[0]! - 0xf7
  return new SubtrieLeaves(rlp, header, rlp.length)
}

/** `item` with one byte of its leaves list changed (a value byte near the end: still a well-formed list). */
function forged(item: SubtrieLeaves): SubtrieLeaves {
  const frame = item.frame.slice(item.start, item.end)
  frame[frame.length - 1]! ^= 0x01
  return new SubtrieLeaves(frame, 0, frame.length)
}

/** Fails its `failAt`th batch. */
class FailingStore extends WrappedStore {
  batches = 0
  readonly failAt: number

  constructor(inner: MemoryStore, failAt: number) {
    super(inner)
    this.failAt = failAt
  }

  override batch(ops: Parameters<MemoryStore['batch']>[0]): Promise<void> {
    if (++this.batches === this.failAt) return Promise.reject(new Error('disk full'))
    return this.inner.batch(ops)
  }
}

const subtriesOf = (calls: Call[]): number => calls.reduce((n, c) => n + c.items.filter((i) => i instanceof SubtrieLeaves).length, 0)

describe('StateSyncer with subtries sent as their leaves', async () => {
  const source = await buildSourceTrie(randomEntries(3, 3000))

  it('syncs a fresh store node for node, most of it from subtries, asking for far fewer hashes than nodes', async () => {
    const store = new MemoryStore()
    const calls: Call[] = []
    const sync = syncer(store, servingFetcher(source, calls))
    for (const p of ['a', 'b']) sync.addPeer(p)
    const result = await sync.sync(source.root)
    expect(new Set(store.keys())).toEqual(new Set(source.nodes.keys()))
    expect(await incompleteNodes(store)).toEqual([])
    expect(result.nodes).toBe(source.nodes.size)
    expect(result.committed).toBe(source.nodes.size)
    expect(subtriesOf(calls)).toBeGreaterThan(10)
    const hashesAsked = calls.reduce((n, c) => n + c.asked, 0)
    expect(hashesAsked).toBeLessThan(source.nodes.size / 4)
    // The root and the level below it are asked for as nodes.
    expect(calls[0]!.subtrieBytes).toBeUndefined()
  })

  it('asks for nodes one by one into a store that holds part of the trie, and with onLeaf', async () => {
    for (const extra of [{ prefill: true }, { onLeaf: () => undefined }]) {
      const store = new MemoryStore()
      if ('prefill' in extra) {
        // One stored leaf: a complete subtrie of its own, so the store is a resumed sync's.
        const [hash, blob] = [...source.nodes].find(([, b]) => b.length < 120)!
        await store.put(Uint8Array.from(Buffer.from(hash.slice(2), 'hex')), blob)
      }
      const calls: Call[] = []
      const sync = syncer(store, servingFetcher(source, calls), 'onLeaf' in extra ? { onLeaf: extra.onLeaf } : {})
      sync.addPeer('a')
      await sync.sync(source.root)
      expect(new Set(store.keys())).toEqual(new Set(source.nodes.keys()))
      expect(calls.every((c) => c.subtrieBytes === undefined)).toBe(true)
    }
  })

  it('never stores leaves that do not build the subtrie asked for, asks their peer node by node, blames a malformed list, and completes from the honest peer (adversarial)', async () => {
    for (const how of ['a changed value', 'leaves out of order'] as const) {
      const store = new MemoryStore()
      const calls: Call[] = []
      const penalties: PeerPenalty[] = []
      const lie = (items: NodesReplyItem[]): NodesReplyItem[] =>
        items.map((item) => {
          if (!(item instanceof SubtrieLeaves)) return item
          if (how === 'a changed value') return forged(item)
          // Leaves out of order: a list no server sends.
          return leavesItem(encodeRlpStrings([new Uint8Array([0x3f]), new Uint8Array([1]), new Uint8Array([0x31]), new Uint8Array([1])]))
        })
      // The liar is the only peer at first, and the first asked.
      const sync = syncer(store, servingFetcher(source, calls, { liar: lie }), { onPenalty: (p) => penalties.push(p) })
      sync.addPeer('liar')
      const done = sync.sync(source.root)
      await new Promise((r) => setTimeout(r, 50))
      sync.addPeer('honest')
      await done
      expect(new Set(store.keys())).toEqual(new Set(source.nodes.keys()))
      expect(await incompleteNodes(store)).toEqual([])
      expect(penalties.every((p) => p.peer === 'liar'), how).toBe(true)
      const liar = calls.filter((c) => c.peer === 'liar')
      // The liar did send subtries.
      expect(subtriesOf(liar), how).toBeGreaterThan(0)
      if (how === 'a changed value') {
        // Another hash than any asked for: no offence (an honest server of a trie no canonical trie has sends such
        // leaves), and no more subtries asked of it once its reply came.
        expect(penalties).toEqual([])
        const firstForged = liar.findIndex((c) => c.items.some((i) => i instanceof SubtrieLeaves))
        const allowedAfter = liar.slice(firstForged + 1).filter((c) => c.subtrieBytes !== undefined)
        expect(allowedAfter.length).toBeLessThanOrEqual(MAX_NODE_REQUESTS_PER_PEER) // those already in flight
      } else {
        expect(penalties.map((p) => p.reason)).toContain('protocol-error')
      }
    }
  })

  it('syncs a trie with nodes no canonical trie has (short leaves stored under their hashes) from honest servers, blaming nobody', async () => {
    // Two levels of branches, then branches whose children are leaves of under 32 bytes stored under their hashes:
    // node by node such a trie syncs, but its leaves would rebuild to canonical (embedded) nodes.
    const odd = new MemoryStore()
    const nodes = new Map<string, Uint8Array>()
    const put = async (blob: Uint8Array): Promise<Uint8Array> => {
      const hash = keccak256(blob)
      await odd.put(hash, blob)
      nodes.set(toHex(hash), blob)
      return hash
    }
    const empty = new Uint8Array(0)
    const level = async (depth: number, seed: number): Promise<Uint8Array> => {
      const kids: Uint8Array[] = []
      for (let i = 0; i < 16; i++) {
        if (depth === 2) kids.push(i < 3 ? await put(RLP.encode([new Uint8Array([0x20]), new Uint8Array([seed, i])])) : empty)
        else kids.push(i < 2 ? await level(depth + 1, seed * 16 + i) : empty)
      }
      return put(RLP.encode([...kids, empty]))
    }
    const root = await level(0, 1)
    const store = new MemoryStore()
    const penalties: PeerPenalty[] = []
    const calls: Call[] = []
    const sync = syncer(store, servingFetcher({ root, nodes, store: odd }, calls), { onPenalty: (p) => penalties.push(p) })
    for (const p of ['a', 'b']) sync.addPeer(p)
    await sync.sync(root)
    expect(new Set(store.keys())).toEqual(new Set(nodes.keys()))
    expect(penalties).toEqual([])
    // The servers saw the nodes were not canonical and sent them as nodes.
    expect(calls.some((c) => c.subtrieBytes !== undefined)).toBe(true)
    expect(subtriesOf(calls)).toBe(0)
  })

  it('leaves only complete subtries when its store fails mid-sync, and a resumed sync fetches only the rest', async () => {
    for (const failAt of [2, 5, 9]) {
      const inner = new MemoryStore()
      // A store whose `failAt`th write fails (a full disk, a killed process): the writes before it stay.
      const store = new FailingStore(inner, failAt)
      const calls: Call[] = []
      // Small requests, so the subtries come in many replies and are written in many batches.
      const first = syncer(store, servingFetcher(source, calls), { flushBytes: 16 * 1024, maxNodesPerRequest: 8 })
      first.addPeer('a')
      await expect(first.sync(source.root)).rejects.toThrow('disk full')
      expect(store.batches).toBeGreaterThanOrEqual(failAt)
      expect(subtriesOf(calls), `write ${failAt}`).toBeGreaterThan(0)
      const kept = new Set(inner.keys())
      expect(await incompleteNodes(inner)).toEqual([])
      // Resumed into what was kept: node by node, and nothing stored is asked for again.
      const again: Call[] = []
      const asked: string[] = []
      const fetch = servingFetcher(source, again)
      const second = syncer(inner, (peer, hashes, options) => {
        for (const h of hashes) asked.push(toHex(h))
        return fetch(peer, hashes, options)
      })
      second.addPeer('a')
      await second.sync(source.root)
      expect(new Set(inner.keys())).toEqual(new Set(source.nodes.keys()))
      if (kept.size > 0) expect(asked.filter((h) => kept.has(h))).toEqual([])
    }
  })

  it('syncs a newer root that comes while it writes its last nodes, as done promises the latest root', async () => {
    const newer = await buildSourceTrie(randomEntries(4, 3000))
    const both = new MemoryStore()
    for (const src of [source, newer]) for (const [hash, blob] of src.nodes) await both.put(Uint8Array.from(Buffer.from(hash.slice(2), 'hex')), blob)
    let release: () => void = () => undefined
    const held = new Promise<void>((r) => (release = r))
    let holding = false
    const inner = new MemoryStore()
    let sync: StateSyncer | undefined
    const store = new (class extends WrappedStore {
      override async batch(ops: Parameters<MemoryStore['batch']>[0]): Promise<void> {
        // The old root's last write (nothing of it pending any more) is held until the newer root has been given.
        const stats = sync?.stats()
        if (!holding && stats !== undefined && stats.pending === 0 && toHex(stats.root) === toHex(source.root)) {
          holding = true
          await held
        }
        return this.inner.batch(ops)
      }
    })(inner)
    sync = syncer(store, servingFetcher({ ...source, store: both }, []))
    sync.addPeer('a')
    const done = sync.sync(source.root)
    await until(() => holding, "the old root's last write")
    sync.retarget(newer.root)
    release()
    const result = await done
    expect(toHex(result.root)).toBe(toHex(newer.root))
    expect(result.retargets).toBe(1)
    expect(await incompleteNodes(inner)).toEqual([])
    const stored = new Set(inner.keys())
    expect([...newer.nodes.keys()].filter((hash) => !stored.has(hash))).toEqual([])
  })

  it('asks node by node, blaming nobody, a server that refuses requests allowing subtries as invalid (an earlier version)', async () => {
    const store = new MemoryStore()
    const calls: Call[] = []
    const penalties: PeerPenalty[] = []
    const serve = servingFetcher(source, calls)
    let refusals = 0
    const old: NodeFetcher = (peer, hashes, options) => {
      if (options.subtrieBytes !== undefined) {
        refusals++
        return Promise.reject(new RequestRejectedError('peer rejected the nodes request as invalid'))
      }
      return serve(peer, hashes, options)
    }
    const sync = syncer(store, old, { onPenalty: (p) => penalties.push(p) })
    sync.addPeer('old')
    await sync.sync(source.root)
    expect(new Set(store.keys())).toEqual(new Set(source.nodes.keys()))
    // The requests in flight when the first refusal came (at most 4 a peer), and none after.
    expect(refusals).toBeGreaterThan(0)
    expect(refusals).toBeLessThanOrEqual(MAX_NODE_REQUESTS_PER_PEER)
    expect(penalties).toEqual([])
  })

  it('is sent nodes only by a store that does not know its largest value, whose subtries it could not read within their bound', async () => {
    const hashes = [...source.nodes.keys()].slice(1, 40).map((h) => Uint8Array.from(Buffer.from(h.slice(2), 'hex')))
    const knowing = decodeNodesResponse(await answerNodes(source.store, hashes, { subtrieBytes: 1 << 20 }), hashes.length, true).nodes
    expect(knowing.some((i) => i instanceof SubtrieLeaves)).toBe(true)
    const unknowing = { getMany: (keys: Uint8Array[]) => source.store.getMany(keys) }
    const plain = decodeNodesResponse(await answerNodes(unknowing, hashes, { subtrieBytes: 1 << 20 }), hashes.length, true).nodes
    expect(plain).toHaveLength(knowing.length)
    expect(plain.every((i) => i instanceof Uint8Array)).toBe(true)
  })

  it('rebuilds a forged subtrie to another hash than the one asked for', async () => {
    const calls: Call[] = []
    const fetch = servingFetcher(source, calls)
    // The root's children, as one request allowing subtries.
    const children = [...source.nodes.keys()].slice(1, 20).map((h) => Uint8Array.from(Buffer.from(h.slice(2), 'hex')))
    const items = await fetch('a', children, { signal: new AbortController().signal, subtrieBytes: 1 << 20 })
    const leaves = items.filter((i) => i instanceof SubtrieLeaves)
    expect(leaves.length).toBeGreaterThan(0)
    const { hashSubtrie } = await import('../../src/sync/trie-sync.js')
    for (const item of leaves) {
      const honest = toHex(hashSubtrie(item).hash)
      expect(children.map(toHex)).toContain(honest)
      let forgedHash: string | null = null
      try {
        forgedHash = toHex(hashSubtrie(forged(item)).hash)
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError)
      }
      expect(forgedHash).not.toBe(honest)
    }
  })
})
