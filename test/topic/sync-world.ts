import { PeerFaultError } from '../../src/errors.js'
import type { Item } from '../../src/fsm/types.js'
import type { TopicState } from '../../src/net/topic-protocols.js'
import { keccak256 } from '../../src/trie/keccak.js'
import type { TopicSyncIO } from '../../src/topic/sync/types.js'
import { equalBytes } from '../../src/util/bytes.js'
import { makeItems, topicRoot } from '../helpers/topic-data.js'

/** Fake peers and a fake local store for driving TopicSync without a network. */

/** The topic trie root over `items` (numbered from 0 without gaps). */
export function rootOf(items: Item[]): Uint8Array {
  return topicRoot(items.map((item) => item.data))
}

export { makeItems }

export interface FakePeer {
  items: Item[]
  /** Alters the items it serves. */
  lies?: boolean
  /** Lies about hashes too. */
  liesAboutHashes?: boolean
}

/** An in-memory world: peers holding items, and a local store the sync appends to. */
export function world(peers: Record<string, FakePeer>) {
  const stored: Item[] = []
  const states = new Map<string, TopicState>()
  for (const [id, p] of Object.entries(peers)) {
    const head = p.items.length - 1
    states.set(id, { lowest: 0, head, headHash: keccak256(p.items[head]!.data), checkpoint: { number: 0, root: new Uint8Array(32) } })
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
    fetch: async (peer, from, amount, { proveAgainst }) => {
      const p = peers[peer]!
      if (proveAgainst !== undefined) amount = Math.min(amount, proveAgainst.number - from + 1)
      const served = p.items.slice(from, from + amount).map((i) => (p.lies ? { n: i.n, data: Uint8Array.of(...i.data, 0xff) } : i))
      if (proveAgainst === undefined) return served
      // An honest server holding another history (or not that root's trie) answers UNAVAILABLE; a liar's
      // altered items fail their range proof, and the Fetcher reports the sender.
      if (p.lies) throw new PeerFaultError(peer, 'bad-proof', `items from ${from} not proven`)
      if (!equalBytes(rootOf(p.items.slice(0, proveAgainst.number + 1)), proveAgainst.root)) return []
      return served
    },
    fetchHashes: async (peer, from, to) => {
      const p = peers[peer]!
      return p.items.slice(from, to + 1).map((i) => (p.liesAboutHashes ? keccak256(Uint8Array.of(1)) : keccak256(i.data)))
    },
    localHashes: async (from, to) => stored.slice(from, to + 1).map((i) => keccak256(i.data)),
    truncate: async (head) => {
      stored.length = head + 1
    },
    root: async () => rootOf(stored)
  }
  return { io, stored, states }
}
