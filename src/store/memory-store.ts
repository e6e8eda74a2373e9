import { StoreError } from '../errors.js'
import { ByteMap } from '../util/byte-map.js'
import { fromHex, toHex } from '../util/hex.js'
import type { BatchOp, KVStore } from './kv-store.js'

/**
 * An in-memory `KVStore` (a `ByteMap`, since a JS `Map` compares `Uint8Array` keys by identity). Keys and
 * values are copied on the way in and values on the way out, so no caller can change what is stored.
 */
export class MemoryStore implements KVStore {
  private readonly map = new ByteMap<Uint8Array>()
  private closed = false
  /** No value put was longer (values deleted since included). */
  private largest = 0

  /** Number of entries; handy for tests and benchmarks. */
  get size(): number {
    return this.map.size
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.assertOpen()
    // A copy, so a caller that changes the returned bytes cannot change what is stored.
    return copy(this.map.get(key))
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.assertOpen()
    return keys.map((k) => copy(this.map.get(k)))
  }

  async holdsNothing(): Promise<boolean> {
    this.assertOpen()
    return this.map.size === 0
  }

  largestValueBytes(): number {
    return this.largest
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.assertOpen()
    this.map.set(new Uint8Array(key), new Uint8Array(value))
    this.largest = Math.max(this.largest, value.length)
  }

  async del(key: Uint8Array): Promise<void> {
    this.assertOpen()
    this.map.delete(key)
  }

  async batch(ops: BatchOp[]): Promise<void> {
    this.assertOpen()
    for (const op of ops) {
      if (op.type === 'put') {
        this.map.set(new Uint8Array(op.key), new Uint8Array(op.value))
        this.largest = Math.max(this.largest, op.value.length)
      } else this.map.delete(op.key)
    }
  }

  async close(): Promise<void> {
    this.closed = true
  }

  /** Whether a hex key (as `keys()` lists them) is stored. */
  has(hexKey: string): boolean {
    return this.map.has(fromHex(hexKey))
  }

  /** Every key currently stored, as hex (for tests that inspect the whole store). */
  *keys(): IterableIterator<string> {
    for (const key of this.map.keys()) yield toHex(key)
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('store is closed')
  }
}

/**
 * A plain `Uint8Array` copy. (`slice()` is not enough: on a Node `Buffer` it returns a view of the same
 * memory, and a `Buffer` would leak out of the store.)
 */
function copy(value: Uint8Array | undefined): Uint8Array | undefined {
  return value === undefined ? undefined : new Uint8Array(value)
}
