import type { QueueInit } from '../../fsm/queue-types.js'
import type { Log } from '../../util/log.js'
import type { VerifiedCounts } from '../../util/metrics.js'
import type { Item } from '../../fsm/types.js'
import type { TopicState } from '../../net/topic-protocols.js'
import type { Checkpoint } from '../gossip.js'
import type { SelectFork, TrieCheckpoint } from './target.js'

/** DSFG's operation modes (from the Pocket design); serving is always on and not a mode. */
export type SyncMode = 'unsynced' | 'syncing' | 'synced'

/** An item the sync has hashed (and checked against a content hash): the store need not hash it again. */
export interface VerifiedItem extends Item {
  hash?: Uint8Array
}

/** A running trie sync of a checkpoint root (the service's `startStateSync`). */
export interface TrieSyncRun {
  /** Resolves once the latest root it was given is stored whole, with that root. */
  readonly done: Promise<{ root: Uint8Array }>
  /** Moves the sync to a newer root; complete subtries already stored are not fetched again. */
  retarget(root: Uint8Array): void
}

/**
 * The I/O a topic sync runs on, injected so the orchestration is tested without a network. Its writes (`append`,
 * `truncate`, `adopt`) are called by the sync's `TopicWriter` only, one at a time.
 */
export interface TopicSyncIO {
  /** Our highest stored item number, -1 when we hold none. */
  head(): Promise<number>
  /** Stores the next items (numbers head + 1, head + 2, …), already verified, in one write. */
  append(items: VerifiedItem[]): Promise<void>
  /** Connected peers' reported states for this topic. */
  states(): ReadonlyMap<string, TopicState>
  /**
   * Items `from..` from one peer (the queue validates their shape). With `proveAgainst`, the peer must prove
   * them against that checkpoint's root, and only items up to its number are asked for: what resolves is
   * proven (a reply that fails its proof rejects, and is reported as its sender's fault). `lanes`: how many
   * streams the peer's requests may spread over (its link carries more than one stream's window a round trip).
   */
  fetch(
    peer: string,
    from: number,
    amount: number,
    options: { signal: AbortSignal; proveAgainst?: TrieCheckpoint; lanes?: number }
  ): Promise<Item[]>
  /** keccak256 of items `from..to` from one peer. */
  fetchHashes(peer: string, from: number, to: number, options: { signal: AbortSignal }): Promise<Uint8Array[]>
  /** The newest checkpoint signed by the topic's publisher, when one is configured: it decides the target. */
  checkpoint?(): Checkpoint | undefined
  /** keccak256 of our items `from..to`. */
  localHashes(from: number, to: number): Promise<Uint8Array[]>
  /** Drops our items above `head`. */
  truncate(head: number): Promise<void>
  /** The topic trie's root over our items `0..head`. */
  root(): Promise<Uint8Array>
  /**
   * The target is past every head peers reported: ask them for their states again now, rather than at the
   * next periodic refresh (the caller rate-limits it).
   */
  refreshPeers?(): void
  /** The number of the last checkpoint the store recorded as verified (-1 for none), read once per `run()`. */
  storedCheckpoint?(): Promise<number>
  /**
   * Checkpoint sync: starts a trie sync of `root` into our store. Without it (or `adopt`) every item is
   * downloaded.
   */
  syncTrie?(root: Uint8Array, options: { signal: AbortSignal }): TrieSyncRun
  /**
   * Takes over the topic trie stored whole at `(number, root)`: its leaves become items `0..number`. At or
   * below our head it checks our items rebuild to `root` instead (and makes that root's trie whole).
   * Rejects with `TopicTrieError` when they do not.
   */
  adopt?(root: Uint8Array, number: number, options?: { signal?: AbortSignal }): Promise<void>
}

export interface TopicSyncInit {
  io: TopicSyncIO
  /** Where failures the loop recovers from are logged (the service passes `dsfg:topic:<name>`). @default silentLog */
  log?: Log
  /** Counts the downloaded items (and their bytes) checked and handed to the store; none by default. */
  metrics?: VerifiedCounts
  /** A peer's reply failed a check (malformed, or content proven wrong): its sender, and why. */
  onPeerFault?: (peer: string, reason: string) => void
  /** Items stored (by the downloader, live gossip or an adoption) up to `head`, or dropped down to it. */
  onStored?: (head: number) => void
  /** @default DEFAULT_TOPIC_QUORUM */
  quorum?: number
  /** Our newest items re-checked against peers before each download. @default DEFAULT_START_BACK (32) */
  startBack?: number
  /**
   * Passed to each download queue (window, requests per peer, timeouts, clock, …). `batchSize` is the most
   * items per batch: batches are sized to what one reply carries of the items seen so far.
   */
  queue?: Omit<QueueInit, 'start' | 'target' | 'io'>
  /** Chooses the checkpoint to trie-sync when no publisher decides. @default defaultSelectFork */
  selectFork?: SelectFork
  /**
   * Checkpoint sync starts only for a checkpoint at least this many items past our head.
   * @default DEFAULT_CHECKPOINT_SYNC_MIN_ITEMS (1024)
   */
  checkpointSyncMinItems?: number
  /**
   * A newer checkpoint re-targets a running trie sync only when at least this many items past its checkpoint.
   * @default DEFAULT_TRIE_RETARGET_MIN_ITEMS (512)
   */
  retargetMinItems?: number
  /** Bounds of the live items held past a gap. @default MAX_LIVE_BUFFER_ITEMS, MAX_LIVE_BUFFER_BYTES */
  live?: { maxItems?: number; maxBytes?: number }
}

export interface TopicSyncEvents {
  mode: CustomEvent<SyncMode>
  /** Items stored by the downloader so far, and the target. */
  progress: CustomEvent<{ head: number; target: number }>
  /** A batch failed hash verification; the queue fetches it again elsewhere. */
  'batch:rejected': CustomEvent<{ from: number; to: number; hashPeer: string }>
  /** A download run gave up (a batch failed everywhere, or no peer could serve); it re-plans from our head. */
  'sync:failed': CustomEvent<{ head: number; error: unknown }>
  /**
   * A peer answered RATE_LIMITED (`peer` undefined: one asked for content hashes): it is asked again in `waitMs`.
   * Not a fault; a caller that gives up on a sync that makes no progress can tell busy peers from silent ones.
   */
  'peer:busy': CustomEvent<{ peer: string | undefined; waitMs: number }>
  /** A failed run made no progress at all: the sync now waits for peers to change. */
  'sync:stalled': CustomEvent<{ head: number; error: unknown }>
  /** Peers agreed that our items from `from` on were wrong: they were dropped and are downloaded again. */
  'tip:repaired': CustomEvent<{ from: number; head: number }>
  /**
   * Our items `0..number` did not give the root the publisher signed for checkpoint `number`: items after the
   * last verified checkpoint (`kept`) were dropped and are downloaded again.
   */
  'checkpoint:mismatch': CustomEvent<{ number: number; kept: number }>
  /** Our items `0..number` gave exactly the root the publisher signed. */
  'checkpoint:verified': CustomEvent<{ number: number }>
  /** Checkpoint sync started: the topic trie at `root` is being trie-synced while items after `number` download. */
  'trie:started': CustomEvent<TrieCheckpoint>
  /** A newer checkpoint re-targeted the running trie sync. */
  'trie:retarget': CustomEvent<TrieCheckpoint>
  /** The synced trie was adopted: items `0..number` are ours, verified against its root. */
  'trie:adopted': CustomEvent<TrieCheckpoint>
  /** The trie sync or the adoption failed: the items are downloaded instead. */
  'trie:failed': CustomEvent<{ number: number; error: unknown }>
}
