import type { Nibbles } from '../trie/nibbles.js'
import { hashTag } from '../util/byte-map.js'
import { hashAt, hashesEqualAt } from '../util/bytes.js'
import type { HashFilter } from '../util/hash-filter.js'
import { PREFIX_NIBBLES, pathPrefix, type QueueOrder } from './depth-queue.js'

/**
 * Slots a new table has: a power of two. Small, so the table grows and its index is rebuilt a few times within the
 * first replies, while the code still runs unoptimized: a first `grow` or `reindex` after TurboFan compiled
 * `newSlot` into the trie sync's hottest functions threw all of that compiled code away (a deoptimization and a
 * compilation more of each, in every fresh process).
 */
const INITIAL_SLOTS = 64
/** Nibbles of a path kept in the table's own bytes; a longer path (deep in a sub-trie) is kept as it came. */
const PATH_BYTES = 24

/**
 * What a nibble at each of a path's first PREFIX_NIBBLES places adds to its `pathPrefix` per unit: 16 to the
 * power of the places after it. A table, as `16 ** n` on the hot path was a call of V8's `pow`.
 */
const NIBBLE_WEIGHT = Float64Array.from({ length: PREFIX_NIBBLES }, (_, i) => 16 ** (PREFIX_NIBBLES - 1 - i))

/** An index slot's tag: never used. */
const EMPTY = 0
/** An index slot's tag: its entry was removed (a probe goes on past it). */
const REMOVED = -1

/** A request's state bits. */
export const REPORT_LEAVES = 1
/** Handed out by `missing`: it counts against its depth until commit. */
export const COUNTED = 2
/** Its whole subtrie is present: it waits in the write batch. */
export const COMPLETE = 4
/** In the queue of missing nodes (`DepthQueue`), which holds its slot until it pops it. */
export const QUEUED = 8
/** Removed while still queued: the slot is freed only when the queue pops it (`release`). */
export const DEAD = 16

/**
 * The trie sync's requests as columns of typed arrays, one slot per request, with an open-addressing index
 * from node hash to slot over the table's own hash bytes. A sync holds tens of thousands of requests at once
 * (up to `BREADTH_FIRST_BELOW_REQUESTS` level by level): as an object each, with a path, a hash and a map
 * entry, they were most of what every garbage collection had to trace, and the collector a fifth of a sync's
 * CPU. Here a request's hash, path, parent, count of missing children and state bits are numbers and bytes in
 * a few arrays; only its delivered blob, and the rare extra parents of a node referenced twice, are objects.
 *
 * A slot is reused once its request is removed: hashes leave the table as copies (`hashesOf`, `copyHashes`), never as
 * views.
 */
export class RequestTable implements QueueOrder {
  /** Slot `s`'s hash: bytes `[32 s, 32 s + 32)`. */
  private hashes = new Uint8Array(INITIAL_SLOTS * 32)
  /** Slot `s`'s path, one nibble a byte, from byte `PATH_BYTES s` (when `depth[s] <= PATH_BYTES`). */
  private paths = new Uint8Array(INITIAL_SLOTS * PATH_BYTES)
  /** Paths longer than PATH_BYTES, by slot. */
  private readonly longPaths = new Map<number, Nibbles>()
  /** The path's length: the request's depth (32 bits: a key may be longer than 65,535 nibbles). */
  depth = new Uint32Array(INITIAL_SLOTS)
  /** `pathPrefix` of the path, for the queue's order. */
  private prefix = new Float64Array(INITIAL_SLOTS)
  /** The slot of the request waiting for this one (the first that referenced it); -1 for a root. */
  parent = new Int32Array(INITIAL_SLOTS)
  /** Children (nodes and sub-tries) not yet complete. */
  deps = new Int32Array(INITIAL_SLOTS)
  /** REPORT_LEAVES, COUNTED, COMPLETE, QUEUED, DEAD. */
  flags = new Uint8Array(INITIAL_SLOTS)
  /** The delivered blob, kept until the whole subtrie is present and written; null until delivered. */
  readonly data: (Uint8Array | null)[] = []
  /** The other requests waiting for one referenced more than once (identical subtries), by slot. */
  readonly moreParents = new Map<number, number[]>()

  /**
   * The free slots, a stack (its first `freeCount` entries), the lowest slot on top: every new request takes its
   * slot from here, and `grow` pushes the new ones. One path for the first slot and a reused one, so the compiled
   * `newSlot` meets no path it has not run (a first reuse, after the first commit, was a deoptimization).
   */
  private free = descending(0, INITIAL_SLOTS)
  private freeCount = INITIAL_SLOTS
  private count = 0

  /** Index: a tag (the hash's first 30 bits plus one, or EMPTY/REMOVED) and a slot per entry, linear probing. */
  private tags = new Int32Array(INITIAL_SLOTS * 4)
  private slotAt = new Int32Array(INITIAL_SLOTS * 4)
  private mask = INITIAL_SLOTS * 4 - 1
  /** Index entries holding a slot or a removal mark: rebuilt before they fill half of it. */
  private used = 0

  get size(): number {
    return this.count
  }

  /**
   * Adds a request for the 32 bytes of `bytes` from `at` (its hash), at `path`; returns its slot. The hash must
   * not be in the table.
   */
  add(bytes: Uint8Array, at: number, path: Nibbles, parent: number, flags: number): number {
    const slot = this.newSlot(bytes, at, parent, flags)
    const depth = path.length
    if (depth <= PATH_BYTES) this.paths.set(path, slot * PATH_BYTES)
    else this.longPaths.set(slot, path)
    this.depth[slot] = depth
    this.prefix[slot] = pathPrefix(path)
    return slot
  }

  /**
   * `add` for child `nibble` of the branch in slot `parent`: its path is the parent's and the nibble, written
   * straight into the table (no path array per child, on the trie sync's hot path).
   */
  addBelow(bytes: Uint8Array, at: number, parent: number, nibble: number, flags: number): number {
    const slot = this.newSlot(bytes, at, parent, flags)
    const above = this.depth[parent]!
    const depth = above + 1
    if (depth <= PATH_BYTES) {
      const to = slot * PATH_BYTES
      this.paths.copyWithin(to, parent * PATH_BYTES, parent * PATH_BYTES + above)
      this.paths[to + above] = nibble
    } else {
      const path = new Uint8Array(depth)
      path.set(this.pathOf(parent))
      path[above] = nibble
      this.longPaths.set(slot, path)
    }
    this.depth[slot] = depth
    this.prefix[slot] = above < PREFIX_NIBBLES ? this.prefix[parent]! + nibble * NIBBLE_WEIGHT[above]! : this.prefix[parent]!
    return slot
  }

  /** A slot for a new request, with all but its path and depth set. */
  private newSlot(bytes: Uint8Array, at: number, parent: number, flags: number): number {
    if (this.freeCount === 0) this.grow()
    const slot = this.free[--this.freeCount]!
    const hashes = this.hashes
    for (let i = 0, to = slot * 32; i < 32; i++) hashes[to + i] = bytes[at + i]!
    this.parent[slot] = parent
    this.deps[slot] = 0
    this.flags[slot] = flags
    this.data[slot] = null
    this.count++
    this.index(slot, hashTag(bytes, at))
    return slot
  }

  /** The slot of `hash`'s request, or -1. */
  find(hash: Uint8Array): number {
    return hash.length === 32 ? this.findAt(hash, 0) : -1
  }

  /** The slot of the request for the 32 bytes of `bytes` from `at`, or -1. */
  findAt(bytes: Uint8Array, at: number): number {
    const tags = this.tags
    const tag = hashTag(bytes, at)
    for (let i = tag & this.mask; ; i = (i + 1) & this.mask) {
      const t = tags[i]!
      if (t === EMPTY) return -1
      if (t === tag) {
        const slot = this.slotAt[i]!
        if (hashesEqualAt(this.hashes, slot * 32, bytes, at)) return slot
      }
    }
  }

  /**
   * Removes the request in `slot`: its hash is found no more. The slot is freed, unless the queue still holds
   * it (a node delivered before `missing` reached it): then its path stays for the queue's order, and the slot
   * is freed once the queue pops it. A slot freed under the queue would be taken by a new request and popped
   * as that one, a second time.
   */
  remove(slot: number): void {
    const tags = this.tags
    const tag = hashTag(this.hashes, slot * 32)
    for (let i = tag & this.mask; ; i = (i + 1) & this.mask) {
      const t = tags[i]!
      if (t === EMPTY) throw new Error(`slot ${slot} is not in the index`)
      if (t === tag && this.slotAt[i] === slot) {
        tags[i] = REMOVED
        break
      }
    }
    this.data[slot] = null
    this.moreParents.delete(slot)
    this.count--
    if ((this.flags[slot]! & QUEUED) !== 0) this.flags[slot] = DEAD | QUEUED
    else this.release(slot)
  }

  /** Frees a slot no request holds any more: one just removed, or a dead one the queue popped. */
  release(slot: number): void {
    if (this.depth[slot]! > PATH_BYTES) this.longPaths.delete(slot)
    this.flags[slot] = 0
    this.free[this.freeCount++] = slot
  }

  /**
   * Copies of the hashes of `slots`, as views into one new buffer: a view costs less than a small array of its
   * own, and the buffer lives as long as any of them.
   */
  hashesOf(slots: number[]): Uint8Array[] {
    const copy = this.copyHashes(slots)
    const out: Uint8Array[] = new Array(slots.length)
    for (let i = 0; i < slots.length; i++) out[i] = hashAt(copy, i)
    return out
  }

  /** The hashes of `slots`, one after another in one new buffer. */
  copyHashes(slots: number[]): Uint8Array {
    const copy = new Uint8Array(slots.length * 32)
    const hashes = this.hashes
    // Byte by byte: a `set` from a `subarray` made a view per hash, a fifth of this call's time.
    for (let i = 0, to = 0; i < slots.length; i++) {
      for (let from = slots[i]! * 32, end = from + 32; from < end; ) copy[to++] = hashes[from++]!
    }
    return copy
  }

  /** Adds slot `slot`'s hash to `filter`. */
  addHashTo(filter: HashFilter, slot: number): void {
    filter.addAt(this.hashes, slot * 32)
  }

  /** Slot `slot`'s path: a view, valid until the slot is removed or the table grows. */
  pathOf(slot: number): Nibbles {
    const depth = this.depth[slot]!
    if (depth > PATH_BYTES) return this.longPaths.get(slot)!
    return this.paths.subarray(slot * PATH_BYTES, slot * PATH_BYTES + depth)
  }

  /** Records one more request waiting for `slot`'s. */
  addParent(slot: number, parent: number): void {
    const more = this.moreParents.get(slot)
    if (more === undefined) this.moreParents.set(slot, [parent])
    else more.push(parent)
  }

  /** `QueueOrder`: the depth of a slot. */
  depthOf(slot: number): number {
    return this.depth[slot]!
  }

  /** `QueueOrder`: whether slot `a`'s path comes before slot `b`'s (both of one depth) in path order. */
  before(a: number, b: number): boolean {
    const pa = this.prefix[a]!
    const pb = this.prefix[b]!
    if (pa !== pb) return pa < pb
    const depth = this.depth[a]!
    if (depth <= PREFIX_NIBBLES) return false
    if (depth <= PATH_BYTES) {
      const paths = this.paths
      for (let i = PREFIX_NIBBLES, x = a * PATH_BYTES, y = b * PATH_BYTES; i < depth; i++) {
        const d = paths[x + i]! - paths[y + i]!
        if (d !== 0) return d < 0
      }
      return false
    }
    const x = this.longPaths.get(a)!
    const y = this.longPaths.get(b)!
    for (let i = PREFIX_NIBBLES; i < depth; i++) {
      const d = x[i]! - y[i]!
      if (d !== 0) return d < 0
    }
    return false
  }

  clear(): void {
    this.data.length = 0
    this.longPaths.clear()
    this.moreParents.clear()
    this.free = descending(0, this.depth.length)
    this.freeCount = this.depth.length
    this.count = 0
    this.tags.fill(EMPTY)
    this.used = 0
  }

  private index(slot: number, tag: number): void {
    const tags = this.tags
    let i = tag & this.mask
    while (tags[i]! > 0) i = (i + 1) & this.mask
    if (tags[i] === EMPTY) this.used++
    tags[i] = tag
    this.slotAt[i] = slot
    if (this.used * 2 > tags.length) this.reindex()
  }

  /** Rebuilds the index at a size the entries fill at most a quarter of, dropping removal marks. */
  private reindex(): void {
    let size = INITIAL_SLOTS * 4
    while (size < this.count * 4) size *= 2
    const { tags, slotAt } = this
    this.tags = new Int32Array(size)
    this.slotAt = new Int32Array(size)
    this.mask = size - 1
    this.used = 0
    for (let j = 0; j < tags.length; j++) {
      if (tags[j]! <= 0) continue
      let i = tags[j]! & this.mask
      while (this.tags[i] !== EMPTY) i = (i + 1) & this.mask
      this.tags[i] = tags[j]!
      this.slotAt[i] = slotAt[j]!
      this.used++
    }
  }

  /** Doubles every column; the new slots are the free ones (there were none). */
  private grow(): void {
    const before = this.depth.length
    const slots = before * 2
    this.free = descending(before, slots)
    this.freeCount = slots - before
    this.hashes = grown(this.hashes, slots * 32)
    this.paths = grown(this.paths, slots * PATH_BYTES)
    this.depth = grown(this.depth, slots)
    this.prefix = grown(this.prefix, slots)
    this.parent = grown(this.parent, slots)
    this.deps = grown(this.deps, slots)
    this.flags = grown(this.flags, slots)
  }
}

function grown<T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(array: T, length: number): T {
  const out = new (array.constructor as new (length: number) => T)(length)
  out.set(array)
  return out
}

/** The numbers from `from` up to `to` (excluded) in descending order, in a stack of `to` entries (`from` on top). */
function descending(from: number, to: number): Int32Array {
  const out = new Int32Array(to)
  for (let i = 0; i < to - from; i++) out[i] = to - 1 - i
  return out
}
