import { RLP } from '@ethereumjs/rlp'
import { describe, expect, it } from 'vitest'
import { InvalidInputError, InvalidNodeError, MissingNodeError } from '../../src/errors.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { EMPTY_ROOT, keccak256 } from '../../src/trie/keccak.js'
import { bytesToNibbles, encodeCompact } from '../../src/trie/nibbles.js'
import { decodeNode } from '../../src/trie/node.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import {
  checkStoredSubtries,
  checkTrieComplete,
  trieEntries,
  trieGet,
  type WalkedNode,
  walkTrie
} from '../../src/trie/walk.js'
import { compareBytes } from '../../src/util/bytes.js'
import { fromHex, toHex } from '../../src/util/hex.js'
import { SeededRandom } from '../helpers/random.js'
import { randomEntries, SHAPES } from './random-tries.js'
import { referenceTrie, sortedKeys } from './reference.js'
import { readVector } from './vectors.js'

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of source) out.push(item)
  return out
}

function startsWith(path: Uint8Array, prefix: Uint8Array): boolean {
  return path.length >= prefix.length && prefix.every((n, i) => path[i] === n)
}

describe('walking tries built by @ethereumjs/mpt (codec property test)', () => {
  for (const [s, shape] of SHAPES.entries()) {
    it(`visits exactly the live nodes and finds every entry: ${shape.name}`, async () => {
      const prng = new SeededRandom(200 + s)
      for (const count of [1, 2, 7, 40, 300]) {
        const entries = randomEntries(prng, shape, count)
        // The reference gets the keys in random order, so its tries come from updates, not only appends.
        const reference = await referenceTrie(prng.shuffle(entries))
        const store = new MemoryStore()
        for (const [hash, blob] of reference.nodes) await store.put(fromHex(hash), blob)

        const walked = await collect(walkTrie(store, reference.root))
        expect(walked.map((n) => toHex(n.hash)).sort(), `${count} keys`).toEqual(sortedKeys(reference.nodes))
        expect(toHex(walked[0]!.hash)).toBe(toHex(reference.root))
        for (let i = 1; i < walked.length; i++) {
          expect(compareBytes(walked[i - 1]!.path, walked[i]!.path)).toBeLessThan(0)
        }

        const found = await collect(trieEntries(store, reference.root))
        expect(found.map((e) => [toHex(e.key), toHex(e.value)])).toEqual(entries.map(([k, v]) => [toHex(k), toHex(v)]))
        for (const [key, value] of entries) expect(toHex((await trieGet(store, reference.root, key))!)).toBe(toHex(value))
        // Absent keys: random ones, and every proper prefix and extension of a present one.
        const [key] = entries[prng.int(entries.length)]!
        const present = new Set(entries.map(([k]) => toHex(k)))
        const probes = [prng.bytes(32), prng.bytes(3), new Uint8Array(0), Uint8Array.of(...key, 0)]
        for (let n = 0; n < key.length; n++) probes.push(key.subarray(0, n))
        for (const probe of probes) {
          if (present.has(toHex(probe))) continue
          expect(await trieGet(store, reference.root, probe), toHex(probe)).toBeNull()
        }

        const report = await checkTrieComplete(store, reference.root)
        expect(report).toEqual({ complete: true, nodes: reference.nodes.size, missing: [], incomplete: [] })
      }
    })
  }

  it('yields nothing for the empty root and finds nothing in it', async () => {
    const store = new MemoryStore()
    expect(await collect(walkTrie(store, EMPTY_ROOT))).toEqual([])
    expect(await collect(trieEntries(store, EMPTY_ROOT))).toEqual([])
    expect(await trieGet(store, EMPTY_ROOT, Uint8Array.of(1))).toBeNull()
    expect((await checkTrieComplete(store, EMPTY_ROOT)).complete).toBe(true)
  })

  it('rejects a root that is not 32 bytes', async () => {
    const store = new MemoryStore()
    await expect(trieGet(store, new Uint8Array(31), Uint8Array.of(1))).rejects.toThrow(InvalidInputError)
    await expect(collect(walkTrie(store, new Uint8Array(33)))).rejects.toThrow(InvalidInputError)
  })
})

describe('trieEntries: keys are whole bytes', () => {
  it('refuses a value at a path of an odd number of nibbles, after yielding the entries before it', async () => {
    // A branch with two embedded leaves: 0xaa at nibbles 1,2 (key 0x12) and 0xbb at nibbles 3,4,5, which no key
    // of whole bytes reaches. Every node is well formed; only the path is not a key.
    const leaf = (nibbles: number[], value: number) => [encodeCompact(Uint8Array.from(nibbles), true), Uint8Array.of(value)]
    const children: Parameters<typeof RLP.encode>[0][] = Array.from({ length: 17 }, () => new Uint8Array(0))
    children[1] = leaf([2], 0xaa)
    children[3] = leaf([4, 5], 0xbb)
    const blob = RLP.encode(children)
    const root = keccak256(blob)
    const store = new MemoryStore()
    await store.put(root, blob)
    expect((await collect(walkTrie(store, root))).map((n) => n.node.kind)).toEqual(['branch'])

    const seen: string[] = []
    const err = await (async () => {
      for await (const e of trieEntries(store, root)) seen.push(`${toHex(e.key)}=${toHex(e.value)}`)
    })().catch((e: unknown) => e)
    expect(seen).toEqual(['0x12=0xaa'])
    expect(err).toBeInstanceOf(InvalidNodeError)
    expect((err as Error).message).toBe('value at a path of 3 nibbles, not whole bytes')
  })
})

describe('trieEntries ordering: ethereum/tests trietestnextprev.json', () => {
  // The file tests an iterator's prev/next around probe keys. Its keys have "empty values implied", which
  // an MPT cannot store, so each key is stored with itself as value; prev/next then come from the order
  // trieEntries yields, which checks that the order is byte order, prefixes first.
  const { basic } = readVector<{ basic: { in: string[]; tests: [string, string, string][] } }>(
    'trietests/trietestnextprev.json'
  )
  it('gives the expected neighbours of every probe', async () => {
    const utf8 = new TextEncoder()
    const store = new MemoryStore()
    const sorted = basic.in.slice().sort()
    const { root } = await importSorted(
      store,
      sorted.map((k) => [utf8.encode(k), utf8.encode(k)] as [Uint8Array, Uint8Array])
    )
    const keys = (await collect(trieEntries(store, root))).map((e) => new TextDecoder().decode(e.key))
    expect(keys).toEqual(sorted)
    for (const [probe, prev, next] of basic.tests) {
      const p = utf8.encode(probe)
      const before = keys.filter((k) => compareBytes(utf8.encode(k), p) < 0)
      const after = keys.filter((k) => compareBytes(utf8.encode(k), p) > 0)
      expect([before.at(-1) ?? '', after[0] ?? ''], probe).toEqual([prev, next])
    }
  })
})

describe('damaged stores', () => {
  const entries = randomEntries(new SeededRandom(31), SHAPES[0]!, 400)

  async function fixture(): Promise<{ store: MemoryStore; root: Uint8Array; nodes: WalkedNode[] }> {
    const store = new MemoryStore()
    const { root } = await importSorted(store, entries)
    return { store, root, nodes: await collect(walkTrie(store, root)) }
  }

  it('reports a deleted node, the nodes above it, and fails lookups below it only', async () => {
    const prng = new SeededRandom(32)
    for (let round = 0; round < 5; round++) {
      const { store, root, nodes } = await fixture()
      const victim = nodes[1 + prng.int(nodes.length - 1)]!
      await store.del(victim.hash)
      const ancestors = nodes.filter((n) => n !== victim && startsWith(victim.path, n.path)).map((n) => toHex(n.hash))

      const report = await checkTrieComplete(store, root)
      expect(report.complete).toBe(false)
      expect(report.missing.map(toHex)).toEqual([toHex(victim.hash)])
      expect(report.incomplete.map(toHex).sort()).toEqual(ancestors.sort())
      expect(report.nodes).toBe(nodes.filter((n) => !startsWith(n.path, victim.path)).length)

      const stored = [...store.keys()].map((k) => fromHex(k))
      const storeReport = await checkStoredSubtries(store, stored)
      expect(storeReport.missing.map(toHex)).toEqual([toHex(victim.hash)])
      expect(storeReport.incomplete.map(toHex).sort()).toEqual(ancestors.sort())

      let below = 0
      for (const [key, value] of entries) {
        if (startsWith(bytesToNibbles(key), victim.path)) {
          below++
          const err = await trieGet(store, root, key).catch((e: unknown) => e)
          expect(err).toBeInstanceOf(MissingNodeError)
          expect(toHex((err as MissingNodeError).hash)).toBe(toHex(victim.hash))
        } else {
          expect(toHex((await trieGet(store, root, key))!)).toBe(toHex(value))
        }
      }
      expect(below).toBeGreaterThan(0)

      // The walk yields everything before the gap, then throws.
      const seen: string[] = []
      const walkErr = await (async () => {
        for await (const e of trieEntries(store, root)) seen.push(toHex(e.key))
      })().catch((e: unknown) => e)
      expect(walkErr).toBeInstanceOf(MissingNodeError)
      const beforeGap = entries.filter(([k]) => compareBytes(bytesToNibbles(k), victim.path) < 0)
      expect(seen).toEqual(beforeGap.map(([k]) => toHex(k)))
    }
  })

  it('reports a missing root', async () => {
    const { store, root } = await fixture()
    await store.del(root)
    expect(await checkTrieComplete(store, root)).toEqual({ complete: false, nodes: 0, missing: [root], incomplete: [] })
    await expect(trieGet(store, root, entries[0]![0])).rejects.toThrow(MissingNodeError)
    await expect(collect(walkTrie(store, root))).rejects.toThrow(MissingNodeError)
  })

  it('refuses a node whose bytes do not hash to its key, even when they decode', async () => {
    const prng = new SeededRandom(33)
    const { store, root, nodes } = await fixture()
    const leaves = nodes.filter((n) => n.node.kind === 'leaf')
    const victim = leaves[prng.int(leaves.length)]!
    const corrupt = victim.blob.slice()
    corrupt[corrupt.length - 1]! ^= 1 // a leaf's last byte is in its value: the node still decodes
    expect(decodeNode(corrupt).kind).toBe('leaf')
    expect(keccak256(corrupt)).not.toEqual(victim.hash)
    await store.put(victim.hash, corrupt)
    await expect(collect(walkTrie(store, root))).rejects.toThrow(InvalidNodeError)
    await expect(checkTrieComplete(store, root)).rejects.toThrow(InvalidNodeError)
    const key = entries.find(([k]) => startsWith(bytesToNibbles(k), victim.path))![0]
    await expect(trieGet(store, root, key)).rejects.toThrow(InvalidNodeError)
    // Unverified, the walk reads what is stored: its caller checks the result another way.
    const read = await collect(trieEntries(store, root, { verify: false }))
    expect(read).toHaveLength(entries.length)
    expect(read.filter((e, i) => toHex(e.value) !== toHex(entries[i]![1]))).toHaveLength(1)
  })

  it('stops a walk when its signal is aborted', async () => {
    const { store, root } = await fixture()
    const controller = new AbortController()
    const walked = (async () => {
      let n = 0
      for await (const _ of walkTrie(store, root, { signal: controller.signal })) if (++n === 10) controller.abort()
    })()
    await expect(walked).rejects.toThrow()
    await expect(checkTrieComplete(store, root, { signal: AbortSignal.abort() })).rejects.toThrow()
  })
})
