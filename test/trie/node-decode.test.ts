import { isDeepStrictEqual } from 'node:util'
import { describe, expect, it } from 'vitest'
import { InvalidNodeError } from '../../src/errors.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import { decodeNode, decodeNodeReference, MAX_NODE_BYTES, NodeScan, nodeChildren, scanNode, type TrieNode } from '../../src/trie/node.js'
import { fromHex, toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { deeplyNested, fuzzFrame, HOSTILE_FRAMES, rlpHeader } from '../fuzz/mutate.js'
import { randomEntries, SHAPES } from './random-tries.js'

/** The outcome of one decoder on one blob: the node, or the fact that it threw `InvalidNodeError`. */
function outcome(decode: (blob: Uint8Array) => TrieNode, blob: Uint8Array): TrieNode | 'invalid' {
  try {
    return decode(blob)
  } catch (err) {
    if (err instanceof InvalidNodeError) return 'invalid'
    throw new Error(`threw ${String(err)} on ${toHex(blob)}`, { cause: err })
  }
}

const scan = new NodeScan()
/** A path the scanned children hang below, so their paths are more than their own nibbles. */
const BELOW = Uint8Array.of(3, 7)

/** `scanNode`'s children of `blob` as `nodeChildren` lists them, or the fact that it threw `InvalidNodeError`. */
function scanned(blob: Uint8Array): { hash: Uint8Array; path: Uint8Array }[] | 'invalid' {
  let count: number
  try {
    count = scanNode(blob, scan)
  } catch (err) {
    if (err instanceof InvalidNodeError) return 'invalid'
    throw new Error(`scanNode threw ${String(err)} on ${toHex(blob)}`, { cause: err })
  }
  const children = []
  for (let k = 0; k < count; k++) children.push({ hash: blob.subarray(scan.hashAt[k], scan.hashAt[k]! + 32), path: scan.childPath(blob, k, BELOW) })
  return children
}

/**
 * The two decoders agree on `blob`: the same node, byte for byte, or both refuse it; and `scanNode` accepts
 * what they accept and finds the hash-referenced children `nodeChildren` lists.
 */
/** A leaf with an empty path whose value is `length` bytes after the header `header` (canonical or not). */
function leafWithValue(header: Uint8Array, length: number): Uint8Array {
  const payload = Uint8Array.of(0x20, ...header, ...new Uint8Array(length).fill(7))
  return Uint8Array.of(...rlpHeader(0xc0, payload.length), ...payload)
}

function expectSame(blob: Uint8Array): TrieNode | 'invalid' {
  const fast = outcome(decodeNode, blob)
  const reference = outcome(decodeNodeReference, blob)
  if (!isDeepStrictEqual(fast, reference)) {
    throw new Error(`decoders differ on ${toHex(blob)}: ${JSON.stringify(fast)} against ${JSON.stringify(reference)}`)
  }
  const children = fast === 'invalid' ? 'invalid' : nodeChildren(fast, BELOW, false).children
  const scannedChildren = scanned(blob)
  if (!isDeepStrictEqual(scannedChildren, children)) {
    throw new Error(`scanNode differs on ${toHex(blob)}: ${JSON.stringify(scannedChildren)} against ${JSON.stringify(children)}`)
  }
  return fast
}

async function nodeBlobs(): Promise<Uint8Array[]> {
  const blobs: Uint8Array[] = []
  const prng = new Prng(7)
  for (const shape of SHAPES) {
    const store = new MemoryStore()
    await importSorted(store, randomEntries(prng, shape, 300))
    const keys = [...store.keys()].map((k) => fromHex(k))
    for (const blob of await store.getMany(keys)) blobs.push(blob!)
  }
  return blobs
}

describe('decodeNode and scanNode read RLP in place exactly as @ethereumjs/rlp + nodeFromRlp do', async () => {
  const blobs = await nodeBlobs()

  it('on every node of tries of every shape (embedded children, values in branches, multi-block nodes)', () => {
    expect(blobs.length).toBeGreaterThan(500)
    const kinds = new Set<string>()
    for (const blob of blobs) {
      const node = expectSame(blob)
      expect(node).not.toBe('invalid')
      if (node !== 'invalid') kinds.add(node.kind)
    }
    expect([...kinds].sort()).toEqual(['branch', 'extension', 'leaf'])
  })

  it('on 30k random and damaged blobs, and the hostile frames', () => {
    const prng = new Prng(11)
    const seeds = blobs.filter((_, i) => i % 7 === 0)
    let refused = 0
    let accepted = 0
    for (const frame of HOSTILE_FRAMES) if (expectSame(frame) === 'invalid') refused++
    for (let i = 0; i < 30_000; i++) {
      if (expectSame(fuzzFrame(prng, seeds)) === 'invalid') refused++
      else accepted++
    }
    // Both kinds of case were exercised.
    expect(refused).toBeGreaterThan(1000)
    expect(accepted).toBeGreaterThan(1000)
  })

  it('refuses non-canonical lengths, trailing bytes, deep nesting and long embedded children', () => {
    const leaf = blobs.find((b) => decodeNode(b).kind === 'leaf')!
    const cases = [
      Uint8Array.of(...leaf, 0x00), // a byte after the node
      Uint8Array.of(0xc2, 0x81, 0x05), // a single byte below 0x80 with a prefix
      Uint8Array.of(0xf8, 0x02, 0x80, 0x80), // long form for a 2-byte list
      Uint8Array.of(0xf9, 0x00, 0x02, 0x80, 0x80), // a length with a leading zero
      Uint8Array.of(...rlpHeader(0xc0, 2), 0x80), // a list running past the end
      deeplyNested(40), // far too deep for a node
      Uint8Array.of(0x83, 1, 2, 3), // a string, not a list
      Uint8Array.of(0xc3, 0x20, 0x81, 0x7f), // a leaf whose value is the highest single byte, with a prefix
      leafWithValue(Uint8Array.of(0xb8, 55), 55), // long form for a 55-byte value
      leafWithValue(Uint8Array.of(0xb9, 0x00, 64), 64), // a 64-byte value's length with a leading zero
      Uint8Array.of(0xc2, 0x40, 0x01), // compact path flag 4
      Uint8Array.of(0xc2, 0x28, 0x01) // a leaf's even path with a non-zero pad nibble
    ]
    for (const blob of cases) expect(expectSame(blob), toHex(blob)).toBe('invalid')
    // Their canonical forms are nodes.
    expect(expectSame(leafWithValue(Uint8Array.of(0xb7), 55))).not.toBe('invalid')
    expect(expectSame(leafWithValue(Uint8Array.of(0xb8, 64), 64))).not.toBe('invalid')
    expect(expectSame(Uint8Array.of(0xc2, 0x20, 0x01))).not.toBe('invalid')
    expect(expectSame(Uint8Array.of(0xc2, 0x20, 0x7f))).not.toBe('invalid')
  })

  it('decodes a node of MAX_NODE_BYTES and refuses one a byte longer', () => {
    // A leaf with an empty path: list header (4 bytes), the path (1), the value's header (4) and the value.
    const leafOf = (bytes: number): Uint8Array => {
      const value = bytes - 9
      const head = Uint8Array.of(...rlpHeader(0xc0, 5 + value), 0x20, ...rlpHeader(0x80, value))
      const blob = new Uint8Array(head.length + value).fill(7)
      blob.set(head)
      return blob
    }
    expect(leafOf(MAX_NODE_BYTES).length).toBe(MAX_NODE_BYTES)
    expect(expectSame(leafOf(MAX_NODE_BYTES))).not.toBe('invalid')
    expect(expectSame(leafOf(MAX_NODE_BYTES + 1))).toBe('invalid')
  })

  it('embeds a child encoded in 31 bytes and refuses one of 32', () => {
    // A branch whose first child is an embedded leaf [0x20 (no nibbles, leaf), value]: with a value of
    // `valueBytes`, the leaf encodes in 1 (list header) + 1 (path) + 1 + valueBytes bytes.
    const branchWithEmbedded = (valueBytes: number): Uint8Array => {
      const embedded = Uint8Array.of(...rlpHeader(0xc0, 2 + valueBytes), 0x20, ...rlpHeader(0x80, valueBytes), ...new Uint8Array(valueBytes).fill(7))
      const payload = Uint8Array.of(...embedded, ...new Uint8Array(16).fill(0x80))
      return Uint8Array.of(...rlpHeader(0xc0, payload.length), ...payload)
    }
    const fits = expectSame(branchWithEmbedded(28))
    expect(fits !== 'invalid' && fits.kind === 'branch' && fits.children[0]?.kind).toBe('embedded')
    expect(expectSame(branchWithEmbedded(29))).toBe('invalid')
  })
})
