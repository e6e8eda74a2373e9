import { InvalidInputError } from '../errors.js'
import { equalBytes } from '../util/bytes.js'
import { DEFAULT_MAX_DOWNLOAD_ATTEMPTS, DEFAULT_MAX_PROCESS_ATTEMPTS } from './constants.js'
import { BatchFailedError, InvalidBatchTransitionError, InvalidItemsError } from './errors.js'
import type { Item, Source } from './types.js'
import { validateItems } from './validate.js'

// reference: Lodestar@6de07362 packages/beacon-node/src/sync/range/batch.ts (status enum, state union, one
// guarded method per transition); Prysm@7ac522d8 beacon-chain/sync/initial-sync/fsm.go (hold = `skipped`).

/** Where a batch is in its life. */
export enum FSMStatus {
  /** Waiting for a peer (new, or back after a failure, a dropped peer or a rejected delivery). */
  Pending = 'Pending',
  /** One request to one peer is in flight. */
  Downloading = 'Downloading',
  /** All items are here, waiting for every lower batch to be delivered. */
  Downloaded = 'Downloaded',
  /** Handed to the consumer, waiting for its answer. At most one batch is in this status. */
  Delivering = 'Delivering',
  /** The consumer accepted it; it is validated when the next batch is accepted too. */
  Delivered = 'Delivered',
  /** The consumer failed locally; the items are kept and delivered again when the hold ends. */
  Held = 'Held',
  /** Validated: the queue forgets it. */
  Done = 'Done',
  /** Out of attempts. */
  Failed = 'Failed'
}

/**
 * Why a batch is held. With dense numbering an empty or short reply is the peer's fault, not a reason to wait,
 * so the one reason left is the consumer's own failure.
 */
export type HoldReason = 'local'

/** Items received so far for a batch (a contiguous prefix) and who sent them. */
interface Received {
  received: readonly Item[]
  sources: readonly Source[]
}

/** What a batch holds in each status: nothing is readable in a status where it is not valid. */
export type FSMState =
  | ({ status: FSMStatus.Pending } & Received)
  | ({
      status: FSMStatus.Downloading
      peer: string
      /** Id of the request; a reply to an older request is stale. */
      attempt: number
      from: number
      amount: number
    } & Received)
  | { status: FSMStatus.Downloaded; items: readonly Item[]; sources: readonly Source[] }
  | {
      status: FSMStatus.Delivering
      items: readonly Item[]
      sources: readonly Source[]
      /** The items handed to the consumer: `items` less those it already had. */
      delivered: readonly Item[]
    }
  | { status: FSMStatus.Delivered; items: readonly Item[]; sources: readonly Source[]; delivered: readonly Item[] }
  | {
      status: FSMStatus.Held
      reason: HoldReason
      since: number
      until: number
      items: readonly Item[]
      sources: readonly Source[]
    }
  | { status: FSMStatus.Done }
  | { status: FSMStatus.Failed; error: BatchFailedError }

export interface FSMInit {
  /** First item number of the batch. */
  start: number
  /** Items in the batch, at least 1. */
  count: number
  /** Failed downloads after which the batch fails. @default DEFAULT_MAX_DOWNLOAD_ATTEMPTS (5) */
  maxDownloadAttempts?: number
  /** Rejected deliveries after which the batch fails. @default DEFAULT_MAX_PROCESS_ATTEMPTS (3) */
  maxProcessAttempts?: number
}

/** A download the consumer rejected: kept until the batch is validated, to find out who sent the bad items. */
interface RejectedAttempt {
  items: readonly Item[]
  sources: readonly Source[]
}

const EMPTY: Received = { received: [], sources: [] }

/**
 * One batch `[start, start + count)` of the numbered-batch downloader. Pure: no I/O, no clock (times are
 * passed in). Every transition is a method that checks the current status and throws
 * `InvalidBatchTransitionError` when it does not allow the transition, leaving the state unchanged.
 */
export class FSM {
  readonly start: number
  /** Items in the batch: fixed, but for a split (`splitAtReceived`), which keeps the prefix. */
  private size: number
  private readonly maxDownloadAttempts: number
  private readonly maxProcessAttempts: number
  private current: FSMState = { status: FSMStatus.Pending, ...EMPTY }
  /** Peers whose download of this batch failed, in order of first failure. */
  private readonly failedDownloadPeers = new Set<string>()
  /**
   * Failed downloads and rejected content per peer: the queue prefers peers with fewer, so a retry does not
   * go straight back to the peer whose content the consumer just rejected (Lodestar `getFailedPeers`).
   */
  private readonly avoid = new Map<string, number>()
  /** RATE_LIMITED answers per peer: no attempt charged, but a try (`triesAt`). */
  private readonly refusals = new Map<string, number>()
  private failedDownloads = 0
  private failedProcessing = 0
  private localFaults = 0
  private readonly rejected: RejectedAttempt[] = []

  constructor(init: FSMInit) {
    if (!Number.isSafeInteger(init.start) || init.start < 0) {
      throw new InvalidInputError(`batch start must be a non-negative safe integer, got ${init.start}`)
    }
    if (!Number.isSafeInteger(init.count) || init.count < 1 || !Number.isSafeInteger(init.start + init.count)) {
      throw new InvalidInputError(`batch count must be a positive safe integer, got ${init.count}`)
    }
    this.start = init.start
    this.size = init.count
    this.maxDownloadAttempts = positive(
      init.maxDownloadAttempts ?? DEFAULT_MAX_DOWNLOAD_ATTEMPTS,
      'maxDownloadAttempts'
    )
    this.maxProcessAttempts = positive(init.maxProcessAttempts ?? DEFAULT_MAX_PROCESS_ATTEMPTS, 'maxProcessAttempts')
  }

  get state(): FSMState {
    return this.current
  }

  get status(): FSMStatus {
    return this.current.status
  }

  /** Items in the batch. */
  get count(): number {
    return this.size
  }

  /** Last item number of the batch (inclusive). */
  get end(): number {
    return this.start + this.size - 1
  }

  /** Downloads that failed so far. */
  get downloadAttempts(): number {
    return this.failedDownloads
  }

  /** Deliveries the consumer blamed on this batch so far. */
  get processAttempts(): number {
    return this.failedProcessing
  }

  /** Local consumer faults so far (they set the length of the hold, never fail the batch). */
  get localFaultCount(): number {
    return this.localFaults
  }

  /** Peers whose download of this batch failed, in the order of their first failure. */
  get failedPeers(): string[] {
    return [...this.failedDownloadPeers]
  }

  /** How often this batch failed at `peer`: failed downloads plus downloads whose content was rejected. */
  failuresAt(peer: string): number {
    return this.avoid.get(peer) ?? 0
  }

  /** The range still to download: everything after the prefix received so far. Pending only. */
  remaining(): { from: number; amount: number } {
    const s = this.expect('remaining', FSMStatus.Pending)
    return { from: this.start + s.received.length, amount: this.count - s.received.length }
  }

  /**
   * Pending with a prefix received → Downloaded with that prefix alone, its count cut to it; returns new batches
   * of at most `chunk` items for the rest (Pending, nothing received; its failed downloads, and the failures
   * and refusals counted at each peer, carried over, so its attempts are not renewed and the peers that failed
   * it are still avoided).
   */
  splitAtReceived(chunk: number): FSM[] {
    const s = this.expect('splitAtReceived', FSMStatus.Pending)
    if (s.received.length === 0 || !Number.isSafeInteger(chunk) || chunk < 1) {
      throw new InvalidInputError('a batch is split after a prefix, into batches of at least one item')
    }
    const rest: FSM[] = []
    for (let from = this.start + s.received.length; from <= this.end; from += chunk) {
      const tail = new FSM({
        start: from,
        count: Math.min(chunk, this.end - from + 1),
        maxDownloadAttempts: this.maxDownloadAttempts,
        maxProcessAttempts: this.maxProcessAttempts
      })
      for (const [peer, n] of this.avoid) tail.avoid.set(peer, n)
      for (const [peer, n] of this.refusals) tail.refusals.set(peer, n)
      for (const peer of this.failedDownloadPeers) tail.failedDownloadPeers.add(peer)
      tail.failedDownloads = this.failedDownloads
      rest.push(tail)
    }
    this.size = s.received.length
    this.current = { status: FSMStatus.Downloaded, items: s.received, sources: s.sources }
    return rest
  }

  /** Pending → Downloading: ask `peer` for the remaining range under request id `attempt`. */
  startDownloading(peer: string, attempt: number): { from: number; amount: number } {
    const s = this.expect('startDownloading', FSMStatus.Pending)
    const from = this.start + s.received.length
    const amount = this.count - s.received.length
    const { received, sources } = s
    this.current = { status: FSMStatus.Downloading, peer, attempt, from, amount, received, sources }
    return { from, amount }
  }

  /**
   * Downloading → Downloaded, or → Pending with the prefix kept when the reply was short (no attempt is charged:
   * the peer answered correctly, only less). `items` must pass `validateItems` for the request. `peer`: who sent
   * them, when a second peer was asked for the same range (a hedge) and answered first; the batch's own peer
   * by default. The sender is what a rejected delivery blames.
   */
  downloadingSuccess(items: readonly Item[], peer?: string): FSMStatus {
    const s = this.expect('downloadingSuccess', FSMStatus.Downloading)
    const check = validateItems(s.from, s.amount, items)
    if (!check.ok) throw new InvalidItemsError(check.fault, check.message)
    const received = [...s.received, ...items]
    const sources = [...s.sources, { peer: peer ?? s.peer, from: s.from, to: s.from + items.length - 1 }]
    this.current = check.complete
      ? { status: FSMStatus.Downloaded, items: received, sources }
      : { status: FSMStatus.Pending, received, sources }
    return this.current.status
  }

  /**
   * Downloading → Pending, charging an attempt to the peer (timeout, error, invalid or empty reply), or →
   * Failed once `maxDownloadAttempts` downloads have failed. The prefix received before is kept.
   */
  downloadingError(cause?: unknown): FSMStatus {
    const s = this.expect('downloadingError', FSMStatus.Downloading)
    this.failedDownloadPeers.add(s.peer)
    this.noteFailure(s.peer)
    this.failedDownloads++
    if (this.failedDownloads >= this.maxDownloadAttempts) {
      this.current = {
        status: FSMStatus.Failed,
        error: new BatchFailedError('download', this.start, this.end, this.failedPeers, cause)
      }
    } else {
      this.current = { status: FSMStatus.Pending, received: s.received, sources: s.sources }
    }
    return this.current.status
  }

  /**
   * Counts a failure of this batch at `peer` without charging an attempt: a second request for the range (a
   * hedge) that failed, or the batch's own request failing while a hedge carries on. The next request prefers
   * other peers.
   */
  noteFailure(peer: string): void {
    this.avoid.set(peer, (this.avoid.get(peer) ?? 0) + 1)
  }

  /**
   * Counts a RATE_LIMITED answer of `peer` to this batch: no attempt charged, no failure, but a try, so a peer
   * answering every request busy does not hold a retry the others failed once.
   */
  noteRefusal(peer: string): void {
    this.refusals.set(peer, (this.refusals.get(peer) ?? 0) + 1)
  }

  /** How often this batch was tried at `peer`: `failuresAt` plus its refusals. */
  triesAt(peer: string): number {
    return this.failuresAt(peer) + (this.refusals.get(peer) ?? 0)
  }

  /** Downloading → Pending without charging an attempt: the peer left, or the queue needs the slot. */
  downloadingCancelled(): void {
    const s = this.expect('downloadingCancelled', FSMStatus.Downloading)
    this.current = { status: FSMStatus.Pending, received: s.received, sources: s.sources }
  }

  /** Downloaded → Pending without charging an attempt: the items are dropped to make room for a lower batch. */
  evict(): void {
    this.expect('evict', FSMStatus.Downloaded)
    this.current = { status: FSMStatus.Pending, ...EMPTY }
  }

  /**
   * Downloaded → Delivering. Returns the items to hand to the consumer: those above `consumerHead`, so that a
   * number the consumer already has is never delivered twice.
   */
  startDelivering(consumerHead: number): Item[] {
    const s = this.expect('startDelivering', FSMStatus.Downloaded)
    const delivered = s.items.filter((item) => item.n > consumerHead)
    this.current = { status: FSMStatus.Delivering, items: s.items, sources: s.sources, delivered }
    return delivered
  }

  /** Delivering → Delivered: the consumer accepted the items. */
  deliverySuccess(): void {
    const s = this.expect('deliverySuccess', FSMStatus.Delivering)
    this.current = { status: FSMStatus.Delivered, items: s.items, sources: s.sources, delivered: s.delivered }
  }

  /**
   * Delivering → Pending: the consumer blamed these items ('this' or 'both'). The items are dropped and
   * downloaded again; → Failed once `maxProcessAttempts` deliveries have been rejected.
   */
  deliveryError(cause?: unknown): FSMStatus {
    const s = this.expect('deliveryError', FSMStatus.Delivering)
    return this.rejectContent(s.items, s.sources, cause)
  }

  /**
   * Delivering → Downloaded, keeping the items: the consumer blamed the previous batch ('previous'), which is
   * downloaded and delivered again first.
   */
  deliveryDeferred(): void {
    const s = this.expect('deliveryDeferred', FSMStatus.Delivering)
    this.current = { status: FSMStatus.Downloaded, items: s.items, sources: s.sources }
  }

  /** Delivering → Held: the consumer failed locally. The same items are delivered again after `until`. */
  hold(reason: HoldReason, since: number, until: number): void {
    const s = this.expect('hold', FSMStatus.Delivering)
    this.localFaults++
    this.current = { status: FSMStatus.Held, reason, since, until, items: s.items, sources: s.sources }
  }

  /** Held → Downloaded: the hold ended; the items wait for delivery again. */
  resume(): void {
    const s = this.expect('resume', FSMStatus.Held)
    this.current = { status: FSMStatus.Downloaded, items: s.items, sources: s.sources }
  }

  /**
   * Delivered → Done: the next batch was accepted too, so these items are right. Returns the sources of earlier
   * downloads the consumer rejected whose items differ from these: the peers that sent wrong content (Lodestar
   * compares attempt hashes the same way). A source whose items were right is not returned.
   */
  validationSuccess(): Source[] {
    const s = this.expect('validationSuccess', FSMStatus.Delivered)
    if (this.rejected.length === 0) {
      this.current = { status: FSMStatus.Done }
      return []
    }
    const good = new Map<number, Uint8Array>()
    for (const item of s.items) good.set(item.n, item.data)
    const wrong: Source[] = []
    for (const attempt of this.rejected) {
      for (const source of attempt.sources) {
        const differs = attempt.items.some((item) => {
          if (item.n < source.from || item.n > source.to) return false
          const accepted = good.get(item.n)
          return accepted !== undefined && !equalBytes(accepted, item.data)
        })
        if (differs) wrong.push(source)
      }
    }
    this.rejected.length = 0
    this.current = { status: FSMStatus.Done }
    return wrong
  }

  /**
   * Delivered → Pending: the consumer blamed this batch while applying the next one ('previous' or 'both').
   * → Failed once `maxProcessAttempts` deliveries have been rejected.
   */
  validationError(cause?: unknown): FSMStatus {
    const s = this.expect('validationError', FSMStatus.Delivered)
    return this.rejectContent(s.items, s.sources, cause)
  }

  private rejectContent(items: readonly Item[], sources: readonly Source[], cause: unknown): FSMStatus {
    this.failedProcessing++
    this.rejected.push({ items, sources })
    for (const peer of new Set(sources.map((src) => src.peer))) this.noteFailure(peer)
    if (this.failedProcessing >= this.maxProcessAttempts) {
      const peers = [...new Set(this.rejected.flatMap((a) => a.sources.map((src) => src.peer)))]
      this.current = {
        status: FSMStatus.Failed,
        error: new BatchFailedError('process', this.start, this.end, peers, cause)
      }
    } else {
      this.current = { status: FSMStatus.Pending, ...EMPTY }
    }
    return this.current.status
  }

  private expect<S extends FSMStatus>(transition: string, status: S): Extract<FSMState, { status: S }> {
    if (this.current.status !== status) {
      throw new InvalidBatchTransitionError(transition, this.start, this.current.status, [status])
    }
    return this.current as Extract<FSMState, { status: S }>
  }
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidInputError(`${name} must be a positive safe integer, got ${value}`)
  }
  return value
}
