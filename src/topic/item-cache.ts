/**
 * Recently read topic items, bounded by bytes: the least recently used go first. A serving node reads the same
 * items for every joiner of a topic, and a store read costs about 4 µs an item on LevelDB (most of a small-item
 * contents reply's cost) against well under one here. Keys carry a generation the `TopicStore` changes whenever
 * a topic's items may change under a number (a truncate, an adoption), so an entry is never served for an item
 * it no longer is: old generations are simply never asked for again and age out.
 *
 * The cache keeps its own copies: what `put` is given and what `get` returns are the caller's to change.
 */
export class ItemCache {
  private readonly entries = new Map<string, Uint8Array>()
  private readonly maxBytes: number
  private readonly maxItemBytes: number
  private bytes = 0

  /**
   * `maxBytes`: what the cached items may hold in all; `maxItemBytes`: larger items are not cached (their
   * store read is cheap beside their transfer, and a few would push out many small ones).
   */
  constructor(maxBytes: number, maxItemBytes: number) {
    this.maxBytes = maxBytes
    this.maxItemBytes = Math.min(maxItemBytes, maxBytes)
  }

  /** A copy of item `n` of generation `generation`, if cached. */
  get(generation: number, n: number): Uint8Array | undefined {
    const key = cacheKey(generation, n)
    const value = this.entries.get(key)
    if (value === undefined) return undefined
    // Map order is recency order: moved to the end.
    this.entries.delete(key)
    this.entries.set(key, value)
    return value.slice()
  }

  put(generation: number, n: number, value: Uint8Array): void {
    if (value.length > this.maxItemBytes) return
    const key = cacheKey(generation, n)
    const old = this.entries.get(key)
    if (old !== undefined) {
      this.entries.delete(key)
      this.bytes -= old.length
    }
    this.entries.set(key, value.slice())
    this.bytes += value.length
    for (const [oldest, held] of this.entries) {
      if (this.bytes <= this.maxBytes) break
      this.entries.delete(oldest)
      this.bytes -= held.length
    }
  }

  /** Bytes of items held now. */
  get size(): number {
    return this.bytes
  }
}

function cacheKey(generation: number, n: number): string {
  return `${generation}:${n}`
}
