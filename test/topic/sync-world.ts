import { PeerFaultError } from '../../src/errors.js'
import type { Item } from '../../src/fsm/types.js'
import type { TopicState } from '../../src/net/topic-protocols.js'
import { keccak256 } from '../../src/trie/keccak.js'
import type { TopicSyncIO } from '../../src/topic/sync/types.js'
import { equalBytes } from '../../src/util/bytes.js'
import { FakePeers } from '../helpers/fake-peers.js'
import { makeItems, topicRoot } from '../helpers/topic-data.js'

/**
 * Fake peers and a fake local store for driving TopicSync without a network. The peers are the tests' shared
 * adversary model (`FakePeers`, test/helpers/adversary-model.ts): a `FakePeer` says what a peer holds and
 * what it lies about, and becomes that model's rules.
 */

/** The topic trie root over `items` (numbered from 0 without gaps). */
export function rootOf(items: Item[]): Uint8Array {
  return topicRoot(items.map((item) => item.data))
}

export { makeItems }

export interface FakePeer {
  items: Item[]
  /** Alters the items it serves (a forged byte appended to each). */
  lies?: boolean
  /** Lies about hashes too (every hash is the same made-up one). */
  liesAboutHashes?: boolean
}

const TOPIC = 'world'

/** An in-memory world: peers holding items, and a local store the sync appends to. */
export function world(peers: Record<string, FakePeer>) {
  const stored: Item[] = []
  const states = new Map<string, TopicState>()
  for (const [id, p] of Object.entries(peers)) {
    const head = p.items.length - 1
    states.set(id, { lowest: 0, head, headHash: keccak256(p.items[head]!.data), checkpoint: { number: 0, root: new Uint8Array(32) } })
  }
  // Read on every request: tests change a peer's items (and lies) while the sync runs.
  const contents = new FakePeers({
    protocol: 'contents',
    honest: (request, peer) => peers[peer]!.items.slice(request.from, request.from + request.amount)
  })
  const hashes = new FakePeers({
    protocol: 'hashes',
    honest: (request, peer) => peers[peer]!.items.slice(request.from, request.to + 1).map((i) => keccak256(i.data))
  })
  for (const id of Object.keys(peers)) {
    contents.set(id, ({ peer }) => (peers[peer]!.lies === true ? { forge: (items) => items.map((i) => ({ n: i.n, data: Uint8Array.of(...i.data, 0xff) })) } : 'honest'))
    hashes.set(id, ({ peer }) => (peers[peer]!.liesAboutHashes === true ? { forge: (h) => h.map(() => keccak256(Uint8Array.of(1))) } : 'honest'))
  }
  const io: TopicSyncIO = {
    head: async () => stored.length - 1,
    append: async (items) => {
      for (const item of items) {
        if (item.n !== stored.length) throw new Error(`append out of order: ${item.n} after ${stored.length - 1}`)
        // Downloaded items come with the hash the sync checked: it must be theirs.
        if (item.hash !== undefined && !equalBytes(item.hash, keccak256(item.data))) throw new Error(`wrong hash for ${item.n}`)
        stored.push({ n: item.n, data: item.data })
      }
    },
    states: () => states,
    fetch: async (peer, from, amount, { signal, proveAgainst }) => {
      if (proveAgainst !== undefined) amount = Math.min(amount, proveAgainst.number - from + 1)
      const served = await contents.answer(peer, { topic: TOPIC, from, amount, root: proveAgainst?.root }, { signal })
      if (proveAgainst === undefined) return served
      // What a range proof checks: a server proves from its own trie, so items other than the ones it commits to
      // fail their proof (the Fetcher reports the sender), and a server holding another history (or not that
      // root's trie) answers UNAVAILABLE.
      const own = peers[peer]!.items
      if (served.some((item) => !equalBytes(item.data, own[item.n]?.data ?? new Uint8Array(0)))) {
        throw new PeerFaultError(peer, 'bad-proof', `items from ${from} not proven`)
      }
      if (!equalBytes(rootOf(own.slice(0, proveAgainst.number + 1)), proveAgainst.root)) return []
      return served
    },
    fetchHashes: (peer, from, to, { signal }) => hashes.answer(peer, { topic: TOPIC, from, to }, { signal }),
    localHashes: async (from, to) => stored.slice(from, to + 1).map((i) => keccak256(i.data)),
    truncate: async (head) => {
      stored.length = head + 1
    },
    root: async () => rootOf(stored)
  }
  return { io, stored, states }
}
