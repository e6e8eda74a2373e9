import { TypedEventEmitter } from 'main-event'
import { Queue } from '../fsm/queue.js'
import type { QueueInit } from '../fsm/queue-types.js'
import type { ConsumerResult, Item, PeerInfo } from '../fsm/types.js'
import type { TopicState } from '../net/topic-protocols.js'
import { keccak256 } from '../trie/keccak.js'
import { equalBytes } from '../util/bytes.js'
import { raceSignal } from '../util/abort.js'
import { dispatchSafely } from '../util/events.js'
import { toHex } from '../util/hex.js'
import { Trigger } from '../util/trigger.js'
import {
  DEFAULT_CHECKPOINT_SYNC_MIN_ITEMS,
  DEFAULT_START_BACK,
  DEFAULT_TRIE_RETARGET_MIN_ITEMS,
  DEFAULT_TOPIC_BATCH_ITEMS,
  DEFAULT_TOPIC_REQUESTS_PER_PEER,
  DEFAULT_TOPIC_WINDOW,
  HASH_PREFETCH_ITEMS,
  TOPIC_WRITES_IN_FLIGHT
} from '../constants.js'
import { TopicTrieError } from '../errors.js'
import { ContentHashes } from './content-hashes.js'
import { WriteBehind } from './write-behind.js'
import type { Checkpoint } from './gossip.js'
import { BatchSizer } from './sync/batch-sizer.js'
import {
  checkpointToSync,
  defaultSelectFork,
  type SelectFork,
  syncTarget,
  type TargetAuthority,
  type TrieCheckpoint,
  trieCandidate
} from './sync/target.js'
import { firstDifference, planTipCheck, tipToDrop } from './sync/tip-check.js'

export { defaultSelectFork, type SelectFork, type TrieCheckpoint } from './sync/target.js'

/** DSFG's operation modes (from the Pocket design); serving is always on and not a mode. */
export type SyncMode = 'unsynced' | 'syncing' | 'synced'

/**
 * Peers that must report a head at least as high before it becomes the target, when no publisher decides.
 * One is the least that can work with a single server; raise it where peers may lie about their heads.
 */
export const DEFAULT_TOPIC_QUORUM = 1

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

/** The I/O a topic sync runs on, injected so the orchestration is tested without a network. */
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
   * proven (a reply that fails its proof rejects, and is reported as its sender's fault).
   */
  fetch(peer: string, from: number, amount: number, options: { signal: AbortSignal; proveAgainst?: TrieCheckpoint }): Promise<Item[]>
  /** keccak256 of items `from..to` from one peer. */
  fetchHashes(peer: string, from: number, to: number, options: { signal: AbortSignal }): Promise<Uint8Array[]>
  /** The newest checkpoint signed by the topic's publisher, when one is configured: it decides the target. */
  checkpoint?(): Checkpoint | undefined
  /** keccak256 of our items `from..to`. */
  localHashes(from: number, to: number): Promise<Uint8Array[]>
  /** Drops our items above `head` (a tip the peers agree is wrong). */
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
  /** A peer served items that were proven wrong (a later accepted copy differed), or malformed replies. */
  onPeerFault?: (peer: string, reason: string) => void
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
}

export interface TopicSyncEvents {
  mode: CustomEvent<SyncMode>
  /** Items stored by the downloader so far, and the target. */
  progress: CustomEvent<{ head: number; target: number }>
  /** A batch failed hash verification; the queue fetches it again elsewhere. */
  'batch:rejected': CustomEvent<{ from: number; to: number; hashPeer: string }>
  /** A download run gave up (a batch failed everywhere, or no peer could serve); it re-plans from our head. */
  'sync:failed': CustomEvent<{ head: number; error: unknown }>
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

/** The checkpoint sync in progress. */
interface TrieTarget {
  /** The checkpoint the trie sync currently aims at. */
  cp: TrieCheckpoint
  /** Every checkpoint it was given, by root, to know which one the finished root belongs to. */
  readonly targets: Map<string, TrieCheckpoint>
  readonly run: TrieSyncRun
  /** The trie sync has finished: no more re-targets. */
  finishing: boolean
  /** Settles (never rejects) once the trie was adopted or the checkpoint sync failed. */
  settled: Promise<void>
}

/**
 * Picks the target (publisher checkpoint, or the highest head a quorum of peers reaches), runs the
 * numbered-batch queue from our head + 1 to it, verifies every batch against content hashes from a peer,
 * and stores the items in order. Re-checks the target when reached; `update()` says peer states changed.
 */
export class TopicSync extends TypedEventEmitter<TopicSyncEvents> {
  private readonly io: TopicSyncIO
  private readonly quorum: number
  private readonly queueInit: Omit<QueueInit, 'start' | 'target' | 'io'>
  private readonly onPeerFault: ((peer: string, reason: string) => void) | undefined
  private readonly startBack: number
  private currentMode: SyncMode = 'unsynced'
  private queue: Queue | null = null
  /** Expected item hashes, fetched ahead from one peer at a time; dropped on any mismatch. */
  private readonly hashes: ContentHashes
  /** The hash of the last item accepted (handed to the store, maybe not written yet): the next chunk's anchor. */
  private lastAccepted: { n: number; hash: Uint8Array } | null = null
  /** Counts `update()` calls (peer states changed), so a wait for peers can tell it missed none. */
  private peerChanges = 0
  /**
   * Peers that answered a proven contents request with nothing, by the root they were asked to prove against:
   * left out of downloads against that root until their state changes (a liar on its own history claims our
   * range but can prove none of it, and in a sync with a publisher its empty answers exhausted batches' attempts
   * until the download stalled; found by the trust scenarios). Bounded by the connected peers.
   */
  private readonly withoutRoot = new Map<string, string>()
  /** Items fetched with a range proof against a trusted checkpoint root (the objects the queue hands back). */
  private readonly proven = new WeakSet<Item>()
  /** Verified batches on their way to the store (`io.append`), written in order behind the downloader. */
  private readonly writes: WriteBehind
  /** Items per batch: what one reply carries of the items seen so far (a few before the first). */
  private readonly batches: BatchSizer
  private knownPeers = new Set<string>()
  /** The target the running queue was given (it may only grow). */
  private queueTarget = -1
  /** Re-plans the running download (set per run). */
  private replan: AbortController | null = null
  /** Our items `0..verifiedThrough` matched a publisher checkpoint's root (-1: none yet). */
  private verifiedThrough = -1
  /** Wakes the loop: set by `update()` and a settled checkpoint sync, so neither is lost while the loop is busy. */
  private readonly wakeUps = new Trigger()
  private readonly selectFork: SelectFork
  private readonly checkpointSyncMinItems: number
  private readonly retargetMinItems: number
  /** The checkpoint sync in progress, if any. */
  private trie: TrieTarget | null = null
  /** Checkpoints at or below this number are not trie-synced again (a checkpoint sync of one failed). */
  private trieFailedThrough = -1
  /** First item number the running queue was given. */
  private queueStart = 0
  /** Our head as last seen by the loop or the running queue (for decisions `update()` makes synchronously). */
  private knownHead = -1
  /** The signal of the running `run()`. */
  private runSignal: AbortSignal | undefined

  constructor(init: TopicSyncInit) {
    super()
    this.io = init.io
    this.quorum = Math.max(1, init.quorum ?? DEFAULT_TOPIC_QUORUM)
    this.onPeerFault = init.onPeerFault
    this.startBack = Math.max(0, init.startBack ?? DEFAULT_START_BACK)
    // A lying peer may be handed the same batch again before its copy is proven wrong: allow for that.
    this.queueInit = {
      maxProcessAttempts: 6,
      batchSize: DEFAULT_TOPIC_BATCH_ITEMS,
      maxInFlightPerPeer: DEFAULT_TOPIC_REQUESTS_PER_PEER,
      window: DEFAULT_TOPIC_WINDOW,
      ...init.queue
    }
    this.batches = new BatchSizer({ maxItems: this.queueInit.batchSize ?? DEFAULT_TOPIC_BATCH_ITEMS })
    this.selectFork = init.selectFork ?? defaultSelectFork
    this.checkpointSyncMinItems = Math.max(1, init.checkpointSyncMinItems ?? DEFAULT_CHECKPOINT_SYNC_MIN_ITEMS)
    this.retargetMinItems = Math.max(1, init.retargetMinItems ?? DEFAULT_TRIE_RETARGET_MIN_ITEMS)
    this.hashes = new ContentHashes({
      peers: () => this.peerInfos(),
      fetch: (peer, from, to, options) => this.io.fetchHashes(peer, from, to, options),
      chunk: HASH_PREFETCH_ITEMS,
      quorum: this.quorum
    })
    // A failed write ends the download run: the loop re-plans from what the store holds.
    this.writes = new WriteBehind(TOPIC_WRITES_IN_FLIGHT, () => this.replan?.abort())
  }

  /** The checkpoint whose topic trie is being trie-synced, if a checkpoint sync runs. */
  get trieTarget(): TrieCheckpoint | undefined {
    return this.trie?.cp
  }

  /** Who decides the target: the publisher, when one is configured, or a quorum of peers. */
  private authority(): TargetAuthority {
    if (this.io.checkpoint !== undefined) return { kind: 'publisher', checkpoint: this.io.checkpoint() }
    return { kind: 'quorum', states: this.io.states(), quorum: this.quorum }
  }

  /** The checkpoint to trust for a trie sync: the publisher's, or else the one `selectFork` picks from peers. */
  private trieCandidate(): TrieCheckpoint | undefined {
    return trieCandidate(this.authority(), this.selectFork)
  }

  get mode(): SyncMode {
    return this.currentMode
  }

  /**
   * The item number to reach: the number of the publisher's newest signed checkpoint (items past it come from
   * its signed gossip, or with its next checkpoint), or else the highest head `quorum` peers report.
   */
  target(): number {
    return syncTarget(this.authority())
  }

  /**
   * Peer states or the checkpoint changed: extend a running download, re-plan one whose target went down, or
   * start one. Called from event listeners, so it never throws; a download that just ended is not touched.
   */
  update(): void {
    const target = this.target()
    const states = this.io.states()
    const peers = new Set(states.keys())
    // A peer whose state changed may have verified the checkpoint since; one that left is forgotten.
    this.withoutRoot.clear()
    if (target > this.knownHead && this.io.refreshPeers !== undefined) {
      let highest = -1
      for (const state of states.values()) highest = Math.max(highest, state.head)
      if (target > highest) this.io.refreshPeers()
    }
    this.retargetTrie()
    this.switchToCheckpointSync()
    const queue = this.queue
    if (queue !== null) {
      try {
        // A peer that is gone gives its batches back at once instead of letting them time out.
        for (const peer of this.knownPeers) if (!peers.has(peer)) queue.removePeer(peer)
        queue.peersUpdated()
        if (target > this.queueTarget) {
          queue.setTarget(target)
          this.queueTarget = target
        } else if (target >= 0 && target < this.queueTarget && this.io.checkpoint?.() !== undefined) {
          // The publisher's checkpoint put the target below what peers claimed before it arrived: the queue's
          // target may only grow, so re-plan to the signed one rather than chase items nobody may have. (A
          // quorum target that drops as peers leave keeps its download: churn would throw it away each time.)
          this.replan?.abort()
        }
      } catch {
        // The queue closed in between: the loop re-plans from our head anyway.
      }
    }
    this.knownPeers = peers
    this.peerChanges++
    this.wakeUps.trigger()
  }

  /** Runs until `signal` aborts: downloads whenever a target is above our head, then waits for updates. */
  async run(options: { signal: AbortSignal }): Promise<void> {
    const { signal } = options
    this.runSignal = signal
    // Items up to a checkpoint the store recorded were verified before a restart: a mismatch later keeps them.
    this.verifiedThrough = Math.max(this.verifiedThrough, await this.io.storedCheckpoint?.().catch(() => -1) ?? -1)
    try {
      while (!signal.aborted) {
        this.wakeUps.clear()
        const target = this.target()
        let head = await this.io.head()
        this.knownHead = head
        this.startTrieSync(head, signal)
        const trie = this.trie
        // During a checkpoint sync the tip is the checkpoint's, verified by its root: nothing to re-check.
        if (trie === null && target >= 0) head = await this.checkTip(signal)
        const start = trie === null ? head + 1 : Math.max(head, trie.cp.number) + 1
        if (target < start) {
          if (trie !== null) {
            // Nothing past the checkpoint yet: wait for the adoption (or a newer checkpoint).
            this.setMode('syncing')
            await this.waitForUpdate(signal)
            continue
          }
          // With a publisher, items of ours are no reason to call it synced until a signed checkpoint says so.
          this.setMode(target >= 0 || (head >= 0 && this.io.checkpoint === undefined) ? 'synced' : 'unsynced')
          await this.waitForUpdate(signal)
          continue
        }
        this.setMode('syncing')
        // Aborted by `deliver` when a checkpoint proves our items wrong, or by a checkpoint sync that moved:
        // re-plan from the repaired head or the new checkpoint.
        const replan = new AbortController()
        this.replan = replan
        const runSignal = AbortSignal.any([signal, replan.signal])
        const queue = new Queue({ ...this.queueInit, batchSize: this.batches.size, start, target, io: this.queueIo(runSignal) })
        this.queue = queue
        this.queueTarget = target
        this.queueStart = start
        queue.addEventListener('progress', (e) => {
          this.knownHead = e.detail.head
          dispatchSafely(this, 'progress', { head: e.detail.head, target: e.detail.target })
        })
        queue.addEventListener('peer:fault', (e) => {
          if (e.detail.severity === 'severe') this.onPeerFault?.(e.detail.peer, e.detail.reason)
        })
        let failure: { error: unknown } | undefined
        try {
          await queue.run({ signal: runSignal })
        } catch (error) {
          failure = { error }
        } finally {
          this.queue = null
        }
        // Batches the queue delivered may still be on their way to the store: the next plan starts from it.
        const stored = await this.writes.settle().then(
          () => undefined,
          (error: unknown) => ({ error })
        )
        if (signal.aborted) break
        // A failed store write re-plans from what the store holds, and counts as a failed run.
        if (stored !== undefined) failure = stored
        else if (failure === undefined || replan.signal.aborted) continue
        const now = await this.io.head()
        dispatchSafely(this, 'sync:failed', { head: now, error: failure.error })
        // No progress at all: wait for peers to change before trying again, rather than spin (a checkpoint
        // sync in progress makes progress of its own, and wakes us when it ends).
        if (now === head && this.trie === null) {
          dispatchSafely(this, 'sync:stalled', { head: now, error: failure.error })
          await this.waitForUpdate(signal)
        }
      }
    } finally {
      // Nothing writes after we return: neither the batches handed to the store nor the checkpoint sync,
      // which follows our signal.
      await this.writes.settle().catch(() => undefined)
      await this.trie?.settled
    }
  }

  /**
   * Starts a checkpoint sync when a trusted checkpoint is far enough past our head and none runs: the trie
   * sync of its root runs on its own while the loop downloads the items after it, whose delivery waits for
   * the adoption. When the sync ends, the trie is adopted (its items checked against the root) and the loop
   * woken; a failure falls back to downloading the items.
   */
  private startTrieSync(head: number, signal: AbortSignal): void {
    if (this.io.syncTrie === undefined || this.io.adopt === undefined) return
    const cp = this.checkpointToSync(head)
    if (cp === undefined) return
    const adopt = this.io.adopt
    const controller = new AbortController()
    const trieSignal = AbortSignal.any([signal, controller.signal])
    const run = this.io.syncTrie(cp.root, { signal: trieSignal })
    const targets = new Map([[toHex(cp.root), cp]])
    const target: TrieTarget = { cp, targets, run, finishing: false, settled: Promise.resolve() }
    this.trie = target
    target.settled = (async () => {
      try {
        const { root } = await run.done
        target.finishing = true
        const adopted = targets.get(toHex(root))
        if (adopted === undefined) throw new TopicTrieError(`the trie sync ended at ${toHex(root)}, a root it was not given`)
        await adopt(adopted.root, adopted.number, { signal: trieSignal })
        this.verifiedThrough = Math.max(this.verifiedThrough, adopted.number)
        dispatchSafely(this, 'trie:adopted', adopted)
        // A re-target raced with the end of the sync: the queue runs past a newer checkpoint than we adopted.
        if (this.queue !== null && this.queueStart > adopted.number + 1) this.replan?.abort()
      } catch (error) {
        controller.abort()
        if (signal.aborted) return
        this.trieFailedThrough = Math.max(this.trieFailedThrough, target.cp.number)
        dispatchSafely(this, 'trie:failed', { number: target.cp.number, error })
        // The queue started after the checkpoint: start it again from our head.
        this.replan?.abort()
      } finally {
        this.trie = null
        this.wakeUps.trigger()
      }
    })()
    dispatchSafely(this, 'trie:started', cp)
  }

  /** A newer trusted checkpoint moves the running trie sync to its root, and the queue to the items after it. */
  private retargetTrie(): void {
    const trie = this.trie
    if (trie === null || trie.finishing) return
    const cp = this.trieCandidate()
    if (cp === undefined || cp.number - trie.cp.number < this.retargetMinItems) return
    try {
      trie.run.retarget(cp.root)
    } catch {
      // The trie sync just ended: it adopts what it has, and the queue re-plans from there.
      return
    }
    trie.targets.set(toHex(cp.root), cp)
    trie.cp = cp
    dispatchSafely(this, 'trie:retarget', cp)
    this.replan?.abort()
  }

  /**
   * A trusted checkpoint far past the running download's head (say the first publisher checkpoint arrived
   * after the download started from peers' heads): re-plan, so the loop starts a checkpoint sync for it. The
   * items stored so far stay; the adoption checks them against the trie.
   */
  private switchToCheckpointSync(): void {
    if (this.queue !== null && this.checkpointToSync(this.knownHead) !== undefined) this.replan?.abort()
  }

  /**
   * The checkpoint a checkpoint sync should start for now, with our head at `head`: none while one runs,
   * without the I/O for it, or unless a trusted checkpoint not yet verified (nor failed) is at least
   * `checkpointSyncMinItems` past the head.
   */
  private checkpointToSync(head: number): TrieCheckpoint | undefined {
    if (this.trie !== null || this.io.syncTrie === undefined || this.io.adopt === undefined) return undefined
    const doneThrough = Math.max(this.trieFailedThrough, this.verifiedThrough)
    return checkpointToSync(this.trieCandidate(), { head, doneThrough, minItems: this.checkpointSyncMinItems })
  }

  /**
   * Items arrived by another way (live gossip) up to `head`: a download whose target we have now reached ends
   * (its remaining batches may wait for peers whose reported heads are stale), and the loop re-plans.
   */
  headAdvanced(head: number): void {
    if (head <= this.knownHead) return
    this.knownHead = head
    if (this.queue !== null && this.trie === null && head >= this.queueTarget) this.replan?.abort()
  }

  /** Waits until the checkpoint sync in progress has settled; false when `signal` aborted first. */
  private async untilAdopted(signal: AbortSignal): Promise<boolean> {
    const trie = this.trie
    if (trie === null) return true
    // `settled` never rejects: a rejection here is the signal's.
    return raceSignal(trie.settled, signal).then(
      () => !signal.aborted,
      () => false
    )
  }

  /**
   * Re-checks our newest `startBack` items against peers that hold them. When at least two of them (and at
   * least `quorum`) answer and all agree on where our items first differ from theirs, our items from there on
   * are dropped (to be downloaded again); any disagreement, or too few answers, leaves our items alone, so a
   * single liar cannot make us delete anything. With a publisher, items were verified by its signature and
   * are never dropped on peers' word. Returns our head.
   */
  private async checkTip(signal: AbortSignal): Promise<number> {
    const head = await this.io.head()
    if (this.io.checkpoint !== undefined) return head
    const plan = planTipCheck(head, this.startBack, this.quorum, this.peerInfos())
    if (plan === undefined) return head
    const { from, needed } = plan
    const ours = await this.io.localHashes(from, head)
    const firstDiffs: number[] = []
    for (const peer of plan.peers) {
      if (firstDiffs.length === needed) break
      let theirs: Uint8Array[]
      try {
        theirs = await this.io.fetchHashes(peer.id, from, head, { signal })
      } catch {
        continue
      }
      const diff = firstDifference(ours, theirs, from)
      if (diff !== undefined) firstDiffs.push(diff)
    }
    const wrongFrom = tipToDrop(firstDiffs, needed)
    if (wrongFrom === undefined) return head
    await this.io.truncate(wrongFrom - 1)
    this.hashes.clear()
    dispatchSafely(this, 'tip:repaired', { from: wrongFrom, head })
    return this.io.head()
  }

  /** Waits for `update()`, a settled checkpoint sync or `signal` (a listener of the mode event may have done either already). */
  private async waitForUpdate(signal: AbortSignal): Promise<void> {
    await this.wakeUps.wait(signal)
  }

  private setMode(mode: SyncMode): void {
    if (mode === this.currentMode) return
    this.currentMode = mode
    dispatchSafely(this, 'mode', mode)
  }

  private peerInfos(): PeerInfo[] {
    return [...this.io.states()].map(([id, s]) => ({ id, lowest: s.lowest, head: s.head }))
  }

  /** The peers the downloader may ask: all of them, less those that could not prove against the current root. */
  private downloadPeers(): PeerInfo[] {
    const peers = this.peerInfos()
    if (this.withoutRoot.size === 0) return peers
    const root = this.io.checkpoint?.()?.root
    if (root === undefined) return peers
    const hex = toHex(root)
    return peers.filter((p) => this.withoutRoot.get(p.id) !== hex)
  }

  private queueIo(signal: AbortSignal) {
    return {
      peers: () => this.downloadPeers(),
      fetch: async (peer: string, from: number, amount: number, o: { signal: AbortSignal }) => {
        const proveAgainst = this.proofCheckpoint(from)
        const items = await this.io.fetch(peer, from, amount, { signal: o.signal, proveAgainst })
        if (proveAgainst === undefined) return items
        for (const item of items) this.proven.add(item)
        // No proof against the signed root: a peer on another history, or one that has not verified this
        // checkpoint yet. Not a fault, but asking it again for this root only spends the batch's attempts.
        if (items.length === 0) this.withoutRoot.set(peer, toHex(proveAgainst.root))
        return items
      },
      deliver: (items: Item[]) => this.deliver(items, signal)
    }
  }

  /**
   * The publisher's newest signed checkpoint, which items from `from` on are proven against when it covers
   * `from` (the target is its number, so it always does). Without a publisher, items are checked against
   * content hashes from peers, as the quorum mode's weaker guarantee allows: a checkpoint root a peer reports
   * is no better than its hashes, and one that no server can prove against would stall the download.
   */
  private proofCheckpoint(from: number): TrieCheckpoint | undefined {
    const cp = this.io.checkpoint?.()
    return cp !== undefined && cp.number >= from ? { number: cp.number, root: cp.root } : undefined
  }

  /**
   * Stores verified items `from..` (`from` = our head + 1) through `append` (default `io.append`: the
   * downloader's; live items come with their own), stopping at a publisher checkpoint that falls at our head
   * or inside them, to compare our root with the signed one. A mismatch means some earlier item was wrong
   * despite its hashes (its hash source lied too): everything after the last verified checkpoint is dropped
   * and the download re-planned; resolves to a local fault then.
   */
  async commit(
    items: VerifiedItem[],
    append: (items: VerifiedItem[]) => Promise<void> = (i) => this.io.append(i)
  ): Promise<ConsumerResult> {
    if (items.length === 0) return { ok: true }
    const from = items[0]!.n
    const to = items[items.length - 1]!.n
    const cp = this.checkpointWithin(from, to)
    if (cp === undefined) {
      await append(items)
      return { ok: true }
    }
    const split = cp.number - from + 1
    if (split > 0) await append(items.slice(0, split))
    if (!(await this.matches(cp))) {
      await this.dropUnverified(cp.number)
      return { ok: false, fault: 'local' }
    }
    if (split < items.length) await append(items.slice(split))
    return { ok: true }
  }

  /** The publisher checkpoint to check when items `from..to` are stored: one at our head (`from - 1`) or among them. */
  private checkpointWithin(from: number, to: number): Checkpoint | undefined {
    const cp = this.io.checkpoint?.()
    if (cp === undefined || cp.number < from - 1 || cp.number > to || cp.number <= this.verifiedThrough) return undefined
    return cp
  }

  /**
   * A publisher checkpoint arrived: it re-targets a checkpoint sync or extends the download (as `update()`),
   * and one at or below our head is checked against our items now (one above is checked when items cross it).
   * Never throws.
   */
  async checkpointArrived(): Promise<void> {
    this.update()
    const cp = this.io.checkpoint?.()
    if (cp === undefined || cp.number <= this.verifiedThrough || this.trie !== null) return
    try {
      // Items the downloader handed to the store are checked once they are there (and a mismatch must not
      // truncate between two of its writes).
      await this.writes.idle()
      if (cp.number > (await this.io.head())) return
      if (!(await this.matches(cp))) await this.dropUnverified(cp.number)
    } catch {
      // The store failed: the next checkpoint is checked again.
    }
  }

  /** Whether our items `0..cp.number` (our head is at least that) rebuild to `cp.root`; marks them verified. */
  private async matches(cp: TrieCheckpoint): Promise<boolean> {
    // Checked already (by the live path, the downloader or an adoption): a replay below our head costs O(n).
    if (cp.number <= this.verifiedThrough) return true
    if (this.io.adopt !== undefined) {
      try {
        // Also records the checkpoint and writes its trie whole, so we can serve it to trie syncs.
        await this.io.adopt(cp.root, cp.number, { signal: this.runSignal })
      } catch (error) {
        if (error instanceof TopicTrieError) return false
        throw error
      }
    } else if (!equalBytes(await this.io.root(), cp.root)) {
      return false
    }
    this.verifiedThrough = Math.max(this.verifiedThrough, cp.number)
    dispatchSafely(this, 'checkpoint:verified', { number: cp.number })
    return true
  }

  /** Drops our items after the last verified checkpoint (`number`'s root did not match) and re-plans. */
  private async dropUnverified(number: number): Promise<void> {
    await this.io.truncate(this.verifiedThrough)
    this.hashes.clear()
    dispatchSafely(this, 'checkpoint:mismatch', { number, kept: this.verifiedThrough })
    this.replan?.abort()
  }

  /**
   * Checks a batch against content hashes from a peer that claims the range (rotating between such peers on a
   * mismatch, so one lying hash source cannot reject every honest copy), then hands it to the store and
   * accepts it while the store writes (`writes`: a failed write re-plans the download from the store's head).
   * A mismatch sends the batch back for download elsewhere; a failure to get hashes holds it and tries again
   * later.
   */
  private async deliver(delivered: Item[], signal: AbortSignal): Promise<ConsumerResult> {
    // Items after a checkpoint being trie-synced wait for its adoption (the queue's window bounds them).
    if (!(await this.untilAdopted(signal))) return { ok: false, fault: 'local' }
    // After a local failure part of a batch may be stored already: the queue delivers it again whole.
    if (this.writes.failed) return { ok: false, fault: 'local' }
    const head = Math.max(await this.io.head(), this.writes.through)
    const items = delivered.filter((item) => item.n > head)
    if (items.length === 0) return { ok: true }
    const from = items[0]!.n
    const to = items[items.length - 1]!.n
    const verified: VerifiedItem[] = []
    // Proven items (a prefix: proofs cover items up to a checkpoint) need no content hash.
    while (verified.length < items.length && this.proven.has(items[verified.length]!)) verified.push(items[verified.length]!)
    // With a publisher only its signatures decide: no peer's content hash stands in for a proof. (The target
    // is its checkpoint's number, so every item is asked for with a proof; re-plan should one come without.)
    if (verified.length < items.length && this.io.checkpoint !== undefined) {
      this.replan?.abort()
      return { ok: false, fault: 'local' }
    }
    const unproven = items.slice(verified.length)
    if (unproven.length > 0 && !(await this.ensureHashes(unproven[0]!.n, to, signal))) return { ok: false, fault: 'local' }
    for (const item of unproven) {
      const hash = keccak256(item.data)
      const expected = this.hashes.get(item.n)!
      if (!equalBytes(hash, expected.hash)) {
        // Either the batch or the hashes are wrong, and without a publisher nothing says which: forget these
        // hashes, so the next check asks another peer, and blame nobody.
        this.hashes.clear()
        dispatchSafely(this, 'batch:rejected', { from, to, hashPeer: expected.peer })
        return { ok: false, fault: 'this' }
      }
      verified.push({ n: item.n, data: item.data, hash })
    }
    try {
      if (this.checkpointWithin(from, to)) {
        // A publisher checkpoint falls in these items: they are stored and checked now, after the writes
        // before them.
        await this.writes.idle()
        if (this.writes.failed) return { ok: false, fault: 'local' }
        const result = await this.commit(verified)
        this.accepted(from, to, verified)
        return result
      }
      await this.writes.add(to, () => this.io.append(verified))
    } catch (error) {
      return { ok: false, fault: 'local', error }
    }
    this.accepted(from, to, verified)
    return { ok: true }
  }

  /**
   * The content hashes of `from..to`, tried again while peer states changed during the attempt: the queue
   * holds a batch that failed for want of hashes until peers change next, and a change that came while we
   * asked (a peer that would have made the quorum, say) must not be missed.
   */
  private async ensureHashes(from: number, to: number, signal: AbortSignal): Promise<boolean> {
    const anchor = await this.hashOf(from - 1)
    for (;;) {
      const version = this.peerChanges
      if (await this.hashes.ensure(from, to, this.target(), signal, anchor)) return true
      if (version === this.peerChanges || signal.aborted) return false
    }
  }

  /** The hash of our item `n` (the last one accepted, or one the store holds); none for -1 or one we lack. */
  private async hashOf(n: number): Promise<Uint8Array | undefined> {
    if (n < 0) return undefined
    if (this.lastAccepted?.n === n) return this.lastAccepted.hash
    return (await this.io.localHashes(n, n))[0]
  }

  /** Items `from..to` were checked and handed to the store. */
  private accepted(from: number, to: number, verified: VerifiedItem[]): void {
    const last = verified[verified.length - 1]
    this.lastAccepted = last?.hash === undefined ? null : { n: last.n, hash: last.hash }
    this.hashes.forget(from, to)
    if (this.batches.record(verified)) this.queue?.setBatchSize(this.batches.size)
  }
}
