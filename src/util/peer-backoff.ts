export interface PeerBackoffInit {
  /** The wait after a peer's first failure since it last answered. */
  initialMs: number
  /** Cap on the doubling wait (at least `initialMs`). */
  maxMs: number
}

interface Wait {
  ms: number
  until: number
}

/**
 * Per-peer waits that double with each failure in a row, up to a cap, and end when the peer answers: the one
 * backoff of the syncers (a silent peer's probes, a busy peer's next request). Pure bookkeeping: time comes in
 * as `now`, and the owner schedules its own wake-up at `nextEnd`.
 */
export class PeerBackoff {
  private readonly initialMs: number
  private readonly maxMs: number
  private readonly waits = new Map<string, Wait>()

  constructor(init: PeerBackoffInit) {
    this.initialMs = init.initialMs
    this.maxMs = Math.max(init.initialMs, init.maxMs)
  }

  /**
   * Another failure of `peer` at `now`: its wait starts at `initialMs` or doubles, up to `maxMs`. A failure
   * while it still waits is of a request sent before the wait began (several were in flight): the same
   * episode, so the wait stays as it is rather than doubling once per request. Returns the wait's end.
   */
  failed(peer: string, now: number): number {
    const before = this.waits.get(peer)
    if (before !== undefined && before.until > now) return before.until
    const ms = before === undefined ? this.initialMs : Math.min(this.maxMs, before.ms * 2)
    const until = now + ms
    this.waits.set(peer, { ms, until })
    return until
  }

  /** `peer` answered (or left): it waits no more, and its next failure starts from `initialMs` again. */
  clear(peer: string): void {
    this.waits.delete(peer)
  }

  /** Whether `peer` failed and has not answered since (its wait may be over). */
  has(peer: string): boolean {
    return this.waits.has(peer)
  }

  /** When `peer`'s wait ends (or ended), if it failed and has not answered since. */
  until(peer: string): number | undefined {
    return this.waits.get(peer)?.until
  }

  /** Whether `peer`'s wait lasts past `now`. */
  waiting(peer: string, now: number): boolean {
    return (this.waits.get(peer)?.until ?? Number.NEGATIVE_INFINITY) > now
  }

  /** Peers that failed and have not answered since. */
  peers(): IterableIterator<string> {
    return this.waits.keys()
  }

  /** The earliest end of a wait after `now`, or `Infinity` when none. */
  nextEnd(now: number): number {
    let next = Number.POSITIVE_INFINITY
    for (const { until } of this.waits.values()) if (until > now) next = Math.min(next, until)
    return next
  }
}
