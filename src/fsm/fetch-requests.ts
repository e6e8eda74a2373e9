import type { Clock } from '../util/clock.js'
import { type FSM, FSMStatus } from './fsm.js'
import { PeerBalancer } from './peer-balancer.js'
import type { Item, QueueIO } from './types.js'

const NONE: ReadonlySet<string> = new Set()

/** One request of one batch's remaining range to one peer. */
export interface FetchRequest {
  /** Also the batch's download attempt id: a reply to another id is stale. */
  readonly id: number
  readonly fsm: FSM
  readonly peer: string
  readonly from: number
  readonly amount: number
  readonly controller: AbortController
  /** When it was sent, on the queue's clock. */
  readonly started: number
  /**
   * A second ask for a batch another request is downloading (`startHedge`): it changes nothing of the batch
   * until it wins, and becomes the batch's own request if that one fails first (`promoteHedge`).
   */
  hedge: boolean
  timer: unknown
}

/** How a request ended, as reported to the queue's loop. */
export type FetchOutcome =
  | { type: 'reply'; req: FetchRequest; items: unknown }
  | { type: 'fetch-error'; req: FetchRequest; error: unknown }
  | { type: 'timeout'; req: FetchRequest }

export interface FetchRequestsInit {
  clock: Clock
  fetch: QueueIO['fetch']
  timeoutMs: number
  maxInFlightPerPeer: number
  /** Receives every outcome, including those of requests ended meanwhile (check `isActive`). */
  onOutcome: (outcome: FetchOutcome) => void
}

/**
 * The requests in flight: starts them through the injected `fetch` with a per-request timeout on the injected
 * clock, counts them per peer for the `PeerBalancer`, and ends them (aborting the peer's stream when the reply
 * is no longer wanted).
 */
export class FetchRequests {
  readonly balancer: PeerBalancer
  private readonly init: FetchRequestsInit
  private readonly active = new Map<number, FetchRequest>()
  /** The hedge in flight for a batch, at most one. */
  private readonly hedges = new Map<FSM, FetchRequest>()
  /** The peers asked for a hedge of each batch's request in flight, by that request's id: each at most once. */
  private readonly hedged = new Map<number, Set<string>>()
  private nextId = 1

  constructor(init: FetchRequestsInit) {
    this.init = init
    this.balancer = new PeerBalancer(init.maxInFlightPerPeer)
  }

  get size(): number {
    return this.active.size
  }

  /** Moves `fsm` to Downloading at `peer` and sends the request. */
  start(fsm: FSM, peer: string): FetchRequest {
    const id = this.nextId++
    const { from, amount } = fsm.startDownloading(peer, id)
    return this.send(id, fsm, peer, from, amount, false)
  }

  /** Asks `peer` too for the range `fsm` is downloading from another peer (it must be Downloading). */
  startHedge(fsm: FSM, peer: string): FetchRequest {
    const s = fsm.state
    if (s.status !== FSMStatus.Downloading) throw new Error(`batch ${fsm.start} is not downloading`)
    const req = this.send(this.nextId++, fsm, peer, s.from, s.amount, true)
    this.hedges.set(fsm, req)
    const tried = this.hedged.get(s.attempt)
    if (tried === undefined) this.hedged.set(s.attempt, new Set([peer]))
    else tried.add(peer)
    return req
  }

  /** The peers already asked for a hedge of request `req` (a batch's own request). */
  hedgedPeers(req: FetchRequest): ReadonlySet<string> {
    return this.hedged.get(req.id) ?? NONE
  }

  /**
   * The batch's own request failed or was dropped and the batch is Pending again: its hedge, asked for the same
   * range, becomes its request. Returns false (and ends the hedge) when the batch is no longer Pending or wants
   * another range.
   */
  promoteHedge(fsm: FSM): boolean {
    const hedge = this.hedges.get(fsm)
    if (hedge === undefined) return false
    this.hedges.delete(fsm)
    hedge.hedge = false
    const s = fsm.state
    if (s.status !== FSMStatus.Pending || fsm.start + s.received.length !== hedge.from || fsm.count - s.received.length !== hedge.amount) {
      this.end(hedge, true)
      return false
    }
    // The hedge's id becomes the batch's attempt: its reply is the one the batch now waits for.
    fsm.startDownloading(hedge.peer, hedge.id)
    return true
  }

  /** The hedge in flight for `fsm`, if any. */
  hedgeOf(fsm: FSM): FetchRequest | undefined {
    return this.hedges.get(fsm)
  }

  private send(id: number, fsm: FSM, peer: string, from: number, amount: number, hedge: boolean): FetchRequest {
    const req: FetchRequest = {
      id,
      fsm,
      peer,
      from,
      amount,
      controller: new AbortController(),
      started: this.init.clock.now(),
      hedge,
      timer: undefined
    }
    this.active.set(id, req)
    this.balancer.acquire(peer)
    const { clock, fetch, onOutcome } = this.init
    req.timer = clock.setTimeout(() => onOutcome({ type: 'timeout', req }), this.init.timeoutMs)
    let pending: Promise<Item[]>
    try {
      pending = Promise.resolve(fetch(peer, from, amount, { signal: req.controller.signal }))
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (items) => onOutcome({ type: 'reply', req, items }),
      (error: unknown) => onOutcome({ type: 'fetch-error', req, error })
    )
    return req
  }

  /**
   * Whether `req` is still the request its batch waits for (not timed out, dropped, evicted or stopped), or the
   * hedge in flight beside it.
   */
  isActive(req: FetchRequest): boolean {
    const s = req.fsm.state
    if (this.active.get(req.id) !== req || s.status !== FSMStatus.Downloading) return false
    return req.hedge ? this.hedges.get(req.fsm) === req : s.attempt === req.id
  }

  /** The request in flight for `fsm`, if it is Downloading. */
  of(fsm: FSM): FetchRequest | undefined {
    const s = fsm.state
    return s.status === FSMStatus.Downloading ? this.active.get(s.attempt) : undefined
  }

  ofPeer(peer: string): FetchRequest[] {
    return [...this.active.values()].filter((req) => req.peer === peer)
  }

  /** Stops tracking `req`; `abort` also aborts the peer's request, whose late answer is then ignored. */
  end(req: FetchRequest, abort: boolean): void {
    if (this.hedges.get(req.fsm) === req) this.hedges.delete(req.fsm)
    this.hedged.delete(req.id)
    if (!this.active.delete(req.id)) return
    this.init.clock.clearTimeout(req.timer)
    this.balancer.release(req.peer)
    if (abort) req.controller.abort()
  }

  /** Aborts every request; their batches go back to Pending without an attempt charged. */
  abortAll(): void {
    for (const req of [...this.active.values()]) {
      this.end(req, true)
      if (!req.hedge && req.fsm.status === FSMStatus.Downloading) req.fsm.downloadingCancelled()
    }
  }
}
