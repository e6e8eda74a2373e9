import { ByteMap } from '../util/byte-map.js'
import { InvalidInputError, InvalidNodeError, MissingNodeError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { compareBytes, equalBytes, hashAt } from '../util/bytes.js'
import { toHex } from '../util/hex.js'
import { EMPTY_ROOT } from './keccak.js'
import { keccak256Into } from './keccak-wasm.js'
import { bytesToNibbles, type Nibbles, nibblesToBytes } from './nibbles.js'
import { type ChildRef, decodeNode, nodeChildren, type TrieNode } from './node.js'

/**
 * Reading a trie out of a store, always starting from a root: a store may hold nodes of many roots (and
 * stale ones), so what belongs to a trie is exactly what its root reaches. Every blob is checked against
 * the hash it was fetched by before it is decoded, so a corrupted store cannot pass off a different trie.
 */

export interface WalkOptions {
  signal?: AbortSignal
  /**
   * Check that every node read hashes to its key. Turn it off only where the caller checks the result
   * another way (`readTopicTrie` rebuilds the root from the leaves): it is a keccak per node.
   * @default true
   */
  verify?: boolean
}

/** One node stored under its hash, as `walkTrie` yields it. */
export interface WalkedNode {
  hash: Uint8Array
  blob: Uint8Array
  node: TrieNode
  /** Nibble path from the root to this node. */
  path: Nibbles
}

/** One key/value pair of a trie. */
export interface TrieEntry {
  key: Uint8Array
  value: Uint8Array
}

/**
 * Every hash-referenced node reachable from `root` (the root included), depth first in ascending path
 * order. Embedded nodes are part of their parent's blob and are not yielded on their own. Throws
 * `MissingNodeError` on reaching an absent node (after yielding everything before it) and
 * `InvalidNodeError` when a blob does not hash to its key or does not decode. The empty root yields nothing.
 */
export async function* walkTrie(store: KVStore, root: Uint8Array, options?: WalkOptions): AsyncGenerator<WalkedNode> {
  for await (const step of walk(store, root, options)) if (step.kind === 'node') yield step
}

/** Every key/value pair under `root`, in ascending key order. Same errors as `walkTrie`. */
export async function* trieEntries(store: KVStore, root: Uint8Array, options?: WalkOptions): AsyncGenerator<TrieEntry> {
  for await (const step of walk(store, root, options)) {
    if (step.kind !== 'leaf') continue
    const key = nibblesToBytes(step.path)
    if (key === null) throw new InvalidNodeError(`value at a path of ${step.path.length} nibbles, not whole bytes`)
    yield { key, value: step.value }
  }
}

/**
 * The value under `key`, or `null` when the trie does not hold it. Reads only the nodes on the key's path;
 * throws `MissingNodeError` when one of them is absent, `InvalidNodeError` when one is corrupt.
 */
export async function trieGet(
  store: KVStore,
  root: Uint8Array,
  key: Uint8Array,
  options?: WalkOptions
): Promise<Uint8Array | null> {
  checkHash(root, 'root')
  if (!(key instanceof Uint8Array)) throw new InvalidInputError('key must be a Uint8Array')
  if (equalBytes(root, EMPTY_ROOT)) return null
  const path = bytesToNibbles(key)
  let node = await loadNode(store, root, options?.signal)
  let pos = 0
  for (;;) {
    let next: ChildRef | null
    switch (node.kind) {
      case 'leaf':
        return node.path.length === path.length - pos && startsWith(path, pos, node.path) ? node.value : null
      case 'extension':
        if (!startsWith(path, pos, node.path)) return null
        pos += node.path.length
        next = node.child
        break
      case 'branch':
        if (pos === path.length) return node.value
        next = node.children[path[pos++]!] ?? null
        break
      default: {
        const exhaustive: never = node
        throw new InvalidNodeError(`unknown node kind ${String(exhaustive)}`)
      }
    }
    if (next === null) return null
    node = next.kind === 'embedded' ? next.node : await loadNode(store, next.hash, options?.signal)
  }
}

export interface TrieCompleteness {
  /** True when every node reachable from the root is stored. */
  complete: boolean
  /** Stored nodes reached (all of them when complete). */
  nodes: number
  /** Referenced but absent nodes, each once, in ascending path order. */
  missing: Uint8Array[]
  /**
   * Stored nodes with a missing node somewhere below them, deepest first: each breaks the sync invariant
   * "a node in the store means its whole subtrie is in the store".
   */
  incomplete: Uint8Array[]
}

/**
 * Walks `root` without stopping at gaps and reports what is absent and which stored nodes sit above a gap.
 * Throws `InvalidNodeError` on a corrupt node: a store that returns wrong bytes is not merely incomplete.
 */
export async function checkTrieComplete(
  store: KVStore,
  root: Uint8Array,
  options?: WalkOptions
): Promise<TrieCompleteness> {
  checkHash(root, 'root')
  const checker = new CompletenessChecker(store, options?.signal)
  return checker.check(equalBytes(root, EMPTY_ROOT) ? [] : [root])
}

/**
 * The store-wide form of the sync invariant: for each of `hashes` (nodes the caller knows are stored, e.g.
 * every key of a node-only store), checks that its whole subtrie is stored. Shared subtries are walked once,
 * so checking every stored node costs one walk of the store, not one per node.
 */
export async function checkStoredSubtries(
  store: KVStore,
  hashes: Iterable<Uint8Array>,
  options?: WalkOptions
): Promise<TrieCompleteness> {
  const roots = [...hashes]
  for (const hash of roots) checkHash(hash, 'node hash')
  return new CompletenessChecker(store, options?.signal).check(roots)
}

/** Keys per `getMany` while the checker reads a level of the trie. */
const CHECK_READ_CHUNK = 4096

interface CheckedNode {
  hash: Uint8Array
  /** Children by hash; `null` for a node absent from the store. */
  children: Uint8Array[] | null
  /** Whether the whole subtrie is stored, once known. */
  complete?: boolean
}

/**
 * Reads the trie level by level, each level with a few large `getMany` calls (one call per node made the
 * check of a 100k-key trie take seconds of store round trips), verifying every blob against its hash. Then
 * decides completeness in memory, walking the graph depth-first so gaps and incomplete nodes come out in
 * path order, each once even under shared subtries.
 */
class CompletenessChecker {
  private readonly store: KVStore
  private readonly signal: AbortSignal | undefined
  private readonly graph = new ByteMap<CheckedNode>()
  private readonly missing: Uint8Array[] = []
  private readonly incomplete: Uint8Array[] = []
  private nodes = 0

  constructor(store: KVStore, signal: AbortSignal | undefined) {
    this.store = store
    this.signal = signal
  }

  async check(roots: Uint8Array[]): Promise<TrieCompleteness> {
    let level = roots
    while (level.length > 0) {
      const next: Uint8Array[] = []
      for (let i = 0; i < level.length; i += CHECK_READ_CHUNK) {
        this.signal?.throwIfAborted()
        const hashes = level.slice(i, i + CHECK_READ_CHUNK).filter((h) => !this.graph.has(h))
        const blobs = hashes.length === 0 ? [] : await this.store.getMany(hashes)
        for (let j = 0; j < hashes.length; j++) {
          const hash = hashes[j]!
          if (this.graph.has(hash)) continue // the same hash twice in one chunk
          const blob = blobs[j]
          if (blob === undefined) {
            this.graph.set(hash, { hash, children: null })
            continue
          }
          const children = nodeChildren(verifiedNode(hash, blob), EMPTY_PATH).children.map((c) => c.hash)
          this.graph.set(hash, { hash, children })
          for (const c of children) if (!this.graph.has(c)) next.push(c)
        }
      }
      level = next
    }
    for (const root of roots) this.decide(this.graph.get(root)!)
    return {
      complete: this.missing.length === 0,
      nodes: this.nodes,
      missing: this.missing,
      incomplete: this.incomplete
    }
  }

  /** Recursion depth is the trie depth (about 65 for 32-byte keys), so plain recursion is safe. */
  private decide(node: CheckedNode): boolean {
    if (node.complete !== undefined) return node.complete
    if (node.children === null) {
      this.missing.push(node.hash)
      node.complete = false
      return false
    }
    let complete = true
    // No short cut on the first gap: the report lists every gap, not just the first one found.
    for (const child of node.children) if (!this.decide(this.graph.get(child)!)) complete = false
    this.nodes++
    if (!complete) this.incomplete.push(node.hash)
    node.complete = complete
    return complete
  }
}

/**
 * Hashes per `getMany` in `verifyTrie`. Large enough that store round trips stop mattering (one `getMany` per
 * node made a 100k-key walk three times slower than the level walk's 4096), small enough that the stack of
 * waiting hashes (at most about 16 × this × trie depth) stays a few megabytes.
 */
export const DEFAULT_VERIFY_READ_BATCH = 1024

/** Absent nodes `verifyTrie` lists by hash; the rest are only counted. */
export const DEFAULT_VERIFY_MAX_MISSING = 16

export interface VerifyTrieOptions {
  signal?: AbortSignal
  /**
   * Most absent nodes listed in `missing`. All of them are counted; only these are kept, so a store missing
   * most of a large trie does not cost memory per gap.
   * @default DEFAULT_VERIFY_MAX_MISSING
   */
  maxMissing?: number
  /**
   * Most hashes read with one `getMany`.
   * @default DEFAULT_VERIFY_READ_BATCH
   */
  readBatch?: number
}

export interface TrieVerification {
  /** True when every node reachable from the root is stored. */
  complete: boolean
  /**
   * Stored nodes reached, once per reference: a subtrie stored once but referenced twice (two identical
   * subtries) is walked and counted twice. That is the size of the trie as a tree, what `importSorted`
   * reports as written; `checkTrieComplete` counts each stored node once. They agree unless subtries repeat,
   * which in a trie of hashed keys (account and storage tries) would take two keys with the same last 30-odd
   * bytes and the same value: in practice never.
   */
  nodes: number
  /** Absent nodes, once per reference like `nodes`. */
  missingCount: number
  /** The first `maxMissing` absent nodes met, in walk order. */
  missing: Uint8Array[]
  /** Most hashes waiting to be read at one time: the walk's memory, at most about 16 × `readBatch` × depth. */
  peakPending: number
}

/**
 * Checks that every node reachable from `root` is stored and hashes to its key, in memory bounded by the trie's
 * depth rather than its size: the check to run over a trie of any size (`checkTrieComplete` keeps a record of
 * every node to report which stored nodes sit above a gap). Does not stop at a gap: absent nodes are counted
 * and the walk goes on with the rest. Throws `InvalidNodeError` on a corrupt node.
 */
export async function verifyTrie(store: KVStore, root: Uint8Array, options?: VerifyTrieOptions): Promise<TrieVerification> {
  checkHash(root, 'root')
  const maxMissing = options?.maxMissing ?? DEFAULT_VERIFY_MAX_MISSING
  const readBatch = options?.readBatch ?? DEFAULT_VERIFY_READ_BATCH
  if (!Number.isSafeInteger(maxMissing) || maxMissing < 0) throw new InvalidInputError('maxMissing must be a whole number')
  if (!Number.isSafeInteger(readBatch) || readBatch < 1) throw new InvalidInputError('readBatch must be a positive whole number')
  const result: TrieVerification = { complete: true, nodes: 0, missingCount: 0, missing: [], peakPending: 0 }
  if (equalBytes(root, EMPTY_ROOT)) return result
  const pending = new HashStack()
  pending.push(root)
  // Depth first, a batch at a time: each step reads the `readBatch` hashes on top of the stack and pushes
  // their children. The stack stays ordered by depth, and a depth gains hashes only once everything deeper
  // is done, so it holds at most 16 × `readBatch` hashes per level. No visited set (that is the memory
  // `checkTrieComplete` spends), so a repeated subtrie is read once per reference; since every reference
  // leads to keys of its own, that is bounded by the trie's size as a tree.
  while (pending.length > 0) {
    options?.signal?.throwIfAborted()
    result.peakPending = Math.max(result.peakPending, pending.length)
    const hashes = pending.popMany(readBatch)
    const blobs = await store.getMany(hashes)
    for (let i = 0; i < hashes.length; i++) {
      const hash = hashes[i]!
      const blob = blobs[i]
      if (blob === undefined) {
        result.missingCount++
        if (result.missing.length < maxMissing) result.missing.push(hash.slice())
        continue
      }
      result.nodes++
      pushChildHashes(verifiedNode(hash, blob), pending)
    }
  }
  result.complete = result.missingCount === 0
  return result
}

/**
 * Pushes the hashes `node` refers to. An embedded child encodes below 32 bytes (`decodeNode` checks), too
 * short to hold a hash, so there is nothing to look for inside one.
 */
function pushChildHashes(node: TrieNode, pending: HashStack): void {
  switch (node.kind) {
    case 'leaf':
      return
    case 'extension':
      if (node.child.kind === 'hash') pending.push(node.child.hash)
      return
    case 'branch':
      for (const child of node.children) if (child?.kind === 'hash') pending.push(child.hash)
      return
    default: {
      const exhaustive: never = node
      throw new InvalidNodeError(`unknown node kind ${String(exhaustive)}`)
    }
  }
}

/**
 * `verifyTrie`'s stack, 32 bytes per hash in one buffer: no object per waiting hash, and no view keeping alive
 * the blob a hash was decoded from.
 */
class HashStack {
  private bytes = new Uint8Array(32 * 1024)
  private count = 0

  get length(): number {
    return this.count
  }

  push(hash: Uint8Array): void {
    if ((this.count + 1) * 32 > this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2)
      grown.set(this.bytes)
      this.bytes = grown
    }
    this.bytes.set(hash, this.count * 32)
    this.count++
  }

  /** Takes the top `n` hashes (all when fewer are left), deepest last, as views of one copy. */
  popMany(n: number): Uint8Array[] {
    const start = Math.max(0, this.count - n)
    const taken = this.bytes.slice(start * 32, this.count * 32)
    this.count = start
    const hashes: Uint8Array[] = new Array(taken.length / 32)
    for (let i = 0; i < hashes.length; i++) hashes[i] = hashAt(taken, i)
    return hashes
  }
}

type WalkStep =
  | ({ kind: 'node' } & WalkedNode)
  | { kind: 'leaf'; path: Nibbles; value: Uint8Array }

/** Work left to do, most urgent last: a node still to open (blob fetched with its siblings) or a value. */
type Pending =
  | { kind: 'node'; hash: Uint8Array; path: Nibbles; blob: Uint8Array | undefined }
  | { kind: 'leaf'; path: Nibbles; value: Uint8Array }

/**
 * The one walk behind `walkTrie` and `trieEntries`: nodes and values interleaved in path order. A node's
 * hashed children are fetched with one `getMany` when the node is opened, and kept on the stack as blobs,
 * so memory is about 16 blobs per level of depth.
 */
async function* walk(store: KVStore, root: Uint8Array, options?: WalkOptions): AsyncGenerator<WalkStep> {
  checkHash(root, 'root')
  const signal = options?.signal
  const verify = options?.verify !== false
  if (equalBytes(root, EMPTY_ROOT)) return
  signal?.throwIfAborted()
  const [rootBlob] = await store.getMany([root])
  const stack: Pending[] = [{ kind: 'node', hash: root, path: EMPTY_PATH, blob: rootBlob }]
  while (stack.length > 0) {
    signal?.throwIfAborted()
    const item = stack.pop()!
    if (item.kind === 'leaf') {
      yield item
      continue
    }
    const { hash, path, blob } = item
    if (blob === undefined) throw new MissingNodeError(hash, `trie node ${toHex(hash)} at path ${pathHex(path)} missing`)
    const node = verify ? verifiedNode(hash, blob) : decodeNode(blob)
    yield { kind: 'node', hash, blob, node, path }
    const { children, leaves } = nodeChildren(node, path)
    const blobs = children.length === 0 ? [] : await store.getMany(children.map((c) => c.hash))
    // Merge the two path-ordered lists, then push in reverse so the smallest path is popped first. A value
    // stored in a branch has the branch's own path, a prefix of every child's, so it comes first.
    const merged: Pending[] = []
    let c = 0
    let l = 0
    while (c < children.length || l < leaves.length) {
      const child = children[c]
      const leaf = leaves[l]
      if (child !== undefined && (leaf === undefined || compareBytes(child.path, leaf.path) < 0)) {
        merged.push({ kind: 'node', hash: child.hash, path: child.path, blob: blobs[c] })
        c++
      } else {
        merged.push({ kind: 'leaf', path: leaf!.path, value: leaf!.value })
        l++
      }
    }
    for (let i = merged.length - 1; i >= 0; i--) stack.push(merged[i]!)
  }
}

/** Decodes a blob fetched by `hash`, refusing it unless it really hashes to `hash`. */
function verifiedNode(hash: Uint8Array, blob: Uint8Array): TrieNode {
  keccak256Into(blob, digest, 0)
  if (!equalBytes(digest, hash)) throw new InvalidNodeError(`stored node ${toHex(hash)} does not match its hash`)
  return decodeNode(blob)
}

/** Scratch for `verifiedNode`, which checks every node a walk reads: no allocation per node. */
const digest = new Uint8Array(32)

async function loadNode(store: KVStore, hash: Uint8Array, signal: AbortSignal | undefined): Promise<TrieNode> {
  signal?.throwIfAborted()
  const blob = await store.get(hash)
  if (blob === undefined) throw new MissingNodeError(hash, `trie node ${toHex(hash)} missing`)
  return verifiedNode(hash, blob)
}

function startsWith(path: Nibbles, pos: number, prefix: Nibbles): boolean {
  if (path.length - pos < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (path[pos + i] !== prefix[i]) return false
  return true
}

function checkHash(hash: Uint8Array, what: string): void {
  if (!(hash instanceof Uint8Array) || hash.length !== 32) throw new InvalidInputError(`${what} must be 32 bytes`)
}

function pathHex(path: Nibbles): string {
  let out = ''
  for (const n of path) out += n.toString(16)
  return out === '' ? '(root)' : out
}

const EMPTY_PATH: Nibbles = new Uint8Array(0)
