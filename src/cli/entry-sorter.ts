import { InvalidInputError } from '../errors.js'

/** Bytes of key and value data the sorter reserves up front; it doubles from there. */
const INITIAL_DATA_BYTES = 1 << 20
/** Entries the sorter reserves up front; it doubles from there. */
const INITIAL_ENTRIES = 1 << 14

/** `[key, value]`; both arrays are views into the sorter's memory, valid while the sorter lives. */
export type SortedEntry = readonly [key: Uint8Array, value: Uint8Array]

/**
 * Collects key/value pairs in any order and hands them back sorted by key bytes, each key once: when a key
 * was added more than once, the last value added wins (like applying the input as a sequence of puts).
 *
 * Built for millions of entries: all bytes live in one growing arena and each entry costs three numbers in
 * typed arrays, instead of two `Uint8Array` objects (about 100 bytes of heap overhead each) per entry. Sorting
 * permutes a `Uint32Array` of entry indexes.
 */
export class EntrySorter {
  private data: Uint8Array = new Uint8Array(INITIAL_DATA_BYTES)
  private used = 0
  private starts = new Float64Array(INITIAL_ENTRIES)
  private keyLengths = new Uint32Array(INITIAL_ENTRIES)
  private valueLengths = new Uint32Array(INITIAL_ENTRIES)
  private count = 0
  private position = 0

  /** Entries added so far, duplicates included. */
  get added(): number {
    return this.count
  }

  /** Entries (duplicates included) the running `sorted()` has gone past, of `added`: its progress. */
  get consumed(): number {
    return this.position
  }

  /** Copies `key` and `value` in; the caller may reuse its buffers. */
  add(key: Uint8Array, value: Uint8Array): void {
    if (this.count === this.starts.length) this.growEntries()
    const need = key.length + value.length
    if (this.used + need > this.data.length) this.growData(this.used + need)
    this.data.set(key, this.used)
    this.data.set(value, this.used + key.length)
    this.starts[this.count] = this.used
    this.keyLengths[this.count] = key.length
    this.valueLengths[this.count] = value.length
    this.used += need
    this.count++
  }

  /**
   * The distinct keys in strictly ascending byte order, each with its last added value. Sorts when called and
   * yields lazily, so millions of entries never exist as objects at once; adding while iterating is not
   * supported.
   */
  *sorted(): Generator<SortedEntry> {
    const order = new Uint32Array(this.count)
    for (let i = 0; i < order.length; i++) order[i] = i
    const { data, starts, keyLengths } = this
    // Ties are broken by insertion index, so within a run of equal keys the last one added comes last.
    order.sort((a, b) => {
      const sa = starts[a]!
      const sb = starts[b]!
      const la = keyLengths[a]!
      const lb = keyLengths[b]!
      const n = Math.min(la, lb)
      for (let i = 0; i < n; i++) {
        const d = data[sa + i]! - data[sb + i]!
        if (d !== 0) return d
      }
      return la - lb || a - b
    })

    for (let i = 0; i < order.length; i++) {
      this.position = i + 1
      const index = order[i]!
      const next = order[i + 1]
      if (next !== undefined && this.sameKey(index, next)) continue
      const start = starts[index]!
      const keyEnd = start + keyLengths[index]!
      yield [data.subarray(start, keyEnd), data.subarray(keyEnd, keyEnd + this.valueLengths[index]!)]
    }
  }

  private sameKey(a: number, b: number): boolean {
    const la = this.keyLengths[a]!
    if (la !== this.keyLengths[b]) return false
    const sa = this.starts[a]!
    const sb = this.starts[b]!
    for (let i = 0; i < la; i++) if (this.data[sa + i] !== this.data[sb + i]) return false
    return true
  }

  private growEntries(): void {
    const size = this.starts.length * 2
    const starts = new Float64Array(size)
    starts.set(this.starts)
    const keyLengths = new Uint32Array(size)
    keyLengths.set(this.keyLengths)
    const valueLengths = new Uint32Array(size)
    valueLengths.set(this.valueLengths)
    this.starts = starts
    this.keyLengths = keyLengths
    this.valueLengths = valueLengths
  }

  private growData(minimum: number): void {
    let size = this.data.length * 2
    while (size < minimum) size *= 2
    let data: Uint8Array
    try {
      data = new Uint8Array(size)
    } catch (err) {
      throw new InvalidInputError(`input too large to sort in memory (${this.used} bytes of keys and values)`, {
        cause: err
      })
    }
    data.set(this.data.subarray(0, this.used))
    this.data = data
  }
}
