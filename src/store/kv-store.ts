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
  /**
   * Whether the store holds no entry (its own bookkeeping, as `LevelStore`'s format marker, aside). Optional: a
   * trie sync into a store that answers true looks up only the nodes it may have written itself, instead of
   * every child it meets (for a fresh `LevelStore`, each look-up is a read of the database).
   */
  holdsNothing?(): Promise<boolean>
  /**
   * A bound on the length of every value it holds, when it keeps one (`undefined` when it does not know). Optional:
   * a server reads the nodes of a request from a store with a small bound many at a time, and a few at a time
   * from one without, as each could be as large as the largest node.
   */
  largestValueBytes?(): number | undefined
  /** Releases the store; every later call rejects with `StoreError`. Closing twice is allowed. */
  close(): Promise<void>
}
