import { TypedEventEmitter } from 'main-event'
import {
  DEFAULT_CHECKPOINT_SYNC_MIN_ITEMS,
  DEFAULT_START_BACK,
  DEFAULT_TOPIC_BATCH_ITEMS,
  DEFAULT_TOPIC_FETCH_TIMEOUT_MS,
  DEFAULT_TOPIC_REQUESTS_PER_PEER,
  DEFAULT_TOPIC_WINDOW,
  DEFAULT_TRIE_RETARGET_MIN_ITEMS,
  MAX_RESPONSE_BYTES,
  TIP_CHECK_WAIT_MS
} from '../../constants.js'
import { BusyError } from '../../errors.js'
import { Queue } from '../../fsm/queue.js'
import type { QueueInit } from '../../fsm/queue-types.js'
import type { Item } from '../../fsm/types.js'
import { raceSignal } from '../../util/abort.js'
import { type Clock, systemClock } from '../../util/clock.js'
import { dispatchSafely } from '../../util/events.js'
import { type Log, silentLog } from '../../util/log.js'
import { Trigger } from '../../util/trigger.js'
import { BatchVerifier } from './batch-verifier.js'
import { CheckpointSync, type CheckpointSyncOutcome } from './checkpoint-sync.js'
import type { LiveOutcome } from './live-buffer.js'
import {
  checkpointToSync,
  defaultSelectFork,
  peerInfos,
  type SelectFork,
  syncTarget,
  type TargetAuthority,
  type TrieCheckpoint,
  trieCandidate
} from './target.js'
import { firstDifference, planTipCheck, tipToDrop } from './tip-check.js'
import { TopicWriter } from './topic-writer.js'
import type { SyncMode, TopicSyncEvents, TopicSyncInit, TopicSyncIO } from './types.js'

/**
 * Peers that must report a head at least as high before it becomes the target, when no publisher decides.
 * One is the least that can work with a single server; raise it where peers may lie about their heads.
 */
export const DEFAULT_TOPIC_QUORUM = 1

/** One download run: a queue of numbered batches from `start` towards `target`. */
interface Download {
  readonly queue: Queue
  readonly controller: AbortController
  readonly start: number
  /** Our head when the run was planned: a failed run that never passed it made no progress. */
  readonly head: number
  /** The queue's target (it may only grow). */
  target: number
  /** Ended on purpose, to plan again: not a failure. */
  replanned: boolean
  /** Settles when the queue has stopped. */
  ended: Promise<void>
}

/**
 * Where the loop is. `waiting` has nothing to download: its mode says whether that is because we reached the
 * target (`synced`), have no target yet (`unsynced`), or wait for a checkpoint sync's adoption (`syncing`).
 * `stalled` is a download that failed without any progress: it waits for peers (or the checkpoint) to change.
 */
type Phase =
  | { readonly name: 'stopped' }
  | { readonly name: 'waiting'; readonly mode: SyncMode }
  | { readonly name: 'downloading'; readonly download: Download }
  | { readonly name: 'stalled'; readonly error: unknown }

/**
 * What the loop is told. `changed`: peer states or the publisher's checkpoint changed; `stored`: items were stored
 * (live gossip may have reached the target); `mismatch`: items failing a checkpoint were dropped; and the ends
 * of the download and of the checkpoint sync it started.
 */
type SyncEvent =
  | { readonly type: 'changed' }
  | { readonly type: 'stored' }
  | { readonly type: 'mismatch' }
  | { readonly type: 'download:ended'; readonly download: Download; readonly error: unknown }
  | { readonly type: 'trie:settled'; readonly trie: CheckpointSync; readonly outcome: CheckpointSyncOutcome }

/** Events that say only "look again": one of each pending is enough. */
const COALESCED = new Set<SyncEvent['type']>(['changed', 'stored', 'mismatch'])

// reference: Lodestar@5668ef5b packages/beacon-node/src/sync/range/chain.ts (one loop owns a chain's state;
// peers and batch results reach it as events)

/**
 * A topic's catch-up as one loop that owns its state. It picks the target (the publisher's newest signed
 * checkpoint, or the highest head a quorum of peers reports), trie-syncs a trusted checkpoint far ahead of
 * us (`CheckpointSync`), and downloads the numbered batches from our head to the target (`Queue`, with
 * `BatchVerifier` as its consumer). Peer changes, checkpoints, stored items and the ends of its own runs are
 * posted to it as events and handled one at a time, each by the method for its transition; every write of the
 * topic's store goes through its `TopicWriter`.
 */
export class TopicSync extends TypedEventEmitter<TopicSyncEvents> {
  private readonly io: TopicSyncIO
  private readonly quorum: number
  private readonly startBack: number
  private readonly clock: Clock
  private readonly queueInit: Omit<QueueInit, 'start' | 'target' | 'io'>
  private readonly selectFork: SelectFork
  private readonly checkpointSyncMinItems: number
  private readonly retargetMinItems: number
  private readonly onPeerFault: ((peer: string, reason: string) => void) | undefined
  private readonly log: Log
  private readonly queueLog: Log
  /** The one writer of the topic's store. */
  readonly writer: TopicWriter
  private readonly batches: BatchVerifier
  private phase: Phase = { name: 'stopped' }
  private currentMode: SyncMode = 'unsynced'
  /** The checkpoint sync in progress, beside the download of the items after its checkpoint. */
  private trie: CheckpointSync | null = null
  /** Checkpoints at or below this number are not trie-synced again (a checkpoint sync of one failed). */
  private trieFailedThrough = -1
  /** Our head as last stored or dropped (for decisions events make without reading the store). */
  private knownHead = -1
  /** The peers the running download was last told about: one missing from the next change has left. */
  private knownPeers = new Set<string>()
  private readonly inbox: SyncEvent[] = []
  private readonly wakeUp = new Trigger()
  /** The signal of the running `run()`. */
  private runSignal: AbortSignal | undefined

  constructor(init: TopicSyncInit) {
    super()
    this.io = init.io
    this.quorum = Math.max(1, init.quorum ?? DEFAULT_TOPIC_QUORUM)
    this.onPeerFault = init.onPeerFault
    this.log = init.log ?? silentLog
    this.queueLog = this.log.newScope('queue')
    this.startBack = Math.max(0, init.startBack ?? DEFAULT_START_BACK)
    // A lying peer may be handed the same batch again before its copy is proven wrong: allow for that.
    this.queueInit = {
      maxProcessAttempts: 6,
      batchSize: DEFAULT_TOPIC_BATCH_ITEMS,
      maxInFlightPerPeer: DEFAULT_TOPIC_REQUESTS_PER_PEER,
      // The Fetcher's deadline follows each reply: this one only catches a request that never ends.
      fetchTimeoutMs: DEFAULT_TOPIC_FETCH_TIMEOUT_MS,
      window: DEFAULT_TOPIC_WINDOW,
      // A batch whose items came larger than it was sized for holds a reply's worth at most before it is split.
      splitBytes: MAX_RESPONSE_BYTES,
      ...init.queue
    }
    this.clock = init.queue?.clock ?? systemClock
    this.selectFork = init.selectFork ?? defaultSelectFork
    this.checkpointSyncMinItems = Math.max(1, init.checkpointSyncMinItems ?? DEFAULT_CHECKPOINT_SYNC_MIN_ITEMS)
    this.retargetMinItems = Math.max(1, init.retargetMinItems ?? DEFAULT_TRIE_RETARGET_MIN_ITEMS)
    const onStored = init.onStored
    this.writer = new TopicWriter({
      io: this.io,
      checkpoint: () => this.io.checkpoint?.(),
      live: init.live,
      // Someone is ahead of us: ask peers for their states now instead of at the next refresh.
      onGap: () => this.io.refreshPeers?.(),
      onStored: (head) => {
        this.knownHead = head
        this.post({ type: 'stored' })
        onStored?.(head)
      },
      onVerified: (number) => dispatchSafely(this, 'checkpoint:verified', { number }),
      onMismatch: (number, kept) => {
        this.log.error('our items did not give the root signed for checkpoint %d: dropped those after %d', number, kept)
        dispatchSafely(this, 'checkpoint:mismatch', { number, kept })
        this.post({ type: 'mismatch' })
      }
    })
    this.batches = new BatchVerifier({
      io: this.io,
      clock: this.clock,
      writer: this.writer,
      quorum: this.quorum,
      maxItems: this.queueInit.batchSize ?? DEFAULT_TOPIC_BATCH_ITEMS,
      maxInFlight: this.queueInit.maxInFlightPerPeer ?? DEFAULT_TOPIC_REQUESTS_PER_PEER,
      target: () => this.target(),
      runSignal: () => this.runSignal,
      untilAdopted: (signal) => this.untilAdopted(signal),
      replan: () => {
        if (this.phase.name === 'downloading') this.replan(this.phase.download)
      },
      onRejected: (from, to, hashPeer) => dispatchSafely(this, 'batch:rejected', { from, to, hashPeer }),
      onBatchSize: (size) => {
        if (this.phase.name === 'downloading') this.phase.download.queue.setBatchSize(size)
      },
      log: this.log,
      metrics: init.metrics
    })
  }

  get mode(): SyncMode {
    return this.currentMode
  }

  /** The checkpoint whose topic trie is being trie-synced, if a checkpoint sync runs. */
  get trieTarget(): TrieCheckpoint | undefined {
    return this.trie?.checkpoint
  }

  /**
   * The item number to reach: the number of the publisher's newest signed checkpoint (items past it come from
   * its signed gossip, or with its next checkpoint), or else the highest head `quorum` peers report.
   */
  target(): number {
    return syncTarget(this.authority())
  }

  /** Peer states changed. Never throws. */
  peersChanged(): void {
    this.batches.peersChanged()
    this.post({ type: 'changed' })
  }

  /**
   * The publisher's newest checkpoint changed: it re-targets the sync, and one at or below our head is checked
   * against our items now (one above is checked when items cross it). Resolves once that check is done; never
   * rejects.
   */
  async checkpointArrived(): Promise<void> {
    this.post({ type: 'changed' })
    // During a checkpoint sync the adoption checks our items.
    if (this.trie !== null) return
    // Batches the downloader handed to the store are checked once they are there (and a mismatch must not
    // drop items between two of its writes).
    await this.batches.idle()
    await this.writer.verifyStored({ signal: this.runSignal }).catch((err: unknown) => {
      // The store failed: the next checkpoint is checked again.
      this.log.error('checking the checkpoint against our items failed: %e', err)
    })
  }

  /** A live item (verified by the publisher's signature): stored in order through the writer. */
  live(item: Item): Promise<LiveOutcome> {
    return this.writer.live(item)
  }

  /**
   * Runs until `signal` aborts: plans a download whenever the target is above our head, and handles the events
   * posted to it one at a time. Nothing writes the store after it returns.
   */
  async run(options: { signal: AbortSignal }): Promise<void> {
    const { signal } = options
    if (this.phase.name !== 'stopped') throw new BusyError('this topic sync is running already')
    this.runSignal = signal
    this.phase = { name: 'waiting', mode: this.currentMode }
    this.inbox.length = 0
    try {
      // Items up to a checkpoint the store recorded were verified before a restart: a mismatch later keeps them.
      const stored = await this.io.storedCheckpoint?.().catch((err: unknown) => {
        this.log.error('reading the stored checkpoint failed: %e', err)
        return -1
      })
      this.writer.verifier.verified(stored ?? -1)
      this.post({ type: 'changed' })
      while (!signal.aborted) {
        const event = this.inbox.shift()
        if (event === undefined) await this.wakeUp.wait(signal)
        else await this.handle(event, signal)
      }
    } finally {
      // (Handlers changed the phase since the assignment above.)
      const phase = this.phase as Phase
      if (phase.name === 'downloading') {
        phase.download.controller.abort()
        await phase.download.ended
      }
      await this.batches.settle().catch((err: unknown) => this.log.trace('a batch ended with %e', err))
      // The checkpoint sync follows our signal.
      await this.trie?.settled
      await this.writer.idle()
      this.trie = null
      this.phase = { name: 'stopped' }
      this.inbox.length = 0
      this.runSignal = undefined
    }
  }

  private post(event: SyncEvent): void {
    if (COALESCED.has(event.type) && this.inbox.some((e) => e.type === event.type)) return
    this.inbox.push(event)
    this.wakeUp.trigger()
  }

  private async handle(event: SyncEvent, signal: AbortSignal): Promise<void> {
    switch (event.type) {
      case 'changed':
        return this.changed(signal)
      case 'stored':
        return this.stored()
      case 'mismatch':
        return this.mismatch(signal)
      case 'download:ended':
        return this.downloadEnded(event.download, event.error, signal)
      case 'trie:settled':
        return this.trieSettled(event.trie, event.outcome, signal)
    }
  }

  /** Peers or the checkpoint changed: steer the running download and checkpoint sync, or plan anew. */
  private async changed(signal: AbortSignal): Promise<void> {
    const target = this.target()
    this.askPeersIfBehind(target)
    this.retargetTrie()
    const phase = this.phase
    if (phase.name !== 'downloading') return this.plan(signal)
    const download = phase.download
    // A trusted checkpoint far past the download's head (the first publisher checkpoint arrived after the
    // download started from peers' heads, say): plan again, so a checkpoint sync starts for it.
    if (this.checkpointToSync(this.knownHead) !== undefined) return this.replan(download)
    const peers = new Set(this.io.states().keys())
    try {
      // A peer that is gone gives its batches back at once instead of letting them time out.
      for (const peer of this.knownPeers) if (!peers.has(peer)) download.queue.removePeer(peer)
      download.queue.peersUpdated()
      if (target > download.target) {
        download.queue.setTarget(target)
        download.target = target
      } else if (target >= 0 && target < download.target && this.io.checkpoint?.() !== undefined) {
        // The publisher's checkpoint put the target below what peers claimed before it arrived: the queue's
        // target may only grow, so plan again to the signed one rather than chase items nobody may have. (A
        // quorum target that drops as peers leave keeps its download: churn would throw it away each time.)
        this.replan(download)
      }
    } catch (err) {
      // The queue closed in between: its end is on its way to us.
      this.log.trace('steering a closed download: %e', err)
    }
    this.knownPeers = peers
  }

  /** Items were stored: live items that reached the download's target end it (its peers' heads may be stale). */
  private stored(): void {
    const phase = this.phase
    if (phase.name === 'downloading' && this.trie === null && this.knownHead >= phase.download.target) this.replan(phase.download)
  }

  /** Items were dropped after a checkpoint mismatch: hashes fetched for them are stale, and the download too. */
  private async mismatch(signal: AbortSignal): Promise<void> {
    this.batches.clearHashes()
    if (this.phase.name === 'downloading') this.replan(this.phase.download)
    else await this.plan(signal)
  }

  /** The download stopped: plan again, or, after a failure that made no progress, wait for peers to change. */
  private async downloadEnded(download: Download, error: unknown, signal: AbortSignal): Promise<void> {
    if (this.phase.name !== 'downloading' || this.phase.download !== download) return
    // Batches the queue delivered may still be on their way to the store: the next plan starts from it, and a
    // failed write counts as a failed run (whether or not it ended the run on purpose).
    const writeFailure = await this.batches.settle().then(
      () => undefined,
      (writeError: unknown) => ({ error: writeError })
    )
    if (signal.aborted) return
    const failure = writeFailure ?? (error === undefined || download.replanned ? undefined : { error })
    if (failure === undefined) return this.plan(signal)
    const head = await this.writer.head()
    this.log('download from %d failed at head %d: %e', download.start, head, failure.error)
    dispatchSafely(this, 'sync:failed', { head, error: failure.error })
    // A checkpoint sync in progress makes progress of its own, and its end is an event too.
    if (head === download.head && this.trie === null) {
      this.enter({ name: 'stalled', error: failure.error })
      dispatchSafely(this, 'sync:stalled', { head, error: failure.error })
      return
    }
    return this.plan(signal)
  }

  /** The checkpoint sync ended: its items are ours (or it failed and they are downloaded instead). */
  private async trieSettled(trie: CheckpointSync, outcome: CheckpointSyncOutcome, signal: AbortSignal): Promise<void> {
    if (this.trie !== trie) return
    this.trie = null
    if (signal.aborted) return
    const phase = this.phase
    if (outcome.kind === 'adopted') {
      dispatchSafely(this, 'trie:adopted', outcome.checkpoint)
      // A re-target raced with the end of the sync: the queue runs past a newer checkpoint than we adopted.
      if (phase.name === 'downloading' && phase.download.start > outcome.checkpoint.number + 1) this.replan(phase.download)
    } else {
      this.trieFailedThrough = Math.max(this.trieFailedThrough, outcome.checkpoint.number)
      this.log('checkpoint sync of %d failed, downloading the items instead: %e', outcome.checkpoint.number, outcome.error)
      dispatchSafely(this, 'trie:failed', { number: outcome.checkpoint.number, error: outcome.error })
      // The queue started after the checkpoint: start it again from our head.
      if (phase.name === 'downloading') this.replan(phase.download)
    }
    if (phase.name !== 'downloading') await this.plan(signal)
  }

  /**
   * Decides what to do from our head: start a checkpoint sync for a trusted checkpoint far ahead, re-check our
   * tip, then download up to the target, or wait.
   */
  private async plan(signal: AbortSignal): Promise<void> {
    const target = this.target()
    let head = await this.writer.head()
    this.knownHead = head
    this.startCheckpointSync(head, signal)
    const trie = this.trie
    // During a checkpoint sync the tip is the checkpoint's, verified by its root: nothing to re-check.
    if (trie === null && target >= 0) head = await this.checkTip(signal)
    const start = trie === null ? head + 1 : Math.max(head, trie.checkpoint.number) + 1
    if (target >= start) return this.startDownload(start, target, head, signal)
    // Nothing past the checkpoint yet: wait for the adoption. With a publisher, items of ours are no reason to
    // call it synced until a signed checkpoint says so.
    const publisher = this.io.checkpoint !== undefined
    const mode = trie !== null ? 'syncing' : target >= 0 || (head >= 0 && !publisher) ? 'synced' : 'unsynced'
    this.enter({ name: 'waiting', mode })
  }

  private startDownload(start: number, target: number, head: number, signal: AbortSignal): void {
    const controller = new AbortController()
    const runSignal = AbortSignal.any([signal, controller.signal])
    const queue = new Queue({
      log: this.queueLog,
      ...this.queueInit,
      batchSize: this.batches.batchSize,
      start,
      target,
      io: {
        peers: () => this.batches.peers(),
        fetch: (peer, from, amount, options) => this.batches.fetch(peer, from, amount, options),
        maxInFlight: (peer) => this.batches.maxInFlight(peer),
        deliver: (items) => this.batches.deliver(items, runSignal)
      }
    })
    queue.addEventListener('progress', (e) => {
      this.knownHead = Math.max(this.knownHead, e.detail.head)
      dispatchSafely(this, 'progress', { head: e.detail.head, target: e.detail.target })
    })
    queue.addEventListener('refused', (e) => dispatchSafely(this, 'peer:busy', e.detail))
    queue.addEventListener('peer:fault', (e) => {
      if (e.detail.severity === 'severe') this.onPeerFault?.(e.detail.peer, e.detail.reason)
    })
    const download: Download = { queue, controller, start, head, target, replanned: false, ended: Promise.resolve() }
    download.ended = queue.run({ signal: runSignal }).then(
      () => this.post({ type: 'download:ended', download, error: undefined }),
      (error: unknown) => this.post({ type: 'download:ended', download, error })
    )
    this.knownPeers = new Set(this.io.states().keys())
    this.enter({ name: 'downloading', download })
  }

  /** Ends the download on purpose: its end plans again from the store's head. */
  private replan(download: Download): void {
    download.replanned = true
    download.controller.abort()
  }

  private enter(phase: Phase): void {
    this.phase = phase
    const mode = phase.name === 'waiting' ? phase.mode : phase.name === 'stopped' ? this.currentMode : 'syncing'
    if (mode === this.currentMode) return
    this.currentMode = mode
    dispatchSafely(this, 'mode', mode)
  }

  /**
   * Starts a checkpoint sync when a trusted checkpoint is far enough past our head and none runs: the trie
   * sync of its root runs on its own while the download fetches the items after it, whose delivery waits for
   * the adoption. Its end is posted to the loop.
   */
  private startCheckpointSync(head: number, signal: AbortSignal): void {
    const syncTrie = this.io.syncTrie
    const cp = this.checkpointToSync(head)
    if (cp === undefined || syncTrie === undefined) return
    const trie = new CheckpointSync({
      checkpoint: cp,
      syncTrie: (root, options) => syncTrie(root, options),
      adopt: (adopted, options) => this.writer.adopt(adopted, options),
      signal,
      log: this.log
    })
    this.trie = trie
    void trie.settled.then((outcome) => this.post({ type: 'trie:settled', trie, outcome }))
    dispatchSafely(this, 'trie:started', cp)
  }

  /** A newer trusted checkpoint moves the running trie sync to its root, and the download to the items after it. */
  private retargetTrie(): void {
    const trie = this.trie
    if (trie === null) return
    const cp = this.trieCandidate()
    if (cp === undefined || cp.number - trie.checkpoint.number < this.retargetMinItems || !trie.retarget(cp)) return
    dispatchSafely(this, 'trie:retarget', cp)
    if (this.phase.name === 'downloading') this.replan(this.phase.download)
  }

  /**
   * The checkpoint a checkpoint sync should start for now, with our head at `head`: none while one runs,
   * without the I/O for it, or unless a trusted checkpoint not yet verified (nor failed) is at least
   * `checkpointSyncMinItems` past the head.
   */
  private checkpointToSync(head: number): TrieCheckpoint | undefined {
    if (this.trie !== null || this.io.syncTrie === undefined || this.io.adopt === undefined) return undefined
    const doneThrough = Math.max(this.trieFailedThrough, this.writer.verifier.verifiedThrough)
    return checkpointToSync(this.trieCandidate(), { head, doneThrough, minItems: this.checkpointSyncMinItems })
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
    const head = await this.writer.head()
    if (this.io.checkpoint !== undefined) return head
    const plan = planTipCheck(head, this.startBack, this.quorum, peerInfos(this.io.states()))
    if (plan === undefined) return head
    const { from, needed } = plan
    const ours = await this.io.localHashes(from, head)
    // Every such peer at once, for at most TIP_CHECK_WAIT_MS: the first `needed` answers decide.
    const firstDiffs: number[] = []
    const done = new AbortController()
    const asking = AbortSignal.any([signal, done.signal])
    const deadline = this.clock.setTimeout(() => done.abort(), TIP_CHECK_WAIT_MS)
    try {
      await Promise.all(
        plan.peers.map(async (peer) => {
          let theirs: Uint8Array[]
          try {
            theirs = await this.io.fetchHashes(peer.id, from, head, { signal: asking })
          } catch (err) {
            if (!done.signal.aborted) this.log('tip check: hashes %d..%d from %s failed: %e', from, head, peer.id, err)
            return
          }
          const diff = firstDifference(ours, theirs, from)
          if (done.signal.aborted || diff === undefined) return
          firstDiffs.push(diff)
          if (firstDiffs.length === needed) done.abort()
        })
      )
    } finally {
      this.clock.clearTimeout(deadline)
    }
    const wrongFrom = tipToDrop(firstDiffs, needed)
    if (wrongFrom === undefined) return head
    this.log('tip check: peers agree our items from %d are wrong; dropping them', wrongFrom)
    await this.writer.truncate(wrongFrom - 1)
    this.batches.clearHashes()
    dispatchSafely(this, 'tip:repaired', { from: wrongFrom, head })
    return this.writer.head()
  }

  /** The target is past every head peers reported: ask them again now rather than at the next refresh. */
  private askPeersIfBehind(target: number): void {
    if (target <= this.knownHead || this.io.refreshPeers === undefined) return
    let highest = -1
    for (const state of this.io.states().values()) highest = Math.max(highest, state.head)
    if (target > highest) this.io.refreshPeers()
  }

  /** Who decides the target: the publisher, when one is configured, or a quorum of peers. */
  private authority(): TargetAuthority {
    if (this.io.checkpoint !== undefined) return { kind: 'publisher', checkpoint: this.io.checkpoint() }
    return { kind: 'quorum', states: this.io.states(), quorum: this.quorum }
  }

  /** The checkpoint to trust for a trie sync: the publisher's, or else the one `selectFork` picks from peers. */
  private trieCandidate(): TrieCheckpoint | undefined {
    return trieCandidate(this.authority(), this.selectFork, (err) => this.log.error('selectFork threw: %e', err))
  }
}
