import { describe, expect, it } from 'vitest'
import { TopicTrieError } from '../../src/errors.js'
import type { Item } from '../../src/fsm/types.js'
import type { Checkpoint } from '../../src/topic/gossip.js'
import { defaultSelectFork } from '../../src/topic/sync/target.js'
import { TopicSync } from '../../src/topic/sync/topic-sync.js'
import type { TopicSyncIO, TrieSyncRun } from '../../src/topic/sync/types.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { equalBytes } from '../../src/util/bytes.js'
import { toHex } from '../../src/util/hex.js'
import { makeItems, rootOf, world } from './sync-world.js'

/** A trie sync the test finishes by hand: `finish()` resolves it with the root it was last given. */
class FakeTrieSync implements TrieSyncRun {
  readonly roots: string[] = []
  private resolve!: (value: { root: Uint8Array }) => void
  private reject!: (error: unknown) => void
  private root: Uint8Array
  readonly done: Promise<{ root: Uint8Array }>

  constructor(root: Uint8Array) {
    this.root = root
    this.roots.push(toHex(root))
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
  }

  retarget(root: Uint8Array): void {
    this.root = root
    this.roots.push(toHex(root))
  }

  finish(): void {
    this.resolve({ root: this.root })
  }

  fail(error: unknown): void {
    this.reject(error)
  }
}

function checkpointOf(items: Item[], number: number, head = items.length - 1): Checkpoint {
  return { number, root: rootOf(items.slice(0, number + 1)), head, headHash: keccak256(items[head]!.data) }
}

/**
 * The world of topic-sync.test.ts plus checkpoint sync: `adopt` takes the source's items `0..number` when the
 * root matches them (as TopicStore.adoptTrie does with a synced trie), and every started trie sync is kept.
 */
function checkpointWorld(items: Item[], initial: Checkpoint) {
  const base = world({ a: { items }, b: { items } })
  const runs: FakeTrieSync[] = []
  const fetched: number[] = []
  let checkpoint = initial
  const adopted: number[] = []
  const io: TopicSyncIO = {
    ...base.io,
    checkpoint: () => checkpoint,
    fetch: (peer, from, amount, options) => {
      fetched.push(from)
      return base.io.fetch(peer, from, amount, options)
    },
    syncTrie: (root) => {
      const run = new FakeTrieSync(root)
      runs.push(run)
      return run
    },
    adopt: async (root, number) => {
      if (!equalBytes(root, rootOf(items.slice(0, number + 1)))) throw new TopicTrieError('root mismatch')
      if (number < base.stored.length) {
        if (!equalBytes(rootOf(base.stored.slice(0, number + 1)), root)) throw new TopicTrieError('ours differ')
        return
      }
      base.stored.splice(0, base.stored.length, ...items.slice(0, number + 1))
      adopted.push(number)
    }
  }
  return {
    ...base,
    io,
    started: [] as number[],
    runs,
    fetched,
    adopted,
    setCheckpoint: (cp: Checkpoint) => {
      checkpoint = cp
    }
  }
}

function untilSynced(sync: TopicSync): AbortController {
  const controller = new AbortController()
  sync.addEventListener('mode', (e) => e.detail === 'synced' && controller.abort())
  return controller
}

describe('TopicSync checkpoint sync', () => {
  it('trie-syncs the checkpoint while downloading the items after it, storing them only after the adoption', async () => {
    const items = makeItems(2400, 21)
    const w = checkpointWorld(items, checkpointOf(items, 1999))
    const sync = new TopicSync({ io: w.io, queue: { batchSize: 64 } })
    const events: string[] = []
    sync.addEventListener('trie:started', (e) => {
      events.push(`started ${e.detail.number}`)
      // A newer checkpoint, too close to re-target the trie sync: the items up to it download meanwhile.
      w.setCheckpoint(checkpointOf(items, 2399))
      sync.peersChanged()
    })
    sync.addEventListener('trie:adopted', (e) => events.push(`adopted ${e.detail.number}`))
    let storedBeforeAdoption = -1
    // The items after the checkpoint download meanwhile; the trie sync ends once some are waiting.
    sync.addEventListener('progress', () => undefined)
    const finishLater = setInterval(() => {
      if (w.runs.length === 1 && w.fetched.length >= 4) {
        clearInterval(finishLater)
        storedBeforeAdoption = w.stored.length
        w.runs[0]!.finish()
      }
    }, 1)
    const controller = untilSynced(sync)
    await sync.run({ signal: controller.signal })
    clearInterval(finishLater)
    expect(events).toEqual(['started 1999', 'adopted 1999'])
    expect(storedBeforeAdoption).toBe(0)
    expect(w.adopted).toEqual([1999])
    expect(Math.min(...w.fetched)).toBe(2000)
    expect(w.stored).toEqual(items)
  })

  it('re-targets the trie sync when the checkpoint moves, and downloads only after the newest one', async () => {
    const items = makeItems(4200, 22)
    const w = checkpointWorld(items, checkpointOf(items, 1999, 2500))
    const sync = new TopicSync({ io: w.io, queue: { batchSize: 64 } })
    sync.addEventListener('trie:started', (e) => w.started.push(e.detail.number))
    const retargets: number[] = []
    sync.addEventListener('trie:retarget', (e) => retargets.push(e.detail.number))
    let moved = 0
    const mover = setInterval(() => {
      const run = w.runs[0]
      if (run === undefined) return
      if (moved < 2) {
        moved++
        // A checkpoint only a few items on does not re-target: the downloader covers those.
        w.setCheckpoint(checkpointOf(items, 1999 + moved * 1000 - 600))
        sync.peersChanged()
        w.setCheckpoint(checkpointOf(items, 1999 + moved * 1000))
        sync.peersChanged()
      } else {
        clearInterval(mover)
        run.finish()
      }
    }, 5)
    const controller = untilSynced(sync)
    await sync.run({ signal: controller.signal })
    clearInterval(mover)
    expect(retargets).toEqual([2999, 3999])
    expect(w.started).toEqual([1999]) // never started again for a checkpoint it adopted
    expect(w.runs).toHaveLength(1)
    expect(w.runs[0]!.roots).toEqual([1999, 2999, 3999].map((n) => toHex(rootOf(items.slice(0, n + 1)))))
    expect(w.adopted).toEqual([3999])
    // With a publisher the target is its newest checkpoint: later items come from its gossip.
    expect(w.stored).toEqual(items.slice(0, 4000))
  })

  it('falls back to downloading every item when the trie sync fails', async () => {
    const items = makeItems(1500, 23)
    const w = checkpointWorld(items, checkpointOf(items, 1299))
    const sync = new TopicSync({ io: w.io, queue: { batchSize: 64 } })
    const failed: number[] = []
    sync.addEventListener('trie:failed', (e) => failed.push(e.detail.number))
    sync.addEventListener('trie:started', () => setTimeout(() => w.runs[0]!.fail(new Error('no peer has the trie')), 5))
    const controller = untilSynced(sync)
    await sync.run({ signal: controller.signal })
    expect(failed).toEqual([1299])
    expect(w.runs).toHaveLength(1) // not tried again for the same checkpoint
    expect(w.adopted).toEqual([])
    expect(Math.min(...w.fetched)).toBe(0)
    expect(w.stored).toEqual(items.slice(0, 1300))
  })

  it('falls back when the synced trie does not adopt (its items do not rebuild to the root)', async () => {
    const items = makeItems(1500, 24)
    const w = checkpointWorld(items, checkpointOf(items, 1299))
    const adopt = w.io.adopt!
    let calls = 0
    w.io.adopt = async (root, number, options) => {
      // The synced trie is bad; the downloaded items later check out against the same checkpoint.
      if (calls++ === 0) throw new TopicTrieError('trie items rebuild to another root')
      return adopt(root, number, options)
    }
    const sync = new TopicSync({ io: w.io, queue: { batchSize: 64 } })
    sync.addEventListener('trie:started', () => setTimeout(() => w.runs[0]!.finish(), 5))
    let failed = 0
    sync.addEventListener('trie:failed', () => failed++)
    const controller = untilSynced(sync)
    await sync.run({ signal: controller.signal })
    expect(failed).toBe(1)
    expect(w.stored).toEqual(items.slice(0, 1300))
  })

  it('downloads a checkpoint that is close to our head instead of trie-syncing it', async () => {
    const items = makeItems(1600, 25)
    const w = checkpointWorld(items, checkpointOf(items, 1599))
    w.stored.push(...items.slice(0, 1000))
    const sync = new TopicSync({ io: w.io, queue: { batchSize: 64 } })
    const verified: number[] = []
    sync.addEventListener('checkpoint:verified', (e) => verified.push(e.detail.number))
    const controller = untilSynced(sync)
    await sync.run({ signal: controller.signal })
    expect(w.runs).toHaveLength(0)
    expect(verified).toEqual([1599])
    expect(w.stored).toEqual(items)
  })

  it('checks a checkpoint that arrives below our head, and drops what it proves wrong', async () => {
    const items = makeItems(300, 26)
    const forged = makeItems(300, 27)
    const w = checkpointWorld(items, checkpointOf(items, 99))
    // Items 0..149 are right, 150..299 are forged (say, served by liars whose hashes agreed).
    w.stored.push(...items.slice(0, 150), ...forged.slice(150).map((f) => ({ n: f.n, data: f.data })))
    const sync = new TopicSync({ io: w.io })
    const events: string[] = []
    sync.addEventListener('checkpoint:verified', (e) => events.push(`verified ${e.detail.number}`))
    sync.addEventListener('checkpoint:mismatch', (e) => events.push(`mismatch ${e.detail.number} kept ${e.detail.kept}`))
    await sync.checkpointArrived()
    w.setCheckpoint(checkpointOf(items, 199))
    await sync.checkpointArrived()
    expect(events).toEqual(['verified 99', 'mismatch 199 kept 99'])
    expect(w.stored).toEqual(items.slice(0, 100))
  })

  it('checks a checkpoint at our head before live items pass it', async () => {
    const items = makeItems(120, 28)
    const w = checkpointWorld(items, checkpointOf(items, 99))
    w.stored.push(...items.slice(0, 100))
    const sync = new TopicSync({ io: w.io })
    const verified: number[] = []
    sync.addEventListener('checkpoint:verified', (e) => verified.push(e.detail.number))
    expect(await sync.live(items[100]!)).toBe('applied')
    expect(verified).toEqual([99])
    expect(w.stored).toEqual(items.slice(0, 101))
  })
})

describe('TopicSync with live items and stale peer states', () => {
  it('asks peers again when the target is past every reported head, and ends a download that live items completed', async () => {
    const items = makeItems(400, 32)
    const w = checkpointWorld(items, checkpointOf(items, 399))
    // The peers last reported head 299; the checkpoint is at 399. Items 0..299 are ours already.
    for (const [peer, state] of w.states) w.states.set(peer, { ...state, head: 299 })
    w.stored.push(...items.slice(0, 300))
    let refreshes = 0
    w.io.refreshPeers = () => refreshes++
    const sync = new TopicSync({ io: w.io, queue: { batchSize: 32, noPeerTimeoutMs: 60_000 } })
    const controller = untilSynced(sync)
    const syncing = new Promise<void>((resolve) => sync.addEventListener('mode', (e) => e.detail === 'syncing' && resolve()))
    const running = sync.run({ signal: controller.signal })
    // Nobody can serve 300..399 yet: the download starts and waits; live gossip brings them instead.
    await syncing
    expect(refreshes).toBe(1)
    for (const item of items.slice(300)) expect(await sync.live(item)).toBe('applied')
    await running
    expect(sync.mode).toBe('synced')
    expect(w.stored).toEqual(items)
  })
})

describe('blame for content hashes', () => {
  it('never blames a hash source on acceptance alone: two peers agreeing on forged items outvote an honest one', async () => {
    const items = makeItems(300, 33)
    const forged = makeItems(300, 34)
    const w = world({ honest: { items }, liarA: { items: forged }, liarB: { items: forged } })
    const hashBlame: string[] = []
    let rejected = 0
    const sync = new TopicSync({
      io: w.io,
      queue: { batchSize: 32 },
      // Hashes are believed only when two peers give the same ones: here only the two liars can agree.
      quorum: 2,
      onPeerFault: (peer, reason) => {
        if (reason.includes('content hash')) hashBlame.push(peer)
      }
    })
    sync.addEventListener('batch:rejected', () => rejected++)
    const controller = untilSynced(sync)
    await sync.run({ signal: controller.signal })
    // The honest peer's batches disagreed with the agreed hashes along the way, but without a publisher nothing
    // says which history is true: nobody is blamed for their hashes.
    expect(rejected).toBeGreaterThan(0)
    expect(hashBlame).toEqual([])
    // What the quorum agreed on is stored whole: the two liars' history, not a mix no peer holds.
    expect(w.stored).toEqual(forged)
  })
})

describe('quorum 1: hashes anchored on our own history', () => {
  it('stores one peer\'s history whole, never chunks of two (an honest peer beside two agreeing liars)', async () => {
    const items = makeItems(300, 33)
    const forged = makeItems(300, 34)
    for (const order of [['honest', 'liarA', 'liarB'], ['liarA', 'honest', 'liarB']]) {
      const peers = { honest: { items }, liarA: { items: forged }, liarB: { items: forged } }
      const w = world(Object.fromEntries(order.map((id) => [id, peers[id as keyof typeof peers]])))
      const sync = new TopicSync({ io: w.io, queue: { batchSize: 32 }, quorum: 1 })
      const controller = untilSynced(sync)
      await sync.run({ signal: controller.signal })
      // Whichever history came first, the store holds it whole: not a mix no peer holds.
      expect([items, forged].some((history) => equalBytes(rootOf(w.stored), rootOf(history))), order.join()).toBe(true)
    }
  })
})

describe('checkpoint sync without a publisher', () => {
  it('trie-syncs the checkpoint that selectFork picks from the peers\' reports', async () => {
    const items = makeItems(3000, 29)
    const w = checkpointWorld(items, checkpointOf(items, 0))
    w.io.checkpoint = undefined
    const good = { number: 2499, root: rootOf(items.slice(0, 2500)) }
    for (const [peer, state] of w.states) w.states.set(peer, { ...state, checkpoint: good })
    const asked: number[] = []
    const sync = new TopicSync({
      io: w.io,
      queue: { batchSize: 64 },
      selectFork: (states, quorum) => {
        asked.push(quorum)
        return defaultSelectFork(states, quorum)
      },
      quorum: 2
    })
    sync.addEventListener('trie:started', () => setTimeout(() => w.runs[0]!.finish(), 5))
    const controller = untilSynced(sync)
    await sync.run({ signal: controller.signal })
    expect(asked[0]).toBe(2)
    expect(w.runs[0]!.roots).toEqual([toHex(good.root)])
    expect(w.adopted).toEqual([2499])
    expect(w.stored).toEqual(items)
  })

  it('downloads everything when selectFork picks nothing, or throws', async () => {
    const items = makeItems(1500, 30)
    for (const selectFork of [() => undefined, () => { throw new Error('hook bug') }]) {
      const w = checkpointWorld(items, checkpointOf(items, 0))
      w.io.checkpoint = undefined
      const sync = new TopicSync({ io: w.io, queue: { batchSize: 64 }, selectFork })
      const controller = untilSynced(sync)
      await sync.run({ signal: controller.signal })
      expect(w.runs).toHaveLength(0)
      expect(w.stored).toEqual(items)
    }
  })
})
