import type { Clock } from '../util/clock.js'
import { type FSM, FSMStatus } from './fsm.js'
import { PeerBalancer } from './peer-balancer.js'
import type { Item, QueueIO } from './types.js'

/** One request of one batch's remaining range to one peer. */
export interface FetchRequest {
  /** Also the batch's download attempt id: a reply to another id is stale. */
  readonly id: number
  readonly fsm: FSM
  readonly peer: string
  readonly from: number
  readonly amount: number
  readonly controller: AbortController
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
    const req: FetchRequest = { id, fsm, peer, from, amount, controller: new AbortController(), timer: undefined }
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

  /** Whether `req` is still the request its batch waits for (not timed out, dropped, evicted or stopped). */
  isActive(req: FetchRequest): boolean {
    const s = req.fsm.state
    return this.active.get(req.id) === req && s.status === FSMStatus.Downloading && s.attempt === req.id
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
    if (!this.active.delete(req.id)) return
    this.init.clock.clearTimeout(req.timer)
    this.balancer.release(req.peer)
    if (abort) req.controller.abort()
  }

  /** Aborts every request; their batches go back to Pending without an attempt charged. */
  abortAll(): void {
    for (const req of [...this.active.values()]) {
      this.end(req, true)
      if (req.fsm.status === FSMStatus.Downloading) req.fsm.downloadingCancelled()
    }
  }
}
