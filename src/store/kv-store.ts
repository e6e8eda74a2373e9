/**
 * The key/value store every part of DSFG writes through. Keys and values are raw bytes; trie nodes are
 * stored under their 32-byte hash, topic data under prefixed keys (see the topic store).
 */
export type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }

export interface KVStore {
  /** The value under `key`, or `undefined` when there is none. */
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  /** Values for several keys in one round trip, `undefined` where absent, in the order asked. */
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>
  put(key: Uint8Array, value: Uint8Array): Promise<void>
  del(key: Uint8Array): Promise<void>
  /** Applies all operations atomically (all or none reach the store). */
  batch(ops: BatchOp[]): Promise<void>
  /** Releases the store; every later call rejects with `StoreError`. Closing twice is allowed. */
  close(): Promise<void>
}
