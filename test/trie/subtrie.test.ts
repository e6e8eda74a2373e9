import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/errors.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { encodeCompact } from '../../src/trie/nibbles.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import { decodeNode, nodeChildren } from '../../src/trie/node.js'
import { readSubtriesLeaves, rebuildSubtrie } from '../../src/trie/subtrie.js'
import { walkTrie } from '../../src/trie/walk.js'
import { compareBytes, equalBytes } from '../../src/util/bytes.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { encodeRlpStrings } from '../../src/util/rlp-write.js'
import { randomEntries, SHAPES } from './random-tries.js'

/** `readSubtriesLeaves` of one subtrie: its leaves list, or null. */
async function readSubtrieLeaves(store: MemoryStore, rootBlob: Uint8Array, maxBytes: number, maxReadBytes: number) {
  return (await readSubtriesLeaves(store, [rootBlob], maxBytes, maxReadBytes)).leaves[0]!
}

/** The leaves list's payload span, as a reply hands it to `rebuildSubtrie`. */
function rebuild(rlp: Uint8Array): ReturnType<typeof rebuildSubtrie> {
  const header = rlp[0]! <= 0xf7 ? 1 : 1 + rlp[0]! - 0xf7
  return rebuildSubtrie(rlp, header, rlp.length)
}

describe('subtries sent as their leaves', () => {
  for (const shape of SHAPES) {
    it(`rebuilds every node's subtrie from its leaves, node for node: ${shape.name}`, async () => {
      const store = new MemoryStore()
      const { root } = await importSorted(store, randomEntries(new Prng(7), shape, 400))
      let checked = 0
      for await (const { hash, blob } of walkTrie(store, root)) {
        const leaves = await readSubtrieLeaves(store, blob, 1 << 24, 1 << 24)
        expect(leaves, toHex(hash)).not.toBeNull()
        const rebuilt = rebuild(leaves!.rlp)
        expect(toHex(rebuilt.hash)).toBe(toHex(hash))
        expect(equalBytes(rebuilt.blob, blob)).toBe(true)
        // Every node below is the stored one, under its own hash.
        let bytes = blob.length
        for (let i = 0; i < rebuilt.hashes.length; i++) {
          const stored = await store.get(rebuilt.hashes[i]!)
          expect(stored !== undefined && equalBytes(stored, rebuilt.blobs[i]!)).toBe(true)
          expect(toHex(keccak256(rebuilt.blobs[i]!))).toBe(toHex(rebuilt.hashes[i]!))
          bytes += rebuilt.blobs[i]!.length
        }
        expect(rebuilt.bytes).toBe(bytes)
        checked++
      }
      expect(checked).toBeGreaterThan(0)
    })
  }

  it('gives no leaves for a subtrie over its byte or read limit, or with a node missing', async () => {
    const store = new MemoryStore()
    const { root } = await importSorted(store, randomEntries(new Prng(3), SHAPES[0]!, 300))
    const rootBlob = (await store.get(root))!
    let below = 0
    for await (const { hash, blob } of walkTrie(store, root)) if (!equalBytes(hash, root)) below += blob.length
    const size = (await readSubtrieLeaves(store, rootBlob, 1 << 24, 1 << 24))!.rlp.length
    expect(await readSubtrieLeaves(store, rootBlob, size, 1 << 24)).not.toBeNull()
    expect(await readSubtrieLeaves(store, rootBlob, size - 1, 1 << 24)).toBeNull()
    expect(await readSubtrieLeaves(store, rootBlob, 1 << 24, below)).not.toBeNull()
    expect(await readSubtrieLeaves(store, rootBlob, 1 << 24, below - 1)).toBeNull()
    // One node gone below the root.
    let victim: Uint8Array | undefined
    for await (const { hash } of walkTrie(store, root)) if (!equalBytes(hash, root)) victim = hash
    await store.batch([{ type: 'del', key: victim! }])
    expect(await readSubtrieLeaves(store, rootBlob, 1 << 24, 1 << 24)).toBeNull()
  })

  it('reads many subtries a level at a time, the last ones giving way to the read budget', async () => {
    const store = new MemoryStore()
    const { root } = await importSorted(store, randomEntries(new Prng(4), SHAPES[0]!, 2000))
    const children = nodeChildren(decodeNode((await store.get(root))!), new Uint8Array(0), false).children
    const blobs = (await store.getMany(children.map((c) => c.hash))) as Uint8Array[]
    let calls = 0
    // A store that knows its largest value, as `LevelStore` and `MemoryStore` do: a read asks for as many nodes as
    // fit the bound at that size.
    const counting = {
      getMany: (keys: Uint8Array[]) => {
        calls++
        return store.getMany(keys)
      },
      largestValueBytes: () => store.largestValueBytes()
    }
    const all = await readSubtriesLeaves(counting, blobs, 1 << 24, 1 << 24)
    expect(all.leaves.every((l) => l !== null)).toBe(true)
    // 2,000 keys: some 3 levels below the root's children, each read in one call (under 1,024 nodes a level).
    expect(calls).toBeLessThanOrEqual(5)
    for (let i = 0; i < blobs.length; i++) {
      expect(toHex(rebuild(all.leaves[i]!.rlp).hash)).toBe(toHex(children[i]!.hash))
    }
    // A budget of half of what lies below them: a first part whole, the rest given up.
    let below = 0
    for (const child of children) for await (const { hash, blob } of walkTrie(store, child.hash)) if (!equalBytes(hash, child.hash)) below += blob.length
    const half = await readSubtriesLeaves(store, blobs, 1 << 24, Math.floor(below / 2))
    const kept = half.leaves.indexOf(null)
    expect(kept).toBeGreaterThan(0)
    expect(half.leaves.slice(kept).every((l) => l === null)).toBe(true)
    expect(half.leaves.slice(0, kept).every((l) => l !== null)).toBe(true)
  })

  it('reads past its read bound by at most one of the largest nodes, however large the values (adversarial)', async () => {
    // 300 leaves of 20 kB below the root: 6 MB, against a bound of 100 kB. Read 1,024 nodes at a time, one request
    // for the root's subtrie of a trie of 1 MB values had read 741 MB (an outside tester's).
    const store = new MemoryStore()
    const prng = new Prng(11)
    const entries = Array.from({ length: 300 }, () => [prng.bytes(32), prng.bytes(20_000)] as [Uint8Array, Uint8Array])
    entries.sort((a, b) => compareBytes(a[0], b[0]))
    const { root } = await importSorted(store, entries)
    let readBytes = 0
    const counting = {
      getMany: async (keys: Uint8Array[]) => {
        const values = await store.getMany(keys)
        for (const v of values) readBytes += v?.length ?? 0
        return values
      },
      largestValueBytes: () => store.largestValueBytes()
    }
    const bound = 100_000
    const read = await readSubtriesLeaves(counting, [(await store.get(root))!], 1 << 24, bound)
    expect(read.leaves[0]).toBeNull()
    expect(read.read).toBe(readBytes)
    expect(readBytes).toBeLessThanOrEqual(bound + store.largestValueBytes())
    expect(readBytes).toBeGreaterThan(bound / 2)
  })

  it('refuses leaves out of order, repeated, empty, without the leaf flag, or none', () => {
    const path = (hex: number[]): Uint8Array => encodeCompact(new Uint8Array(hex), true)
    const v = new Uint8Array([1, 2, 3])
    const cases: [string, Uint8Array[]][] = [
      ['out of order', [path([2]), v, path([1]), v]],
      ['repeated', [path([1, 2]), v, path([1, 2]), v]],
      ['empty value', [path([1]), new Uint8Array(0)]],
      ['no leaf flag', [encodeCompact(new Uint8Array([1]), false), v]],
      ['a path without a value', [path([1])]],
      ['none', []]
    ]
    for (const [why, items] of cases) expect(() => rebuild(encodeRlpStrings(items)), why).toThrow(ProtocolError)
    // The same leaves in order build.
    expect(rebuild(encodeRlpStrings([path([1]), v, path([2]), v])).hash).toHaveLength(32)
  })

  it('gives another hash for leaves changed in any way', async () => {
    const store = new MemoryStore()
    const { root } = await importSorted(store, randomEntries(new Prng(5), SHAPES[3]!, 200))
    const rlp = (await readSubtrieLeaves(store, (await store.get(root))!, 1 << 24, 1 << 24))!.rlp
    const header = rlp[0]! <= 0xf7 ? 1 : 1 + rlp[0]! - 0xf7
    const prng = new Prng(9)
    let changed = 0
    for (let n = 0; n < 200; n++) {
      const forged = rlp.slice()
      const at = header + prng.int(rlp.length - header)
      forged[at]! ^= 1 + prng.int(255)
      let hash: Uint8Array
      try {
        hash = rebuild(forged).hash
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError)
        continue
      }
      expect(toHex(hash)).not.toBe(toHex(root))
      changed++
    }
    expect(changed).toBeGreaterThan(20)
  })
})
