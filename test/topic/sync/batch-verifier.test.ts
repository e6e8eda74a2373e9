import { describe, expect, it } from 'vitest'
import type { Item } from '../../../src/fsm/types.js'
import { keccak256 } from '../../../src/trie/keccak.js'
import { BatchVerifier, checkBatch } from '../../../src/topic/sync/batch-verifier.js'
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

describe('BatchVerifier.fetch', () => {
  it("asks for a proof against the publisher's checkpoint for every batch it covers, one starting at its number too", async () => {
    const asked: { from: number; against: number | undefined }[] = []
    const checkpoint = { number: 10, root: new Uint8Array(32), head: 10, headHash: new Uint8Array(32) }
    const verifier = new BatchVerifier({
      io: {
        fetch: async (_peer, from, _amount, { proveAgainst }) => {
          asked.push({ from, against: proveAgainst?.number })
          return []
        },
        fetchHashes: async () => [],
        localHashes: async () => [],
        states: () => new Map(),
        checkpoint: () => checkpoint
      },
      // Not reached by a fetch.
      writer: {} as TopicWriter,
      quorum: 1,
      maxItems: 16,
      maxInFlight: 1,
      target: () => 10,
      runSignal: () => undefined,
      untilAdopted: async () => true,
      replan: () => undefined,
      onRejected: () => undefined,
      onBatchSize: () => undefined
    })
    const signal = new AbortController().signal
    for (const from of [0, 10, 11]) await verifier.fetch('p', from, 1, { signal })
    // A batch from the checkpoint's own number asked without a proof came back unproven, over and over.
    expect(asked).toEqual([
      { from: 0, against: 10 },
      { from: 10, against: 10 },
      { from: 11, against: undefined }
    ])
  })
})
