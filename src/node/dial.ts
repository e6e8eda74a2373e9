import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DIAL_ATTEMPTS, DIAL_BACKOFF_MS, DIAL_BUSY_RETRY_WINDOW_MS, DIAL_MAX_BACKOFF_MS } from '../constants.js'
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
   * How long after the first dial a peer that is there but busy (see `dialWithRetry`) is dialled again past
   * `attempts`. @default DIAL_BUSY_RETRY_WINDOW_MS
   */
  busyRetryWindowMs?: number
  clock?: Clock
  /** A number in [0, 1): the jitter's source (tests pin it). @default Math.random */
  random?: () => number
  /** Where a failed attempt that is retried is logged (the last one rejects instead). @default silentLog */
  log?: Log
}

/**
 * Dials `addr`, and after a failure dials again up to `attempts` times in all, waiting `backoffMs`, then twice
 * as long, and so on up to `DIAL_MAX_BACKOFF_MS`, each wait between half and all of that (jitter, so a burst of
 * clients refused together does not come back together). A peer that is there but busy, one that took the TCP
 * connection and then reset it or let it time out in the encryption handshake (a server with a burst of
 * joiners: 50 started together on 2 cores, 15 to 22 gave up after 4 such dials while the first ones synced), is
 * dialled again past `attempts` until `busyRetryWindowMs` have passed since the first dial. Any other failure
 * (refused, unreachable, a handshake that failed for another reason, such as the wrong peer id) gets `attempts`
 * only. A peer that takes connections and never finishes a handshake looks busy: it is given up on only after
 * the window. Rejects with the last dial's error, or as soon as `signal` aborts.
 */
export async function dialWithRetry(
  dial: (addr: Multiaddr, options: { signal?: AbortSignal }) => Promise<Connection>,
  addr: Multiaddr,
  options: DialRetryOptions = {}
): Promise<Connection> {
  const { signal, clock = systemClock, random = Math.random } = options
  const attempts = Math.max(1, options.attempts ?? DIAL_ATTEMPTS)
  const backoffMs = options.backoffMs ?? DIAL_BACKOFF_MS
  const windowMs = options.busyRetryWindowMs ?? DIAL_BUSY_RETRY_WINDOW_MS
  const first = clock.now()
  for (let attempt = 1; ; attempt++) {
    try {
      return await dial(addr, { signal })
    } catch (error) {
      if (signal?.aborted === true) throw error
      if (attempt >= attempts && !(isBusy(error) && clock.now() - first < windowMs)) throw error
      options.log?.('dialling %s, attempt %d (of %d, or more while it is busy) failed: %e', addr, attempt, attempts, error)
    }
    const wait = Math.min(backoffMs * 2 ** (attempt - 1), DIAL_MAX_BACKOFF_MS)
    await sleep(wait / 2 + (wait / 2) * random(), { signal, clock })
  }
}

/**
 * Whether `error` says the peer is there but busy: libp2p's failure of the encryption handshake of a connection
 * it made (`EncryptionFailedError`, which carries only its cause's message) because the peer reset the
 * connection or the handshake ran out of time.
 */
function isBusy(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isBusy)
  return error instanceof Error && error.name === 'EncryptionFailedError' && /ECONNRESET|EPIPE|timeout|timed out|aborted/i.test(error.message)
}
