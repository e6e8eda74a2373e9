import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { StoreError } from '../errors.js'
import type { KVStore } from './kv-store.js'
import { LevelStore, STORE_FORMAT_KEY, STORE_FORMATS } from './level-store.js'
import { MemoryStore } from './memory-store.js'

/** The store spec that selects the in-memory store instead of a LevelDB directory (`--data :memory:`). */
export const MEMORY_STORE_SPEC = ':memory:'

export interface OpenStoreOptions {
  /**
   * `read`: the store must exist already and nothing is created or written (`get`, `items`); `write`: created
   * when absent (`import`, `serve`, `sync`, `publish`). @default 'write'
   */
  mode?: 'read' | 'write'
}

/**
 * Opens the store a `--data` argument names: `':memory:'` gives a fresh `MemoryStore`, anything else is the
 * directory of a `LevelStore`. A DSFG store carries a format marker (`LevelStore.open` writes it into a new
 * store): a directory without one that holds data (another program's LevelDB) is refused rather than written
 * into. Rejects with `StoreError` naming the directory.
 */
export async function openStore(spec: string, options: OpenStoreOptions = {}): Promise<KVStore> {
  if (spec === MEMORY_STORE_SPEC) return new MemoryStore()
  const mode = options.mode ?? 'write'
  // LevelDB creates its LOCK and LOG files before it finds there is no database (no CURRENT file): a read
  // must not leave them in a directory that is not a store.
  if (mode === 'read' && !existsSync(join(spec, 'CURRENT'))) {
    throw new StoreError(`no DSFG store at ${spec}${existsSync(spec) ? ' (the directory holds no database)' : ''}`)
  }
  // A new store (or an empty one, opened to write) gets the marker as it opens.
  const store = await LevelStore.open(spec, { createIfMissing: mode === 'write', markIfEmpty: mode === 'write' })
  try {
    const marker = await store.get(STORE_FORMAT_KEY)
    if (marker === undefined) {
      throw new StoreError(`${spec} is not a DSFG store (it has no DSFG format marker)`)
    } else if (marker.length !== 1 || !STORE_FORMATS.includes(marker[0]!)) {
      throw new StoreError(`${spec} is a DSFG store of another format than ${STORE_FORMATS.join(' or ')}, which this version reads`)
    }
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}
