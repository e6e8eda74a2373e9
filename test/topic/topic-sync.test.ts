import { describe, expect, it } from 'vitest'
import { keccak256 } from '../../src/trie/keccak.js'
import { type SyncMode, TopicSync } from '../../src/topic/topic-sync.js'
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
