import { StoreError } from '../errors.js'
import { toHex } from '../util/hex.js'
import type { BatchOp, KVStore } from './kv-store.js'

/**
 * An in-memory `KVStore`. Keys are kept as hex strings because a JS `Map` compares `Uint8Array` keys by
 * identity; values are copied on the way in so a caller reusing its buffer cannot change what was stored.
 */
export class MemoryStore implements KVStore {
  private readonly map = new Map<string, Uint8Array>()
  private closed = false

  /** Number of entries; handy for tests and benchmarks. */
  get size(): number {
    return this.map.size
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.assertOpen()
    // A copy, so a caller that changes the returned bytes cannot change what is stored.
    return this.map.get(toHex(key))?.slice()
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.assertOpen()
    return keys.map((k) => this.map.get(toHex(k))?.slice())
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.assertOpen()
    this.map.set(toHex(key), value.slice())
  }

  async del(key: Uint8Array): Promise<void> {
    this.assertOpen()
    this.map.delete(toHex(key))
  }

  async batch(ops: BatchOp[]): Promise<void> {
    this.assertOpen()
    for (const op of ops) {
      if (op.type === 'put') this.map.set(toHex(op.key), op.value.slice())
      else this.map.delete(toHex(op.key))
    }
  }

  async close(): Promise<void> {
    this.closed = true
  }

  /** Whether a hex key (as `keys()` lists them) is stored. */
  has(hexKey: string): boolean {
    return this.map.has(hexKey)
  }

  /** Every key currently stored, as hex (for tests that inspect the whole store). */
  keys(): IterableIterator<string> {
    return this.map.keys()
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('store is closed')
  }
}
