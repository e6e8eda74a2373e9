import { HEDGE_AFTER_MEDIANS, HEDGE_AFTER_MIN_MS, HEDGE_DURATION_SAMPLES } from './constants.js'

/**
 * How long a request may take before a second peer is asked for the same: `HEDGE_AFTER_MEDIANS` times the
 * median of the last `HEDGE_DURATION_SAMPLES` successful requests, and at least `HEDGE_AFTER_MIN_MS`. Used by
 * the downloader's head batch and by the topic sync's content hashes.
 */
export class HedgeDelay {
  /** How long the last successful requests took, oldest first. */
  private readonly durations: number[] = []

  /** A successful request took `ms`. */
  add(ms: number): void {
    this.durations.push(ms)
    if (this.durations.length > HEDGE_DURATION_SAMPLES) this.durations.shift()
  }

  /** The wait before a hedge; undefined before any request succeeded. */
  get ms(): number | undefined {
    const median = [...this.durations].sort((a, b) => a - b)[this.durations.length >> 1]
    return median === undefined ? undefined : Math.max(HEDGE_AFTER_MIN_MS, HEDGE_AFTER_MEDIANS * median)
  }
}
