import { DEFAULT_IMPORT_BATCH_BYTES } from '../constants.js'
import { InvalidInputError } from '../errors.js'
import type { BatchOp, KVStore } from '../store/kv-store.js'
import { EMPTY_ROOT } from './keccak.js'
import { keccak256Into } from './keccak-wasm.js'
import { checkCompact, type Nibbles } from './nibbles.js'
import { MAX_NODE_BYTES } from './node.js'
import { toHex } from '../util/hex.js'

/**
 * Receives every node that is stored under its hash, children before their parents, each exactly once
 * (`StackTrie.peekRoot` is the exception: its provisional spine nodes may come again later).
 * `hash` and `blob` may be views of a larger buffer (check `byteOffset` before using `.buffer`); the trie
 * never writes to them again, so they can be kept as they are.
 */
export type NodeSink = (hash: Uint8Array, blob: Uint8Array) => void

/**
 * A branch whose subtrie is still open: keys to its right may still land in it. `children` holds, per slot,
 * the RLP item the parent will contain: `0xa0 ‖ hash` for a hashed child, or an embedded child's own RLP.
 */
interface Frame {
  /** Nibbles from the root to this branch. */
  depth: number
  children: (Uint8Array | null)[]
  value: Uint8Array | null
}

/**
 * Builds a Merkle-Patricia trie bottom-up from keys given in strictly ascending byte order, the
 * go-ethereum StackTrie idea without its code. Sorted input means a subtrie is finished as soon as a key
 * to its right arrives, so each node is RLP-encoded and hashed exactly once, handed to the sink, and
 * dropped: nothing stale is ever written and memory is O(key length), however many keys go in.
 *
 * The open part of the trie is a stack of branches along the path of the last key, plus that key itself,
 * whose leaf cannot be encoded yet because its depth depends on the next key (it hangs below the deeper
 * of the branches it shares with its two neighbours).
 *
 * Nodes whose RLP is shorter than 32 bytes are embedded in their parent and not emitted; the root is always
 * emitted under its hash, as `@ethereumjs/mpt` stores it. Keys may have any length, and a key may be a
 * prefix of the next one (its value then sits in a branch's 17th slot).
 *
 * reference: go-ethereum@02b73d4e trie/stacktrie.go (behaviour, not structure)
 */
export class StackTrie {
  private readonly onNode: NodeSink | undefined
  /** Open branches, shallowest first; `frames[0..frameCount)` are live, the rest are kept for reuse. */
  private readonly frames: Frame[] = []
  private frameCount = 0
  /**
   * The pending key as nibbles, `keyLength` of them (-1 before the first key), and a second buffer the next
   * key is unpacked into; the two swap on every insert. Pending key and value live in buffers reused from
   * key to key, because at a million keys a fresh typed array per key costs more than the trie logic.
   */
  private key = new Uint8Array(64)
  private keyLength = -1
  private nextKey = new Uint8Array(64)
  private valueBuffer = new Uint8Array(128)
  private valueLength = 0
  private readonly slab: Slab
  private finalRoot: Uint8Array | null = null
  private keyCount = 0
  private nodeCount = 0

  /**
   * `slab`: where node blobs are carved from; tries built one after another, each small (`rebuildSubtrie`), share
   * one rather than each taking a fresh 64 KiB buffer.
   */
  constructor(onNode?: NodeSink, slab: Slab = new Slab()) {
    this.onNode = onNode
    this.slab = slab
  }

  /** Keys inserted so far. */
  get keys(): number {
    return this.keyCount
  }

  /** Nodes handed to the sink so far (the root counts once `root()` has run; `peekRoot` adds nothing). */
  get nodes(): number {
    return this.nodeCount
  }

  /**
   * Adds one key. Throws `InvalidInputError` when the key is not strictly greater than the previous one,
   * when the value is empty (an empty value means "absent" in an MPT), or after `root()`.
   * The value is copied, so the caller may reuse its buffer.
   */
  insert(key: Uint8Array, value: Uint8Array): void {
    if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array)) {
      throw new InvalidInputError('StackTrie keys and values must be Uint8Arrays')
    }
    const length = key.length * 2
    if (length > this.nextKey.length) this.nextKey = new Uint8Array(length * 2)
    const next = this.nextKey
    for (let i = 0; i < key.length; i++) {
      next[2 * i] = key[i]! >> 4
      next[2 * i + 1] = key[i]! & 15
    }
    this.insertNext(length, value)
  }

  /**
   * `insert` of a key given as a nibble path, which may have an odd length: the compact path `[start, end)` of
   * `bytes` (hex-prefix encoded, leaf flag or not). A subtrie's leaves are keyed by their paths below its root,
   * and its root hash is the hash of the trie of those paths (`rebuildSubtrie`). Returns whether the path carried
   * the leaf flag. Throws `InvalidInputError` as `insert` does, and `InvalidNodeError` for a malformed compact path
   * (`checkCompact`).
   */
  insertCompact(bytes: Uint8Array, start: number, end: number, value: Uint8Array): boolean {
    const leaf = checkCompact(bytes, start, end)
    const odd = (bytes[start]! >> 4) & 1
    const length = (end - start - 1) * 2 + odd
    if (length > this.nextKey.length) this.nextKey = new Uint8Array(length * 2)
    const next = this.nextKey
    let i = 0
    if (odd === 1) next[i++] = bytes[start]! & 15
    for (let j = start + 1; j < end; j++) {
      next[i++] = bytes[j]! >> 4
      next[i++] = bytes[j]! & 15
    }
    this.insertNext(length, value)
    return leaf
  }

  /** Inserts the key unpacked into `nextKey`, `length` nibbles of it. */
  private insertNext(length: number, value: Uint8Array): void {
    if (value.length === 0) throw new InvalidInputError('StackTrie values must not be empty')
    if (this.finalRoot !== null) throw new InvalidInputError('StackTrie.insert after root()')
    const next = this.nextKey
    const prevLength = this.keyLength
    if (prevLength >= 0) {
      const prev = this.key
      const common = Math.min(prevLength, length)
      let shared = 0
      while (shared < common && prev[shared] === next[shared]) shared++
      if (shared === length || (shared < prevLength && prev[shared]! > next[shared]!)) {
        throw new InvalidInputError(
          shared === prevLength
            ? 'duplicate key inserted into StackTrie'
            : 'StackTrie keys must be inserted in strictly ascending order'
        )
      }
      this.settlePending(shared)
    }
    this.nextKey = this.key
    this.key = next
    this.keyLength = length
    if (value.length > this.valueBuffer.length) this.valueBuffer = new Uint8Array(value.length * 2)
    this.valueBuffer.set(value)
    this.valueLength = value.length
    this.keyCount++
  }

  /**
   * Finishes the trie and returns its root hash; the empty trie gives `EMPTY_ROOT` (and emits nothing).
   * Calling it again returns the same root; inserting afterwards throws.
   */
  root(): Uint8Array {
    if (this.finalRoot !== null) return this.finalRoot
    this.finalRoot = this.spineRoot(this.onNode, true)
    return this.finalRoot
  }

  /**
   * The root hash of the keys inserted so far, without finishing: inserting may continue afterwards, and the
   * open state is left exactly as it was. The nodes of the open right-most spine (the pending key's leaf, the
   * open branches and their extensions, the root) are encoded as a finished trie of exactly these keys would
   * have them and handed to `onNode`, which defaults to the constructor's sink. The completed subtries to the
   * left of the spine were emitted when they closed, so a sink that stores everything it is given holds the
   * whole trie of this root afterwards: provable and syncable.
   *
   * The spine is provisional: a later `peekRoot`, or the closing of its subtries by later keys, may hand the
   * same node (same hash, same blob) to a sink again, and nodes of an older peek that later keys changed are
   * never referenced by the final root. A store just overwrites the repeat; a sink that must see each node
   * once should not be given peeked nodes. Peeked nodes are not counted in `nodes`. Costs one encoding and
   * one hash per spine node (a handful for sequential keys), so it may run after every insert.
   *
   * After `root()` it returns that root and emits nothing.
   */
  peekRoot(onNode: NodeSink | undefined = this.onNode): Uint8Array {
    if (this.finalRoot !== null) return this.finalRoot
    return this.spineRoot(onNode, false)
  }

  /**
   * Encodes the open spine bottom-up without touching it: each open branch is copied (16 slots, a few per
   * key), the copy gets its open slot filled, and the copy goes into its parent's copy. `root()` and
   * `peekRoot()` share this, so the peeked root is by construction the root `root()` would give.
   */
  private spineRoot(sink: NodeSink | undefined, counted: boolean): Uint8Array {
    // A copy: the caller owns the returned root, and must not be able to change the shared constant.
    if (this.keyLength < 0) return EMPTY_ROOT.slice()
    const { key, keyLength, valueBuffer, valueLength } = this
    let rootBlob: Uint8Array
    if (this.frameCount === 0) {
      rootBlob = encodeLeaf(this.slab, key, 0, keyLength, valueBuffer, valueLength)
    } else {
      let child = openCopy(this.frames[this.frameCount - 1]!)
      if (keyLength === child.depth) {
        child.value = valueBuffer.slice(0, valueLength)
      } else {
        const leaf = encodeLeaf(this.slab, key, child.depth + 1, keyLength, valueBuffer, valueLength)
        child.children[key[child.depth]!] = this.ref(leaf, sink, counted)
      }
      for (let i = this.frameCount - 2; i >= 0; i--) {
        const parent = openCopy(this.frames[i]!)
        parent.children[key[parent.depth]!] = this.subtrieRef(child, key, parent.depth + 1, sink, counted)
        child = parent
      }
      rootBlob = encodeBranch(this.slab, child)
      if (child.depth > 0) {
        rootBlob = encodeExtension(this.slab, key, 0, child.depth, this.ref(rootBlob, sink, counted))
      }
    }
    // Not from the slab: the caller keeps the root, and should not keep a whole slab with it.
    const hash = new Uint8Array(32)
    keccak256Into(rootBlob, hash, 0)
    if (counted) this.nodeCount++
    sink?.(hash, rootBlob)
    return hash
  }

  /**
   * The next key shares `shared` nibbles with the pending one, so a branch sits at depth `shared`: place
   * the pending key below it (or below a deeper open branch), and close every branch deeper than `shared`,
   * because no later key can reach them.
   */
  private settlePending(shared: number): void {
    const key = this.key
    const top = this.frameCount === 0 ? null : this.frames[this.frameCount - 1]!
    if (top === null || shared > top.depth) {
      this.placePending(this.pushFrame(shared))
      return
    }
    this.placePending(top)
    while (this.frames[this.frameCount - 1]!.depth > shared) {
      const child = this.frames[--this.frameCount]!
      const below = this.frameCount === 0 ? null : this.frames[this.frameCount - 1]!
      const parentDepth = below !== null && below.depth >= shared ? below.depth : shared
      // Encode before pushing a new parent: the push may hand out this same pooled frame.
      const ref = this.subtrieRef(child, key, parentDepth + 1)
      const parent = below !== null && below.depth >= shared ? below : this.pushFrame(shared)
      parent.children[key[parentDepth]!] = ref
    }
  }

  /** Puts the pending key into `frame`: as the branch value when the key ends there, else as a leaf. */
  private placePending(frame: Frame): void {
    const { key, keyLength, valueBuffer, valueLength } = this
    if (keyLength === frame.depth) {
      frame.value = valueBuffer.slice(0, valueLength)
    } else {
      const leaf = encodeLeaf(this.slab, key, frame.depth + 1, keyLength, valueBuffer, valueLength)
      frame.children[key[frame.depth]!] = this.ref(leaf)
    }
  }

  /** The parent's item for a closed branch, behind an extension when the parent is more than one nibble up. */
  private subtrieRef(
    frame: Frame,
    key: Nibbles,
    pathStart: number,
    sink: NodeSink | undefined = this.onNode,
    counted = true
  ): Uint8Array {
    const branch = this.ref(encodeBranch(this.slab, frame), sink, counted)
    return pathStart < frame.depth
      ? this.ref(encodeExtension(this.slab, key, pathStart, frame.depth, branch), sink, counted)
      : branch
  }

  private pushFrame(depth: number): Frame {
    let frame = this.frames[this.frameCount]
    if (frame === undefined) {
      frame = { depth, children: new Array<Uint8Array | null>(16).fill(null), value: null }
      this.frames.push(frame)
    } else {
      frame.depth = depth
      frame.children.fill(null)
      frame.value = null
    }
    this.frameCount++
    return frame
  }

  /**
   * How a parent refers to a finished node: embedded below 32 bytes, otherwise by hash (and emitted to
   * `sink`, counted in `nodes` unless it is a peeked spine node).
   */
  private ref(blob: Uint8Array, sink: NodeSink | undefined = this.onNode, counted = true): Uint8Array {
    if (blob.length < 32) return blob
    // The item is `0xa0 ‖ hash`; the hash is written straight into it and emitted as a view of it.
    const item = this.slab.take(33)
    item[0] = 0xa0
    keccak256Into(blob, item, 1)
    if (counted) this.nodeCount++
    sink?.(item.subarray(1), blob)
    return item
  }
}

export interface ImportSortedOptions {
  /**
   * Bytes of node writes per store batch.
   * @default DEFAULT_IMPORT_BATCH_BYTES
   */
  batchBytes?: number
  signal?: AbortSignal
}

export interface ImportResult {
  root: Uint8Array
  /** Keys imported. */
  keys: number
  /** Nodes written (every hash-referenced node, the root included). */
  nodes: number
}

/**
 * Builds the trie of `entries` (strictly ascending keys) with a `StackTrie` and writes its nodes to `store`
 * in batches. Children are written before their parents and batches go out in order, so at every moment a
 * stored node has its whole subtrie stored, and an import cut short leaves no node with missing children.
 * A node over `MAX_NODE_BYTES` (a value near 1 MiB) fails the import with `InvalidInputError`: no peer
 * accepts such a node, so the trie could never be synced. The nodes stored before it are harmless.
 */
export async function importSorted(
  store: KVStore,
  entries: Iterable<readonly [Uint8Array, Uint8Array]> | AsyncIterable<readonly [Uint8Array, Uint8Array]>,
  options?: ImportSortedOptions
): Promise<ImportResult> {
  const batchBytes = options?.batchBytes ?? DEFAULT_IMPORT_BATCH_BYTES
  if (!Number.isSafeInteger(batchBytes) || batchBytes < 1) {
    throw new InvalidInputError(`batchBytes must be a positive integer, got ${batchBytes}`)
  }
  const signal = options?.signal
  signal?.throwIfAborted()
  let ops: BatchOp[] = []
  let opsBytes = 0
  // The key being inserted, while the sink runs inside `insert`: the nodes it completes hold only keys before it.
  let inserting: Uint8Array | null = null
  const trie = new StackTrie((hash, blob) => {
    if (blob.length > MAX_NODE_BYTES) {
      const holder = inserting === null ? 'one of the last keys' : `a key before ${toHex(inserting)}`
      throw new InvalidInputError(
        `a trie node of ${blob.length} bytes is over the ${MAX_NODE_BYTES} bytes a peer accepts (MAX_NODE_BYTES): a value this large cannot be synced (the node holds the value of ${holder}, in ascending key order)`
      )
    }
    ops.push({ type: 'put', key: hash, value: blob })
    opsBytes += hash.length + blob.length
  })
  const flush = async (): Promise<void> => {
    const batch = ops
    ops = []
    opsBytes = 0
    await store.batch(batch)
  }
  const insert = (entry: readonly [Uint8Array, Uint8Array]): boolean => {
    // Checked per key, not per batch: a long run of small nodes can go a while without a flush.
    signal?.throwIfAborted()
    inserting = entry[0]
    trie.insert(entry[0], entry[1])
    inserting = null
    return opsBytes >= batchBytes
  }
  // Two loops rather than one `for await`: awaiting every key of a synchronous source would cost a
  // microtask each, a large share of the per-key budget.
  if (Symbol.asyncIterator in entries) {
    for await (const entry of entries) if (insert(entry)) await flush()
  } else {
    for (const entry of entries) if (insert(entry)) await flush()
  }
  const root = trie.root()
  signal?.throwIfAborted()
  if (ops.length > 0) await flush()
  return { root, keys: trie.keys, nodes: trie.nodes }
}

/**
 * A scratch copy of an open branch for `spineRoot`: the slots are copied because the open one is filled in;
 * the value is shared because encoding only reads it.
 */
function openCopy(frame: Frame): Frame {
  return { depth: frame.depth, children: frame.children.slice(), value: frame.value }
}

/** Size of the buffers `Slab` carves node blobs from. */
const SLAB_BYTES = 64 * 1024

/**
 * Hands out node buffers as views of 64 KiB slabs. A typed array with its own backing store costs about
 * 0.7 µs to allocate and collect on the reference machine, a view of a shared buffer 0.08 µs, and a
 * million-key build allocates three buffers per key. A slab is freed once no view of it is alive; blobs
 * are held only until they are stored, so that is soon.
 */
export class Slab {
  private buffer = new ArrayBuffer(SLAB_BYTES)
  private used = 0

  take(length: number): Uint8Array {
    // A node with a big value gets its own buffer rather than wasting the rest of a slab.
    if (length > SLAB_BYTES / 16) return new Uint8Array(length)
    if (this.used + length > SLAB_BYTES) {
      this.buffer = new ArrayBuffer(SLAB_BYTES)
      this.used = 0
    }
    const out = new Uint8Array(this.buffer, this.used, length)
    this.used += length
    return out
  }
}

// RLP encoding, written straight into one exactly-sized slab range per node: building nested arrays for
// a generic encoder costs an allocation per item and a second pass to measure.

/** The leaf `[compact(key[start..end]), value[0..valueLength]]`. */
function encodeLeaf(
  slab: Slab,
  key: Nibbles,
  start: number,
  end: number,
  value: Uint8Array,
  valueLength: number
): Uint8Array {
  const payload = compactItemLength(end - start) + stringItemLength(value, valueLength)
  const out = slab.take(headerLength(payload) + payload)
  let pos = writeHeader(out, 0, payload, 0xc0)
  pos = writeCompact(out, pos, key, start, end, true)
  writeString(out, pos, value, valueLength)
  return out
}

/** The extension `[compact(key[start..end]), child]`, `child` being the child's RLP item. */
function encodeExtension(slab: Slab, key: Nibbles, start: number, end: number, child: Uint8Array): Uint8Array {
  const payload = compactItemLength(end - start) + child.length
  const out = slab.take(headerLength(payload) + payload)
  let pos = writeHeader(out, 0, payload, 0xc0)
  pos = writeCompact(out, pos, key, start, end, false)
  out.set(child, pos)
  return out
}

/** The branch `[child0, …, child15, value]`; an empty slot or value is the empty string `0x80`. */
function encodeBranch(slab: Slab, frame: Frame): Uint8Array {
  const { children, value } = frame
  let payload = value === null ? 1 : stringItemLength(value, value.length)
  for (let i = 0; i < 16; i++) payload += children[i]?.length ?? 1
  const out = slab.take(headerLength(payload) + payload)
  let pos = writeHeader(out, 0, payload, 0xc0)
  for (let i = 0; i < 16; i++) {
    const child = children[i]
    if (child == null) {
      out[pos++] = 0x80
    } else {
      out.set(child, pos)
      pos += child.length
    }
  }
  if (value === null) out[pos] = 0x80
  else writeString(out, pos, value, value.length)
  return out
}

function headerLength(length: number): number {
  return length <= 55 ? 1 : 1 + byteLength(length)
}

function byteLength(n: number): number {
  let bytes = 1
  while (n > 0xff) {
    n = Math.floor(n / 256)
    bytes++
  }
  return bytes
}

/** Writes a string (`0x80`) or list (`0xc0`) header for `length` payload bytes; returns the next position. */
function writeHeader(out: Uint8Array, pos: number, length: number, offset: number): number {
  if (length <= 55) {
    out[pos] = offset + length
    return pos + 1
  }
  const bytes = byteLength(length)
  out[pos] = offset + 55 + bytes
  for (let i = bytes; i >= 1; i--) {
    out[pos + i] = length & 0xff
    length = Math.floor(length / 256)
  }
  return pos + 1 + bytes
}

/** RLP length of the string `bytes[0..length]`. */
function stringItemLength(bytes: Uint8Array, length: number): number {
  if (length === 1 && bytes[0]! < 0x80) return 1
  return headerLength(length) + length
}

/** Writes the RLP string `bytes[0..length]`; returns the next position. */
function writeString(out: Uint8Array, pos: number, bytes: Uint8Array, length: number): number {
  if (length === 1 && bytes[0]! < 0x80) {
    out[pos] = bytes[0]!
    return pos + 1
  }
  pos = writeHeader(out, pos, length, 0x80)
  // A loop rather than `set(bytes.subarray(…))` for short values: no view object per value. Long values
  // (topic items of kilobytes) are copied by `set`, which is a memcpy.
  if (length > 64) out.set(length === bytes.length ? bytes : bytes.subarray(0, length), pos)
  else for (let i = 0; i < length; i++) out[pos + i] = bytes[i]!
  return pos + length
}

/** RLP length of the hex-prefix encoding of `nibbles` nibbles (see `encodeCompact` in nibbles.ts). */
export function compactItemLength(nibbles: number): number {
  const bytes = (nibbles >> 1) + 1
  // A one-byte compact path is at most 0x3f, below 0x80, so RLP stores it as itself.
  return bytes === 1 ? 1 : headerLength(bytes) + bytes
}

/** Writes the RLP string of the hex-prefix encoding of `key[start..end]`, flag nibble first. */
function writeCompact(out: Uint8Array, pos: number, key: Nibbles, start: number, end: number, leaf: boolean): number {
  const length = end - start
  const odd = length & 1
  const bytes = (length >> 1) + 1
  if (bytes > 1) pos = writeHeader(out, pos, bytes, 0x80)
  const flag = (leaf ? 2 : 0) + odd
  let i = start
  if (odd === 1) out[pos++] = (flag << 4) | key[i++]!
  else out[pos++] = flag << 4
  for (; i < end; i += 2) out[pos++] = (key[i]! << 4) | key[i + 1]!
  return pos
}
