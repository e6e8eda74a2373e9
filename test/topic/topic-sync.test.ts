import { describe, expect, it } from 'vitest'
import type { Item } from '../../src/fsm/types.js'
import type { TopicState } from '../../src/net/topic-protocols.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { StackTrie } from '../../src/trie/stack-trie.js'
import { uint64BE } from '../../src/util/bytes.js'
import { type SyncMode, TopicSync, type TopicSyncIO } from '../../src/topic/topic-sync.js'
import { Prng } from '../../src/util/prng.js'

function rootOf(items: Item[]): Uint8Array {
  const trie = new StackTrie()
  for (const item of items) trie.insert(uint64BE(item.n), item.data)
  return trie.root()
}

function makeItems(count: number, seed = 1): Item[] {
  const prng = new Prng(seed)
  return Array.from({ length: count }, (_v, n) => ({ n, data: prng.bytes(1 + prng.int(40)) }))
}

interface FakePeer {
  items: Item[]
  /** Alters the items it serves. */
  lies?: boolean
  /** Lies about hashes too. */
  liesAboutHashes?: boolean
}

/** An in-memory world: peers holding items, and a local store the sync appends to. */
function world(peers: Record<string, FakePeer>) {
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
        stored.push(item)
      }
    },
    states: () => states,
    fetch: async (peer, from, amount) => {
      const p = peers[peer]!
      return p.items.slice(from, from + amount).map((i) => (p.lies ? { n: i.n, data: Uint8Array.of(...i.data, 0xff) } : i))
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

describe('TopicSync', () => {
  it('downloads from our head to the quorum target, verified and in order, then reports synced', async () => {
    const items = makeItems(700)
    const { io, stored } = world({ a: { items }, b: { items }, c: { items: items.slice(0, 400) } })
    const sync = new TopicSync({ io, quorum: 2, queue: { batchSize: 32 } })
    expect(sync.target()).toBe(699) // two peers reach 699
    const modes: SyncMode[] = []
    sync.addEventListener('mode', (e) => modes.push(e.detail))
    const controller = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    await sync.run({ signal: controller.signal })
    expect(stored).toEqual(items)
    expect(modes).toEqual(['syncing', 'synced'])
  })

  it('rejects batches from a peer that alters items, and still ends with exactly the source', async () => {
    const items = makeItems(500, 2)
    const { io, stored } = world({ honest: { items }, liar: { items, lies: true }, other: { items } })
    const sync = new TopicSync({ io, quorum: 1, queue: { batchSize: 16 } })
    let rejected = 0
    sync.addEventListener('batch:rejected', () => rejected++)
    const controller = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    await sync.run({ signal: controller.signal })
    expect(stored).toEqual(items)
    expect(rejected).toBeGreaterThan(0)
  })

  it('follows a growing target when update() is called', async () => {
    const items = makeItems(300, 3)
    const peers: Record<string, FakePeer> = { a: { items: items.slice(0, 100) } }
    const { io, stored, states } = world(peers)
    const sync = new TopicSync({ io })
    const controller = new AbortController()
    let grown = false
    sync.addEventListener('mode', (e) => {
      if (e.detail !== 'synced') return
      if (!grown) {
        grown = true
        peers['a'] = { items }
        states.set('a', { ...states.get('a')!, head: 299 })
        sync.update()
      } else controller.abort()
    })
    await sync.run({ signal: controller.signal })
    expect(stored).toEqual(items)
  })

  it('repairs a wrong tip that the quorum of peers agrees on, then downloads the right items', async () => {
    const items = makeItems(400, 5)
    const { io, stored } = world({ a: { items }, b: { items } })
    // We hold 300 items, the last 5 of them wrong (say, forged live items).
    stored.push(...items.slice(0, 295), ...makeItems(5, 99).map((i, k) => ({ n: 295 + k, data: i.data })))
    const sync = new TopicSync({ io, quorum: 2, queue: { batchSize: 32 } })
    const repaired: { from: number; head: number }[] = []
    sync.addEventListener('tip:repaired', (e) => repaired.push(e.detail))
    const controller = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    await sync.run({ signal: controller.signal })
    expect(repaired).toEqual([{ from: 295, head: 299 }])
    expect(stored).toEqual(items)
  })

  it('reports a stall when no peer gives verifiable items, instead of waiting silently', async () => {
    const items = makeItems(100, 14)
    const { io } = world({ liar: { items, lies: true } })
    const sync = new TopicSync({ io, queue: { batchSize: 16, maxDownloadAttempts: 2, maxProcessAttempts: 2 } })
    const controller = new AbortController()
    let stalled: unknown
    sync.addEventListener('sync:stalled', (e) => {
      stalled = e.detail.error
      controller.abort()
    })
    await sync.run({ signal: controller.signal })
    expect(stalled).toBeInstanceOf(Error)
  })

  it('does not drop anything on the word of a single peer', async () => {
    const items = makeItems(100, 12)
    const { io, stored } = world({ liar: { items: makeItems(100, 13) } })
    stored.push(...items.slice(0, 50))
    const sync = new TopicSync({ io, quorum: 1 })
    let repaired = 0
    sync.addEventListener('tip:repaired', () => repaired++)
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 200)
    await sync.run({ signal: controller.signal })
    expect(repaired).toBe(0)
    expect(stored.slice(0, 50)).toEqual(items.slice(0, 50))
  })

  it('keeps its tip when the peers disagree among themselves about it', async () => {
    const items = makeItems(100, 6)
    const forged = makeItems(100, 7)
    const { io, stored } = world({ honest: { items }, liar: { items: forged } })
    stored.push(...items.slice(0, 50))
    const sync = new TopicSync({ io, quorum: 2 })
    let repaired = 0
    sync.addEventListener('tip:repaired', () => repaired++)
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 300)
    await sync.run({ signal: controller.signal })
    expect(repaired).toBe(0)
    expect(stored.slice(0, 50)).toEqual(items.slice(0, 50))
  })

  it('never throws from update() when the target drops or peers leave mid-download', async () => {
    const items = makeItems(3000, 11)
    const { io, states } = world({ a: { items }, b: { items } })
    const sync = new TopicSync({ io, queue: { batchSize: 16 } })
    const controller = new AbortController()
    let checked = false
    sync.addEventListener('progress', () => {
      if (checked) return
      checked = true
      // A lowers its head below the running target, B disappears: both used to throw from setTarget.
      states.set('a', { ...states.get('a')!, head: 10 })
      states.delete('b')
      expect(() => sync.update()).not.toThrow()
      controller.abort()
    })
    await sync.run({ signal: controller.signal })
    expect(checked).toBe(true)
  })

  it('drops items that pass a lying peer\'s hashes but not the publisher\'s checkpoint root, then gets them right', async () => {
    const items = makeItems(300, 15)
    const forged = makeItems(300, 16)
    const peers: Record<string, FakePeer> = { liar: { items: forged } } // its hashes match its own forged items
    const { io, stored, states } = world(peers)
    const checkpoint = { number: 199, root: rootOf(items.slice(0, 200)), head: 299, headHash: keccak256(items[299]!.data) }
    const sync = new TopicSync({ io: { ...io, checkpoint: () => checkpoint }, queue: { batchSize: 32 } })
    const events: string[] = []
    const controller = new AbortController()
    sync.addEventListener('checkpoint:mismatch', (e) => {
      events.push(`mismatch ${e.detail.number} kept ${e.detail.kept}`)
      // The liar is found out; an honest peer takes its place.
      peers['honest'] = { items }
      states.delete('liar')
      states.set('honest', { lowest: 0, head: 299, headHash: checkpoint.headHash, checkpoint: { number: 0, root: new Uint8Array(32) } })
      sync.update()
    })
    sync.addEventListener('checkpoint:verified', (e) => events.push(`verified ${e.detail.number}`))
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    await sync.run({ signal: controller.signal })
    expect(events).toEqual(['mismatch 199 kept -1', 'verified 199'])
    expect(stored).toEqual(items)
  })

  it('a publisher checkpoint decides the target over peer votes', async () => {
    const items = makeItems(200, 4)
    const { io } = world({ a: { items } })
    const sync = new TopicSync({
      io: { ...io, checkpoint: () => ({ number: 99, root: new Uint8Array(32), head: 150, headHash: new Uint8Array(32) }) }
    })
    expect(sync.target()).toBe(150)
  })
})
