import type { KVStore } from './kv-store.js'
import { LevelStore } from './level-store.js'
import { MemoryStore } from './memory-store.js'

/** The store spec that selects the in-memory store instead of a LevelDB directory (`--data :memory:`). */
export const MEMORY_STORE_SPEC = ':memory:'

/**
 * Opens the store a `--data` argument names: `':memory:'` gives a fresh `MemoryStore`, anything else is the
 * directory of a `LevelStore` (created when absent). Rejects with `StoreError` when the directory cannot be
 * opened.
 */
export async function openStore(spec: string): Promise<KVStore> {
  if (spec === MEMORY_STORE_SPEC) return new MemoryStore()
  return LevelStore.open(spec)
}
