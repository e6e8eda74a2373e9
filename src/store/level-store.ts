import { ClassicLevel } from 'classic-level'
import { DEFAULT_LEVEL_MAX_FILE_BYTES, DEFAULT_LEVEL_WRITE_BUFFER_BYTES } from '../constants.js'
import { StoreError } from '../errors.js'
import { AbstractLevelStore, levelReason } from './abstract-level-store.js'

export { STORE_FORMAT, STORE_FORMAT_KEY, STORE_FORMATS } from './abstract-level-store.js'

type Db = ClassicLevel<Uint8Array, Uint8Array>

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

function byteSize(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1024 * 1024 || value > 1024 * 1024 * 1024) {
    throw new StoreError(`${name} must be 1 MiB to 1 GiB, got ${value}`)
  }
  return value
}

function causeCode(err: unknown): unknown {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined
  return cause?.code
}

/** Why an open failed, in words a user can act on. */
function openFailure(err: unknown): string {
  const code = causeCode(err)
  if (code === 'LEVEL_LOCKED') return `${levelReason(err)} (is another process using this store?)`
  // classic-level creates the directory first; a file in the way surfaces as a mkdir error.
  if (code === 'EEXIST' || code === 'ENOTDIR') return 'not a directory'
  return levelReason(err)
}

/**
 * A `KVStore` on LevelDB (classic-level). Keys and values are raw bytes ('view' encoding); `batch` is one
 * LevelDB write batch, so it is atomic. Open with `LevelStore.open(path)`: the constructor is private because
 * opening is asynchronous and can fail (directory locked by another process, path is a file, …).
 */
export class LevelStore extends AbstractLevelStore {
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
    if (init.markIfEmpty ?? true) await store.markIfEmpty()
    await store.loadLargest()
    return store
  }
}
