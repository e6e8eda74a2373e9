import { ProtocolError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { compareBytes } from '../util/bytes.js'
import { type EncodedRlp, encodeRlpStrings, stringBytes } from '../util/rlp-write.js'
import { readRlpSpanInto, type RlpSpan } from '../util/rlp-span.js'
import { appendNibble, concatNibbles, encodeCompact, type Nibbles } from './nibbles.js'
import { decodeNode, MAX_NODE_BYTES, type NodeLeaf, type TrieNode } from './node.js'
import { compactItemLength, Slab, StackTrie } from './stack-trie.js'

/**
 * A subtrie sent as its leaves rather than its nodes: the RLP list `[path₁, value₁, path₂, value₂, …]`, each path
 * the hex-prefix (leaf-flagged) encoding of the leaf's nibbles below the subtrie's root, in ascending order. Trie
 * nodes encode only paths relative to their own place, so the trie of these paths (`rebuildSubtrie`) has the
 * subtrie's root hash: a client checks the whole subtrie against the hash it asked for, as it checks a node, and
 * builds its nodes itself (the branch nodes and the node hashes of a request never cross the wire).
 */

/**
 * A subtrie a nodes reply sent as its leaves: the leaves list's payload at `[start, end)` of `frame` (see
 * `rebuildSubtrie`), unverified.
 */
export class SubtrieLeaves {
  constructor(
    readonly frame: Uint8Array,
    readonly start: number,
    readonly end: number
  ) {}

  /** Bytes of the leaves list's payload. */
  get length(): number {
    return this.end - this.start
  }
}

/** A node of a nodes reply, or a subtrie sent as its leaves (only to a request that allowed them). */
export type NodesReplyItem = Uint8Array | SubtrieLeaves

/** What every rebuilt subtrie's nodes are carved from, one after another (a sync rebuilds thousands, most small). */
const slab = new Slab()

/** Hashes per `getMany` while a subtrie is read. */
const READ_CHUNK = 1024

const NO_PATH: Nibbles = new Uint8Array(0)

/** One subtrie being read by `readSubtriesLeaves`. */
interface Walk {
  leaves: NodeLeaf[]
  payload: number
  /** The nodes of the level being read, their paths below the subtrie's root, and whether each must be a branch. */
  level: { blob: Uint8Array; path: Nibbles; branch: boolean }[]
  /** Bytes of the nodes read below its root. */
  read: number
  alive: boolean
}

export interface SubtriesRead {
  /** Per root, in the order given: its leaves list, whole, or null (see `readSubtriesLeaves`). */
  leaves: (EncodedRlp | null)[]
  /** Nodes read below the roots, and their bytes. */
  nodes: number
  read: number
}

/**
 * Reads the subtries below the nodes `roots` from `store` and encodes each one's leaves as above, all of them
 * together level by level (one store round trip a level, not one a level and subtrie). A subtrie's leaves are
 * null when the store lacks one of its nodes, or holds one that does not decode or that no canonical trie has
 * (`collect`: a client would rebuild its leaves to another hash), or when they would pass `maxBytes`; and for the
 * last subtries (in the order given) when the nodes held below the roots would pass `maxReadBytes` (checked
 * before a level is read, each of its nodes counted at 32 bytes, and after each read), for every one once those
 * read in all pass twice that. Each read asks for only as many nodes as fit what may still be held, each counted
 * at the largest value the store may hold (`KVStore.largestValueBytes`, else `MAX_NODE_BYTES`): 1,024 nodes at
 * once let an outside tester's one request read 741 MB of a trie of 1 MB values past a 2 MiB bound.
 */
export async function readSubtriesLeaves(
  store: Pick<KVStore, 'getMany' | 'largestValueBytes'>,
  roots: Uint8Array[],
  maxBytes: number,
  maxReadBytes: number
): Promise<SubtriesRead> {
  const walks: Walk[] = roots.map((blob) => ({ leaves: [], payload: 0, level: [{ blob, path: NO_PATH, branch: false }], read: 0, alive: true }))
  const largest = Math.max(32, store.largestValueBytes?.() ?? MAX_NODE_BYTES)
  // `held`: bytes of the nodes read below the subtries still being read; `spent`: below all of them.
  let held = 0
  let spent = 0
  let nodes = 0
  const drop = (walk: Walk): void => {
    if (!walk.alive) return
    walk.alive = false
    walk.leaves = []
    walk.level = []
    held -= walk.read
  }
  for (;;) {
    // This level's nodes: their leaves, and their children to read.
    const children: Child[] = []
    const owners: number[] = []
    for (let w = 0; w < walks.length; w++) {
      const walk = walks[w]!
      if (!walk.alive) continue
      const first = children.length
      for (const { blob, path, branch } of walk.level) {
        const leavesBefore = walk.leaves.length
        let canonical: boolean
        try {
          // A node under 32 bytes is embedded in a canonical trie, never stored under its hash.
          canonical = blob.length >= 32 && collect(decodeNode(blob), path, branch, children, walk.leaves)
        } catch {
          canonical = false
        }
        if (!canonical) {
          drop(walk)
          break
        }
        for (let i = leavesBefore; i < walk.leaves.length; i++) {
          const leaf = walk.leaves[i]!
          walk.payload += compactItemLength(leaf.path.length) + stringBytes(leaf.value)
        }
        if (walk.payload > maxBytes) {
          drop(walk)
          break
        }
      }
      walk.level = []
      if (!walk.alive) children.length = first
      for (let i = first; i < children.length; i++) owners.push(w)
    }
    if (children.length === 0) break
    // Each child is at least 32 bytes to read: while the level cannot fit what may be held, the subtries read last
    // give way before any read.
    let need = children.length * 32
    if (held + need > maxReadBytes) {
      const counts = new Array<number>(walks.length).fill(0)
      for (const owner of owners) counts[owner]!++
      for (let w = walks.length - 1; w >= 0 && held + need > maxReadBytes; w--) {
        if (!walks[w]!.alive) continue
        need -= counts[w]! * 32
        drop(walks[w]!)
      }
    }
    for (let at = 0, chunk = 0; at < children.length; at += chunk) {
      chunk = Math.min(READ_CHUNK, Math.max(1, Math.floor((maxReadBytes - held) / largest)))
      const end = Math.min(children.length, at + chunk)
      // Only the children of subtries still being read: those given up are read no further.
      const wanted: number[] = []
      for (let i = at; i < end; i++) if (walks[owners[i]!]!.alive) wanted.push(i)
      if (wanted.length === 0) continue
      const blobs = await store.getMany(wanted.map((i) => children[i]!.hash))
      for (let j = 0; j < wanted.length; j++) {
        const i = wanted[j]!
        const walk = walks[owners[i]!]!
        const blob = blobs[j]
        nodes++
        spent += blob?.length ?? 0
        if (!walk.alive) continue
        if (blob === undefined) {
          drop(walk)
          continue
        }
        walk.read += blob.length
        held += blob.length
        walk.level.push({ blob, path: children[i]!.path, branch: children[i]!.branch })
      }
      // Over the budget: the subtries read last give way, their roots going as nodes. Past twice the budget in
      // all (reads of subtries given up included), every one does.
      for (let w = walks.length - 1; w >= 0 && (held > maxReadBytes || spent > 2 * maxReadBytes); w--) {
        if (walks[w]!.alive) drop(walks[w]!)
      }
    }
  }
  const leaves = walks.map((walk) => {
    if (!walk.alive) return null
    const rlp = encodeLeaves(walk.leaves)
    return rlp.length > maxBytes ? null : { rlp }
  })
  return { leaves, nodes, read: spent }
}

/** A hash-referenced child to read: its path below the subtrie's root, and whether it must be a branch. */
interface Child {
  hash: Uint8Array
  path: Nibbles
  branch: boolean
}

/**
 * Lists the leaves and hash-referenced children of `node` (at `path`), descending into embedded children; false
 * when the node is not as a canonical trie has it, whose subtrie a client would rebuild to another hash (it then
 * goes as its node): an extension to anything but a branch (`mustBranch`), a branch of fewer than two entries, a
 * leaf with an empty value.
 */
function collect(node: TrieNode, path: Nibbles, mustBranch: boolean, children: Child[], leaves: NodeLeaf[]): boolean {
  if (mustBranch && node.kind !== 'branch') return false
  switch (node.kind) {
    case 'leaf':
      if (node.value.length === 0) return false
      leaves.push({ path: concatNibbles(path, node.path), value: node.value })
      return true
    case 'extension': {
      const below = concatNibbles(path, node.path)
      if (node.child.kind === 'hash') {
        children.push({ hash: node.child.hash, path: below, branch: true })
        return true
      }
      return collect(node.child.node, below, true, children, leaves)
    }
    case 'branch': {
      let entries = node.value !== null && node.value.length > 0 ? 1 : 0
      if (entries === 1) leaves.push({ path, value: node.value! })
      for (let i = 0; i < 16; i++) {
        const ref = node.children[i]
        if (ref == null) continue
        entries++
        if (ref.kind === 'hash') children.push({ hash: ref.hash, path: appendNibble(path, i), branch: false })
        else if (!collect(ref.node, appendNibble(path, i), false, children, leaves)) return false
      }
      return entries >= 2
    }
    default:
      return false
  }
}

/** The leaves list of `leaves`, sorted here (a level-by-level walk finds them out of order). */
function encodeLeaves(leaves: NodeLeaf[]): Uint8Array {
  // Byte order of the nibble arrays is path order, a path before the paths it is a prefix of.
  leaves.sort((a, b) => compareBytes(a.path, b.path))
  const items: Uint8Array[] = new Array(leaves.length * 2)
  for (let i = 0; i < leaves.length; i++) {
    items[2 * i] = encodeCompact(leaves[i]!.path, true)
    items[2 * i + 1] = leaves[i]!.value
  }
  return encodeRlpStrings(items)
}

/** A subtrie rebuilt from its leaves. */
export interface RebuiltSubtrie {
  /** The root's hash and blob. */
  hash: Uint8Array
  blob: Uint8Array
  /** Every other node stored under its hash, children before parents; views into shared buffers. */
  hashes: Uint8Array[]
  blobs: Uint8Array[]
  /** Bytes of all its nodes, the root's included. */
  bytes: number
}

/**
 * Builds the subtrie whose leaves list (see above) has its payload at `[start, end)` of `frame`, and hashes its
 * nodes. Throws `ProtocolError` for a list that is malformed, empty, not in strictly ascending order, or holds an
 * empty value: nothing a server reading a subtrie sends. Whether it is the subtrie asked for is the caller's
 * check, of `hash`.
 */
export function rebuildSubtrie(frame: Uint8Array, start: number, end: number): RebuiltSubtrie {
  const hashes: Uint8Array[] = []
  const blobs: Uint8Array[] = []
  let bytes = 0
  const trie = new StackTrie((hash, blob) => {
    hashes.push(hash)
    blobs.push(blob)
    bytes += blob.length
  }, slab)
  const path: RlpSpan = { list: false, at: 0, start: 0, end: 0 }
  const value: RlpSpan = { list: false, at: 0, start: 0, end: 0 }
  try {
    for (let pos = start; pos < end; ) {
      readRlpSpanInto(path, frame, pos, end, failure)
      if (path.end >= end) throw failure('a path without a value')
      readRlpSpanInto(value, frame, path.end, end, failure)
      if (path.list || value.list) throw failure('expected byte strings')
      if (!trie.insertCompact(frame, path.start, path.end, frame.subarray(value.start, value.end))) throw failure('a path without the leaf flag')
      pos = value.end
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err
    throw new ProtocolError(`subtrie leaves: ${(err as Error).message}`, { cause: err })
  }
  if (trie.keys === 0) throw failure('no leaves')
  const hash = trie.root()
  // The root came last.
  hashes.pop()
  const blob = blobs.pop()!
  return { hash, blob, hashes, blobs, bytes }
}

function failure(why: string): ProtocolError {
  return new ProtocolError(`subtrie leaves: ${why}`)
}

