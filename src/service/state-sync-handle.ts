import type { StateSyncer, StateSyncResult, StateSyncStats } from '../sync/state-syncer.js'

/** A running trie sync started through the service. */
export interface StateSyncHandle {
  /** Resolves when the (latest) root is completely stored. */
  readonly done: Promise<StateSyncResult>
  /** Moves the sync to a newer root; stored complete subtries of the old one are reused. */
  retarget(root: Uint8Array): void
  stats(): StateSyncStats
  /** The driver, for its typed events (`progress`, `retarget`, `peer:penalised`). */
  readonly syncer: StateSyncer
}
