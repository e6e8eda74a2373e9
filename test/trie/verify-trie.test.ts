import { describe, expect, it } from 'vitest'
import { accountEntries } from '../../src/fixtures/generate.js'
import { InvalidInputError, InvalidNodeError } from '../../src/errors.js'
import type { KVStore } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { EMPTY_ROOT } from '../../src/trie/keccak.js'
import { decodeNode, nodeChildren } from '../../src/trie/node.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import {
  checkTrieComplete,
  DEFAULT_VERIFY_MAX_MISSING,
  DEFAULT_VERIFY_READ_BATCH,
  verifyTrie,
  type WalkedNode,
  walkTrie
} from '../../src/trie/walk.js'
import { fromHex, toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { randomEntries, SHAPES } from './random-tries.js'
import { WrappedStore } from '../helpers/wrapped-store.js'

/** A store that records every `getMany` it serves, and can run a hook before answering. */
class RecordingStore extends WrappedStore {
  readonly reads: number[] = []
  onRead: (() => void) | undefined

  get largestRead(): number {
    return Math.max(0, ...this.reads)
  }

  override getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.reads.push(keys.length)
    this.onRead?.()
    return this.inner.getMany(keys)
  }
}

async function accountTrie(seed: number, keys: number): Promise<{ store: MemoryStore; root: Uint8Array; hashes: Uint8Array[] }> {
  const store = new MemoryStore()
  const { root } = await importSorted(store, accountEntries(seed, keys))
  const hashes: Uint8Array[] = []
  for await (const { hash } of walkTrie(store, root)) hashes.push(hash)
  return { store, root, hashes }
}

/** Most hash references between the root and a stored node, the root being depth 1. */
async function hashDepth(store: KVStore, hash: Uint8Array): Promise<number> {
  const blob = await store.get(hash)
  if (blob === undefined) return 0
  let deepest = 0
  for (const child of nodeChildren(decodeNode(blob), new Uint8Array(0)).children) {
    deepest = Math.max(deepest, await hashDepth(store, child.hash))
  }
  return 1 + deepest
}

const sortedHex = (hashes: Uint8Array[]): string[] => hashes.map(toHex).sort()

describe('verifyTrie', () => {
  it('agrees with checkTrieComplete on complete tries, whatever the batch size', async () => {
    for (const keys of [1, 2, 30, 2000]) {
      const { store, root, hashes } = await accountTrie(keys, keys)
      const expected = await checkTrieComplete(store, root)
      expect(expected.nodes).toBe(hashes.length)
      for (const readBatch of [1, 3, 64, undefined]) {
        const report = await verifyTrie(store, root, { readBatch })
        expect(report, `${keys} keys, batch ${readBatch}`).toMatchObject({
          complete: true,
          nodes: expected.nodes,
          missingCount: 0,
          missing: []
        })
      }
    }
  })

  it('finds the hashed nodes inside embedded ones, on every trie shape', async () => {
    for (const [s, shape] of SHAPES.entries()) {
      const prng = new Prng(300 + s)
      const store = new MemoryStore()
      const imported = await importSorted(store, randomEntries(prng, shape, 500))
      const expected = await checkTrieComplete(store, imported.root)
      expect(expected.nodes, shape.name).toBe(imported.nodes)
      expect(await verifyTrie(store, imported.root, { readBatch: 7 }), shape.name).toMatchObject({
        complete: true,
        nodes: imported.nodes
      })
      const stored = [...store.keys()].filter((k) => k !== toHex(imported.root))
      for (let i = 0; i < 3; i++) await store.del(fromHex(stored[prng.int(stored.length)]!))
      const damaged = await checkTrieComplete(store, imported.root)
      expect(await verifyTrie(store, imported.root, { maxMissing: 100 }), shape.name).toMatchObject({
        complete: false,
        nodes: damaged.nodes,
        missingCount: damaged.missing.length
      })
    }
  })

  it('counts every gap and walks on past it, listing the first maxMissing', async () => {
    const prng = new Prng(7)
    for (const round of [1, 5, 40]) {
      const { store, root, hashes } = await accountTrie(100 + round, 3000)
      for (let i = 0; i < round; i++) await store.del(hashes[1 + prng.int(hashes.length - 1)]!)
      const expected = await checkTrieComplete(store, root)
      expect(expected.complete).toBe(false)

      const all = await verifyTrie(store, root, { maxMissing: 1000, readBatch: 50 })
      expect(all.complete).toBe(false)
      expect(all.missingCount).toBe(expected.missing.length)
      expect(sortedHex(all.missing)).toEqual(sortedHex(expected.missing))
      // Everything still reachable was read: the walk did not stop at the first gap.
      expect(all.nodes).toBe(expected.nodes)

      const capped = await verifyTrie(store, root)
      expect(capped.missingCount).toBe(expected.missing.length)
      expect(capped.missing).toHaveLength(Math.min(DEFAULT_VERIFY_MAX_MISSING, expected.missing.length))
      const known = new Set(expected.missing.map(toHex))
      for (const hash of capped.missing) expect(known.has(toHex(hash))).toBe(true)
      expect((await verifyTrie(store, root, { maxMissing: 0 })).missing).toEqual([])
    }
  })

  it('reports a missing root', async () => {
    const { store, root } = await accountTrie(3, 50)
    await store.del(root)
    expect(await verifyTrie(store, root)).toEqual({
      complete: false,
      nodes: 0,
      missingCount: 1,
      missing: [root],
      peakPending: 1
    })
  })

  it('counts a repeated subtrie once per reference, as importSorted does', async () => {
    // Keys 0x0a0b for every nibble a, b, all with one long value: the 16 subtries under the root's branch are
    // the same five stored nodes, and all 256 leaves one blob.
    const value = new Uint8Array(40).fill(7)
    const entries: [Uint8Array, Uint8Array][] = []
    for (let a = 0; a < 16; a++) for (let b = 0; b < 16; b++) entries.push([Uint8Array.of(a, b), value])
    const store = new MemoryStore()
    const imported = await importSorted(store, entries)
    const distinct = await checkTrieComplete(store, imported.root)
    expect(distinct.nodes).toBe(5)

    const report = await verifyTrie(store, imported.root, { readBatch: 5 })
    expect(report).toMatchObject({ complete: true, nodes: imported.nodes })
    expect(report.nodes).toBe(2 + 16 * (2 + 16))

    // One stored leaf gone is a gap under each of its references.
    const leaf = await leafHash(store, imported.root)
    await store.del(leaf)
    expect((await checkTrieComplete(store, imported.root)).missing).toHaveLength(1)
    const damaged = await verifyTrie(store, imported.root)
    expect(damaged.missingCount).toBe(entries.length)
    expect(damaged.missing.map(toHex)).toEqual(new Array(DEFAULT_VERIFY_MAX_MISSING).fill(toHex(leaf)))
  })

  it('refuses a node whose bytes do not hash to its key', async () => {
    const prng = new Prng(11)
    const store = new MemoryStore()
    const { root } = await importSorted(store, accountEntries(4, 500))
    const leaves: WalkedNode[] = []
    for await (const node of walkTrie(store, root)) if (node.node.kind === 'leaf') leaves.push(node)
    const victim = leaves[prng.int(leaves.length)]!
    const corrupt = victim.blob.slice()
    corrupt[corrupt.length - 1]! ^= 1 // in the value: the node still decodes
    expect(decodeNode(corrupt).kind).toBe('leaf')
    await store.put(victim.hash, corrupt)
    await expect(verifyTrie(store, root)).rejects.toThrow(InvalidNodeError)
  })

  it('handles the empty root without reading the store', async () => {
    const store = new RecordingStore(new MemoryStore())
    expect(await verifyTrie(store, EMPTY_ROOT)).toEqual({
      complete: true,
      nodes: 0,
      missingCount: 0,
      missing: [],
      peakPending: 0
    })
    expect(store.reads).toEqual([])
  })

  it('stops reading once its signal is aborted', async () => {
    const { store: inner, root } = await accountTrie(5, 2000)
    await expect(verifyTrie(inner, root, { signal: AbortSignal.abort() })).rejects.toThrow()
    const store = new RecordingStore(inner)
    const controller = new AbortController()
    store.onRead = () => {
      if (store.reads.length === 3) controller.abort()
    }
    const err = await verifyTrie(store, root, { signal: controller.signal, readBatch: 8 }).catch((e: unknown) => e)
    expect((err as Error).name).toBe('AbortError')
    expect(store.reads).toHaveLength(3)
  })

  it('reads in bounded batches and keeps a bounded stack, far below the trie size', async () => {
    const { store: inner, root, hashes } = await accountTrie(6, 20_000)
    const depth = await hashDepth(inner, root)

    const store = new RecordingStore(inner)
    const small = await verifyTrie(store, root, { readBatch: 16 })
    expect(small.nodes).toBe(hashes.length)
    expect(store.largestRead).toBe(16)
    expect(small.peakPending).toBeLessThanOrEqual(16 * 16 * depth)
    // A level-by-level walk would hold a whole level (thousands of hashes here) at once.
    expect(small.peakPending * 10).toBeLessThan(hashes.length)

    const batched = new RecordingStore(inner)
    const full = await verifyTrie(batched, root)
    expect(full.nodes).toBe(hashes.length)
    expect(batched.largestRead).toBe(DEFAULT_VERIFY_READ_BATCH)
    // Nearly every read is a full one: one `getMany` per node is what made the streaming walk slow.
    expect(batched.reads.length).toBeLessThan((hashes.length / DEFAULT_VERIFY_READ_BATCH) * 2 + depth)
  })

  it('checks its inputs', async () => {
    const store = new MemoryStore()
    await expect(verifyTrie(store, new Uint8Array(31))).rejects.toThrow(InvalidInputError)
    await expect(verifyTrie(store, EMPTY_ROOT, { readBatch: 0 })).rejects.toThrow(InvalidInputError)
    await expect(verifyTrie(store, EMPTY_ROOT, { readBatch: 1.5 })).rejects.toThrow(InvalidInputError)
    await expect(verifyTrie(store, EMPTY_ROOT, { maxMissing: -1 })).rejects.toThrow(InvalidInputError)
  })
})

/** The hash of the leftmost hashed leaf below `hash`. */
async function leafHash(store: KVStore, hash: Uint8Array): Promise<Uint8Array> {
  const node = decodeNode((await store.get(hash))!)
  const [first] = nodeChildren(node, new Uint8Array(0)).children
  return first === undefined ? hash : leafHash(store, first.hash)
}
