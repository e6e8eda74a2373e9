import { describe, expect, it } from 'vitest'
import type { BatchOp } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { EMPTY_ROOT } from '../../src/trie/keccak.js'
import { type NodeSink, StackTrie } from '../../src/trie/stack-trie.js'
import { checkTrieComplete } from '../../src/trie/walk.js'
import { uint64BE } from '../../src/util/bytes.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { randomEntries, SHAPES } from './random-tries.js'

function rootOf(entries: readonly (readonly [Uint8Array, Uint8Array])[]): Uint8Array {
  const trie = new StackTrie()
  for (const [key, value] of entries) trie.insert(key, value)
  return trie.root()
}

/** A sink that records every node as a store write, to be applied to a `MemoryStore` in one batch. */
function recorder(): { sink: NodeSink; ops: BatchOp[] } {
  const ops: BatchOp[] = []
  return { ops, sink: (hash, blob) => ops.push({ type: 'put', key: hash.slice(), value: blob.slice() }) }
}

describe('StackTrie.peekRoot', () => {
  it('is EMPTY_ROOT before any key, and emits nothing', () => {
    const { sink, ops } = recorder()
    const trie = new StackTrie(sink)
    expect(toHex(trie.peekRoot())).toBe(toHex(EMPTY_ROOT))
    expect(ops).toHaveLength(0)
  })

  for (const [s, shape] of SHAPES.entries()) {
    it(`after every prefix equals a fresh trie's root, the store then holding it whole: ${shape.name}`, async () => {
      const prng = new Prng(700 + s)
      const entries = randomEntries(prng, shape, 150)
      const { sink, ops } = recorder()
      const trie = new StackTrie(sink)
      const store = new MemoryStore()
      for (let i = 0; i < entries.length; i++) {
        trie.insert(entries[i]![0], entries[i]![1])
        const peeked = trie.peekRoot()
        expect(toHex(peeked), `${i + 1} keys`).toBe(toHex(rootOf(entries.slice(0, i + 1))))
        await store.batch(ops.splice(0))
        const check = await checkTrieComplete(store, peeked)
        expect(check.complete, `${i + 1} keys: missing ${check.missing.map(toHex).join(', ')}`).toBe(true)
      }
    })
  }

  it('leaves the open state alone: the finished trie and its emitted nodes are those of a trie never peeked', () => {
    for (const [s, shape] of SHAPES.entries()) {
      const entries = randomEntries(new Prng(800 + s), shape, 400)
      const plain = recorder()
      const reference = new StackTrie(plain.sink)
      for (const [key, value] of entries) reference.insert(key, value)
      const referenceRoot = reference.root()

      const peekedNodes = recorder()
      const own = recorder()
      const trie = new StackTrie(own.sink)
      const prng = new Prng(900 + s)
      for (const [key, value] of entries) {
        trie.insert(key, value)
        // Sometimes twice in a row: a peek must not disturb the next one either.
        for (let k = prng.int(3); k > 0; k--) trie.peekRoot(peekedNodes.sink)
      }
      expect(toHex(trie.root()), shape.name).toBe(toHex(referenceRoot))
      expect(trie.nodes, shape.name).toBe(reference.nodes)
      expect(own.ops.map((op) => toHex(op.key)), shape.name).toEqual(plain.ops.map((op) => toHex(op.key)))
    }
  })

  it('sends the spine to the given sink only, to the constructor sink by default, and counts neither', () => {
    const own = recorder()
    const other = recorder()
    const trie = new StackTrie(own.sink)
    for (let n = 0; n < 300; n++) trie.insert(uint64BE(n), new Uint8Array(40).fill(n & 0xff))
    const closed = own.ops.length
    const nodes = trie.nodes
    const root = trie.peekRoot(other.sink)
    expect(own.ops.length).toBe(closed)
    expect(other.ops.length).toBeGreaterThan(0)
    // The last emitted node is the root itself.
    expect(toHex(other.ops.at(-1)!.key)).toBe(toHex(root))
    expect(toHex(trie.peekRoot())).toBe(toHex(root))
    expect(own.ops.length).toBe(closed + other.ops.length)
    expect(trie.nodes).toBe(nodes)
  })

  it('after root() returns that root and emits nothing', () => {
    const { sink, ops } = recorder()
    const trie = new StackTrie(sink)
    trie.insert(uint64BE(0), Uint8Array.of(1))
    trie.insert(uint64BE(1), Uint8Array.of(2))
    const root = trie.root()
    const emitted = ops.length
    expect(toHex(trie.peekRoot())).toBe(toHex(root))
    expect(ops.length).toBe(emitted)
  })

  it('roots a single key whose whole trie is one short leaf, stored under its hash', async () => {
    const { sink, ops } = recorder()
    const trie = new StackTrie(sink)
    trie.insert(uint64BE(0), Uint8Array.of(7))
    const root = trie.peekRoot()
    const store = new MemoryStore()
    await store.batch(ops)
    expect((await checkTrieComplete(store, root)).complete).toBe(true)
    expect(toHex(root)).toBe(toHex(rootOf([[uint64BE(0), Uint8Array.of(7)]])))
  })
})
