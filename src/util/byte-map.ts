import { equalBytes } from './bytes.js'

interface Slot<V> {
  key: Uint8Array
  value: V
  next: Slot<V> | undefined
}

/**
 * A map keyed by byte strings (trie node hashes, store keys) without building a string per lookup. The
 * bucket is a small integer read from the key's leading bytes, which for hashes is already uniformly random;
 * colliding keys share a short chain. On the sync hot path this replaced hex-string keys, whose allocation
 * and hashing were a fifth of the scheduler's time.
 */
export class ByteMap<V> {
  private readonly buckets = new Map<number, Slot<V>>()
  private count = 0

  get size(): number {
    return this.count
  }

  get(key: Uint8Array): V | undefined {
    for (let s = this.buckets.get(bucketOf(key)); s !== undefined; s = s.next) if (equalBytes(s.key, key)) return s.value
    return undefined
  }

  has(key: Uint8Array): boolean {
    for (let s = this.buckets.get(bucketOf(key)); s !== undefined; s = s.next) if (equalBytes(s.key, key)) return true
    return false
  }

  /** Stores `value` under `key`; the map keeps `key` itself, so the caller must not change it afterwards. */
  set(key: Uint8Array, value: V): this {
    const bucket = bucketOf(key)
    const head = this.buckets.get(bucket)
    for (let s = head; s !== undefined; s = s.next) {
      if (equalBytes(s.key, key)) {
        s.value = value
        return this
      }
    }
    this.buckets.set(bucket, { key, value, next: head })
    this.count++
    return this
  }

  delete(key: Uint8Array): boolean {
    const bucket = bucketOf(key)
    let prev: Slot<V> | undefined
    for (let s = this.buckets.get(bucket); s !== undefined; prev = s, s = s.next) {
      if (!equalBytes(s.key, key)) continue
      if (prev !== undefined) prev.next = s.next
      else if (s.next !== undefined) this.buckets.set(bucket, s.next)
      else this.buckets.delete(bucket)
      this.count--
      return true
    }
    return false
  }

  clear(): void {
    this.buckets.clear()
    this.count = 0
  }

  *entries(): IterableIterator<[Uint8Array, V]> {
    for (const head of this.buckets.values()) for (let s: Slot<V> | undefined = head; s !== undefined; s = s.next) yield [s.key, s.value]
  }

  *keys(): IterableIterator<Uint8Array> {
    for (const [key] of this.entries()) yield key
  }

  *values(): IterableIterator<V> {
    for (const [, value] of this.entries()) yield value
  }
}

/**
 * A 30-bit bucket (a V8 small integer, so the bucket map never allocates a number). A 32-byte key is a hash,
 * already uniform: its first four bytes are enough. Any other key (prefixed store keys, item numbers) is
 * structured, so all of it goes through FNV-1a.
 */
function bucketOf(key: Uint8Array): number {
  if (key.length === 32) return ((key[0]! << 22) ^ (key[1]! << 14) ^ (key[2]! << 6) ^ key[3]!) & 0x3fffffff
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193)
  return h & 0x3fffffff
}
