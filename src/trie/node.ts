import { RLP } from '@ethereumjs/rlp'
import { InvalidNodeError } from '../errors.js'
import { rlpDepthWithin } from '../util/rlp-depth.js'
import { type RlpSpan, readRlpSpan, readRlpSpanInto } from '../util/rlp-span.js'
import { appendNibble, checkCompact, concatNibbles, decodeCompact, type Nibbles } from './nibbles.js'

/**
 * The trie node codec the syncer, proofs and walkers share. A node is stored under keccak256 of its RLP
 * encoding; a child whose RLP is shorter than 32 bytes is embedded in its parent instead of referenced.
 */

/** A decoded RLP item: bytes or a list of items. */
export type RlpItem = Uint8Array | RlpItem[]

/** How a node refers to a child: by hash, or by embedding the (short) child node itself. */
export type ChildRef = { kind: 'hash'; hash: Uint8Array } | { kind: 'embedded'; node: TrieNode }

export interface BranchNode {
  kind: 'branch'
  /** 16 slots, `null` where there is no child. */
  children: (ChildRef | null)[]
  /** The value of a key that ends at this branch, or `null`. */
  value: Uint8Array | null
}

export interface ExtensionNode {
  kind: 'extension'
  path: Nibbles
  child: ChildRef
}

export interface LeafNode {
  kind: 'leaf'
  /** The rest of the key below this node's position. */
  path: Nibbles
  value: Uint8Array
}

export type TrieNode = BranchNode | ExtensionNode | LeafNode

/** Largest node blob accepted anywhere: a full branch of 16 hashes plus a value stays far below this. */
export const MAX_NODE_BYTES = 1 << 20

/** Deepest list nesting a node blob may have: a branch holding embedded nodes holding embedded nodes. */
const MAX_NODE_DEPTH = 16

/**
 * Decodes a node blob (the bytes whose keccak-256 is the node's hash). Throws `InvalidNodeError`. The byte
 * fields of the result (hashes, values) are views into `blob`: change neither while the node is in use.
 *
 * The RLP is read in place, item header by item header, with the same canonical-form rules as
 * `@ethereumjs/rlp` (which `decodeNodeReference` uses, and the tests compare against on random and mutated
 * blobs): no copies of list payloads, no intermediate item arrays. Decoding is a third of verifying a node
 * and most of the garbage a sync makes, which the generic decoder's copies were.
 */
export function decodeNode(blob: Uint8Array): TrieNode {
  if (blob.length === 0) throw new InvalidNodeError('empty node blob')
  if (blob.length > MAX_NODE_BYTES) throw new InvalidNodeError(`node blob of ${blob.length} bytes is too large`)
  const header = readHeader(blob, 0, blob.length)
  if (header.end !== blob.length) throw badRlp('bytes after the node')
  return nodeAt(blob, header, 1)
}

/** `decodeNode` by way of `@ethereumjs/rlp` and `nodeFromRlp`: the reference `decodeNode` is tested against. */
export function decodeNodeReference(blob: Uint8Array): TrieNode {
  if (blob.length === 0) throw new InvalidNodeError('empty node blob')
  if (blob.length > MAX_NODE_BYTES) throw new InvalidNodeError(`node blob of ${blob.length} bytes is too large`)
  // A node nests embedded children, each under 32 bytes: a few levels at most.
  if (!rlpDepthWithin(blob, MAX_NODE_DEPTH)) throw new InvalidNodeError(`node lists nested deeper than ${MAX_NODE_DEPTH}`)
  let item: RlpItem
  try {
    item = RLP.decode(blob) as RlpItem
  } catch (err) {
    throw new InvalidNodeError('node is not valid RLP', { cause: err })
  }
  return nodeFromRlp(item)
}

function badRlp(why: string): InvalidNodeError {
  return new InvalidNodeError('node is not valid RLP', { cause: new Error(why) })
}

function readHeader(bytes: Uint8Array, at: number, limit: number): RlpSpan {
  return readRlpSpan(bytes, at, limit, badRlp)
}

/** The node encoded by list `span` of `bytes`, `depth` lists deep. */
function nodeAt(bytes: Uint8Array, span: RlpSpan, depth: number): TrieNode {
  if (!span.list) throw new InvalidNodeError('node is an RLP string, not a list')
  if (depth > MAX_NODE_DEPTH) throw new InvalidNodeError(`node lists nested deeper than ${MAX_NODE_DEPTH}`)
  const items: RlpSpan[] = []
  for (let pos = span.start; pos < span.end; ) {
    // A list item is read when its node is: every place a list may stand (an embedded child) decodes it,
    // and every other place refuses a list.
    const item = readHeader(bytes, pos, span.end)
    items.push(item)
    pos = item.end
  }
  if (items.length === 17) {
    const children: (ChildRef | null)[] = new Array(16)
    for (let i = 0; i < 16; i++) children[i] = childAt(bytes, items[i]!, true, depth)
    const v = items[16]!
    if (v.list) throw new InvalidNodeError('branch value is a list')
    return { kind: 'branch', children, value: v.end === v.start ? null : bytes.subarray(v.start, v.end) }
  }
  if (items.length === 2) {
    const [encPath, second] = items as [RlpSpan, RlpSpan]
    if (encPath.list) throw new InvalidNodeError('node path is a list')
    const { path, isLeaf } = decodeCompact(bytes.subarray(encPath.start, encPath.end))
    if (isLeaf) {
      if (second.list) throw new InvalidNodeError('leaf value is a list')
      return { kind: 'leaf', path, value: bytes.subarray(second.start, second.end) }
    }
    if (path.length === 0) throw new InvalidNodeError('extension with an empty path')
    const child = childAt(bytes, second, false, depth)
    if (child === null) throw new InvalidNodeError('extension without a child')
    return { kind: 'extension', path, child }
  }
  throw new InvalidNodeError(`node is a list of ${items.length} items, expected 2 or 17`)
}

function childAt(bytes: Uint8Array, item: RlpSpan, mayBeEmpty: boolean, depth: number): ChildRef | null {
  if (item.list) {
    // An embedded child must be one that really encodes below 32 bytes; anything longer must be referenced
    // by hash, or two different blobs could describe the same trie. The encoding is canonical (checked), so
    // its length is the span's.
    if (item.end - item.at >= 32) throw new InvalidNodeError('embedded child of 32 bytes or more')
    return { kind: 'embedded', node: nodeAt(bytes, item, depth + 1) }
  }
  const length = item.end - item.start
  if (length === 32) return { kind: 'hash', hash: bytes.subarray(item.start, item.end) }
  if (length === 0 && mayBeEmpty) return null
  throw new InvalidNodeError(`child reference of ${length} bytes`)
}

/** Interprets an already RLP-decoded item as a node (used for embedded children too). */
export function nodeFromRlp(item: RlpItem): TrieNode {
  if (!Array.isArray(item)) throw new InvalidNodeError('node is an RLP string, not a list')
  if (item.length === 17) {
    const children: (ChildRef | null)[] = new Array(16)
    for (let i = 0; i < 16; i++) children[i] = childRef(item[i]!, true)
    const v = item[16]!
    if (Array.isArray(v)) throw new InvalidNodeError('branch value is a list')
    return { kind: 'branch', children, value: v.length === 0 ? null : v }
  }
  if (item.length === 2) {
    const [encPath, second] = item as [RlpItem, RlpItem]
    if (Array.isArray(encPath)) throw new InvalidNodeError('node path is a list')
    const { path, isLeaf } = decodeCompact(encPath)
    if (isLeaf) {
      if (Array.isArray(second)) throw new InvalidNodeError('leaf value is a list')
      return { kind: 'leaf', path, value: second }
    }
    if (path.length === 0) throw new InvalidNodeError('extension with an empty path')
    const child = childRef(second, false)
    if (child === null) throw new InvalidNodeError('extension without a child')
    return { kind: 'extension', path, child }
  }
  throw new InvalidNodeError(`node is a list of ${item.length} items, expected 2 or 17`)
}

function childRef(item: RlpItem, mayBeEmpty: boolean): ChildRef | null {
  if (Array.isArray(item)) {
    // An embedded child must be one that really encodes below 32 bytes; anything longer must be referenced
    // by hash, or two different blobs could describe the same trie.
    if (RLP.encode(item).length >= 32) throw new InvalidNodeError('embedded child of 32 bytes or more')
    return { kind: 'embedded', node: nodeFromRlp(item) }
  }
  if (item.length === 32) return { kind: 'hash', hash: item }
  if (item.length === 0 && mayBeEmpty) return null
  throw new InvalidNodeError(`child reference of ${item.length} bytes`)
}

/** A child that must be fetched separately, with the full nibble path from the trie root to it. */
export interface HashChild {
  hash: Uint8Array
  path: Nibbles
}

/** A value found in a node (or its embedded children), with the full nibble path of its key. */
export interface NodeLeaf {
  path: Nibbles
  value: Uint8Array
}

/**
 * Lists what a node at `path` holds: the hash-referenced children to fetch and the values it stores,
 * descending into embedded children (which are part of this node's blob and are never fetched).
 * Children come in ascending path order.
 */
export function nodeChildren(node: TrieNode, path: Nibbles, withLeaves = true): { children: HashChild[]; leaves: NodeLeaf[] } {
  const children: HashChild[] = []
  const leaves: NodeLeaf[] = []
  collect(node, path, children, withLeaves ? leaves : null)
  return { children, leaves }
}

/** `leaves` null: the caller wants none, so no leaf path is built (a sync with no `onLeaf`, most nodes being leaves). */
function collect(node: TrieNode, path: Nibbles, children: HashChild[], leaves: NodeLeaf[] | null): void {
  switch (node.kind) {
    case 'leaf':
      leaves?.push({ path: concatNibbles(path, node.path), value: node.value })
      return
    case 'extension':
      collectRef(node.child, concatNibbles(path, node.path), children, leaves)
      return
    case 'branch':
      if (node.value !== null) leaves?.push({ path, value: node.value })
      for (let i = 0; i < 16; i++) {
        const ref = node.children[i]
        if (ref == null) continue
        collectRef(ref, appendNibble(path, i), children, leaves)
      }
      return
    default: {
      const exhaustive: never = node
      throw new InvalidNodeError(`unknown node kind ${String(exhaustive)}`)
    }
  }
}

function collectRef(ref: ChildRef, path: Nibbles, children: HashChild[], leaves: NodeLeaf[] | null): void {
  if (ref.kind === 'hash') children.push({ hash: ref.hash, path })
  else collect(ref.node, path, children, leaves)
}

/**
 * What `scanNode` found in a node blob: its hash-referenced children, `count` of them (at most 16, in
 * ascending path order). Child `k`'s hash is the 32 bytes of the blob from `hashAt[k]`; its path below the
 * node is nibble `nibble[k]` of a branch, or (`nibble[k]` -1) the extension's compact path, bytes
 * `[extStart, extEnd)` of the blob. One scan is reused from node to node: it holds only the last node's children.
 */
export class NodeScan {
  count = 0
  readonly hashAt = new Int32Array(16)
  readonly nibble = new Int8Array(16)
  extStart = 0
  extEnd = 0
  /** A reused span for the RLP reader. */
  readonly span: RlpSpan = { list: false, at: 0, start: 0, end: 0 }

  /** Child `k`'s full path from the trie root, for a node at `path` whose blob was scanned last. */
  childPath(blob: Uint8Array, k: number, path: Nibbles): Nibbles {
    const nibble = this.nibble[k]!
    if (nibble >= 0) return appendNibble(path, nibble)
    return concatNibbles(path, decodeCompact(blob.subarray(this.extStart, this.extEnd)).path)
  }
}

/**
 * Checks that `blob` is a node exactly as `decodeNode` does (it accepts and refuses the same blobs, which the
 * tests check on real, random and damaged ones) and finds its hash-referenced children, without building the
 * node: no object per item, child or value. Returns `scan.count`. Throws `InvalidNodeError`.
 *
 * The trie sync's hot path: building each node to list its children made half the garbage of a sync. A child
 * embedded in the node is under 32 bytes, too short to reference another by hash, so every hash-referenced
 * child hangs from the node's own list.
 */
export function scanNode(blob: Uint8Array, scan: NodeScan): number {
  if (blob.length === 0) throw new InvalidNodeError('empty node blob')
  if (blob.length > MAX_NODE_BYTES) throw new InvalidNodeError(`node blob of ${blob.length} bytes is too large`)
  const span = scan.span
  readRlpSpanInto(span, blob, 0, blob.length, badRlp)
  if (span.end !== blob.length) throw badRlp('bytes after the node')
  scan.count = 0
  scanList(blob, span, 1, scan)
  return scan.count
}

/**
 * Checks the node that list `span` of `bytes` encodes, `depth` lists deep, as `nodeAt` does; records its
 * hash-referenced children in `scan` when given (the top node), else only checks (an embedded child). `span`
 * is reused, so it is read before anything else moves it.
 */
function scanList(bytes: Uint8Array, span: RlpSpan, depth: number, scan: NodeScan | null): void {
  if (!span.list) throw new InvalidNodeError('node is an RLP string, not a list')
  if (depth > MAX_NODE_DEPTH) throw new InvalidNodeError(`node lists nested deeper than ${MAX_NODE_DEPTH}`)
  const start = span.start
  const end = span.end
  // Every item header first, as `nodeAt` reads them before it looks at their number.
  let items = 0
  for (let pos = start; pos < end; items++) {
    readRlpSpanInto(span, bytes, pos, end, badRlp)
    pos = span.end
  }
  if (items === 17) {
    let pos = start
    for (let i = 0; i < 16; i++) {
      readRlpSpanInto(span, bytes, pos, end, badRlp)
      pos = span.end
      scanChild(bytes, span, true, depth, scan, i)
    }
    readRlpSpanInto(span, bytes, pos, end, badRlp)
    if (span.list) throw new InvalidNodeError('branch value is a list')
    return
  }
  if (items === 2) {
    readRlpSpanInto(span, bytes, start, end, badRlp)
    if (span.list) throw new InvalidNodeError('node path is a list')
    const pathStart = span.start
    const pathEnd = span.end
    const isLeaf = checkCompact(bytes, pathStart, pathEnd)
    readRlpSpanInto(span, bytes, pathEnd, end, badRlp)
    if (isLeaf) {
      if (span.list) throw new InvalidNodeError('leaf value is a list')
      return
    }
    if (pathEnd - pathStart === 1 && (bytes[pathStart]! & 0x10) === 0) throw new InvalidNodeError('extension with an empty path')
    if (scan !== null) {
      scan.extStart = pathStart
      scan.extEnd = pathEnd
    }
    scanChild(bytes, span, false, depth, scan, -1)
    return
  }
  throw new InvalidNodeError(`node is a list of ${items} items, expected 2 or 17`)
}

/** Checks child reference `span` as `childAt` does; records a hash in `scan` (when given) under `nibble`. */
function scanChild(bytes: Uint8Array, span: RlpSpan, mayBeEmpty: boolean, depth: number, scan: NodeScan | null, nibble: number): void {
  if (span.list) {
    if (span.end - span.at >= 32) throw new InvalidNodeError('embedded child of 32 bytes or more')
    scanList(bytes, span, depth + 1, null)
    return
  }
  const length = span.end - span.start
  if (length === 32) {
    if (scan !== null) {
      scan.hashAt[scan.count] = span.start
      scan.nibble[scan.count] = nibble
      scan.count++
    }
    return
  }
  if (length === 0 && mayBeEmpty) return
  throw new InvalidNodeError(`child reference of ${length} bytes`)
}
