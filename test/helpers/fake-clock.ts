import { type Clock, systemClock } from '../../src/util/clock.js'

/** A clock that moves only when the test says so. */
export class FakeClock implements Clock {
  private time = 0
  private nextId = 1
  private readonly timers = new Map<number, { at: number; fn: () => void }>()

  now(): number {
    return this.time
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++
    this.timers.set(id, { at: this.time + ms, fn })
    return id
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number)
  }

  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const until = this.time + ms
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined
      for (const entry of this.timers) if (entry[1].at <= until && (due === undefined || entry[1].at < due[1].at)) due = entry
      if (due === undefined) break
      this.timers.delete(due[0])
      this.time = Math.max(this.time, due[1].at)
      due[1].fn()
    }
    this.time = until
  }

  get pendingTimers(): number {
    return this.timers.size
  }
}

/**
 * The system clock, remembering the first and the last time it was read. A rate limiter driven by it can have
 * granted at most `burst + rate * span / 1000` requests per key: a bound from the limiter's own readings, so a
 * slow machine cannot break it the way a bound from the test's own `Date.now()` can.
 */
export class RecordingClock implements Clock {
  private first: number | undefined
  private last: number | undefined

  now(): number {
    const now = systemClock.now()
    this.first ??= now
    this.last = now
    return now
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return systemClock.setTimeout(fn, ms)
  }

  clearTimeout(handle: unknown): void {
    systemClock.clearTimeout(handle)
  }

  /** Milliseconds between the first and the last reading (0 before two). */
  get spanMs(): number {
    return this.first === undefined || this.last === undefined ? 0 : this.last - this.first
  }
}
