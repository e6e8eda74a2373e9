import { RLP } from '@ethereumjs/rlp'
import { InvalidProofError } from '../errors.js'
import { EMPTY_ROOT, keccak256 } from '../trie/keccak.js'
import { bytesToNibbles, encodeCompact } from '../trie/nibbles.js'
import type { ChildRef, TrieNode } from '../trie/node.js'
import { toHex } from '../util/hex.js'

/**
 * A small mutable trie for range-proof verification, in go-ethereum's in-memory node model: the edge proofs
 * are resolved into it, the part between the edges is cut out, the claimed leaves are inserted, and the root
 * is hashed again. Subtries the proofs do not open stay as bare hashes.
 *
 * Paths are "hex" paths as in go-ethereum: one nibble per element plus a final TERMINATOR for a whole key.
 * A short node whose key ends in TERMINATOR is a leaf and holds a value; a full node keeps the value of a key
 * ending at it in slot TERMINATOR.
 */

/** Last element of a whole key's path; slot of the value in a full node. */
export const TERMINATOR = 16

export type Path = Uint8Array

export interface FullNode {
  kind: 'full'
  /** 16 child slots and the value slot (index TERMINATOR); `null` where empty. */
  children: (PathNode | null)[]
}

export interface ShortNode {
  kind: 'short'
  key: Path
  /** A `ValueNode` when `key` ends in TERMINATOR (a leaf), a node otherwise (an extension). */
  val: PathNode
}

/** A subtrie the proof did not open, known only by its hash. */
export interface HashNode {
  kind: 'hash'
  hash: Uint8Array
}

export interface ValueNode {
  kind: 'value'
  value: Uint8Array
}

export type PathNode = FullNode | ShortNode | HashNode | ValueNode

/** The hex path of a whole key. */
export function keyToPath(key: Uint8Array): Path {
  const nibbles = bytesToNibbles(key)
  const out = new Uint8Array(nibbles.length + 1)
  out.set(nibbles, 0)
  out[nibbles.length] = TERMINATOR
  return out
}

/**
 * Sort rank of a path element. A key that ends here sorts before every key it is a prefix of, so TERMINATOR
 * ranks below nibble 0; with that, hex paths compare exactly as their keys do byte-wise. (go-ethereum
 * compares the raw elements, which is the same as long as all keys have one length, its only use.)
 */
export function rank(element: number): number {
  return element === TERMINATOR ? -1 : element
}

/** Compares two hex paths in key order: -1, 0 or 1. */
export function comparePaths(a: Path, b: Path): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = rank(a[i]!) - rank(b[i]!)
    if (d !== 0) return d < 0 ? -1 : 1
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1
}

/** Whether `path` continues with `segment` at `pos`. */
export function hasPrefixAt(path: Path, pos: number, segment: Path): boolean {
  if (path.length - pos < segment.length) return false
  for (let i = 0; i < segment.length; i++) if (path[pos + i] !== segment[i]) return false
  return true
}

/** Converts a decoded proof node (with its embedded children) into path-trie nodes. */
export function fromTrieNode(node: TrieNode): PathNode {
  switch (node.kind) {
    case 'leaf': {
      const key = new Uint8Array(node.path.length + 1)
      key.set(node.path, 0)
      key[node.path.length] = TERMINATOR
      return { kind: 'short', key, val: { kind: 'value', value: node.value } }
    }
    case 'extension':
      return { kind: 'short', key: node.path, val: fromRef(node.child) }
    case 'branch': {
      const children: (PathNode | null)[] = new Array(17).fill(null)
      for (let i = 0; i < 16; i++) {
        const ref = node.children[i]
        if (ref != null) children[i] = fromRef(ref)
      }
      if (node.value !== null) children[TERMINATOR] = { kind: 'value', value: node.value }
      return { kind: 'full', children }
    }
    default: {
      const exhaustive: never = node
      throw new InvalidProofError(`unknown node kind ${String(exhaustive)}`)
    }
  }
}

function fromRef(ref: ChildRef): PathNode {
  return ref.kind === 'hash' ? { kind: 'hash', hash: ref.hash } : fromTrieNode(ref.node)
}

/**
 * Inserts `value` at the hex path `key` below `node` and returns the node that replaces it. Running into a
 * subtrie the proofs left as a hash means the proofs do not cover the key: the range does not match them.
 */
export function insert(node: PathNode | null, key: Path, value: Uint8Array): PathNode {
  if (key.length === 0) return { kind: 'value', value }
  if (node === null) return { kind: 'short', key, val: { kind: 'value', value } }
  switch (node.kind) {
    case 'short': {
      let match = 0
      while (match < node.key.length && match < key.length && node.key[match] === key[match]) match++
      if (match === node.key.length) {
        node.val = insert(node.val, key.subarray(match), value)
        return node
      }
      // The two paths part inside this node's key: a full node takes both at the nibble where they differ.
      const full: FullNode = { kind: 'full', children: new Array(17).fill(null) }
      full.children[node.key[match]!] = shortOrSelf(node.key.subarray(match + 1), node.val)
      full.children[key[match]!] = insert(null, key.subarray(match + 1), value)
      return match === 0 ? full : { kind: 'short', key: key.subarray(0, match), val: full }
    }
    case 'full':
      node.children[key[0]!] = insert(node.children[key[0]!] ?? null, key.subarray(1), value)
      return node
    case 'hash':
      throw new InvalidProofError(`range proof does not cover the keys: subtrie ${toHex(node.hash)} is not in it`)
    case 'value':
      throw new InvalidProofError('range proof has a value where the keys need a node')
    default: {
      const exhaustive: never = node
      throw new InvalidProofError(`unknown node kind ${String(exhaustive)}`)
    }
  }
}

/** `val` reached through `key`: a short node, or `val` itself when no key is left. */
function shortOrSelf(key: Path, val: PathNode): PathNode {
  return key.length === 0 ? val : { kind: 'short', key, val }
}

/** The root hash of the trie `root` (the empty root for `null`). The root is hashed even when short. */
export function hashRoot(root: PathNode | null): Uint8Array {
  if (root === null) return EMPTY_ROOT
  return keccak256(RLP.encode(encodeNode(root)))
}

type RlpInput = Uint8Array | RlpInput[]

const EMPTY_BYTES = new Uint8Array(0)

function encodeNode(node: PathNode): RlpInput {
  switch (node.kind) {
    case 'short': {
      const isLeaf = node.key.length > 0 && node.key[node.key.length - 1] === TERMINATOR
      const nibbles = isLeaf ? node.key.subarray(0, node.key.length - 1) : node.key
      if (isLeaf !== (node.val.kind === 'value')) throw new InvalidProofError('leaf without a value or value off a leaf')
      const val = node.val.kind === 'value' ? node.val.value : childRef(node.val)
      return [encodeCompact(nibbles, isLeaf), val]
    }
    case 'full': {
      const items: RlpInput[] = new Array(17)
      for (let i = 0; i < 16; i++) {
        const child = node.children[i] ?? null
        items[i] = child === null ? EMPTY_BYTES : childRef(child)
      }
      const value = node.children[TERMINATOR] ?? null
      if (value !== null && value.kind !== 'value') throw new InvalidProofError('node in the value slot of a branch')
      items[TERMINATOR] = value === null ? EMPTY_BYTES : value.value
      return items
    }
    case 'hash':
    case 'value':
      throw new InvalidProofError(`cannot encode a ${node.kind} node on its own`)
    default: {
      const exhaustive: never = node
      throw new InvalidProofError(`unknown node kind ${String(exhaustive)}`)
    }
  }
}

/** How a parent refers to `child`: by hash, or embedded when its encoding is shorter than 32 bytes. */
function childRef(child: PathNode): RlpInput {
  if (child.kind === 'hash') return child.hash
  if (child.kind === 'value') throw new InvalidProofError('value in a child slot of a branch')
  const item = encodeNode(child)
  const encoded = RLP.encode(item)
  return encoded.length < 32 ? item : keccak256(encoded)
}
