import type { StateSyncerEvents, StateSyncResult, StateSyncStats } from '../sync/state-syncer.js'
import type { EventSource } from '../util/events.js'

/** A running trie sync started through the service. */
export interface StateSyncHandle {
  /** Resolves when the (latest) root is completely stored. */
  readonly done: Promise<StateSyncResult>
  /** Moves the sync to a newer root; stored complete subtries of the old one are reused. */
  retarget(root: Uint8Array): void
  stats(): StateSyncStats
  /** The sync's typed events (`progress`, `retarget`, `peer:penalised`, `stalled`): listeners only, not the driver itself. */
  readonly events: EventSource<StateSyncerEvents>
}
