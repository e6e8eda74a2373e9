import { existsSync } from 'node:fs'
import { StoreError } from '../errors.js'
import type { KVStore } from './kv-store.js'
import { LevelStore } from './level-store.js'
import { MemoryStore } from './memory-store.js'

/** The store spec that selects the in-memory store instead of a LevelDB directory (`--data :memory:`). */
export const MEMORY_STORE_SPEC = ':memory:'

/**
 * The key of a DSFG store's format marker. Sixteen bytes: no trie node key (32 bytes) nor topic key (33 or 41,
 * `topic-keys.ts`) has that length, so it cannot clash with data.
 */
const FORMAT_KEY = new TextEncoder().encode('dsfg:store:fmt\0\0')

/** The store format this version reads and writes. */
export const STORE_FORMAT = 1

export interface OpenStoreOptions {
  /**
   * `read`: the store must exist already and nothing is created or written (`get`, `items`); `write`: created
   * when absent (`import`, `serve`, `sync`, `publish`). @default 'write'
   */
  mode?: 'read' | 'write'
}

/**
 * Opens the store a `--data` argument names: `':memory:'` gives a fresh `MemoryStore`, anything else is the
 * directory of a `LevelStore`. A DSFG store carries a format marker: a new (empty) store opened to write gets
 * one, and a directory without one that holds data (another program's LevelDB) is refused rather than written
 * into. Rejects with `StoreError` naming the directory.
 */
export async function openStore(spec: string, options: OpenStoreOptions = {}): Promise<KVStore> {
  if (spec === MEMORY_STORE_SPEC) return new MemoryStore()
  const mode = options.mode ?? 'write'
  if (mode === 'read' && !existsSync(spec)) throw new StoreError(`no DSFG store at ${spec}`)
  const store = await LevelStore.open(spec, { createIfMissing: mode === 'write' })
  try {
    const marker = await store.get(FORMAT_KEY)
    if (marker === undefined) {
      if (mode === 'read' || !(await store.isEmpty())) throw new StoreError(`${spec} is not a DSFG store (it has no DSFG format marker)`)
      await store.put(FORMAT_KEY, Uint8Array.of(STORE_FORMAT))
    } else if (marker.length !== 1 || marker[0] !== STORE_FORMAT) {
      throw new StoreError(`${spec} is a DSFG store of another format than ${STORE_FORMAT}, which this version reads`)
    }
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}
