import { describe, expect, it } from 'vitest'
import { MAX_LANES_PER_PEER } from '../../../src/constants.js'
import type { Item } from '../../../src/fsm/types.js'
import { keccak256 } from '../../../src/trie/keccak.js'
import { BatchVerifier, type BatchVerifierInit, checkBatch } from '../../../src/topic/sync/batch-verifier.js'
import type { TopicWriter } from '../../../src/topic/sync/topic-writer.js'
import { makeItems } from '../sync-world.js'

const items = makeItems(6, 7)
const hashesOf = (peer: string, list: Item[] = items) => (n: number) => ({ hash: keccak256(list[n]!.data), peer })

describe('checkBatch', () => {
  it('passes a batch proven whole as it is, with no hash asked for', () => {
    let asked = 0
    const check = checkBatch(items, () => true, () => {
      asked++
      return undefined
    })
    expect(check).toEqual({ kind: 'verified', items })
    expect(asked).toBe(0)
  })

  it('checks what follows the proven prefix against content hashes, and hands their hashes on', () => {
    const proven = new Set(items.slice(0, 2))
    const check = checkBatch(items, (i) => proven.has(i), hashesOf('p'))
    expect(check.kind).toBe('verified')
    if (check.kind !== 'verified') return
    expect(check.items.map((i) => i.n)).toEqual([0, 1, 2, 3, 4, 5])
    expect(check.items.slice(0, 2).every((i) => i.hash === undefined)).toBe(true)
    expect(check.items.slice(2).map((i) => i.hash)).toEqual(items.slice(2).map((i) => keccak256(i.data)))
  })

  it('counts proofs only as a prefix: a proven item after an unproven one is hashed like the rest', () => {
    const proven = new Set([items[0]!, items[3]!])
    const forged = items.map((i) => (i.n === 3 ? { n: 3, data: Uint8Array.of(9) } : i))
    proven.add(forged[3]!)
    expect(checkBatch(forged, (i) => proven.has(i), hashesOf('p'))).toEqual({ kind: 'mismatch', n: 3, hashPeer: 'p' })
  })

  it('fails items without a proof where no content hash may stand in (a publisher decides)', () => {
    const proven = new Set(items.slice(0, 5))
    expect(checkBatch(items, (i) => proven.has(i), undefined)).toEqual({ kind: 'unproven' })
  })

  it('names the first item whose hash is missing, and the first one that does not match, with its hash source', () => {
    expect(checkBatch(items, () => false, (n) => (n < 4 ? hashesOf('p')(n) : undefined))).toEqual({ kind: 'no-hash', n: 4 })
    const other = makeItems(6, 8)
    const mixed = (n: number) => (n < 2 ? hashesOf('honest')(n) : hashesOf('liar', other)(n))
    expect(checkBatch(items, () => false, mixed)).toEqual({ kind: 'mismatch', n: 2, hashPeer: 'liar' })
  })
})

describe('BatchVerifier', () => {
  const signal = new AbortController().signal

  /** A verifier with a publisher's checkpoint at `number`, fetching with `fetch` and writing with `writer`. */
  function verifierOf(
    number: number,
    fetch: BatchVerifierInit['io']['fetch'],
    writer: Partial<TopicWriter> = {},
    metrics?: BatchVerifierInit['metrics'],
    maxItems = 16
  ) {
    const checkpoint = { number, root: new Uint8Array(32), head: number, headHash: new Uint8Array(32) }
    return new BatchVerifier({
      io: { fetch, fetchHashes: async () => [], localHashes: async () => [], states: () => new Map(), checkpoint: () => checkpoint },
      writer: writer as TopicWriter,
      quorum: 1,
      maxItems,
      maxInFlight: 1,
      target: () => number,
      runSignal: () => undefined,
      untilAdopted: async () => true,
      replan: () => undefined,
      onRejected: () => undefined,
      onBatchSize: () => undefined,
      metrics
    })
  }

  /** A verifier of `items` with no publisher, writing with `writer`, except where `init` says otherwise. */
  function verifierWith(
    writer: Partial<TopicWriter>,
    init: Partial<Omit<BatchVerifierInit, 'io' | 'writer'>> & { io?: Partial<BatchVerifierInit['io']> } = {}
  ) {
    return new BatchVerifier({
      quorum: 1,
      maxItems: 16,
      maxInFlight: 1,
      target: () => items.length - 1,
      runSignal: () => undefined,
      untilAdopted: async () => true,
      replan: () => undefined,
      onRejected: () => undefined,
      onBatchSize: () => undefined,
      ...init,
      writer: writer as TopicWriter,
      io: {
        fetch: async (_peer, from, amount) => items.slice(from, from + amount),
        fetchHashes: async () => [],
        localHashes: async () => [],
        states: () => new Map(),
        ...init.io
      }
    })
  }

  /** The content hashes of `list`'s items `from..to`. */
  const hashRange = (list: Item[]) => async (from: number, to: number) => list.slice(from, to + 1).map((item) => keccak256(item.data))

  /** Peer states: each of `peers` claims items `0..5`. */
  const claiming = (...peers: string[]) => () =>
    new Map(peers.map((id) => [id, { lowest: 0, head: 5, headHash: new Uint8Array(32), checkpoint: { number: 0, root: new Uint8Array(32) } }]))

  /** A writer whose commits wait for `release()` (the store is slow), recording what they were handed. */
  function slowWriter() {
    const committed: number[][] = []
    const written: number[] = []
    let release!: () => void
    const writing = new Promise<void>((resolve) => {
      release = resolve
    })
    const writer = {
      head: async () => written.length - 1,
      verifier: { verifiedThrough: -1 },
      commit: async (batch: { n: number }[]) => {
        committed.push(batch.map((item) => item.n))
        await writing
        written.push(...batch.map((item) => item.n))
        return { ok: true as const }
      }
    }
    return { writer: writer as unknown as TopicWriter, committed, written, release }
  }

  it('refuses every delivery after a write behind it failed, the failed batch delivered again too, until the store is settled', async () => {
    const stored: number[] = []
    let fail = true
    const writer = {
      head: async () => -1,
      verifier: { verifiedThrough: -1 },
      commit: async (batch: { n: number }[]) => {
        await new Promise((r) => setImmediate(r))
        if (fail) {
          fail = false
          throw new Error('the disk is full')
        }
        stored.push(...batch.map((item) => item.n))
        return { ok: true as const }
      }
    } as unknown as TopicWriter
    const verifier = verifierOf(100, async (_peer, from, amount) => items.slice(from, from + amount), writer)
    const first = await verifier.fetch('p', 0, 3, { signal })
    expect(await verifier.deliver(first, signal)).toEqual({ ok: true }) // handed to the store, written behind
    await verifier.idle()
    // Its write failed: items 0..2 are not stored, however far the writes were handed out.
    expect(await verifier.deliver(first, signal)).toMatchObject({ ok: false, fault: 'local' })
    expect(await verifier.deliver(await verifier.fetch('p', 3, 3, { signal }), signal)).toMatchObject({ ok: false, fault: 'local' })
    expect(stored).toEqual([])
    await expect(verifier.settle()).rejects.toThrow('the disk is full')
    expect(await verifier.deliver(await verifier.fetch('p', 0, 3, { signal }), signal)).toEqual({ ok: true })
    await verifier.idle()
    expect(stored).toEqual([0, 1, 2])
  })

  it('sizes the next batches from a proven reply as it comes, and from unproven items only once they are checked', async () => {
    // Items of 200 KiB: 8 and their proof fill a reply, where the first batches hold 16.
    const large = Array.from({ length: 40 }, (_, n) => ({ n, data: new Uint8Array(200 * 1024).fill(n) }))
    const serve = async (_peer: string, from: number, amount: number) => large.slice(from, from + amount)
    const proven = verifierOf(100, serve)
    expect(proven.batchSize).toBe(16)
    await proven.fetch('p', 0, 16, { signal })
    // Before its delivery: the queue opens the next batches as soon as a fetch returns.
    expect(proven.batchSize).toBe(8)
    const { writer, release } = slowWriter()
    release()
    const states = () => new Map([['honest', { lowest: 0, head: 39, headHash: new Uint8Array(32), checkpoint: { number: 0, root: new Uint8Array(32) } }]])
    const unproven = verifierWith(writer, {
      target: () => large.length - 1,
      io: { fetch: serve, fetchHashes: (_peer, from, to) => hashRange(large)(from, to), states }
    })
    const fetched = await unproven.fetch('p', 0, 16, { signal })
    expect(unproven.batchSize).toBe(16)
    expect(await unproven.deliver(fetched, signal)).toEqual({ ok: true })
    expect(unproven.batchSize).toBe(8)
  })

  it("does not let a peer's short replies choose the items batches are sized by (an outside tester's attack)", async () => {
    // Items alternate 8 B and 500 KiB: a reply carries 6 of them beside a proof.
    const alternating = Array.from({ length: 64 }, (_, n) => ({ n, data: new Uint8Array(n % 2 === 0 ? 8 : 500 * 1024) }))
    const writer = { head: async () => -1, verifier: { verifiedThrough: -1 }, commit: async () => ({ ok: true as const }) }
    let liar = true
    const verifier = verifierOf(
      1_000,
      // The liar sends only the first item asked for: a proven, legal, short reply, of its choosing.
      async (_peer, from, amount) => alternating.slice(from, liar ? from + 1 : from + amount),
      writer as unknown as TopicWriter,
      undefined,
      256
    )
    const first = await verifier.fetch('liar', 0, 16, { signal })
    // Sized by its 8-byte item, batches would hold 256 items of 250 KiB on average: 64 MB each.
    expect(verifier.batchSize).toBe(16)
    liar = false
    const rest = await verifier.fetch('honest', 1, 15, { signal })
    expect(verifier.batchSize).toBe(16)
    // The batch delivered whole is a fair sample: 16 items of 250 KiB on average.
    expect(await verifier.deliver([...first, ...rest], signal)).toEqual({ ok: true })
    expect(verifier.batchSize).toBe(6)
    // So is a whole reply to a request of at least a first batch's items, as it comes.
    const small = Array.from({ length: 64 }, (_, n) => ({ n, data: new Uint8Array(1024) }))
    const whole = verifierOf(1_000, async (_peer, from, amount) => small.slice(from, from + amount), writer as unknown as TopicWriter, undefined, 256)
    await whole.fetch('honest', 0, 16, { signal })
    expect(whole.batchSize).toBe(230)
  })

  it("spreads a fast peer's requests over several streams once its rate is measured, a slow one's never", async () => {
    /** The lanes each of 8 fetches of 16 items of `itemBytes`, each taking `ms`, was allowed. */
    const lanesSeen = async (itemBytes: number, ms: number): Promise<number[]> => {
      const seen: number[] = []
      const verifier = verifierOf(1_000, async (_peer, from, amount, { lanes }) => {
        seen.push(lanes ?? 1)
        await new Promise((r) => setTimeout(r, ms))
        return Array.from({ length: amount }, (_, i) => ({ n: from + i, data: new Uint8Array(itemBytes) }))
      })
      for (let i = 0; i < 8; i++) await verifier.fetch('p', i * 16, 16, { signal })
      return seen
    }
    // 1 MiB every 30 ms (35 MB/s): one stream until measured, then the most.
    const fast = await lanesSeen(64 * 1024, 30)
    expect(fast[0]).toBe(1)
    expect(fast.at(-1)).toBe(MAX_LANES_PER_PEER)
    // 64 KiB every 100 ms (0.66 MB/s): one stream throughout.
    expect(await lanesSeen(4 * 1024, 100)).toEqual(Array(8).fill(1))
  })

  it("asks for a proof against the publisher's checkpoint for every batch it covers, one starting at its number too", async () => {
    const asked: { from: number; against: number | undefined }[] = []
    // Its writer is not reached by a fetch.
    const verifier = verifierOf(10, async (_peer, from, _amount, { proveAgainst }) => {
      asked.push({ from, against: proveAgainst?.number })
      return []
    })
    for (const from of [0, 10, 11]) await verifier.fetch('p', from, 1, { signal })
    // A batch from the checkpoint's own number asked without a proof came back unproven, over and over.
    expect(asked).toEqual([
      { from: 0, against: 10 },
      { from: 10, against: 10 },
      { from: 11, against: undefined }
    ])
  })

  it('counts as verified only the items of a batch past the stored head, not the one at the head it holds already', async () => {
    // The store holds 0..2 (a batch delivered again after part of it was written): only 3..5 are checked and
    // stored, and dsfg_topic_items_verified_total counts those, not item 2 a second time.
    const counted = { count: 0, bytes: 0 }
    const metrics = {
      count: { increment: (value = 1) => (counted.count += value) },
      bytes: { increment: (value = 1) => (counted.bytes += value) }
    }
    const writer = { head: async () => 2, verifier: { verifiedThrough: -1 }, commit: async () => ({ ok: true as const }) }
    const verifier = verifierOf(100, async (_peer, from, amount) => items.slice(from, from + amount), writer as unknown as TopicWriter, metrics)
    expect(await verifier.deliver(await verifier.fetch('p', 0, 6, { signal }), signal)).toEqual({ ok: true })
    await verifier.idle()
    expect(counted).toEqual({ count: 3, bytes: items.slice(3).reduce((sum, item) => sum + item.data.length, 0) })
  })

  it('with a publisher, takes no item fetched without a proof, whatever content hashes peers vouch for it with, and re-plans', async () => {
    // The store holds 0..2 and the publisher's checkpoint is at 2: items 3.. are asked for without a proof.
    const checkpoint = { number: 2, root: new Uint8Array(32), head: 2, headHash: new Uint8Array(32) }
    const { writer, committed, release } = slowWriter()
    release()
    let replans = 0
    const verifier = verifierWith(
      { ...writer, head: async () => 2 },
      {
        io: { fetchHashes: (_peer, from, to) => hashRange(items)(from, to), localHashes: hashRange(items), states: claiming('p'), checkpoint: () => checkpoint },
        replan: () => replans++
      }
    )
    expect(await verifier.deliver(await verifier.fetch('p', 3, 3, { signal }), signal)).toEqual({ ok: false, fault: 'local' })
    expect(committed).toEqual([])
    expect(replans).toBe(1)
  })

  it('without a publisher, sends back a batch that does not match the content hashes, naming the peer the hashes came from', async () => {
    const forged = makeItems(6, 8)
    const rejected: [number, number, string][] = []
    const { writer, committed } = slowWriter()
    const verifier = verifierWith(writer, {
      io: { fetch: async (_peer, from, amount) => forged.slice(from, from + amount), fetchHashes: (_peer, from, to) => hashRange(items)(from, to), states: claiming('honest') },
      onRejected: (from, to, hashPeer) => rejected.push([from, to, hashPeer])
    })
    expect(await verifier.deliver(await verifier.fetch('liar', 0, 6, { signal }), signal)).toEqual({ ok: false, fault: 'this' })
    expect(rejected).toEqual([[0, 5, 'honest']])
    expect(committed).toEqual([])
  })

  it('fails a batch that crosses the checkpoint when the writer finds it does not match, instead of accepting it to write behind', async () => {
    // The writer dropped them: dsfg_topic_items_verified_total counts none of them.
    const counted = { count: 0, bytes: 0 }
    const metrics = {
      count: { increment: (value = 1) => (counted.count += value) },
      bytes: { increment: (value = 1) => (counted.bytes += value) }
    }
    const writer = { head: async () => -1, verifier: { verifiedThrough: -1 }, commit: async () => ({ ok: false as const, fault: 'local' as const }) }
    const verifier = verifierOf(4, async (_peer, from, amount) => items.slice(from, from + amount), writer as unknown as TopicWriter, metrics)
    expect(await verifier.deliver(await verifier.fetch('p', 0, 6, { signal }), signal)).toEqual({ ok: false, fault: 'local' })
    await expect(verifier.settle()).resolves.toBeUndefined()
    expect(counted).toEqual({ count: 0, bytes: 0 })
  })

  it('re-plans, and refuses what follows, when a batch written behind fails a checkpoint in the writer', async () => {
    // A checkpoint the writer checks can come after the batch was accepted: here the writer reports a mismatch.
    let replans = 0
    const writer = { head: async () => -1, verifier: { verifiedThrough: -1 }, commit: async () => ({ ok: false as const, fault: 'local' as const }) }
    const checkpoint = { number: 100, root: new Uint8Array(32), head: 100, headHash: new Uint8Array(32) }
    const verifier = verifierWith(writer as unknown as TopicWriter, { io: { checkpoint: () => checkpoint }, replan: () => replans++ })
    expect(await verifier.deliver(await verifier.fetch('p', 0, 3, { signal }), signal)).toEqual({ ok: true })
    await verifier.idle()
    expect(replans).toBe(1)
    expect(await verifier.deliver(await verifier.fetch('p', 3, 3, { signal }), signal)).toMatchObject({ ok: false, fault: 'local' })
    await expect(verifier.settle()).rejects.toThrow(/did not match/)
  })

  it('does not store a batch crossing the checkpoint after a write behind it failed meanwhile', async () => {
    const attempts: number[][] = []
    const writer = {
      head: async () => -1,
      verifier: { verifiedThrough: -1 },
      commit: async (batch: { n: number }[]) => {
        attempts.push(batch.map((item) => item.n))
        await new Promise((r) => setImmediate(r))
        throw new Error('the disk is full')
      }
    }
    const verifier = verifierOf(4, async (_peer, from, amount) => items.slice(from, from + amount), writer as unknown as TopicWriter)
    // 0..2 are handed to the store; 3..5 cross the checkpoint at 4, so they wait for 0..2, whose write fails.
    expect(await verifier.deliver(await verifier.fetch('p', 0, 3, { signal }), signal)).toEqual({ ok: true })
    expect(await verifier.deliver(await verifier.fetch('p', 3, 3, { signal }), signal)).toEqual({ ok: false, fault: 'local' })
    expect(attempts).toEqual([[0, 1, 2]])
    await expect(verifier.settle()).rejects.toThrow('the disk is full')
  })

  it('anchors the next content hashes on the last item accepted while it is still being written, so no other history is appended to ours', async () => {
    // 0..2 are accepted and still being written when 3..5 come; the only peer left for their hashes has another
    // item 2 (and its own 3..5): its hashes must not pass, though the store cannot tell yet what our item 2 is.
    const other = [...items.slice(0, 2), ...makeItems(6, 9).slice(2)]
    const { writer, committed, written, release } = slowWriter()
    let target = 2
    let peers = claiming('honest')
    const verifier = verifierWith(writer, {
      io: {
        fetch: async (_peer, from, amount) => (from < 3 ? items : other).slice(from, from + amount),
        fetchHashes: (peer, from, to) => hashRange(peer === 'honest' ? items : other)(from, to),
        localHashes: async (from, to) => (await hashRange(items)(from, to)).filter((_, i) => written.includes(from + i)),
        states: () => peers()
      },
      target: () => target
    })
    expect(await verifier.deliver(await verifier.fetch('honest', 0, 3, { signal }), signal)).toEqual({ ok: true })
    target = 5
    peers = claiming('other')
    expect(await verifier.deliver(await verifier.fetch('other', 3, 3, { signal }), signal)).toMatchObject({ ok: false, fault: 'local' })
    release()
    await verifier.idle()
    expect(committed).toEqual([[0, 1, 2]])
  })

  it('counts and hands on only items past those still being written, when a batch comes again over them', async () => {
    const counted = { count: 0, bytes: 0 }
    const metrics = {
      count: { increment: (value = 1) => (counted.count += value) },
      bytes: { increment: (value = 1) => (counted.bytes += value) }
    }
    const { writer, committed, release } = slowWriter()
    const verifier = verifierOf(100, async (_peer, from, amount) => items.slice(from, from + amount), writer, metrics)
    expect(await verifier.deliver(await verifier.fetch('p', 0, 3, { signal }), signal)).toEqual({ ok: true })
    expect(await verifier.deliver(await verifier.fetch('p', 0, 6, { signal }), signal)).toEqual({ ok: true })
    release()
    await verifier.idle()
    expect(committed).toEqual([
      [0, 1, 2],
      [3, 4, 5]
    ])
    expect(counted.count).toBe(6)
  })

  it('stores nothing of a batch delivered during a checkpoint sync when the wait for its adoption is aborted', async () => {
    const { writer, committed, release } = slowWriter()
    release()
    const checkpoint = { number: 100, root: new Uint8Array(32), head: 100, headHash: new Uint8Array(32) }
    const verifier = verifierWith(writer, { io: { checkpoint: () => checkpoint }, untilAdopted: async () => false })
    expect(await verifier.deliver(await verifier.fetch('p', 0, 3, { signal }), signal)).toEqual({ ok: false, fault: 'local' })
    await verifier.idle()
    expect(committed).toEqual([])
  })
})
