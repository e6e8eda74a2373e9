import { ClassicLevel } from 'classic-level'
import { DEFAULT_LEVEL_MAX_FILE_BYTES, DEFAULT_LEVEL_WRITE_BUFFER_BYTES } from '../constants.js'
import { StoreError } from '../errors.js'
import type { BatchOp, KVStore } from './kv-store.js'

type Db = ClassicLevel<Uint8Array, Uint8Array>

/**
 * The key of a DSFG store's format marker. Sixteen bytes: no trie node key (32 bytes) nor topic key (33 or 41,
 * `topic-keys.ts`) has that length, so it cannot clash with data.
 */
export const STORE_FORMAT_KEY = new TextEncoder().encode('dsfg:store:fmt\0\0')

/** The store format this version reads and writes. */
export const STORE_FORMAT = 1

export interface LevelStoreInit {
  /**
   * Create the directory (and its parents) and an empty database when none exists at the path.
   *
   * @default true
   */
  createIfMissing?: boolean
  /**
   * Write DSFG's format marker (`STORE_FORMAT_KEY`) into a database that holds no key yet, so the CLI can tell a
   * DSFG store from another program's LevelDB. @default true
   */
  markIfEmpty?: boolean
  /** LevelDB's memtable size (`writeBufferSize`). @default DEFAULT_LEVEL_WRITE_BUFFER_BYTES (32 MiB) */
  writeBufferBytes?: number
  /** LevelDB's table file size (`maxFileSize`). @default DEFAULT_LEVEL_MAX_FILE_BYTES (16 MiB) */
  maxFileBytes?: number
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

function byteSize(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1024 * 1024 || value > 1024 * 1024 * 1024) {
    throw new StoreError(`${name} must be 1 MiB to 1 GiB, got ${value}`)
  }
  return value
}

function reason(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  // abstract-level wraps the real cause ("lock …: already held by process", "EEXIST …") in a generic
  // "Database failed to open"; the inner message is the one a user can act on.
  const cause: unknown = err.cause
  return cause instanceof Error ? cause.message : err.message
}

function causeCode(err: unknown): unknown {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined
  return cause?.code
}

/** Why an open failed, in words a user can act on. */
function openFailure(err: unknown): string {
  const code = causeCode(err)
  if (code === 'LEVEL_LOCKED') return `${reason(err)} (is another process using this store?)`
  // classic-level creates the directory first; a file in the way surfaces as a mkdir error.
  if (code === 'EEXIST' || code === 'ENOTDIR') return 'not a directory'
  return reason(err)
}

/**
 * A `KVStore` on LevelDB (classic-level). Keys and values are raw bytes ('view' encoding); `batch` is one
 * LevelDB write batch, so it is atomic. Open with `LevelStore.open(path)`: the constructor is private because
 * opening is asynchronous and can fail (directory locked by another process, path is a file, …).
 */
export class LevelStore implements KVStore {
  readonly path: string
  private readonly db: Db
  /**
   * Set by the first `close()`: from then on every other call rejects, and concurrent `close()` calls all wait
   * for this one.
   */
  private closing: Promise<void> | undefined

  private constructor(path: string, db: Db) {
    this.path = path
    this.db = db
  }

  /**
   * Opens (by default creating) the LevelDB database in directory `path`. Rejects with `StoreError` naming
   * the path when it cannot be opened.
   */
  static async open(path: string, init: LevelStoreInit = {}): Promise<LevelStore> {
    if (typeof path !== 'string' || path === '') throw new StoreError('store path must be a non-empty string')
    const createIfMissing = init.createIfMissing ?? true
    const writeBufferSize = byteSize(init.writeBufferBytes ?? DEFAULT_LEVEL_WRITE_BUFFER_BYTES, 'writeBufferBytes')
    const maxFileSize = byteSize(init.maxFileBytes ?? DEFAULT_LEVEL_MAX_FILE_BYTES, 'maxFileBytes')
    // ClassicLevel schedules its own open in a microtask when constructed; calling open() right away takes that
    // over, so the whole asynchronous part happens inside this awaited call.
    const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(path, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      writeBufferSize,
      maxFileSize
    })
    try {
      await db.open({ createIfMissing })
    } catch (err) {
      throw new StoreError(`cannot open store at ${path}: ${openFailure(err)}`, { cause: err })
    }
    const store = new LevelStore(path, db)
    try {
      if ((init.markIfEmpty ?? true) && (await store.isEmpty())) await store.put(STORE_FORMAT_KEY, Uint8Array.of(STORE_FORMAT))
    } catch (err) {
      await store.close()
      throw err
    }
    return store
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

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.assertOpen()
    try {
      await this.db.put(key, value)
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

  async batch(ops: BatchOp[]): Promise<void> {
    this.assertOpen()
    if (ops.length === 0) return
    try {
      await this.db.batch(ops)
    } catch (err) {
      throw this.wrap('batch', err)
    }
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
    return new StoreError(`${op} failed on store at ${this.path}: ${reason(err)}`, { cause: err })
  }
}
