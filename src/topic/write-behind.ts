import { Serial } from '../util/serial.js'

/**
 * Store writes a topic sync has accepted but not yet finished, run one after another in the order given. The
 * downloader's consumer hands a verified batch over and goes on checking the next one while the store writes
 * (a LevelDB batch of a few hundred items spends most of its time off the main thread), instead of idling
 * through every write: on a loopback sync the wait for the store was over half of the delivery time.
 *
 * At most `maxPending` writes are held: `add` waits for the oldest beyond that, so memory stays bounded. A
 * failed write skips the writes after it (they would land after a gap) and is reported once, by `add` or
 * `settle`, after which the writer starts afresh.
 */
export class WriteBehind {
  private readonly maxPending: number
  private readonly serial = new Serial()
  private readonly pending: Promise<void>[] = []
  private failure: { error: unknown } | null = null
  /** Highest item number handed over since the writer was last settled (-1: none). */
  private queuedThrough = -1
  private readonly onFailure: (error: unknown) => void

  constructor(maxPending: number, onFailure: (error: unknown) => void = () => undefined) {
    this.maxPending = Math.max(1, maxPending)
    this.onFailure = onFailure
  }

  /** Highest item number handed over and not yet settled, -1 for none. */
  get through(): number {
    return this.queuedThrough
  }

  /** Whether a write failed since the last `settle()`. */
  get failed(): boolean {
    return this.failure !== null
  }

  /**
   * Runs `write` (storing items up to `through`) after the writes before it. Resolves once at most
   * `maxPending` writes are pending; rejects with the failure of an earlier write.
   */
  async add(through: number, write: () => Promise<void>): Promise<void> {
    this.throwIfFailed()
    this.queuedThrough = Math.max(this.queuedThrough, through)
    const run = this.serial.run(async () => {
      if (this.failure !== null) return
      try {
        await write()
      } catch (error) {
        this.failure = { error }
        this.onFailure(error)
      }
    })
    this.pending.push(run)
    void run.finally(() => this.pending.splice(this.pending.indexOf(run), 1))
    while (this.pending.length > this.maxPending) await this.pending[0]
    this.throwIfFailed()
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure.error
  }

  /** Waits for every pending write (see `failed` for how they went). */
  async idle(): Promise<void> {
    await this.serial.idle()
  }

  /** Waits for every pending write; rejects with the first failure since the last settle, then forgets it. */
  async settle(): Promise<void> {
    await this.serial.idle()
    this.queuedThrough = -1
    const failure = this.failure
    this.failure = null
    if (failure !== null) throw failure.error
  }
}
