import { BrowserLevel } from 'browser-level'
import { StoreError } from '../errors.js'
import { AbstractLevelStore, levelReason } from './abstract-level-store.js'

export interface BrowserLevelStoreInit {
  /**
   * Write DSFG's format marker (`STORE_FORMAT_KEY`) into a database that holds no key yet, as `LevelStore` does.
   * @default true
   */
  markIfEmpty?: boolean
}

/**
 * A `KVStore` on IndexedDB (browser-level, of the abstract-level family that classic-level belongs to), for a
 * browser tab: what a tab synced is still there after a reload, so its next sync resumes. Keys and values are
 * raw bytes ('view' encoding); `batch` is one IndexedDB transaction, so it is atomic. Open with
 * `BrowserLevelStore.open(name)`, where `name` names the IndexedDB database of this origin.
 */
export class BrowserLevelStore extends AbstractLevelStore {
  /** Opens (creating when absent) the IndexedDB database `name`. Rejects with `StoreError` naming it. */
  static async open(name: string, init: BrowserLevelStoreInit = {}): Promise<BrowserLevelStore> {
    if (typeof name !== 'string' || name === '') throw new StoreError('store name must be a non-empty string')
    const db = new BrowserLevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' })
    try {
      await db.open()
    } catch (err) {
      throw new StoreError(`cannot open store ${name}: ${levelReason(err)}`, { cause: err })
    }
    const store = new BrowserLevelStore(name, db)
    if (init.markIfEmpty ?? true) await store.markIfEmpty()
    await store.loadLargest()
    return store
  }

  /**
   * A value that is a view into a larger buffer, copied: IndexedDB stores a value by structured clone, which
   * takes a view's whole buffer. A trie node handed over as a view into its 2 MiB reply was stored with all of it.
   */
  protected override storable(value: Uint8Array): Uint8Array {
    return ownBytes(value)
  }

  /** Deletes the IndexedDB database `name` and everything in it (close any store open on it first). */
  static async destroy(name: string): Promise<void> {
    try {
      await BrowserLevel.destroy(name)
    } catch (err) {
      throw new StoreError(`cannot delete store ${name}: ${levelReason(err)}`, { cause: err })
    }
  }
}

/** `value`, or a copy of it when it is a view of part of its buffer. */
function ownBytes(value: Uint8Array): Uint8Array {
  return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : new Uint8Array(value)
}
