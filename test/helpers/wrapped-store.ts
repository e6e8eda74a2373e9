import type { KVStore } from '../../src/store/kv-store.js'

/** A `KVStore` that hands every call to `inner`: tests extend it and override only the calls they watch. */
export class WrappedStore implements KVStore {
  protected readonly inner: KVStore

  constructor(inner: KVStore) {
    this.inner = inner
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.inner.get(key)
  }

  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return this.inner.getMany(keys)
  }

  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.inner.put(key, value)
  }

  del(key: Uint8Array): Promise<void> {
    return this.inner.del(key)
  }

  batch(ops: Parameters<KVStore['batch']>[0]): Promise<void> {
    return this.inner.batch(ops)
  }

  largestValueBytes(): number | undefined {
    return this.inner.largestValueBytes?.()
  }

  holdsNothing(): Promise<boolean> {
    return this.inner.holdsNothing?.() ?? Promise.resolve(false)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
