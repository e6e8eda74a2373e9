import { describe, expect, it } from 'vitest'
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
    metrics?: BatchVerifierInit['metrics']
  ) {
    const checkpoint = { number, root: new Uint8Array(32), head: number, headHash: new Uint8Array(32) }
    return new BatchVerifier({
      io: { fetch, fetchHashes: async () => [], localHashes: async () => [], states: () => new Map(), checkpoint: () => checkpoint },
      writer: writer as TopicWriter,
      quorum: 1,
      maxItems: 16,
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
})
