import { equalBytes } from './bytes.js'

/** Slots of a new, or cleared, map: a power of two. */
const INITIAL_SLOTS = 16

/** A slot's tag: never used. */
const EMPTY = 0
/** A slot's tag: its key was deleted (the probe must go on past it). */
const DELETED = -1

/**
 * A map keyed by byte strings (trie node hashes, store keys) without building a string per lookup: an
 * open-addressing table with linear probing. Each slot keeps its key's 30-bit hash as a tag in an
 * `Int32Array`, so a probe compares bytes only on a tag match, and an entry costs no object of its own. On the
 * sync hot path this replaced hex-string keys, whose allocation and hashing were a fifth of the scheduler's
 * time, and then a `Map` of buckets with a chain object per entry, which cost the trie sync about as much as
 * hashing its nodes. Iteration order is unspecified.
 */
export class ByteMap<V> {
  private tags: Int32Array
  private keyAt: (Uint8Array | undefined)[]
  private valueAt: (V | undefined)[]
  private mask: number
  private count = 0
  /** Slots holding a key or a deletion mark: the table grows before they fill more than half of it. */
  private used = 0

  /**
   * `expected`: how many keys the map will hold, when the caller knows (a request's node hashes), so it is
   * made at that size instead of growing to it by doubling (each time rehashing every key).
   */
  constructor(expected = 0) {
    const slots = slotsFor(expected)
    this.tags = new Int32Array(slots)
    this.keyAt = new Array(slots)
    this.valueAt = new Array(slots)
    this.mask = slots - 1
  }

  get size(): number {
    return this.count
  }

  get(key: Uint8Array): V | undefined {
    const slot = this.find(key)
    return slot < 0 ? undefined : this.valueAt[slot]
  }

  has(key: Uint8Array): boolean {
    return this.find(key) >= 0
  }

  /** Stores `value` under `key`; the map keeps `key` itself, so the caller must not change it afterwards. */
  set(key: Uint8Array, value: V): this {
    const tag = tagOf(key)
    const tags = this.tags
    const mask = this.mask
    let free = -1
    for (let i = tag & mask; ; i = (i + 1) & mask) {
      const t = tags[i]!
      if (t === EMPTY) {
        if (free < 0) {
          free = i
          this.used++
        }
        break
      }
      if (t === DELETED) {
        if (free < 0) free = i
      } else if (t === tag && equalBytes(this.keyAt[i]!, key)) {
        this.valueAt[i] = value
        return this
      }
    }
    tags[free] = tag
    this.keyAt[free] = key
    this.valueAt[free] = value
    this.count++
    if (this.used * 2 > tags.length) this.resize()
    return this
  }

  delete(key: Uint8Array): boolean {
    const slot = this.find(key)
    if (slot < 0) return false
    this.tags[slot] = DELETED
    this.keyAt[slot] = undefined
    this.valueAt[slot] = undefined
    this.count--
    return true
  }

  clear(): void {
    this.tags = new Int32Array(INITIAL_SLOTS)
    this.keyAt = new Array(INITIAL_SLOTS)
    this.valueAt = new Array(INITIAL_SLOTS)
    this.mask = INITIAL_SLOTS - 1
    this.count = 0
    this.used = 0
  }

  // The iterators hold on to the table they started on: a delete meanwhile hides its entry, and a set that
  // grows the table leaves them walking the old one.
  *entries(): IterableIterator<[Uint8Array, V]> {
    const { tags, keyAt, valueAt } = this
    for (let i = 0; i < tags.length; i++) if (tags[i]! > 0) yield [keyAt[i]!, valueAt[i]!]
  }

  *keys(): IterableIterator<Uint8Array> {
    const { tags, keyAt } = this
    for (let i = 0; i < tags.length; i++) if (tags[i]! > 0) yield keyAt[i]!
  }

  *values(): IterableIterator<V> {
    const { tags, valueAt } = this
    for (let i = 0; i < tags.length; i++) if (tags[i]! > 0) yield valueAt[i]!
  }

  /** The slot holding `key`, or -1. */
  private find(key: Uint8Array): number {
    const tag = tagOf(key)
    const tags = this.tags
    const mask = this.mask
    for (let i = tag & mask; ; i = (i + 1) & mask) {
      const t = tags[i]!
      if (t === EMPTY) return -1
      if (t === tag && equalBytes(this.keyAt[i]!, key)) return i
    }
  }

  /** Rehashes into a table where the live keys fill at most a quarter, dropping deletion marks. */
  private resize(): void {
    const slots = slotsFor(this.count)
    const { tags, keyAt, valueAt } = this
    this.tags = new Int32Array(slots)
    this.keyAt = new Array(slots)
    this.valueAt = new Array(slots)
    this.mask = slots - 1
    this.used = this.count
    for (let j = 0; j < tags.length; j++) {
      const tag = tags[j]!
      if (tag <= 0) continue
      let i = tag & this.mask
      while (this.tags[i] !== EMPTY) i = (i + 1) & this.mask
      this.tags[i] = tag
      this.keyAt[i] = keyAt[j]
      this.valueAt[i] = valueAt[j]
    }
  }
}

/** Slots for a table of `keys` keys, which fill at most a quarter of it. */
function slotsFor(keys: number): number {
  let slots = INITIAL_SLOTS
  while (slots < keys * 4) slots *= 2
  return slots
}

/**
 * A key's tag: a 30-bit hash plus one, so never EMPTY or DELETED (and a V8 small integer). A 32-byte key is a
 * hash, already uniform: its first four bytes are enough. Any other key (prefixed store keys, item numbers) is
 * structured, so all of it goes through FNV-1a.
 */
function tagOf(key: Uint8Array): number {
  if (key.length === 32) return hashTag(key, 0)
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193)
  return (h & 0x3fffffff) + 1
}

/**
 * The tag of the 32-byte hash at `at` of `bytes`: its first 30 bits plus one, never 0 (an empty slot) or -1
 * (a removed one). A hash is uniform already, so nothing is hashed again. `RequestTable` tags its own hash bytes
 * with it.
 */
export function hashTag(bytes: Uint8Array, at: number): number {
  return (((bytes[at]! << 22) ^ (bytes[at + 1]! << 14) ^ (bytes[at + 2]! << 6) ^ bytes[at + 3]!) & 0x3fffffff) + 1
}
