import { TypedEventEmitter } from 'main-event'
import { Queue } from '../fsm/queue.js'
import type { QueueInit } from '../fsm/queue-types.js'
import type { ConsumerResult, Item, PeerInfo } from '../fsm/types.js'
import type { TopicState } from '../net/topic-protocols.js'
import { keccak256 } from '../trie/keccak.js'
import { equalBytes } from '../util/bytes.js'
import { dispatchSafely } from '../util/events.js'
import { DEFAULT_START_BACK, DEFAULT_TOPIC_BATCH_ITEMS, HASH_PREFETCH_ITEMS } from '../constants.js'
import type { Checkpoint } from './gossip.js'

/** DSFG's operation modes (from the Pocket design); serving is always on and not a mode. */
export type SyncMode = 'unsynced' | 'syncing' | 'synced'

/**
 * Peers that must report a head at least as high before it becomes the target, when no publisher decides.
 * One is the least that can work with a single server; raise it where peers may lie about their heads.
 */
export const DEFAULT_TOPIC_QUORUM = 1

/** The I/O a topic sync runs on, injected so the orchestration is tested without a network. */
export interface TopicSyncIO {
  /** Our highest stored item number, -1 when we hold none. */
  head(): Promise<number>
  /** Stores the next items (numbers head + 1, head + 2, …), already verified, in one write. */
  append(items: Item[]): Promise<void>
  /** Connected peers' reported states for this topic. */
  states(): ReadonlyMap<string, TopicState>
  /** Items `from..` from one peer (the queue validates their shape). */
  fetch(peer: string, from: number, amount: number, options: { signal: AbortSignal }): Promise<Item[]>
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
}

export interface TopicSyncInit {
  io: TopicSyncIO
  /** A peer served items that were proven wrong (a later accepted copy differed), or malformed replies. */
  onPeerFault?: (peer: string, reason: string) => void
  /** @default DEFAULT_TOPIC_QUORUM */
  quorum?: number
  /** Our newest items re-checked against peers before each download. @default DEFAULT_START_BACK (32) */
  startBack?: number
  /** Passed to each download queue (batch size, window, timeouts, clock, …). */
  queue?: Omit<QueueInit, 'start' | 'target' | 'io'>
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
  private wakeUp: (() => void) | null = null
  private hashPeerTurn = 0
  /** Expected item hashes by number, fetched ahead from one peer; dropped on any mismatch. */
  private readonly hashes = new Map<number, Uint8Array>()
  private hashSource: string | null = null
  private knownPeers = new Set<string>()
  /** The target the running queue was given (it may only grow). */
  private queueTarget = -1
  /** Re-plans the running download (set per run). */
  private replan: AbortController | null = null
  /** Our items `0..verifiedThrough` matched a publisher checkpoint's root (-1: none yet). */
  private verifiedThrough = -1
  /** Set by `update()`, so an update that lands before the loop starts waiting is not lost. */
  private updated = false

  constructor(init: TopicSyncInit) {
    super()
    this.io = init.io
    this.quorum = Math.max(1, init.quorum ?? DEFAULT_TOPIC_QUORUM)
    this.onPeerFault = init.onPeerFault
    this.startBack = Math.max(0, init.startBack ?? DEFAULT_START_BACK)
    // A lying peer may be handed the same batch again before its copy is proven wrong: allow for that.
    this.queueInit = { maxProcessAttempts: 6, batchSize: DEFAULT_TOPIC_BATCH_ITEMS, ...init.queue }
  }

  get mode(): SyncMode {
    return this.currentMode
  }

  /** The item number to reach: the publisher's checkpoint head, or the highest head `quorum` peers report. */
  target(): number {
    const cp = this.io.checkpoint?.()
    if (cp !== undefined) return cp.head
    const heads = [...this.io.states().values()].map((s) => s.head).sort((a, b) => b - a)
    return heads.length >= this.quorum ? heads[this.quorum - 1]! : -1
  }

  /**
   * Peer states or the checkpoint changed: extend a running download, or start one. Called from event
   * listeners, so it never throws: a target that went down (a peer left or lowered its head) leaves the
   * running download as it is, and a download that just ended is simply not touched.
   */
  update(): void {
    const target = this.target()
    const peers = new Set(this.io.states().keys())
    const queue = this.queue
    if (queue !== null) {
      try {
        // A peer that is gone gives its batches back at once instead of letting them time out.
        for (const peer of this.knownPeers) if (!peers.has(peer)) queue.removePeer(peer)
        queue.peersUpdated()
        if (target > this.queueTarget) {
          queue.setTarget(target)
          this.queueTarget = target
        }
      } catch {
        // The queue closed in between: the loop re-plans from our head anyway.
      }
    }
    this.knownPeers = peers
    this.updated = true
    this.wakeUp?.()
  }

  /** Runs until `signal` aborts: downloads whenever a target is above our head, then waits for updates. */
  async run(options: { signal: AbortSignal }): Promise<void> {
    const { signal } = options
    const wake = (): void => this.wakeUp?.()
    signal.addEventListener('abort', wake)
    try {
      while (!signal.aborted) {
        this.updated = false
        const target = this.target()
        const head = target >= 0 ? await this.checkTip(signal) : await this.io.head()
        if (target <= head) {
          this.setMode(target >= 0 || head >= 0 ? 'synced' : 'unsynced')
          await this.waitForUpdate(signal)
          continue
        }
        this.setMode('syncing')
        const queue = new Queue({ ...this.queueInit, start: head + 1, target, io: this.queueIo(signal) })
        this.queue = queue
        this.queueTarget = target
        queue.addEventListener('progress', (e) => dispatchSafely(this, 'progress', { head: e.detail.head, target: e.detail.target }))
        queue.addEventListener('peer:fault', (e) => {
          if (e.detail.severity === 'severe') this.onPeerFault?.(e.detail.peer, e.detail.reason)
        })
        // Aborted by `deliver` when a checkpoint proves our items wrong: re-plan from the repaired head.
        const replan = new AbortController()
        this.replan = replan
        try {
          await queue.run({ signal: AbortSignal.any([signal, replan.signal]) })
        } catch (error) {
          if (signal.aborted) break
          if (replan.signal.aborted) continue
          const now = await this.io.head()
          dispatchSafely(this, 'sync:failed', { head: now, error })
          // No progress at all: wait for peers to change before trying again, rather than spin.
          if (now === head) {
            dispatchSafely(this, 'sync:stalled', { head: now, error })
            await this.waitForUpdate(signal)
          }
        } finally {
          this.queue = null
        }
      }
    } finally {
      signal.removeEventListener('abort', wake)
    }
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
    if (this.startBack === 0 || head < 0 || this.io.checkpoint !== undefined) return head
    const needed = Math.max(2, this.quorum)
    const from = Math.max(0, head - this.startBack + 1)
    const eligible = this.peerInfos().filter((p) => p.lowest <= from && p.head >= head)
    if (eligible.length < needed) return head
    const ours = await this.io.localHashes(from, head)
    const firstDiffs: number[] = []
    for (const peer of eligible) {
      if (firstDiffs.length === needed) break
      let theirs: Uint8Array[]
      try {
        theirs = await this.io.fetchHashes(peer.id, from, head, { signal })
      } catch {
        continue
      }
      if (theirs.length !== ours.length) continue
      const i = ours.findIndex((h, j) => !equalBytes(h, theirs[j]!))
      firstDiffs.push(i < 0 ? -1 : from + i)
    }
    if (firstDiffs.length < needed || firstDiffs.some((d) => d !== firstDiffs[0])) return head
    const wrongFrom = firstDiffs[0]!
    if (wrongFrom < 0) return head
    await this.io.truncate(wrongFrom - 1)
    this.hashes.clear()
    dispatchSafely(this, 'tip:repaired', { from: wrongFrom, head })
    return this.io.head()
  }

  private async waitForUpdate(signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      this.wakeUp = resolve
      // A listener of the mode event may have stopped us or called update() already.
      if (signal.aborted || this.updated) resolve()
    })
    this.wakeUp = null
    this.updated = false
  }

  private setMode(mode: SyncMode): void {
    if (mode === this.currentMode) return
    this.currentMode = mode
    dispatchSafely(this, 'mode', mode)
  }

  private peerInfos(): PeerInfo[] {
    return [...this.io.states()].map(([id, s]) => ({ id, lowest: s.lowest, head: s.head }))
  }

  private queueIo(signal: AbortSignal) {
    return {
      peers: () => this.peerInfos(),
      fetch: (peer: string, from: number, amount: number, o: { signal: AbortSignal }) => this.io.fetch(peer, from, amount, o),
      deliver: (items: Item[]) => this.deliver(items, signal)
    }
  }

  /**
   * Checks a batch against content hashes from a peer that claims the range (rotating between such peers on a
   * mismatch, so one lying hash source cannot reject every honest copy), then stores it. A mismatch sends the
   * batch back for download elsewhere; a failure to get hashes holds it and tries again later.
   */
  /**
   * Stores `items` (already hash-checked), stopping at a checkpoint of the publisher that falls inside them to
   * compare our root with the signed one. A mismatch means some earlier batch was wrong despite its hashes (its
   * hash source lied too): everything after the last verified checkpoint is dropped and the download re-planned.
   */
  private async store(items: Item[]): Promise<ConsumerResult> {
    const cp = this.io.checkpoint?.()
    const from = items[0]!.n
    const to = items[items.length - 1]!.n
    if (cp === undefined || cp.number < from || cp.number > to || cp.number <= this.verifiedThrough) {
      await this.io.append(items)
      return { ok: true }
    }
    const split = cp.number - from + 1
    await this.io.append(items.slice(0, split))
    if (!equalBytes(await this.io.root(), cp.root)) {
      await this.io.truncate(this.verifiedThrough)
      this.hashes.clear()
      dispatchSafely(this, 'checkpoint:mismatch', { number: cp.number, kept: this.verifiedThrough })
      this.replan?.abort()
      return { ok: false, fault: 'local' }
    }
    this.verifiedThrough = cp.number
    dispatchSafely(this, 'checkpoint:verified', { number: cp.number })
    if (split < items.length) await this.io.append(items.slice(split))
    return { ok: true }
  }

  private async deliver(delivered: Item[], signal: AbortSignal): Promise<ConsumerResult> {
    // After a local failure part of a batch may be stored already: the queue delivers it again whole.
    const head = await this.io.head()
    const items = delivered.filter((item) => item.n > head)
    if (items.length === 0) return { ok: true }
    const from = items[0]!.n
    const to = items[items.length - 1]!.n
    const hashPeer = await this.prefetchHashes(from, to, signal)
    if (hashPeer === null) return { ok: false, fault: 'local' }
    for (const item of items) {
      if (!equalBytes(keccak256(item.data), this.hashes.get(item.n)!)) {
        // Either the batch or the hashes are wrong: forget these hashes, so the next check asks another peer.
        this.hashes.clear()
        dispatchSafely(this, 'batch:rejected', { from, to, hashPeer })
        return { ok: false, fault: 'this' }
      }
    }
    try {
      const result = await this.store(items)
      for (const item of items) this.hashes.delete(item.n)
      return result
    } catch (error) {
      return { ok: false, fault: 'local', error }
    }
  }

  /**
   * Makes sure the expected hashes of `from..to` are known, fetching up to `HASH_PREFETCH_ITEMS` of them from
   * one peer that claims the range (rotating between such peers). Resolves to that peer, or null when no peer
   * could give them now.
   */
  private async prefetchHashes(from: number, to: number, signal: AbortSignal): Promise<string | null> {
    if (this.hashSource !== null && this.hashes.has(from) && this.hashes.has(to)) return this.hashSource
    this.hashes.clear()
    const last = Math.max(to, Math.min(from + HASH_PREFETCH_ITEMS - 1, this.target()))
    const eligible = this.peerInfos().filter((p) => p.lowest <= from && p.head >= to)
    // Start at the next peer in turn, and move on at once past a peer that is busy or gone.
    for (let tried = 0; tried < eligible.length; tried++) {
      const peer = eligible[this.hashPeerTurn++ % eligible.length]!
      let hashes: Uint8Array[]
      try {
        hashes = await this.io.fetchHashes(peer.id, from, Math.min(last, peer.head), { signal })
      } catch {
        if (signal.aborted) return null
        continue
      }
      if (hashes.length < to - from + 1) continue
      for (let i = 0; i < hashes.length; i++) this.hashes.set(from + i, hashes[i]!)
      this.hashSource = peer.id
      return peer.id
    }
    return null
  }
}
