import { StoreError } from '../errors.js'
import { equalBytes } from '../util/bytes.js'
import { Serial } from '../util/serial.js'
import type { BatchOp, KVStore } from './kv-store.js'

/**
 * The key of a DSFG store's format marker. Sixteen bytes: no trie node key (32 bytes) nor topic key (33 or 41,
 * `topic-keys.ts`) has that length, so it cannot clash with data.
 */
export const STORE_FORMAT_KEY = new TextEncoder().encode('dsfg:store:fmt\0\0')

/**
 * The store format this version writes into a new store. 2 adds the bound on the values' lengths
 * (`STORE_LARGEST_VALUE_KEY`): an earlier version refuses such a store, since its writes would leave the bound
 * too small (an outside tester made a server read 1,024 leaves of 1 MiB at once that way).
 */
export const STORE_FORMAT = 2

/** The store formats this version reads and writes: 1, written by earlier versions (no bound on values), and 2. */
export const STORE_FORMATS: readonly number[] = [1, STORE_FORMAT]

/**
 * The key of the store's bound on its values' lengths (`largestValueBytes`), a big-endian uint32 written in the
 * same batch as any value longer than the last. Sixteen bytes, as the format marker's.
 */
export const STORE_LARGEST_VALUE_KEY = new TextEncoder().encode('dsfg:store:max\0\0')

/**
 * The part of an abstract-level database (classic-level on LevelDB, browser-level on IndexedDB) a store uses,
 * opened with the 'view' encoding for keys and values.
 */
export interface LevelDb {
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>
  put(key: Uint8Array, value: Uint8Array): Promise<void>
  del(key: Uint8Array): Promise<void>
  batch(): LevelChainedBatch
  keys(options: { limit: number }): { all(): Promise<Uint8Array[]> }
  close(): Promise<void>
}

/** The part of an abstract-level chained batch a store uses. */
export interface LevelChainedBatch {
  put(key: Uint8Array, value: Uint8Array): unknown
  del(key: Uint8Array): unknown
  write(): Promise<void>
  close(): Promise<void>
}

/**
 * classic-level hands values back as Node `Buffer`s. `Buffer#slice` returns a view, not a copy, so code that
 * copies with `.slice()` (as `MemoryStore` and its callers do) would silently alias; a plain `Uint8Array`
 * over the same memory keeps `.slice()` meaning "copy" everywhere.
 */
function plain(value: Uint8Array | undefined): Uint8Array | undefined {
  if (value === undefined || value.constructor === Uint8Array) return value
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
}

/** Why a call failed, in words a user can act on. */
export function levelReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  // abstract-level wraps the real cause ("lock …: already held by process", "EEXIST …") in a generic
  // "Database failed to open"; the inner message is the one a user can act on.
  const cause: unknown = err.cause
  return cause instanceof Error ? cause.message : err.message
}

/**
 * A `KVStore` over an open abstract-level database: `batch` is one write batch of the database, so it is
 * atomic. `LevelStore` (LevelDB) and `BrowserLevelStore` (IndexedDB) open theirs and hand it here.
 */
export class AbstractLevelStore implements KVStore {
  /** Where the database lives: a directory, or an IndexedDB database name. */
  readonly path: string
  private readonly db: LevelDb
  /**
   * Set by the first `close()`: from then on every other call rejects, and concurrent `close()` calls all wait
   * for this one.
   */
  private closing: Promise<void> | undefined
  /** No value is longer: known once `loadLargest` found the bound or an empty store; `undefined` before. */
  private largest: number | undefined
  /** Batches that raise `largest`, one at a time, so its key only ever grows. */
  private readonly raising = new Serial()

  protected constructor(path: string, db: LevelDb) {
    this.path = path
    this.db = db
  }

  /** Writes the format marker into a database that holds no key yet; closes the store when that fails. */
  protected async markIfEmpty(): Promise<void> {
    try {
      if (await this.isEmpty()) await this.put(STORE_FORMAT_KEY, Uint8Array.of(STORE_FORMAT))
    } catch (err) {
      await this.close()
      throw err
    }
  }

  /**
   * Reads the bound on the values' lengths: the one written with them, 0 for a store that holds nothing yet, and
   * none for a store an earlier DSFG wrote (its values are then read as if each could be the largest node).
   */
  protected async loadLargest(): Promise<void> {
    try {
      const bound = await this.get(STORE_LARGEST_VALUE_KEY)
      if (bound !== undefined && bound.length === 4) this.largest = new DataView(bound.buffer, bound.byteOffset, 4).getUint32(0)
      else if (await this.holdsNothing()) this.largest = 0
    } catch (err) {
      await this.close()
      throw err
    }
  }

  largestValueBytes(): number | undefined {
    return this.largest
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.assertOpen()
    try {
      return plain(await this.db.get(key))
    } catch (err) {
      throw this.wrap('get', err)
    }
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.assertOpen()
    if (keys.length === 0) return []
    try {
      const values = await this.db.getMany(keys)
      // A bound a writer that keeps none left too small (an earlier version writing a newer store) is raised in
      // memory by what is read past it, so the next reads are sized by the truth.
      if (this.largest !== undefined) for (const value of values) if (value !== undefined && value.length > this.largest) this.largest = value.length
      return values.map(plain)
    } catch (err) {
      throw this.wrap('getMany', err)
    }
  }

  /** Whether the database holds no key at all. */
  async isEmpty(): Promise<boolean> {
    this.assertOpen()
    try {
      return (await this.db.keys({ limit: 1 }).all()).length === 0
    } catch (err) {
      throw this.wrap('keys', err)
    }
  }

  /** Whether the database holds no key but its own bookkeeping (the format marker, the bound on values). */
  async holdsNothing(): Promise<boolean> {
    this.assertOpen()
    try {
      const keys = await this.db.keys({ limit: 3 }).all()
      return keys.every((key) => equalBytes(key, STORE_FORMAT_KEY) || equalBytes(key, STORE_LARGEST_VALUE_KEY))
    } catch (err) {
      throw this.wrap('keys', err)
    }
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.assertOpen()
    if (this.largest !== undefined && value.length > this.largest) return this.batch([{ type: 'put', key, value }])
    try {
      await this.db.put(key, this.storable(value))
    } catch (err) {
      throw this.wrap('put', err)
    }
  }

  async del(key: Uint8Array): Promise<void> {
    this.assertOpen()
    try {
      await this.db.del(key)
    } catch (err) {
      throw this.wrap('del', err)
    }
  }

  /**
   * Not async, nor is `write`: the operations go into the database's own batch at once, and nothing here keeps
   * them while it writes. A trie sync's commit of 1,000 nodes, an object and a key each, outlived a garbage
   * collection or two when held across that wait.
   */
  batch(ops: BatchOp[]): Promise<void> {
    try {
      this.assertOpen()
      if (ops.length === 0) return Promise.resolve()
      if (this.largest !== undefined) {
        let longest = 0
        for (const op of ops) if (op.type === 'put' && op.value.length > longest) longest = op.value.length
        if (longest > this.largest) return this.raiseAndWrite(ops, longest)
      }
      return this.write(ops)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Writes `ops` with a bound raised to cover `longest`, in one batch. */
  private raiseAndWrite(ops: BatchOp[], longest: number): Promise<void> {
    return this.raising.run(async () => {
      const bound = Math.max(longest, this.largest ?? 0)
      const encoded = new Uint8Array(4)
      new DataView(encoded.buffer).setUint32(0, bound)
      await this.write([...ops, { type: 'put', key: STORE_LARGEST_VALUE_KEY, value: encoded }])
      this.largest = bound
    })
  }

  private write(ops: BatchOp[]): Promise<void> {
    // A chained batch, not `db.batch(ops)`: classic-level reads each operation of an array through Node-API
    // property look-ups (its type, whether it has a key and a value, then both), which cost the main thread
    // about 2 µs an operation more than a `put` call each (measured on a trie sync's 138k node writes).
    const batch = this.db.batch()
    try {
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, this.storable(op.value))
        else batch.del(op.key)
      }
    } catch (err) {
      return this.failed(batch, err)
    }
    return batch.write().catch((err: unknown) => this.failed(batch, err))
  }

  private async failed(batch: LevelChainedBatch, err: unknown): Promise<never> {
    await batch.close()
    throw this.wrap('batch', err)
  }

  /**
   * The value as the database should be handed it. LevelDB copies a view's own bytes, so a value may be a view
   * into a larger buffer (a trie node inside its reply); `BrowserLevelStore` copies such a value first.
   */
  protected storable(value: Uint8Array): Uint8Array {
    return value
  }

  async close(): Promise<void> {
    this.closing ??= this.db.close().catch((err: unknown) => {
      throw this.wrap('close', err)
    })
    await this.closing
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new StoreError(`store at ${this.path} is closed`)
  }

  private wrap(op: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err
    return new StoreError(`${op} failed on store at ${this.path}: ${levelReason(err)}`, { cause: err })
  }
}
