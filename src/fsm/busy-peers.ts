import type { Clock } from '../util/clock.js'
import { PeerBackoff } from '../util/peer-backoff.js'
import type { PeerInfo } from './types.js'

export interface BusyPeersInit {
  clock: Clock
  /** The wait after a peer's first refusal since it last answered; refusals in a row double it. */
  backoffMs: number
  /** Cap on the doubling wait. */
  maxBackoffMs: number
  /** Called when the earliest wait ends; the loop should run a pass, which may ask that peer again. */
  onRested: () => void
}

/**
 * The peers that answered RATE_LIMITED, left out of the queue's choice of peers until their short wait ends: a
 * refusal says "later", so it charges no attempt and blames nobody, and the peer is asked again within
 * seconds. Owns one timer at most, at the end of the earliest wait, cleared by `stop`.
 */
export class BusyPeers {
  private readonly init: BusyPeersInit
  private readonly backoff: PeerBackoff
  private timer: { handle: unknown; at: number } | null = null

  constructor(init: BusyPeersInit) {
    this.init = init
    this.backoff = new PeerBackoff({ initialMs: init.backoffMs, maxMs: init.maxBackoffMs })
  }

  /** `peer` refused a request: returns how long it is left out. */
  refused(peer: string): number {
    const now = this.init.clock.now()
    const until = this.backoff.failed(peer, now)
    this.wakeAt(until)
    return until - now
  }

  /** `peer` answered (or left): it is asked as usual, and its next refusal starts the wait over. */
  answered(peer: string): void {
    this.backoff.clear(peer)
  }

  /** `peers` without those waiting now. */
  eligible<P extends PeerInfo>(peers: readonly P[]): P[] {
    const now = this.init.clock.now()
    return peers.filter((p) => !this.backoff.waiting(p.id, now))
  }

  stop(): void {
    if (this.timer !== null) this.init.clock.clearTimeout(this.timer.handle)
    this.timer = null
  }

  /** Sets the timer for `at` unless it fires by then already; when it fires, it is set for the next wait's end. */
  private wakeAt(at: number): void {
    const { clock } = this.init
    if (at === Number.POSITIVE_INFINITY || (this.timer !== null && this.timer.at <= at)) return
    if (this.timer !== null) clock.clearTimeout(this.timer.handle)
    const handle = clock.setTimeout(
      () => {
        this.timer = null
        this.wakeAt(this.backoff.nextEnd(clock.now()))
        this.init.onRested()
      },
      Math.max(0, at - clock.now())
    )
    this.timer = { handle, at }
  }
}
