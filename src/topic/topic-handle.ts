import type { GossipSub } from '@libp2p/gossipsub'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { GOSSIP_HINT_INTERVAL_MS, ITEMS_READ_CHUNK } from '../constants.js'
import { AbortError, InvalidCheckpointRecordError, TopicSyncStalledError } from '../errors.js'
import type { Item } from '../fsm/types.js'
import type { TopicState } from '../net/topic-protocols.js'
import type { Fetcher } from './fetcher.js'
import { openCheckpoint, recordSignedCheckpoint, type SignedCheckpoint } from './checkpoint-record.js'
import { type Checkpoint, checkpointsTopic, decodeGossipItem, encodeGossipItem, itemsTopic } from './gossip.js'
import type { GossipFeeds } from './gossip-feeds.js'
import { PEER_FAULT_OFFENCES, queueFaultOffence } from '../peers/offence-kinds.js'
import type { OffenceKind } from '../peers/peer-scorer.js'
import type { PeerStateChange, TopicStateManager } from './topic-state-manager.js'
import type { TopicStore } from './topic-store.js'
import type { StateSyncStats } from '../sync/state-syncer.js'
import { raceSignal, throwIfAborted } from '../util/abort.js'
import { equalBytes } from '../util/bytes.js'
import { dispatchSafely, type EventSource, eventSource } from '../util/events.js'
import type { Log } from '../util/log.js'
import type { VerifiedCounts } from '../util/metrics.js'
import type { SelectFork, TrieCheckpoint } from './sync/target.js'
import { DEFAULT_TOPIC_QUORUM, TopicSync } from './sync/topic-sync.js'
import type { SyncMode, TopicSyncEvents, TrieSyncRun, VerifiedItem } from './sync/types.js'

/** A trie sync the handle can start for a checkpoint sync (the service's `startStateSync`). */
export type TrieSyncStarter = (
  root: Uint8Array,
  options: { signal: AbortSignal; onProgress: (stats: StateSyncStats) => void; onPenalty: (peer: string, reason: string) => void }
) => TrieSyncRun

/** What a topic's items are verified by: the publisher's signatures, or a quorum of N agreeing peers. */
export type TopicTrustMode = 'publisher' | `quorum:${number}`

/** What `sync:progress` reports. */
export interface TopicSyncProgress {
  /** `trie` while the checkpoint's topic trie is trie-synced, `items` while items are downloaded. */
  phase: 'trie' | 'items'
  /** Our head (highest stored item number, -1 when none). */
  head: number
  /** The item number the sync aims at. */
  target: number
  /**
   * During the trie phase: the checkpoint being synced and the trie sync's counters; `busy`: peers it leaves
   * alone for now because they answered RATE_LIMITED; `stored`: nodes written with their whole subtries, which a
   * restart keeps.
   */
  trie?: { checkpoint: TrieCheckpoint; nodes: number; bytes: number; pending: number; busy: number; stored: number }
}

/** A checkpoint signed by the topic's publisher, and what became of it. */
export interface TopicCheckpointEvent {
  checkpoint: Checkpoint
  /**
   * `received` when it arrives; `verified` once our items `0..number` rebuilt to its root (or a trie sync of it
   * was adopted); `mismatch` when they did not (the unverified items were dropped and are downloaded again).
   */
  status: 'received' | 'verified' | 'mismatch'
}

/** The typed events of a topic handle. */
export interface TopicHandleEvents {
  /** The sync's mode changed: `unsynced`, `syncing` or `synced`. */
  mode: CustomEvent<SyncMode>
  'sync:progress': CustomEvent<TopicSyncProgress>
  /**
   * The topic reached its target (the mode became `synced`): our head then, and what it was verified by:
   * `publisher` (its signed checkpoints) or `quorum:N` (N peers agreeing: the weaker guarantee).
   */
  'sync:complete': CustomEvent<{ head: number; trust: TopicTrustMode }>
  checkpoint: CustomEvent<TopicCheckpointEvent>
  /** A peer sent data that failed verification and was penalised (it may be disconnected). */
  'peer:penalised': CustomEvent<{ peer: string; reason: string }>
}

export interface TopicHandleDeps {
  /** Where this topic's handle and sync log (`dsfg:topic`). */
  log: Log
  /** Counts the downloaded items this topic verified (`dsfg_topic_items_verified_total`); none without metrics. */
  metrics?: VerifiedCounts
  store: TopicStore
  fetcher: Fetcher
  states: TopicStateManager
  pubsub: GossipSub | undefined
  /** The node's shared gossip subscriptions (absent without gossipsub). */
  feeds: GossipFeeds | undefined
  /** Only this peer's signed items and checkpoints are accepted, when set. */
  publisher: PeerId | undefined
  /** This node's key: it signs the checkpoints `checkpoint()` records. */
  privateKey: PrivateKey
  quorum: number | undefined
  /** Chooses the checkpoint to trie-sync without a publisher. @default defaultSelectFork */
  selectFork?: SelectFork
  /** Checkpoint sync only for a checkpoint at least this far past our head. @default 1024 */
  checkpointSyncMinItems?: number
  /** Starts trie syncs for checkpoint sync; without it, every item is downloaded. */
  syncTrie?: TrieSyncStarter
  /** A peer sent data that failed validation: `kind` is how the peer ledger weighs it, `reason` what it was. */
  onPeerFault(peer: string, kind: OffenceKind, reason: string): void
}

/** `signal` ends the call with `AbortError` (what the store was doing meanwhile runs to its end). */
export interface AbortOptions {
  signal?: AbortSignal
}

export interface FollowOptions {
  /** Ends the call. Without one it runs until the node stops (`close()`), then rejects with `AbortError`. */
  signal?: AbortSignal
}

/** What `publish()` did: the item is stored as number `n`; gossip reached `recipients` peers. */
export interface PublishResult {
  n: number
  /** Peers the item's gossip reached: 0 without gossipsub or subscribers (peers then catch up by download). */
  recipients: number
  /** Why gossiping the stored item failed, if it did. */
  gossipError?: Error
}

/**
 * One topic as the application sees it: publish and checkpoint (on the publisher), state and proofs, and
 * `follow`, which catches up from peers and then applies live gossiped items in order, exactly once each.
 * Catching up is a checkpoint sync when a trusted checkpoint is far ahead: the topic trie at its root is
 * trie-synced and adopted while the items after it download; otherwise (and after it) items download in
 * numbered batches, each verified against content hashes and, where a publisher checkpoint falls, its root.
 */
export class TopicHandle extends TypedEventEmitter<TopicHandleEvents> {
  readonly name: string
  private readonly deps: TopicHandleDeps
  private readonly sync: TopicSync
  private latestCheckpoint: Checkpoint | undefined

  constructor(name: string, deps: TopicHandleDeps) {
    super()
    this.name = name
    this.deps = deps
    const { store, fetcher, states } = deps
    const onPeerFault = (peer: string, kind: OffenceKind, reason: string): void => this.blame(peer, kind, reason)
    const syncTrie = deps.syncTrie
    this.sync = new TopicSync({
      quorum: deps.quorum,
      selectFork: deps.selectFork,
      checkpointSyncMinItems: deps.checkpointSyncMinItems,
      log: deps.log,
      metrics: deps.metrics,
      onPeerFault: (peer, reason) => onPeerFault(peer, queueFaultOffence(reason), reason),
      onStored: () => this.notifyStored(),
      io: {
        head: () => store.head(name),
        append: (items) => this.append(items),
        states: () => states.states(name),
        fetch: fetcher.queueFetch(name, {
          onPeerFault: (error) => onPeerFault(error.peer, PEER_FAULT_OFFENCES[error.reason], error.reason)
        }),
        fetchHashes: (peer, from, to, options) => fetcher.hashes(peer, name, from, to, options),
        localHashes: (from, to) => store.getContentHashes(name, from, to),
        truncate: (head) => store.truncate(name, head),
        root: () => store.root(name),
        refreshPeers: () => this.refreshPeers(),
        checkpoint: deps.publisher === undefined ? undefined : () => this.latestCheckpoint,
        adopt: (root, number, options) => store.adoptTrie(name, root, number, options),
        storedCheckpoint: async () => (await store.getCheckpoint(name))?.number ?? -1,
        syncTrie:
          syncTrie === undefined
            ? undefined
            : (root, { signal }) =>
                syncTrie(root, {
                  signal,
                  // The trie syncer penalises through the service itself: only tell the application.
                  onPenalty: (peer, reason) => dispatchSafely(this, 'peer:penalised', { peer, reason }),
                  onProgress: (stats) => this.trieProgress(stats)
                })
      }
    })
    this.events = eventSource(this.sync)
    this.sync.addEventListener('mode', (e) => {
      dispatchSafely(this, 'mode', e.detail)
      if (e.detail !== 'synced') return
      void this.head().then((head) => dispatchSafely(this, 'sync:complete', { head, trust: this.trust }), () => undefined)
    })
    this.sync.addEventListener('progress', (e) => {
      dispatchSafely(this, 'sync:progress', { phase: 'items', head: e.detail.head, target: e.detail.target })
    })
    const checkpointStatus = (number: number, status: 'verified' | 'mismatch'): void => {
      const cp = this.latestCheckpoint
      if (cp !== undefined && cp.number === number) dispatchSafely(this, 'checkpoint', { checkpoint: cp, status })
    }
    this.sync.addEventListener('checkpoint:verified', (e) => checkpointStatus(e.detail.number, 'verified'))
    this.sync.addEventListener('trie:adopted', (e) => checkpointStatus(e.detail.number, 'verified'))
    this.sync.addEventListener('checkpoint:mismatch', (e) => checkpointStatus(e.detail.number, 'mismatch'))
    const onPeerState = (e: CustomEvent<PeerStateChange>): void => {
      if (e.detail.topic !== name) return
      // A peer hands on the newest signed record it holds: the signature, not the peer, is what we trust.
      const record = e.detail.state?.record
      if (record !== undefined) void this.receiveRecord(record, e.detail.peer)
      this.sync.peersChanged()
    }
    const onPeerRemoved = (): void => this.sync.peersChanged()
    states.addEventListener('peer:state', onPeerState)
    states.addEventListener('peer:removed', onPeerRemoved)
    // The state manager outlives a stopped service's handles: a closed one must not hear it (found by an attack:
    // after a restart the old handle still took records and checked checkpoints, a second writer of the store).
    this.closed.signal.addEventListener(
      'abort',
      () => {
        states.removeEventListener('peer:state', onPeerState)
        states.removeEventListener('peer:removed', onPeerRemoved)
      },
      { once: true }
    )
  }

  get mode(): SyncMode {
    return this.sync.mode
  }

  /** What the topic's items are verified by: `publisher` (its signatures) or `quorum:N` (N agreeing peers). */
  get trust(): TopicTrustMode {
    return this.deps.publisher === undefined ? `quorum:${Math.max(1, this.deps.quorum ?? DEFAULT_TOPIC_QUORUM)}` : 'publisher'
  }

  /**
   * The detailed events of the topic's sync (`progress`, `batch:rejected`, `trie:started`, `trie:adopted`,
   * `checkpoint:mismatch`, …); the handle's own events are the stable summary. Listeners only: the sync
   * engine itself stays inside the handle.
   */
  readonly events: EventSource<TopicSyncEvents>

  /** The item number the sync currently aims at (-1 before peers or a checkpoint gave one). */
  get target(): number {
    return this.sync.target()
  }

  /** The newest checkpoint received from the topic's publisher. */
  get checkpointReceived(): Checkpoint | undefined {
    return this.latestCheckpoint
  }

  /** The newest record we verified (or signed), as its envelope bytes: what peers get in our status replies. */
  private latestRecord: Uint8Array | undefined

  /**
   * A signed checkpoint record from `peer` (a status reply), or from the store (no peer, `kept`). With a publisher, one
   * it signed and newer than ours becomes the checkpoint we trust; records by anyone else are ignored, and
   * bytes that are no valid record at all are their sender's fault. Without a publisher, peers' records are
   * not used: a quorum decides. Never throws.
   */
  private async receiveRecord(bytes: Uint8Array, peer?: string, kept = false): Promise<void> {
    const publisher = this.deps.publisher
    if (publisher === undefined || (this.latestRecord !== undefined && equalBytes(bytes, this.latestRecord))) return
    let record: SignedCheckpoint
    try {
      record = await openCheckpoint(bytes, { topic: this.name })
    } catch (err) {
      this.deps.log('%s: a checkpoint record from %s did not open: %e', this.name, peer ?? 'the store', err)
      if (peer !== undefined && err instanceof InvalidCheckpointRecordError) this.blame(peer, 'bad-data', err.message)
      return
    }
    if (record.signer.equals(publisher)) this.adoptRecord(record, kept)
    else this.deps.log('%s: a record signed by %p, not the publisher, ignored', this.name, record.signer)
  }

  /**
   * A record signed by the publisher (checked by the caller): the trusted checkpoint, if newer. Kept in the store
   * unless it came from there or the caller kept it already. Never throws.
   */
  private adoptRecord(record: SignedCheckpoint, kept = false): void {
    const cp = record.checkpoint
    if (this.closed.signal.aborted || (this.latestCheckpoint?.number ?? -1) >= cp.number) return
    this.latestCheckpoint = cp
    this.latestRecord = record.envelope
    // Kept and served, so that a peer that joins later learns it from us.
    if (!kept) {
      void this.deps.store.putCheckpointRecord(this.name, { number: cp.number, envelope: record.envelope }).catch((err: unknown) => {
        this.deps.log.error('%s: keeping the record of checkpoint %d failed: %e', this.name, cp.number, err)
      })
    }
    dispatchSafely(this, 'checkpoint', { checkpoint: cp, status: 'received' })
    void this.sync.checkpointArrived()
  }

  /** `peer`'s own data failed a check: the service's ledger counts it, and the application hears of it. */
  private blame(peer: string, kind: OffenceKind, reason: string): void {
    this.deps.onPeerFault(peer, kind, reason)
    dispatchSafely(this, 'peer:penalised', { peer, reason })
  }

  /**
   * What the store held before this handle ran, brought under the topic's trust mode: once, before the handle's
   * first answer (its reads, `publish`, `follow`, `syncOnce`, `items`).
   */
  private storedTrust: Promise<void> | null = null

  /**
   * A failure (the store's) rejects every call waiting on it and is not kept: the next call tries again. It was
   * logged and passed over, and the handle then reported and yielded the items it should have dropped.
   */
  private loadStoredTrust(): Promise<void> {
    this.storedTrust ??= this.trustStoredItems().catch((err: unknown) => {
      this.storedTrust = null
      throw err
    })
    return this.storedTrust
  }

  /**
   * With a publisher (other than this node), items the store holds count as verified only up to a checkpoint
   * the store recorded as verified whose root is the one in the publisher's newest record we kept. Anything
   * above is dropped before the sync starts: items verified under another trust mode (a quorum of liars, say,
   * before the publisher was configured), or past the last signed checkpoint, cannot be told from the
   * publisher's own, and must not be served or yielded as if they were. They are fetched again, proven. The
   * kept record then becomes the trusted checkpoint until a newer one arrives.
   */
  private async trustStoredItems(): Promise<void> {
    const { store, publisher } = this.deps
    const stored = await store.getCheckpointRecord(this.name)
    if (publisher === undefined || publisher.equals(peerIdFromPrivateKey(this.deps.privateKey))) {
      if (stored !== null) await this.receiveRecord(stored.envelope, undefined, true)
      return
    }
    let record: SignedCheckpoint | undefined
    if (stored !== null) {
      record = await openCheckpoint(stored.envelope, { topic: this.name, publisher }).catch((err: unknown) => {
        // Most likely signed by another publisher than the one configured now: it is not trusted.
        this.deps.log('%s: the stored checkpoint record does not open for this publisher: %e', this.name, err)
        return undefined
      })
    }
    const verified = await store.getCheckpoint(this.name)
    const trusted =
      record !== undefined && verified !== null && verified.number === record.checkpoint.number && equalBytes(verified.root, record.checkpoint.root)
        ? verified.number
        : -1
    if ((await store.head(this.name)) > trusted) {
      // A handle closed meanwhile writes nothing (its node may have stopped), and answers nothing: its reads would
      // report the items it should have dropped (an outside tester's `head()` after `close()`).
      if (this.closed.signal.aborted) throw this.closed.signal.reason
      await this.sync.writer.truncate(trusted)
    }
    if (record !== undefined) this.adoptRecord(record, true)
  }

  private trieProgress(stats: StateSyncStats): void {
    const checkpoint = this.sync.trieTarget
    if (checkpoint === undefined) return
    const target = Math.max(checkpoint.number, this.latestCheckpoint?.head ?? -1)
    void this.head().then(
      (head) =>
        dispatchSafely(this, 'sync:progress', {
          phase: 'trie',
          head,
          target,
          trie: { checkpoint, nodes: stats.nodes, bytes: stats.bytes, pending: stats.pending, busy: stats.busy, stored: stats.committed }
        }),
      () => undefined
    )
  }

  /**
   * Appends an item as the topic's next number, stores it in the topic trie and gossips it. Stored is stored:
   * a failure to gossip it is in the result, not thrown (peers catch up on it by download), so a retry never
   * appends it twice.
   */
  async publish(data: Uint8Array, options: AbortOptions = {}): Promise<PublishResult> {
    // After the stored items are under the trust mode, or that step, cutting unproven items, could take this one.
    await raceSignal(this.loadStoredTrust(), options.signal)
    const n = await this.sync.writer.exclusive(() => this.deps.store.append(this.name, data), options)
    try {
      return { n, recipients: await this.gossip(itemsTopic(this.name), encodeGossipItem({ n, data })) }
    } catch (error) {
      return { n, recipients: 0, gossipError: error instanceof Error ? error : new Error(String(error)) }
    }
  }

  /**
   * Records `(head, root(head))` as a checkpoint, signs it with this node's key, keeps the signed record (our
   * status replies hand it to peers) and announces it on `dsfg/<topic>/checkpoints`.
   */
  async checkpoint(options: AbortOptions = {}): Promise<Checkpoint | null> {
    const record = await raceSignal(recordSignedCheckpoint(this.deps.store, this.name, this.deps.privateKey), options.signal)
    if (record === null) return null
    if (this.deps.publisher?.equals(record.signer) === true) this.adoptRecord(record, true)
    await this.gossip(checkpointsTopic(this.name), record.envelope)
    return record.checkpoint
  }

  /**
   * `read` of the store once what it held before this handle ran is under the topic's trust mode, so `state`,
   * `head`, `root` and `prove` never report items the first sync would drop (`trustStoredItems`).
   */
  private async afterStoredTrust<T>(read: () => Promise<T>): Promise<T> {
    await this.loadStoredTrust()
    return read()
  }

  state(options: AbortOptions = {}): Promise<TopicState | null> {
    return raceSignal(this.afterStoredTrust(() => this.deps.store.getCurrentTopicState(this.name)), options.signal)
  }

  head(options: AbortOptions = {}): Promise<number> {
    return raceSignal(this.afterStoredTrust(() => this.deps.store.head(this.name)), options.signal)
  }

  /** What connected peers report about this topic. */
  peerStates(): ReadonlyMap<string, TopicState> {
    return this.deps.states.states(this.name)
  }

  /** The topic trie's root at our head (EMPTY_ROOT when empty). */
  root(options: AbortOptions = {}): Promise<Uint8Array> {
    return raceSignal(this.afterStoredTrust(() => this.deps.store.root(this.name)), options.signal)
  }

  /** A Merkle proof of item `n` against `root` (default: the current root). */
  prove(n: number, root?: Uint8Array, options: AbortOptions = {}): Promise<Uint8Array[]> {
    return raceSignal(this.afterStoredTrust(() => this.deps.store.proveItem(this.name, n, root)), options.signal)
  }

  /**
   * Catches up and stays current until `signal` aborts: downloads whatever peers have beyond our head and
   * applies live items as they arrive. Resolves when aborted.
   */
  async follow(options: FollowOptions = {}): Promise<void> {
    this.throwIfClosed(options.signal)
    const signal = options.signal === undefined ? this.closed.signal : AbortSignal.any([options.signal, this.closed.signal])
    const stopLive = this.subscribe(signal)
    try {
      await this.loadStoredTrust()
      await this.runShared(signal)
    } finally {
      stopLive()
    }
    this.throwIfClosed(options.signal)
  }

  /** Aborted by `close()`: every `follow`, `syncOnce` and `items` of this handle ends. */
  private readonly closed = new AbortController()

  /**
   * Ends every `follow`, `syncOnce` and `items` call of this handle (they reject with `AbortError`) and resolves
   * once the sync loop has stopped: nothing writes the topic's store after that. The service calls it from
   * its `stop()`; the handle is unusable afterwards.
   */
  async close(): Promise<void> {
    this.closed.abort(new AbortError('the DSFG service stopped'))
    const loop = this.loop
    // The trust check of stored items may still be running (it may truncate): wait for it too.
    await Promise.all([this.stopping, loop?.done.catch(() => undefined), this.storedTrust?.catch(() => undefined)])
  }

  /** Throws `AbortError` when the handle was closed and the caller's own signal (if any) had not aborted first. */
  private throwIfClosed(own: AbortSignal | undefined): void {
    if (this.closed.signal.aborted && own?.aborted !== true) throw this.closed.signal.reason
  }

  /** The one sync loop of this topic, shared by concurrent `follow`/`syncOnce` callers: it runs while any does. */
  private loop: { controller: AbortController; done: Promise<void>; users: number } | null = null

  /** The last loop that was told to stop, until it has: a new one starts only after it (one `run` at a time). */
  private stopping: Promise<void> = Promise.resolve()

  private async runShared(signal: AbortSignal): Promise<void> {
    if (this.loop === null) {
      const controller = new AbortController()
      const loop = { controller, users: 0, done: Promise.resolve() }
      const previous = this.stopping
      loop.done = previous
        .then(() => this.sync.run({ signal: controller.signal }))
        .finally(() => {
          if (this.loop === loop) this.loop = null
        })
      this.loop = loop
    }
    const loop = this.loop
    loop.users++
    try {
      // Our caller leaving is not an error: only the loop's own failure is.
      await raceSignal(loop.done, signal).catch((error: unknown) => {
        if (!signal.aborted) throw error
      })
    } finally {
      if (--loop.users === 0) {
        // Gone at once, not when it has wound down: a caller arriving meanwhile starts a loop of its own (after
        // this one) instead of joining one that is ending (found in review: it returned early, unsynced).
        if (this.loop === loop) this.loop = null
        this.stopping = loop.done.catch(() => undefined)
        loop.controller.abort()
        await this.stopping
      }
    }
  }

  /**
   * Follows until the topic is synced with its peers' target, then stops. Resolves to our head; rejects with
   * `TopicSyncStalledError` when a download fails without any progress (no peer gives verified items).
   */
  async syncOnce(options: FollowOptions = {}): Promise<number> {
    this.throwIfClosed(options.signal)
    const controller = new AbortController()
    const signal = options.signal === undefined ? controller.signal : AbortSignal.any([options.signal, controller.signal])
    let stalled: unknown
    const onMode = (e: CustomEvent<SyncMode>): void => {
      if (e.detail === 'synced') controller.abort()
    }
    const onStalled = (e: CustomEvent<{ head: number; error: unknown }>): void => {
      stalled = e.detail.error
      controller.abort()
    }
    this.sync.addEventListener('mode', onMode)
    this.sync.addEventListener('sync:stalled', onStalled)
    try {
      await this.follow({ signal })
    } finally {
      this.sync.removeEventListener('mode', onMode)
      this.sync.removeEventListener('sync:stalled', onStalled)
    }
    throwIfAborted(options.signal)
    if (stalled !== undefined) {
      const reason = stalled instanceof Error ? stalled.message : String(stalled)
      throw new TopicSyncStalledError(`topic ${JSON.stringify(this.name)} sync stalled: ${reason}`, { cause: stalled })
    }
    return this.head()
  }

  /**
   * Every item of the topic from `from` on, in order, exactly once: what is stored first, then what the
   * downloader and live gossip add, for as long as the caller iterates (end it with `signal` or `break`).
   * Reads the store in chunks, so a slow consumer holds no more than a chunk in memory; it needs the topic to
   * be followed (or synced) to see new items.
   */
  async *items(options: { from?: number; signal?: AbortSignal } = {}): AsyncGenerator<Item> {
    const signal = options.signal === undefined ? this.closed.signal : AbortSignal.any([options.signal, this.closed.signal])
    let next = options.from ?? 0
    // Items the store held before are yielded only once they are under the topic's trust mode.
    await this.loadStoredTrust()
    for (;;) {
      this.throwIfClosed(options.signal)
      throwIfAborted(options.signal)
      const head = await this.deps.store.head(this.name)
      if (next <= head) {
        const chunk = await this.deps.store.getContents(this.name, next, Math.min(ITEMS_READ_CHUNK, head - next + 1))
        for (const item of chunk) {
          yield item
          next = item.n + 1
        }
        continue
      }
      await this.stored(signal)
    }
  }

  private readonly waiters = new Set<() => void>()

  /** Resolves when items are stored (or `signal` aborts). */
  private stored(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      this.waiters.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  private notifyStored(): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  /**
   * Stores the next items (the sync's writer calls it, one write at a time). Items the downloader verified come
   * with their hashes: the store need not hash them again, nor copy them (they are fresh views into a reply
   * frame, and the hashes fresh digests).
   */
  private async append(items: VerifiedItem[]): Promise<void> {
    const hashes = items.every((item) => item.hash !== undefined) ? items.map((item) => item.hash!) : undefined
    await this.deps.store.putMany(this.name, items[0]!.n, items.map((item) => item.data), { hashes, owned: hashes !== undefined })
  }

  private lastHint = 0

  /** Gossip shows item `n`: if that is past our head, ask peers for their states now. */
  private async hintAhead(n: number): Promise<void> {
    if (n <= (await this.deps.store.head(this.name))) return
    this.refreshPeers()
  }

  /** Asks every peer for its state now instead of at the next periodic refresh; at most once a second. */
  private refreshPeers(): void {
    const now = Date.now()
    if (now - this.lastHint < GOSSIP_HINT_INTERVAL_MS) return
    this.lastHint = now
    for (const peer of this.deps.states.peerIds()) {
      void this.deps.states.refresh(peer).catch((err: unknown) => this.deps.log('%s: refreshing the state of %s failed: %e', this.name, peer, err))
    }
  }

  /** Publishes on gossipsub, if the node has it; resolves to the peers it reached. */
  private async gossip(topic: string, data: Uint8Array): Promise<number> {
    const pubsub = this.deps.pubsub
    if (pubsub === undefined) return 0
    return (await pubsub.publish(topic, data)).recipients.length
  }

  private subscriptions = 0
  private unsubscribe: (() => void) | null = null

  /**
   * Subscribes to live items and checkpoints while at least one `follow` runs (they share one subscription);
   * returns this caller's release.
   */
  private subscribe(signal: AbortSignal): () => void {
    const feeds = this.deps.feeds
    if (feeds === undefined) return () => undefined
    if (this.subscriptions++ === 0) this.unsubscribe = this.listen(feeds)
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      signal.removeEventListener('abort', release)
      if (--this.subscriptions === 0) {
        this.unsubscribe?.()
        this.unsubscribe = null
      }
    }
    signal.addEventListener('abort', release, { once: true })
    return release
  }

  private listen(feeds: GossipFeeds): () => void {
    const publisher = this.deps.publisher
    const stopItems = feeds.listen(itemsTopic(this.name), decodeGossipItem, publisher, (item) => {
      // Only the publisher's signed items are applied as they come; anyone else's gossip is unverified, so it
      // merely tells us peers may be ahead, and the verified download brings the items.
      if (publisher !== undefined && !this.closed.signal.aborted) {
        void this.sync.live(item).catch((err: unknown) => this.deps.log.error('%s: storing live item %d failed: %e', this.name, item.n, err))
      }
      else void this.hintAhead(item.n)
    })
    // Any peer may relay a record: the validator checks its signature (and, with a publisher, its signer), so
    // forged ones die before gossipsub forwards them. Without a publisher they are relayed but not used.
    const openRecord = (data: Uint8Array): Promise<SignedCheckpoint> => openCheckpoint(data, { topic: this.name, publisher })
    const stopCheckpoints = feeds.listen(checkpointsTopic(this.name), openRecord, undefined, (record) => {
      if (publisher !== undefined) this.adoptRecord(record)
    })
    return () => {
      stopItems()
      stopCheckpoints()
    }
  }

}
