import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DIAL_ATTEMPTS, DIAL_BACKOFF_MS, DIAL_SLOW_FAILURE_MS, DIAL_SLOW_RETRY_WINDOW_MS } from '../constants.js'
import { sleep } from '../util/abort.js'
import { type Clock, systemClock } from '../util/clock.js'
import type { Log } from '../util/log.js'

export interface DialRetryOptions {
  signal?: AbortSignal
  /** @default DIAL_ATTEMPTS */
  attempts?: number
  /** @default DIAL_BACKOFF_MS */
  backoffMs?: number
  /**
   * How long after the first dial a dial that failed slowly (a handshake that timed out: a server busy with a
   * burst of joiners) is tried again past `attempts`. @default DIAL_SLOW_RETRY_WINDOW_MS
   */
  slowRetryWindowMs?: number
  clock?: Clock
  /** A number in [0, 1): the jitter's source (tests pin it). @default Math.random */
  random?: () => number
  /** Where a failed attempt that is retried is logged (the last one rejects instead). @default silentLog */
  log?: Log
}

/**
 * Dials `addr`, and after a failure dials again up to `attempts` times in all, waiting `backoffMs`, then twice
 * as long, and so on, each wait between half and all of that (jitter, so a burst of clients refused together
 * does not come back together), at most `DIAL_SLOW_FAILURE_MS` (the backoff stops doubling there). A dial whose
 * encryption handshake failed only after `DIAL_SLOW_FAILURE_MS` reached a server that took the connection but was
 * too busy to finish the handshake in time (50 joiners started together on 2 cores: 15 to 22 of them gave up
 * after 4 such dials while the first ones synced): it is tried again, past `attempts`, until
 * `slowRetryWindowMs` have passed since the first dial. Any other failure (refused, unreachable, a connect that
 * timed out, a handshake that failed at once) gets `attempts` only. A peer that takes connections and never
 * finishes a handshake looks busy, so it is given up on only after the window. Rejects with the last dial's
 * error, or as soon as `signal` aborts.
 */
export async function dialWithRetry(
  dial: (addr: Multiaddr, options: { signal?: AbortSignal }) => Promise<Connection>,
  addr: Multiaddr,
  options: DialRetryOptions = {}
): Promise<Connection> {
  const { signal, clock = systemClock, random = Math.random } = options
  const attempts = Math.max(1, options.attempts ?? DIAL_ATTEMPTS)
  const backoffMs = options.backoffMs ?? DIAL_BACKOFF_MS
  const windowMs = options.slowRetryWindowMs ?? DIAL_SLOW_RETRY_WINDOW_MS
  const first = clock.now()
  for (let attempt = 1; ; attempt++) {
    const started = clock.now()
    try {
      return await dial(addr, { signal })
    } catch (error) {
      if (signal?.aborted === true) throw error
      const slow = clock.now() - started >= DIAL_SLOW_FAILURE_MS && isHandshakeFailure(error)
      if (attempt >= attempts && !(slow && clock.now() - first < windowMs)) throw error
      options.log?.('dialling %s, attempt %d (of %d, or more while it times out) failed: %e', addr, attempt, attempts, error)
    }
    const wait = Math.min(backoffMs * 2 ** (attempt - 1), DIAL_SLOW_FAILURE_MS)
    await sleep(wait / 2 + (wait / 2) * random(), { signal, clock })
  }
}

/** Whether `error` is libp2p's failure of the connection's encryption handshake (the TCP connection was made). */
function isHandshakeFailure(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isHandshakeFailure)
  return error instanceof Error && error.name === 'EncryptionFailedError'
}
