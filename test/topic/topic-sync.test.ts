import { describe, expect, it } from 'vitest'
import { DEFAULT_TOPIC_REQUESTS_PER_PEER } from '../../src/constants.js'
import type { Item } from '../../src/fsm/types.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { TopicSync } from '../../src/topic/sync/topic-sync.js'
import type { SyncMode } from '../../src/topic/sync/types.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { type FakePeer, makeItems, rootOf, world } from './sync-world.js'

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

  it('follows a growing target when peersChanged() is called', async () => {
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
        sync.peersChanged()
      } else controller.abort()
    })
    await sync.run({ signal: controller.signal })
    expect(stored).toEqual(items)
  })

  it('runs one loop at a time, and stores nothing after run() returns', async () => {
    const items = makeItems(600, 4)
    const { io, stored } = world({ a: { items } })
    let writesAfterStop = 0
    let stopped = false
    const append = io.append
    io.append = async (batch) => {
      if (stopped) writesAfterStop++
      await append(batch)
    }
    const sync = new TopicSync({ io, queue: { batchSize: 8 } })
    const controller = new AbortController()
    sync.addEventListener('progress', (e) => e.detail.head >= 100 && controller.abort())
    const running = sync.run({ signal: controller.signal })
    await expect(sync.run({ signal: new AbortController().signal })).rejects.toThrow(/running already/)
    await running
    stopped = true
    const head = stored.length
    expect(head).toBeGreaterThan(100)
    expect(head).toBeLessThan(600)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect([writesAfterStop, stored.length]).toEqual([0, head])
    // The next run goes on from where the last one stopped.
    const again = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && again.abort())
    await sync.run({ signal: again.signal })
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

  it('gets past one liar (bad items and bad hashes) with one honest peer, whichever is listed first', async () => {
    const items = makeItems(500, 40)
    for (const order of [
      ['liar', 'honest'],
      ['honest', 'liar']
    ]) {
      const peers = Object.fromEntries(
        order.map((id) => [id, id === 'liar' ? { items, lies: true, liesAboutHashes: true } : { items }])
      )
      const { io, stored } = world(peers)
      const sync = new TopicSync({ io, queue: { batchSize: 32 } })
      const controller = new AbortController()
      let stalled = false
      sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
      sync.addEventListener('sync:stalled', () => {
        stalled = true
        controller.abort()
      })
      await sync.run({ signal: controller.signal })
      expect(stalled, order.join(',')).toBe(false)
      expect(stored).toEqual(items)
    }
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

  it('does not drop anything on the word of a single peer, nor append a history that does not extend its own', async () => {
    const items = makeItems(100, 12)
    const { io, stored } = world({ liar: { items: makeItems(100, 13) } })
    stored.push(...items.slice(0, 50))
    // The liar's hash of our item 49 is not ours: its hashes of 50.. are of another history. Watch it be asked
    // (anchored on item 49) twice, then stop.
    const controller = new AbortController()
    let anchoredAsks = 0
    const fetchHashes = io.fetchHashes
    io.fetchHashes = (peer, from, to, options) => {
      if (from === 49 && to > 49 && ++anchoredAsks >= 2) controller.abort()
      return fetchHashes(peer, from, to, options)
    }
    const sync = new TopicSync({ io, quorum: 1, queue: { holdTimeoutMs: 1 } })
    let repaired = 0
    sync.addEventListener('tip:repaired', () => repaired++)
    await sync.run({ signal: controller.signal })
    expect(anchoredAsks).toBeGreaterThanOrEqual(2)
    expect(repaired).toBe(0)
    // Nothing dropped, and nothing of the liar's history appended (before anchoring, 50..99 were its items).
    expect(stored).toEqual(items.slice(0, 50))
    expect(sync.mode).not.toBe('synced')
  })

  it('keeps its tip when the peers disagree among themselves about it', async () => {
    const items = makeItems(100, 6)
    const forged = makeItems(100, 7)
    const { io, stored } = world({ honest: { items }, liar: { items: forged } })
    stored.push(...items.slice(0, 50))
    const sync = new TopicSync({ io, quorum: 2 })
    let repaired = 0
    sync.addEventListener('tip:repaired', () => repaired++)
    // The download starts only after the tip check has decided: stop there (the two cannot agree on hashes for
    // the rest, so the download itself would wait for ever).
    const controller = new AbortController()
    let tipAsked = 0
    const fetchHashes = io.fetchHashes
    io.fetchHashes = (peer, from, to, options) => {
      if (to === 49) tipAsked++
      return fetchHashes(peer, from, to, options)
    }
    sync.addEventListener('mode', (e) => e.detail === 'syncing' && controller.abort())
    await sync.run({ signal: controller.signal })
    expect(tipAsked).toBe(2) // both peers were asked about the tip
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
      expect(() => sync.peersChanged()).not.toThrow()
      controller.abort()
    })
    await sync.run({ signal: controller.signal })
    expect(checked).toBe(true)
  })

  it('with a publisher, takes only items proven against its signed root: a forger\'s batches fail, an honest peer\'s pass', async () => {
    const items = makeItems(300, 15)
    const forged = makeItems(300, 16)
    // The forger's history is consistent (its own hashes match its items): only the proof tells it apart.
    const peers: Record<string, FakePeer> = { forger: { items: forged, lies: true }, honest: { items } }
    const { io, stored } = world(peers)
    const checkpoint = { number: 299, root: rootOf(items), head: 299, headHash: keccak256(items[299]!.data) }
    const hashRequests: string[] = []
    const faults: string[] = []
    const sync = new TopicSync({
      io: {
        ...io,
        checkpoint: () => checkpoint,
        fetch: (peer, from, amount, options) =>
          io.fetch(peer, from, amount, options).catch((err: unknown) => {
            faults.push(peer)
            throw err
          }),
        fetchHashes: (peer, from, to, options) => {
          hashRequests.push(peer)
          return io.fetchHashes(peer, from, to, options)
        }
      },
      queue: { batchSize: 32 },
      onPeerFault: (peer) => faults.push(`blamed ${peer}`)
    })
    const verified: number[] = []
    sync.addEventListener('checkpoint:verified', (e) => verified.push(e.detail.number))
    const controller = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    await sync.run({ signal: controller.signal })
    expect(stored).toEqual(items)
    expect(verified).toEqual([299])
    // Content hashes play no part with a publisher, and only the forger's own replies failed.
    expect(hashRequests).toEqual([])
    expect(faults.length).toBeGreaterThan(0)
    expect(new Set(faults)).toEqual(new Set(['forger']))
  })

  it('with a publisher, leaves out a peer that cannot prove against the signed root after its first empty answers', async () => {
    const items = makeItems(600, 17)
    // The other history's server answers UNAVAILABLE (nothing) for the publisher's root, as an honest server of
    // another history does: no fault, but asked again and again it used up batches' attempts.
    const { io, stored } = world({ other: { items: makeItems(600, 18) }, honest: { items } })
    const checkpoint = { number: 599, root: rootOf(items), head: 599, headHash: keccak256(items[599]!.data) }
    const asked = { other: 0, honest: 0 }
    const sync = new TopicSync({
      io: {
        ...io,
        checkpoint: () => checkpoint,
        fetch: (peer, from, amount, options) => {
          asked[peer as keyof typeof asked]++
          return io.fetch(peer, from, amount, options)
        }
      },
      queue: { batchSize: 16 }
    })
    const controller = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    await sync.run({ signal: controller.signal })
    expect(stored).toEqual(items)
    // Only the requests it had before its first answer came back.
    expect(asked.other).toBeLessThanOrEqual(DEFAULT_TOPIC_REQUESTS_PER_PEER)
    expect(asked.honest).toBeGreaterThan(0)
  })

  it('with a publisher but no signed checkpoint yet, items of its own do not make it synced', async () => {
    const items = makeItems(50, 5)
    const { io, stored } = world({ a: { items } })
    stored.push(...items.slice(0, 20))
    let checkpoint: { number: number; root: Uint8Array; head: number; headHash: Uint8Array } | undefined
    const sync = new TopicSync({ io: { ...io, checkpoint: () => checkpoint } })
    const modes: string[] = []
    sync.addEventListener('mode', (e) => modes.push(e.detail))
    const controller = new AbortController()
    const running = sync.run({ signal: controller.signal })
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(modes).toEqual([])
    expect(sync.mode).toBe('unsynced')
    // The signed checkpoint arrives: now it syncs up to it, and only then is synced.
    checkpoint = { number: 49, root: rootOf(items), head: 49, headHash: keccak256(items[49]!.data) }
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    sync.peersChanged()
    await running
    expect(modes).toEqual(['syncing', 'synced'])
    expect(stored).toEqual(items)
  })

  it('a publisher checkpoint decides the target over peer votes: its number, not the head it reports', async () => {
    const items = makeItems(200, 4)
    const { io } = world({ a: { items } })
    const sync = new TopicSync({
      io: { ...io, checkpoint: () => ({ number: 99, root: new Uint8Array(32), head: 150, headHash: new Uint8Array(32) }) }
    })
    expect(sync.target()).toBe(99)
    expect(new TopicSync({ io: { ...io, checkpoint: () => undefined } }).target()).toBe(-1)
  })
})

describe('TopicSync: store writes and batch sizes', () => {
  it('goes on checking batches while the store writes, holding at most two batches handed over', async () => {
    const items = makeItems(320, 21)
    const { io, stored } = world({ a: { items } })
    let release: () => void = () => undefined
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let appends = 0
    const append = io.append
    const sync = new TopicSync({ io: { ...io, append: async (batch) => {
      appends++
      await gate
      await append(batch)
    } }, queue: { batchSize: 32 } })
    let acceptedHead = -1
    sync.addEventListener('progress', (e) => {
      acceptedHead = e.detail.head
    })
    const controller = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    const running = sync.run({ signal: controller.signal })
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    // The first write hangs: its batch and the next one (16 items each, the size before any item was seen)
    // were accepted, the third waits for room.
    expect(stored).toEqual([])
    expect(appends).toBe(1)
    expect(acceptedHead).toBe(31)
    release()
    await running
    expect(stored).toEqual(items)
  })

  it('a failed store write re-plans the download from what the store holds, in order', async () => {
    const items = makeItems(400, 22)
    const { io, stored } = world({ a: { items } })
    let calls = 0
    const append = io.append
    const sync = new TopicSync({ io: { ...io, append: async (batch) => {
      if (++calls === 3) throw new Error('disk full')
      await append(batch)
    } }, queue: { batchSize: 32 } })
    const failed: unknown[] = []
    sync.addEventListener('sync:failed', (e) => failed.push(e.detail.error))
    const controller = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    await sync.run({ signal: controller.signal })
    // world's append throws on any item out of order: none was.
    expect(stored).toEqual(items)
    expect(failed).toHaveLength(1)
    expect((failed[0] as Error).message).toBe('disk full')
  })

  /** Syncs `items` from one peer until synced, one request at a time; returns what was stored and the batch sizes asked for. */
  async function syncRecordingBatches(items: Item[], batchSize: number): Promise<{ stored: Item[]; asked: number[] }> {
    const { io, stored } = world({ a: { items } })
    const asked: number[] = []
    const sync = new TopicSync({
      io: {
        ...io,
        fetch: (peer, from, amount, options) => {
          asked.push(amount)
          return io.fetch(peer, from, amount, options)
        }
      },
      queue: { batchSize, maxInFlightPerPeer: 1, window: 2 }
    })
    const controller = new AbortController()
    sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
    await sync.run({ signal: controller.signal })
    return { stored, asked }
  }

  it('grows batches to the configured size once it has seen the items are small', async () => {
    const items = makeItems(600, 24)
    const { stored, asked } = await syncRecordingBatches(items, 64)
    expect(stored).toEqual(items)
    expect(asked.slice(0, 3)).toEqual([16, 16, 16])
    expect(asked.slice(3, -1).every((n) => n === 64)).toBe(true)
  })

  it('sizes batches to what one reply carries once it has seen the items are large', async () => {
    const prng = new Prng(23)
    const items = Array.from({ length: 200 }, (_v, n) => ({ n, data: prng.bytes(100 * 1024) }))
    const { stored, asked } = await syncRecordingBatches(items, 32)
    // Compared by hash: a deep equality of 20 MB of bytes takes the test runner a minute.
    expect(stored.map((i) => toHex(keccak256(i.data)))).toEqual(items.map((i) => toHex(keccak256(i.data))))
    // A few items a batch before any was seen (16), then what 2 MiB holds of 100 KiB items beside a range proof
    // (its branch nodes and two edge items): 18, once the first batch was checked (the window's two others were
    // opened meanwhile).
    expect(asked.slice(0, 3)).toEqual([16, 16, 16])
    expect(Math.max(...asked.slice(3))).toBe(18)
    expect(asked.reduce((sum, n) => sum + n, 0)).toBe(200)
  })
})
