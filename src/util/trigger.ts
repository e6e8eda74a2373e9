import { BusyError } from '../errors.js'

// reference: Lodestar@5668ef5b packages/beacon-node/src/util/itTrigger.ts (a coalescing wake-up for one loop)

/**
 * The wake-up of a loop that sleeps until something changed. `trigger()` may be called any number of times,
 * from anywhere, at any moment: calls while the loop is busy coalesce into one pending wake-up, so the next
 * `wait()` returns at once instead of missing the change; calls while it waits wake it once.
 *
 * The loop calls `clear()` when it starts a pass that looks at all the state (whatever triggered before then
 * is covered by that pass), and `wait()` when the pass found nothing to do. One waiter at a time: the trigger
 * belongs to one loop.
 */
export class Trigger {
  private pending = false
  private waiter: (() => void) | null = null

  /** Wakes the waiting loop, or makes its next `wait()` return at once. */
  trigger(): void {
    const waiter = this.waiter
    if (waiter === null) {
      this.pending = true
      return
    }
    this.waiter = null
    waiter()
  }

  /** Forgets a pending wake-up: the pass starting now sees everything that was triggered before it. */
  clear(): void {
    this.pending = false
  }

  /** Whether a wake-up is pending (triggered since the last `clear()` or `wait()`). */
  get triggered(): boolean {
    return this.pending
  }

  /**
   * Resolves at the next `trigger()`, at once when one is pending (and consumes it). With `signal`, resolves
   * (it does not reject) when the signal aborts, too: the loop checks its signal after every wait. Throws
   * `BusyError` when another `wait()` is still waiting.
   */
  wait(signal?: AbortSignal): Promise<void> {
    if (this.waiter !== null) throw new BusyError('the trigger already has a waiter')
    if (this.pending || signal?.aborted === true) {
      this.pending = false
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = (): void => {
        if (this.waiter === wake) this.waiter = null
        resolve()
      }
      this.waiter = wake
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
