import { AbortError } from '../errors.js'
import { type Clock, systemClock } from './clock.js'

/**
 * Waiting with an `AbortSignal`, written once. Every wait rejects with the library's `AbortError`, whose
 * `cause` is the signal's reason, so callers branch on one class whichever wait was cut short.
 */

/** Throws `AbortError` (with the signal's reason as `cause`) when `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, message = 'operation aborted'): void {
  if (signal?.aborted === true) throw new AbortError(message, { cause: signal.reason })
}

/**
 * Settles as `promise` does, or rejects with `AbortError` as soon as `signal` aborts (at once when it already
 * has). The abort listener is removed either way, so a long-lived signal does not collect one per call. The
 * promise itself is not cancelled: whoever started it still owns it.
 */
export async function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined, message = 'operation aborted'): Promise<T> {
  if (signal === undefined) return promise
  throwIfAborted(signal, message)
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbortError(message, { cause: signal.reason }))
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort!)
  }
}

export interface SleepOptions {
  signal?: AbortSignal
  /** @default systemClock */
  clock?: Clock
}

/** Resolves after `ms` on `clock`; rejects with `AbortError` (and clears the timer) as soon as `signal` aborts. */
export function sleep(ms: number, options: SleepOptions = {}): Promise<void> {
  const { signal, clock = systemClock } = options
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new AbortError('aborted while waiting', { cause: signal.reason }))
      return
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer)
      reject(new AbortError('aborted while waiting', { cause: signal?.reason }))
    }
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
