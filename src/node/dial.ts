import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DIAL_ATTEMPTS, DIAL_BACKOFF_MS } from '../constants.js'
import { sleep } from '../util/abort.js'
import type { Clock } from '../util/clock.js'
import type { Log } from '../util/log.js'

export interface DialRetryOptions {
  signal?: AbortSignal
  /** @default DIAL_ATTEMPTS */
  attempts?: number
  /** @default DIAL_BACKOFF_MS */
  backoffMs?: number
  clock?: Clock
  /** A number in [0, 1): the jitter's source (tests pin it). @default Math.random */
  random?: () => number
  /** Where a failed attempt that is retried is logged (the last one rejects instead). @default silentLog */
  log?: Log
}

/**
 * Dials `addr`, and after a failure dials again up to `attempts` times in all, waiting `backoffMs`, then twice
 * as long, and so on, each wait between half and all of that (jitter, so a burst of clients refused together
 * does not come back together). Rejects with the last dial's error, or as soon as `signal` aborts.
 */
export async function dialWithRetry(
  dial: (addr: Multiaddr, options: { signal?: AbortSignal }) => Promise<Connection>,
  addr: Multiaddr,
  options: DialRetryOptions = {}
): Promise<Connection> {
  const { signal, clock, random = Math.random } = options
  const attempts = Math.max(1, options.attempts ?? DIAL_ATTEMPTS)
  const backoffMs = options.backoffMs ?? DIAL_BACKOFF_MS
  for (let attempt = 1; ; attempt++) {
    try {
      return await dial(addr, { signal })
    } catch (error) {
      if (attempt >= attempts || signal?.aborted === true) throw error
      options.log?.('dialling %s, attempt %d of %d failed: %e', addr, attempt, attempts, error)
    }
    const wait = backoffMs * 2 ** (attempt - 1)
    await sleep(wait / 2 + (wait / 2) * random(), { signal, clock })
  }
}
