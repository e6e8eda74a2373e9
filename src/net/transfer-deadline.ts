/**
 * How often a deadline checks its transfer: often enough that a stalled transfer is cut within a few percent of
 * `idleMs`, rarely enough that a reply in flight costs nothing measurable (one timer a quarter second).
 */
const MAX_CHECK_INTERVAL_MS = 250

export interface TransferDeadlineInit {
  /**
   * Longest time without a byte moving, and the grace before the rate floor applies: a transfer that has not
   * started (the request still travelling, the reply being built) has this long to move its first bytes.
   */
  idleMs: number
  /** Longest time before the first byte moves, when it must be shorter than `idleMs`. @default idleMs */
  firstByteMs?: number
  /**
   * The slowest average rate accepted after the grace: `moved` bytes must reach `minBytesPerSecond` times the
   * time past `idleMs`, so a peer that trickles a byte now and then is cut as surely as one that stops.
   */
  minBytesPerSecond: number
  /**
   * Bytes moved so far, sampled at every check (a transfer that reports its progress through `moved()`
   * instead needs none).
   */
  sample?: () => number
  /** Called at each check that does not abort, with how long no byte has moved (ms). */
  onCheck?: (idleMs: number) => void
}

/**
 * A deadline that moves with a transfer instead of a fixed one: it aborts its `signal` when no byte moved for
 * `idleMs`, or when the bytes moved fall below a rate floor (`minBytesPerSecond` after a grace of `idleMs`). A
 * fixed deadline cuts any reply longer than the link carries in that time, so on a thin link (or behind other
 * replies sharing it) an honest transfer that keeps moving never finished; this one cuts only transfers that
 * stop, or crawl below the floor. `dispose()` stops its timer; it must be called once the transfer ended.
 */
export class TransferDeadline {
  private readonly controller = new AbortController()
  private readonly init: TransferDeadlineInit
  private readonly started = performance.now()
  private lastMove = this.started
  private total = 0
  private lastSample: number
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(init: TransferDeadlineInit) {
    if (!(init.idleMs > 0) || !(init.minBytesPerSecond > 0)) throw new RangeError('idleMs and minBytesPerSecond must be positive')
    this.init = init
    this.lastSample = init.sample?.() ?? 0
    this.schedule()
  }

  /** Aborts (with a `TimeoutError`, as `AbortSignal.timeout` does) when the transfer stalls or crawls. */
  get signal(): AbortSignal {
    return this.controller.signal
  }

  /** Bytes counted so far. */
  get bytes(): number {
    return this.total
  }

  /** Counts `bytes` moved now. */
  moved(bytes: number): void {
    if (bytes <= 0) return
    this.total += bytes
    this.lastMove = performance.now()
  }

  dispose(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private schedule(): void {
    const idleMs = Math.min(this.init.idleMs, this.init.firstByteMs ?? this.init.idleMs)
    this.timer = setTimeout(() => this.check(), Math.min(MAX_CHECK_INTERVAL_MS, idleMs / 4))
    // A pending transfer must not keep the process alive on its own.
    this.timer.unref?.()
  }

  private check(): void {
    const { sample, idleMs, minBytesPerSecond } = this.init
    if (sample !== undefined) {
      const now = sample()
      this.moved(now - this.lastSample)
      this.lastSample = now
    }
    const now = performance.now()
    const idle = now - this.lastMove
    const floor = ((now - this.started - idleMs) * minBytesPerSecond) / 1000
    const idleLimit = this.total === 0 ? Math.min(idleMs, this.init.firstByteMs ?? idleMs) : idleMs
    if (idle >= idleLimit) {
      this.controller.abort(timeoutError(`no byte moved for ${Math.round(idle)} ms`))
    } else if (this.total < floor) {
      const rate = Math.round((this.total * 1000) / (now - this.started))
      this.controller.abort(timeoutError(`${this.total} bytes in ${Math.round(now - this.started)} ms (${rate} B/s) is under the ${minBytesPerSecond} B/s floor`))
    } else {
      this.init.onCheck?.(idle)
      this.schedule()
    }
  }
}

/** The reason `AbortSignal.timeout` gives, so callers that tell a deadline from an abort by name keep doing so. */
function timeoutError(message: string): Error {
  return new DOMException(message, 'TimeoutError')
}
