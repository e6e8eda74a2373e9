import type { Clock } from '../util/clock.js'
import { NoPeersError } from './errors.js'

/** What the watchdog has to report after a pass. */
export type WatchdogReport =
  | { type: 'stalled'; from: number; to: number; waitingMs: number }
  | { type: 'failed'; error: NoPeersError }

export interface NoPeerWatchdogInit {
  clock: Clock
  /** Time between reports while starving. */
  intervalMs: number
  /** Time starving after which the watchdog reports failure; `Infinity` never. */
  timeoutMs: number
  /** Called when the timer fires; the loop should run a pass and call `check` again. */
  onFire: () => void
}

/**
 * Watches for a queue starving: nothing in flight and a range no peer can be asked for. An event-driven loop
 * otherwise waits for ever when a peer notification is missed (Lighthouse #8919), so every `intervalMs` the
 * timer wakes the loop, which re-reads the peers and, if it is still starving, reports 'stalled'; after
 * `timeoutMs` it reports failure. Owns one timer at most, cleared by `stop`.
 */
export class NoPeerWatchdog {
  private readonly init: NoPeerWatchdogInit
  private since: number | null = null
  private timer: unknown
  private armed = false
  private due = false

  constructor(init: NoPeerWatchdogInit) {
    this.init = init
  }

  /** The timer's wake-up reached the loop: the next `check` reports. */
  fired(): void {
    this.armed = false
    this.due = true
  }

  /** Called after every scheduling pass with the range nobody could be asked for, or null when not starving. */
  check(wanted: { from: number; to: number } | null): WatchdogReport | null {
    if (wanted === null) {
      this.since = null
      this.due = false
      this.stop()
      return null
    }
    const { clock, intervalMs, timeoutMs } = this.init
    const now = clock.now()
    this.since ??= now
    const waited = now - this.since
    let report: WatchdogReport | null = null
    if (this.due) {
      this.due = false
      if (waited >= timeoutMs) return { type: 'failed', error: new NoPeersError(wanted.from, wanted.to, waited) }
      report = { type: 'stalled', from: wanted.from, to: wanted.to, waitingMs: waited }
    }
    if (!this.armed) {
      this.armed = true
      this.timer = clock.setTimeout(this.init.onFire, Math.max(0, Math.min(intervalMs, timeoutMs - waited)))
    }
    return report
  }

  stop(): void {
    if (!this.armed) return
    this.armed = false
    this.init.clock.clearTimeout(this.timer)
  }
}
