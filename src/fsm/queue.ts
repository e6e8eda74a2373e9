import { TypedEventEmitter } from 'main-event'
import { dispatchSafely } from '../util/events.js'
import { Trigger } from '../util/trigger.js'
import { AbortError, BusyError, InvalidInputError, PeerBusyError } from '../errors.js'
import { BusyPeers } from './busy-peers.js'
import { HEDGES_PER_REQUEST, RETRY_BACKOFF_MS } from './constants.js'
import { DeliveryError, InvalidItemsError, QueueClosedError, RequestTimeoutError } from './errors.js'
import { type FetchOutcome, type FetchRequest, FetchRequests } from './fetch-requests.js'
import { FSM, FSMStatus } from './fsm.js'
import { FSMManager } from './fsm-manager.js'
import { HedgeDelay } from './hedge-delay.js'
import { NoPeerWatchdog } from './no-peer-watchdog.js'
import { isEligible, sanitizePeers } from './peer-balancer.js'
import { type QueueConfig, resolveQueueInit } from './queue-config.js'
import type { QueueDebugState, QueueEvents, QueueInit, QueueResult } from './queue-types.js'
import type { ConsumerFault, ConsumerResult, DeliverOptions, Item, PeerFaultReason, PeerInfo } from './types.js'
import { validateItems } from './validate.js'

// reference: Prysm@7ac522d8 beacon-chain/sync/initial-sync/blocks_queue.go (window of machines keyed by start,
// ordered send, hold); Lodestar@6de07362 sync/range/chain.ts (event-driven loop, retries first, explicit
// consumer results, re-download of unvalidated predecessors). Their bugs this avoids are cited where avoided.

type QueueEvent =
  | FetchOutcome
  /** `previous`: the unvalidated batch the consumer was told about, which a 'previous' fault blames. */
  | { type: 'delivered'; fsm: FSM; items: Item[]; previous: FSM | undefined; result: unknown }
  | { type: 'deliver-error'; fsm: FSM; error: unknown }
  | { type: 'hold-expired'; fsm: FSM }
  /** Peers changed: batches held for a local fault (say, no peer could give what the consumer needed) retry now. */
  | { type: 'release-holds' }
  | { type: 'watchdog' }
  /** A busy peer's wait ended: the next pass may ask it again. */
  | { type: 'rested' }
  /** The head batch's request has been out long enough to ask a second peer, if the window still waits on it. */
  | { type: 'hedge-due' }

const CONSUMER_FAULTS: ReadonlySet<string> = new Set<ConsumerFault>(['this', 'previous', 'both', 'local'])

/**
 * The numbered-batch downloader: fetches items `start..target` in batches from several peers at once and hands
 * them to the consumer in order, each number once. One async loop owns all state; fetch replies, deliveries
 * and timers only queue events for it. No sockets and no timers of its own: I/O goes through `io`, time
 * through the injected clock.
 */
export class Queue extends TypedEventEmitter<QueueEvents> {
  private readonly config: QueueConfig
  private readonly manager = new FSMManager()
  private readonly requests: FetchRequests
  private readonly watchdog: NoPeerWatchdog
  private readonly holds = new Map<FSM, unknown>()
  /** When each batch's last download failed (its own request, not a hedge). */
  private readonly failedAt = new WeakMap<FSM, number>()
  /** Peers that answered RATE_LIMITED, left out of `assign` until their wait ends. */
  private readonly busy: BusyPeers
  private readonly controller = new AbortController()

  private target: number
  /** Items per batch opened from now on (`setBatchSize`). */
  private batchSize: number
  private nextStart: number
  /** Highest number the consumer holds. */
  private head: number
  private delivered = 0
  private events: QueueEvent[] = []
  /** Wakes the loop: set by every event, peer change or target change, so none lands unseen between passes. */
  private readonly wakeUps = new Trigger()
  private phase: 'idle' | 'running' | 'closed' = 'idle'
  private loopDone: Promise<void> = Promise.resolve()
  private delivery: Promise<void> | null = null
  private failure: Error | null = null
  private startedAt = 0
  /** A range the last pass found no eligible peer for. */
  private wanted: { from: number; to: number } | null = null
  private knownPeers = 0
  /** The wait before the head batch is asked of a second peer, from the last successful requests. */
  private readonly hedgeDelay = new HedgeDelay()
  /** The wake-up at which the head batch becomes due for a hedge, and when. */
  private hedgeTimer: { handle: unknown; at: number } | null = null

  constructor(init: QueueInit) {
    super()
    this.config = resolveQueueInit(init)
    const { clock, io, fetchTimeoutMs, maxInFlightPerPeer, noPeerWatchdogMs, noPeerTimeoutMs } = this.config
    this.requests = new FetchRequests({
      clock,
      fetch: io.fetch,
      timeoutMs: fetchTimeoutMs,
      maxInFlightPerPeer,
      onOutcome: (outcome) => this.push(outcome)
    })
    this.watchdog = new NoPeerWatchdog({
      clock,
      intervalMs: noPeerWatchdogMs,
      timeoutMs: noPeerTimeoutMs,
      onFire: () => this.push({ type: 'watchdog' })
    })
    this.busy = new BusyPeers({
      clock,
      backoffMs: this.config.busyBackoffMs,
      maxBackoffMs: this.config.maxBusyBackoffMs,
      onRested: () => this.push({ type: 'rested' })
    })
    this.target = init.target
    this.batchSize = this.config.batchSize
    this.nextStart = init.start
    this.head = init.start - 1
  }

  /**
   * Downloads and delivers every item up to the target, then resolves. Rejects with `BatchFailedError` when a
   * batch runs out of attempts (the range and the peers are in the error), `NoPeersError` after
   * `noPeerTimeoutMs` without an eligible peer, `DeliveryError` when `deliver` rejects, and `AbortError` on
   * `stop()` or when `signal` aborts. A queue runs once: `QueueClosedError` afterwards.
   */
  async run(options: { signal?: AbortSignal } = {}): Promise<QueueResult> {
    if (this.phase === 'running') throw new BusyError('the queue is already running')
    if (this.phase === 'closed') throw new QueueClosedError('the queue has run or was stopped; a queue runs once')
    this.phase = 'running'
    let finished: () => void = () => undefined
    this.loopDone = new Promise<void>((resolve) => {
      finished = resolve
    })
    this.startedAt = this.config.clock.now()
    const signal = options.signal
    const onAbort = (): void => this.wake()
    signal?.addEventListener('abort', onAbort)
    try {
      const stopped = (): boolean => this.controller.signal.aborted || signal?.aborted === true
      for (;;) {
        this.wakeUps.clear()
        if (stopped()) throw new AbortError('the queue was stopped')
        this.handleEvents()
        if (this.failure !== null) throw this.failure
        if (this.head >= this.target) break
        // A listener may have stopped the queue: start nothing new then.
        if (stopped()) throw new AbortError('the queue was stopped')
        this.release()
        this.assign()
        this.manager.validate()
        this.checkStarving()
        if (this.failure !== null) throw this.failure
        if (this.events.length === 0 && !this.wakeUps.triggered) await this.wakeUps.wait()
      }
      // The last batch has no successor to validate it; the run is complete, so nothing can contradict it.
      for (const fsm of this.manager.inStatus(FSMStatus.Delivered)) this.validated(fsm)
      return { head: this.head, delivered: this.delivered, elapsedMs: this.config.clock.now() - this.startedAt }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      this.shutdown()
      this.phase = 'closed'
      // The consumer got the abort signal; its answer no longer matters, but the call must not outlive the run.
      if (this.delivery !== null) await this.delivery
      finished()
    }
  }

  /** Aborts a running `run()` and waits until its loop has ended; harmless before `run()` and when repeated. */
  async stop(): Promise<void> {
    if (this.phase === 'idle') {
      this.phase = 'closed'
      return
    }
    this.controller.abort()
    this.wake()
    await this.loopDone
  }

  /** Raises the target while running (a newer checkpoint or head). Targets only grow. */
  setTarget(target: number): void {
    if (!Number.isSafeInteger(target)) throw new InvalidInputError(`target must be a safe integer, got ${target}`)
    if (this.phase === 'closed') throw new QueueClosedError('the queue has run or was stopped')
    if (target < this.target) throw new InvalidInputError(`the target may only grow: ${target} < ${this.target}`)
    this.target = target
    this.wake()
  }

  /**
   * Items per batch for the batches opened from now on; those already open keep theirs. A consumer that finds
   * the items large sizes batches to what one reply carries, so a batch is one request and the window bounds
   * memory in bytes as well as in items.
   */
  setBatchSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 1) throw new InvalidInputError(`batch size must be a positive safe integer, got ${size}`)
    this.batchSize = size
  }

  /**
   * `io.peers()` may list something new (a peer connected or advanced): schedule a pass now, and give batches
   * held for a local fault their next delivery attempt at once rather than when their hold ends (the fault is
   * often that no peer could serve what the consumer needed, which a new peer may).
   */
  peersUpdated(): void {
    if (this.holds.size > 0) this.push({ type: 'release-holds' })
    this.wake()
  }

  /**
   * A peer disconnected: each of its requests is abandoned and its batch goes back to Pending without an
   * attempt charged (Lighthouse #5192 left them Downloading forever). A late reply from it is ignored. Call it
   * once the peer is gone from `io.peers()`, or the next pass may choose it again.
   */
  removePeer(peer: string): void {
    this.busy.answered(peer)
    for (const req of this.requests.ofPeer(peer)) {
      this.requests.end(req, true)
      if (req.hedge) continue // the batch's own request goes on
      req.fsm.downloadingCancelled()
      this.requests.promoteHedge(req.fsm)
    }
    this.wake()
  }

  /** Every batch in the window with its status, for logs and stuck detection (Lodestar `getDebugState`). */
  getDebugState(): QueueDebugState {
    return {
      phase: this.phase,
      head: this.head,
      target: this.target,
      nextStart: this.nextStart,
      delivered: this.delivered,
      inFlight: this.requests.size,
      window: this.inWindow(),
      batches: [...this.manager].map((fsm) => {
        const s = fsm.state
        let items = 0
        if ('received' in s) items = s.received.length
        else if ('items' in s) items = s.items.length
        return {
          start: fsm.start,
          count: fsm.count,
          status: fsm.status,
          ...(s.status === FSMStatus.Downloading ? { peer: s.peer } : {}),
          downloadAttempts: fsm.downloadAttempts,
          processAttempts: fsm.processAttempts,
          items
        }
      })
    }
  }

  // ---- events -------------------------------------------------------------------------------------------

  private push(event: QueueEvent): void {
    if (this.phase !== 'running') return
    this.events.push(event)
    this.wake()
  }

  private wake(): void {
    this.wakeUps.trigger()
  }

  private handleEvents(): void {
    while (this.events.length > 0 && this.failure === null) {
      const event = this.events.shift()!
      switch (event.type) {
        case 'reply':
          this.onReply(event.req, event.items)
          break
        case 'fetch-error':
          if (!this.requests.isActive(event.req)) break
          if (event.req.hedge) this.hedgeEnded(event.req, event.error)
          else if (event.error instanceof PeerBusyError) this.refused(event.req, event.error)
          else this.downloadFailed(event.req, event.error)
          break
        case 'timeout':
          if (this.requests.isActive(event.req)) {
            const { peer, from, amount } = event.req
            this.requests.end(event.req, true)
            const error = new RequestTimeoutError(`${peer} did not answer [${from}, ${from + amount - 1}] in time`)
            if (event.req.hedge) this.hedgeEnded(event.req, error)
            else this.downloadFailed(event.req, error)
          }
          break
        case 'delivered':
          this.onDelivered(event.fsm, event.items, event.previous, event.result)
          break
        case 'deliver-error':
          this.delivery = null
          this.config.log.error('delivering a batch failed: %e', event.error)
          this.failure = new DeliveryError('the consumer rejected a delivery', { cause: event.error })
          break
        case 'hold-expired':
          this.holds.delete(event.fsm)
          if (event.fsm.status === FSMStatus.Held) event.fsm.resume()
          break
        case 'release-holds':
          for (const [fsm, timer] of this.holds) {
            this.config.clock.clearTimeout(timer)
            if (fsm.status === FSMStatus.Held) fsm.resume()
          }
          this.holds.clear()
          break
        case 'watchdog':
          this.watchdog.fired()
          break
        case 'rested':
        case 'hedge-due':
          break
        default: {
          const exhaustive: never = event
          throw new InvalidInputError(`unknown queue event ${String(exhaustive)}`)
        }
      }
    }
  }

  private onReply(req: FetchRequest, items: unknown): void {
    if (!this.requests.isActive(req)) return // a late reply: the batch was given to someone else or is done
    this.requests.end(req, false)
    this.busy.answered(req.peer)
    const check = validateItems(req.from, req.amount, items)
    if (!check.ok) {
      // Blame the peer that sent this reply, never the batch's previous peer (Prysm #15173).
      this.blame(req.peer, check.fault, req.from, req.from + req.amount - 1)
      const error = new InvalidItemsError(check.fault, `${req.peer}: ${check.message}`)
      if (req.hedge) this.hedgeEnded(req, error)
      else this.downloadFailed(req, error)
      return
    }
    // A hedge wins only with the whole range: a short reply (legal, and quick to send) would abort a request
    // that may be nearly done, and a peer sending one item each time would make the head crawl.
    if (req.hedge && !check.complete) {
      this.hedgeEnded(req, new Error(`${req.peer}: a short reply to a second request`))
      return
    }
    // The first valid reply wins: the other request for the batch, if any, is dropped uncharged and unblamed.
    const other = req.hedge ? this.requests.of(req.fsm) : this.requests.hedgeOf(req.fsm)
    if (other !== undefined) this.requests.end(other, true)
    // Whole replies only: quick short ones would pull the median, and the hedges with it, down.
    if (check.complete) this.hedgeDelay.add(this.config.clock.now() - req.started)
    // A short reply keeps its prefix and the rest is asked for on the next pass, without an attempt charged.
    if (req.fsm.downloadingSuccess(items as Item[], req.peer) === FSMStatus.Pending) this.splitIfLarge(req.fsm)
  }

  /**
   * A batch holding `splitBytes` of items from short replies: its prefix becomes a batch of its own,
   * downloaded, and the rest batches of `batchSize` (which the consumer sizes from verified items). Kept whole,
   * a batch held every item until its last came: 256 items opened while a topic's items were 8 bytes, answered
   * 2 a reply once they were 500 KiB, held up to 128 MB, and 16 such batches 1.2 GB (an outside tester's
   * topic). Split, each batch holds about a reply, and the window bounds them. Not sized by the last reply:
   * a reply of 2 large items cut the 250 small ones after them into batches of 2 (a second tester: 5-8 times
   * the requests, 3 times slower).
   */
  private splitIfLarge(fsm: FSM): void {
    const s = fsm.state
    if (s.status !== FSMStatus.Pending || this.config.splitBytes === Number.POSITIVE_INFINITY) return
    let bytes = 0
    for (const item of s.received) bytes += item.data.length
    if (bytes < this.config.splitBytes) return
    for (const rest of fsm.splitAtReceived(this.batchSize)) this.manager.add(rest)
  }

  private downloadFailed(req: FetchRequest, cause: unknown): void {
    this.config.log('batch %d..%d from %s failed: %e', req.from, req.from + req.amount - 1, req.peer, cause)
    this.requests.end(req, false)
    if (this.requests.hedgeOf(req.fsm) !== undefined) {
      // Another peer is downloading the same range already: its request becomes the batch's. The failure counts
      // against this peer for the batch, but spends no attempt (on the last one it would fail the whole run
      // with a valid download still coming).
      req.fsm.noteFailure(req.peer)
      req.fsm.downloadingCancelled()
      this.requests.promoteHedge(req.fsm)
      return
    }
    this.failedAt.set(req.fsm, this.config.clock.now())
    this.checkFailed(req.fsm, req.fsm.downloadingError(cause))
  }

  /**
   * A hedge failed, timed out or came back short: the batch's own request goes on; no attempt is charged, but a
   * failure counts against the peer for this batch, so the batch's next request prefers others.
   */
  private hedgeEnded(req: FetchRequest, cause: unknown): void {
    this.requests.end(req, true)
    req.fsm.noteFailure(req.peer)
    this.config.log('second request of batch %d..%d at %s ended: %e', req.from, req.from + req.amount - 1, req.peer, cause)
    if (cause instanceof PeerBusyError) {
      const ms = this.busy.refused(req.peer)
      this.dispatch('refused', { peer: req.peer, waitMs: ms })
    }
  }

  /**
   * The peer answered RATE_LIMITED: "later", not "liar". The batch goes back to Pending without an attempt
   * charged, and the peer is left out until its backoff ends (five refusals, a few milliseconds apart, used to
   * fail the batch and the whole run with it).
   */
  private refused(req: FetchRequest, cause: PeerBusyError): void {
    req.fsm.noteRefusal(req.peer)
    this.requests.end(req, false)
    req.fsm.downloadingCancelled()
    this.requests.promoteHedge(req.fsm)
    const ms = this.busy.refused(req.peer)
    this.config.log('batch from %d: %s is busy for %d ms: %e', req.from, req.peer, ms, cause)
    this.dispatch('refused', { peer: req.peer, waitMs: ms })
  }

  private checkFailed(fsm: FSM, status: FSMStatus): void {
    const s = fsm.state
    if (status === FSMStatus.Failed && s.status === FSMStatus.Failed) this.failure ??= s.error
  }

  // ---- delivery -----------------------------------------------------------------------------------------

  /** Hands the lowest undelivered batch to the consumer if it is downloaded and no delivery is in flight. */
  private release(): void {
    if (this.delivery !== null) return
    for (const fsm of this.manager) {
      if (fsm.status === FSMStatus.Delivered || fsm.status === FSMStatus.Done) continue
      if (fsm.status === FSMStatus.Downloaded) this.startDelivery(fsm)
      return
    }
  }

  private startDelivery(fsm: FSM): void {
    const items = fsm.startDelivering(this.head)
    let previous: FSM | undefined
    let pending: Promise<ConsumerResult>
    if (items.length === 0) {
      pending = Promise.resolve({ ok: true }) // the consumer has all of it already
    } else {
      const options: DeliverOptions = { signal: this.controller.signal }
      const candidate = this.unvalidatedBefore(fsm)
      const s = candidate?.state
      if (s?.status === FSMStatus.Delivered && s.delivered.length > 0) {
        previous = candidate
        options.unvalidated = { from: s.delivered[0]!.n, to: s.delivered[s.delivered.length - 1]!.n }
      }
      try {
        pending = Promise.resolve(this.config.io.deliver(items, options))
      } catch (error) {
        pending = Promise.reject(error)
      }
    }
    // Delivery runs beside the loop, not inside it, so downloads go on while the consumer works (Prysm's loop
    // blocked every machine on its output channel); `delivery` keeps it to one at a time.
    this.delivery = pending.then(
      (result) => this.push({ type: 'delivered', fsm, items, previous, result }),
      (error: unknown) => this.push({ type: 'deliver-error', fsm, error })
    )
  }

  private onDelivered(fsm: FSM, items: Item[], previous: FSM | undefined, result: unknown): void {
    this.delivery = null
    if (fsm.status !== FSMStatus.Delivering) return
    if (!isConsumerResult(result)) {
      this.failure = new DeliveryError('deliver resolved with something that is not a ConsumerResult')
      return
    }
    if (result.ok) {
      this.accepted(fsm, items)
      return
    }
    switch (result.fault) {
      case 'this':
        this.checkFailed(fsm, fsm.deliveryError(result.error))
        break
      case 'previous':
        // With nothing delivered before it to suspect, the batch itself is the only suspect.
        if (previous === undefined) {
          this.checkFailed(fsm, fsm.deliveryError(result.error))
        } else {
          this.rollBack(previous, result.error)
          fsm.deliveryDeferred()
        }
        break
      case 'both':
        if (previous !== undefined) this.rollBack(previous, result.error)
        this.checkFailed(fsm, fsm.deliveryError(result.error))
        break
      case 'local':
        // Not the batch's fault (no hashes to check it against yet, a failed write, a stop): it waits and is
        // delivered again. The consumer logs its own failures.
        this.config.log('batch from %d held: %s', fsm.start, result.error ?? 'not ready')
        this.hold(fsm, result.error)
        break
      default: {
        const exhaustive: never = result.fault
        this.failure = new DeliveryError(`unknown consumer fault ${String(exhaustive)}`)
      }
    }
  }

  /** The delivered, not yet validated batch before `fsm` (there is at most one). */
  private unvalidatedBefore(fsm: FSM): FSM | undefined {
    return this.manager.inStatus(FSMStatus.Delivered).find((other) => other.start < fsm.start)
  }

  private accepted(fsm: FSM, items: Item[]): void {
    fsm.deliverySuccess()
    const last = items[items.length - 1]
    if (last !== undefined) {
      // Only a batch with content proves its predecessor right (Lodestar `advanceChain`).
      for (const previous of this.manager.inStatus(FSMStatus.Delivered)) {
        if (previous.start < fsm.start) this.validated(previous)
      }
      this.head = Math.max(this.head, last.n)
      this.delivered += items.length
    }
    const s = fsm.state
    const peers = s.status === FSMStatus.Delivered ? [...new Set(s.sources.map((src) => src.peer))] : []
    this.dispatch('batch:delivered', {
      start: fsm.start,
      count: fsm.count,
      from: items[0]?.n ?? fsm.start,
      to: last?.n ?? fsm.start - 1,
      items: items.length,
      peers
    })
    this.dispatch('progress', {
      head: this.head,
      target: this.target,
      delivered: this.delivered,
      batches: this.manager.size,
      inFlight: this.requests.size,
      elapsedMs: this.config.clock.now() - this.startedAt
    })
  }

  /** Delivered → Done: blames the peers whose earlier, rejected content differed, and forgets the batch. */
  private validated(fsm: FSM): void {
    const blamed = new Set<string>()
    for (const source of fsm.validationSuccess()) {
      if (blamed.has(source.peer)) continue
      blamed.add(source.peer)
      this.blame(source.peer, 'rejected-content', source.from, source.to)
    }
    this.manager.remove(fsm.start)
  }

  /** The consumer discarded a delivered batch: it is downloaded again and its numbers delivered again. */
  private rollBack(fsm: FSM, cause: unknown): void {
    const s = fsm.state
    const delivered = s.status === FSMStatus.Delivered ? s.delivered : []
    this.checkFailed(fsm, fsm.validationError(cause))
    const first = delivered[0]
    if (first !== undefined) {
      this.head = Math.min(this.head, first.n - 1)
      this.delivered -= delivered.length
    }
  }

  /**
   * A local consumer fault: keep the items, deliver them again after a doubling hold, download nothing. When
   * the consumer was refused by busy peers the hold is a busy peer's wait: they will have room within seconds.
   */
  private hold(fsm: FSM, cause: unknown): void {
    const { clock, holdTimeoutMs, maxHoldMs, busyBackoffMs, maxBusyBackoffMs } = this.config
    const [firstMs, capMs] = cause instanceof PeerBusyError ? [busyBackoffMs, maxBusyBackoffMs] : [holdTimeoutMs, maxHoldMs]
    const ms = Math.min(firstMs * 2 ** fsm.localFaultCount, capMs)
    const now = clock.now()
    fsm.hold('local', now, now + ms)
    if (cause instanceof PeerBusyError) this.dispatch('refused', { peer: undefined, waitMs: ms })
    this.holds.set(
      fsm,
      clock.setTimeout(() => this.push({ type: 'hold-expired', fsm }), ms)
    )
  }

  // ---- scheduling ---------------------------------------------------------------------------------------

  /** Batches that hold a window slot. */
  private inWindow(): number {
    return this.manager.count(FSMStatus.Downloading, FSMStatus.Downloaded)
  }

  /**
   * Gives Pending batches a peer, lowest first, then opens new batches while the window has room. A new batch
   * is opened only when no Pending batch is left waiting, so the number of batches stays bounded by the
   * window even when peers keep failing. A retry is always let in: when the window is full, the highest batch
   * above it gives up its slot, because batches above a missing one can never be delivered before it.
   */
  private assign(): void {
    const { window } = this.config
    const balancer = this.requests.balancer
    this.wanted = null
    // A rejected delivery can bring a batch back into the window when it is full.
    while (this.inWindow() > window) this.evict(this.highestInWindowAbove(-1)!)
    const listed = sanitizePeers(this.config.io.peers())
    this.knownPeers = listed.length
    const peers = this.busy.eligible(listed)
    const limit = this.config.io.maxInFlight?.bind(this.config.io)
    let waiting = false
    for (const fsm of [...this.manager]) {
      if (fsm.status !== FSMStatus.Pending) continue
      const victim = this.inWindow() >= window ? this.highestInWindowAbove(fsm.start) : null
      if (victim === undefined) {
        waiting = true
        continue
      }
      const { from, amount } = fsm.remaining()
      const to = from + amount - 1
      // A retry waits for a peer that tried the batch least often (failed it, or refused it busy), busy or not:
      // an idle peer that fails every request at once (a liar claiming the range, answering nothing) was
      // otherwise given each retry while the peers that could serve it were busy, and used up the batch's
      // attempts in a second. Refusals count as tries, or a peer answering every request busy, never charged a
      // failure, would hold a batch the others had failed once for ever.
      const tries = (peer: string): number => fsm.triesAt(peer)
      const fewest = fewestTries(listed, from, to, tries)
      // Every peer that could serve it has tried it: it waits (RETRY_BACKOFF_MS) before it is asked again.
      const failedAt = this.failedAt.get(fsm)
      if (fewest > 0 && failedAt !== undefined) {
        const due = failedAt + RETRY_BACKOFF_MS * 2 ** Math.max(0, fsm.downloadAttempts - 1)
        if (due > this.config.clock.now()) {
          waiting = true
          this.wakeAt(due)
          continue
        }
      }
      const candidates = peers.filter((p) => tries(p.id) <= fewest)
      const peer = balancer.bestPeer(candidates, from, to, tries, limit)
      if (peer === undefined) {
        waiting = true
        this.wanted ??= { from, to }
        continue
      }
      if (victim !== null) this.evict(victim)
      this.requests.start(fsm, peer)
    }
    if (!waiting) this.openBatches(peers, limit)
    this.hedgeHead(peers, limit)
  }

  /** Opens new batches while the window has room. */
  private openBatches(peers: PeerInfo[], limit: ((peer: string) => number) | undefined): void {
    const { window, maxDownloadAttempts, maxProcessAttempts } = this.config
    const batchSize = this.batchSize
    const balancer = this.requests.balancer
    while (this.inWindow() < window && this.nextStart <= this.target) {
      const from = this.nextStart
      const to = Math.min(from + batchSize - 1, this.target)
      const peer = balancer.bestPeer(peers, from, to, () => 0, limit)
      if (peer === undefined) {
        this.wanted ??= { from, to }
        break
      }
      const fsm = new FSM({ start: from, count: to - from + 1, maxDownloadAttempts, maxProcessAttempts })
      this.manager.add(fsm)
      this.nextStart = to + 1
      this.requests.start(fsm, peer)
    }
  }

  /**
   * Asks a second peer for the head batch (the lowest not delivered) when everything waits on it, and its
   * request has been out `HEDGE_AFTER_MEDIANS` times the median of the last successful requests (at least
   * `HEDGE_AFTER_MIN_MS`). Everything waits on it when no batch is waiting for a peer and either the window is
   * full with a batch above it downloaded, which cannot be delivered before it, or every batch of the sync is
   * open. The slow peer keeps its request and is not blamed: a valid reply from either wins.
   */
  private hedgeHead(peers: PeerInfo[], limit: ((peer: string) => number) | undefined): void {
    let head: FSM | undefined
    for (const fsm of this.manager) {
      if (fsm.status === FSMStatus.Delivered || fsm.status === FSMStatus.Done) continue
      head = fsm
      break
    }
    const s = head?.state
    if (head === undefined || s?.status !== FSMStatus.Downloading || this.requests.hedgeOf(head) !== undefined) return
    const own = this.requests.of(head)
    if (own === undefined || this.manager.count(FSMStatus.Pending) > 0) return
    // Everything waits on it: the window is full with a batch above it downloaded, or every batch is open
    // already (the last ones of the sync).
    const allOpen = this.nextStart > this.target
    if (!allOpen && this.inWindow() < this.config.window) return
    if (!allOpen && !this.manager.inStatus(FSMStatus.Downloaded).some((fsm) => fsm.start > head.start)) return
    const wait = this.hedgeDelay.ms
    if (wait === undefined) return
    const due = own.started + wait
    if (this.config.clock.now() < due) {
      this.wakeAt(due)
      return
    }
    // Each peer at most once for one request of the batch, at most HEDGES_PER_REQUEST peers, and none that failed
    // the batch before: a peer that fails its hedge at once is not asked again and again while the batch's own
    // request is still out.
    const tried = this.requests.hedgedPeers(own)
    if (tried.size >= HEDGES_PER_REQUEST) return
    const others = peers.filter((p) => p.id !== own.peer && !tried.has(p.id) && head.failuresAt(p.id) === 0)
    const peer = this.requests.balancer.bestPeer(others, s.from, s.from + s.amount - 1, (p) => head.failuresAt(p), limit)
    if (peer === undefined) return
    this.config.log('batch %d..%d: %s has held it for %d ms with the window waiting: asking %s too', s.from, s.from + s.amount - 1, own.peer, this.config.clock.now() - own.started, peer)
    this.requests.startHedge(head, peer)
  }

  /** Wakes the loop at `at`, when the head batch becomes due for a hedge. */
  private wakeAt(at: number): void {
    const { clock } = this.config
    if (this.hedgeTimer !== null && this.hedgeTimer.at <= at && this.hedgeTimer.at > clock.now()) return
    if (this.hedgeTimer !== null) clock.clearTimeout(this.hedgeTimer.handle)
    const handle = clock.setTimeout(
      () => {
        this.hedgeTimer = null
        this.push({ type: 'hedge-due' })
      },
      Math.max(0, at - clock.now())
    )
    this.hedgeTimer = { handle, at }
  }

  private highestInWindowAbove(start: number): FSM | undefined {
    const inWindow = this.manager.inStatus(FSMStatus.Downloading, FSMStatus.Downloaded)
    const top = inWindow[inWindow.length - 1]
    return top !== undefined && top.start > start ? top : undefined
  }

  /** Frees a window slot without charging an attempt: the batch is downloaded again later. */
  private evict(fsm: FSM): void {
    if (fsm.status === FSMStatus.Downloading) {
      const req = this.requests.of(fsm)
      if (req !== undefined) this.requests.end(req, true)
      const hedge = this.requests.hedgeOf(fsm)
      if (hedge !== undefined) this.requests.end(hedge, true)
      fsm.downloadingCancelled()
    } else {
      fsm.evict()
    }
  }

  /**
   * Nothing in flight and a range no peer can be asked for: the queue is starving. Busy peers are not a
   * stall, their replies wake the loop. See `NoPeerWatchdog` for what happens then.
   */
  private checkStarving(): void {
    const report = this.watchdog.check(this.requests.size === 0 ? this.wanted : null)
    if (report === null) return
    if (report.type === 'failed') {
      this.failure = report.error
    } else {
      const { from, to, waitingMs } = report
      this.dispatch('stalled', { from, to, waitingMs, peers: this.knownPeers })
    }
  }

  // ---- helpers ------------------------------------------------------------------------------------------

  /** Ends everything the loop started: requests, hold timers, the watchdog, and the consumer's signal. */
  private shutdown(): void {
    this.requests.abortAll()
    if (this.hedgeTimer !== null) this.config.clock.clearTimeout(this.hedgeTimer.handle)
    this.hedgeTimer = null
    for (const timer of this.holds.values()) this.config.clock.clearTimeout(timer)
    this.holds.clear()
    this.busy.stop()
    this.watchdog.stop()
    this.controller.abort()
    this.events = []
  }

  private blame(peer: string, reason: PeerFaultReason, from: number, to: number): void {
    try {
      this.config.onPeerFault?.(peer, reason)
    } catch (err) {
      // A faulty hook must not break the sync.
      this.config.log.error('the onPeerFault hook threw: %e', err)
    }
    this.dispatch('peer:fault', { peer, reason, severity: reason === 'empty' ? 'mild' : 'severe', from, to })
  }

  private dispatch<K extends keyof QueueEvents>(
    type: K,
    detail: QueueEvents[K] extends CustomEvent<infer D> ? D : never
  ): void {
    dispatchSafely(this, type, detail)
  }
}

function isConsumerResult(value: unknown): value is ConsumerResult {
  if (typeof value !== 'object' || value === null) return false
  const { ok, fault } = value as { ok?: unknown; fault?: unknown }
  return ok === true || (ok === false && typeof fault === 'string' && CONSUMER_FAULTS.has(fault))
}

/** The fewest `tries` of any peer in `peers` that claims `[from, to]` (Infinity when none does). */
function fewestTries(peers: readonly PeerInfo[], from: number, to: number, tries: (peer: string) => number): number {
  let fewest = Number.POSITIVE_INFINITY
  for (const peer of peers) if (isEligible(peer, from, to)) fewest = Math.min(fewest, tries(peer.id))
  return fewest
}
