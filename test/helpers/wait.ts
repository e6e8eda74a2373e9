import { AbortError } from '../../src/errors.js'

/**
 * Polls `condition` until it holds; throws naming `what` once `timeoutMs` has passed. For end-to-end tests
 * that wait on real nodes (a subscription to propagate, a sync to reach a head).
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 20
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/**
 * For a `follow()` left running in the background: it rejects with `AbortError` when its node stops first, which
 * is expected; any other failure is rethrown (and reported as unhandled, as it should be).
 */
export function ignoreAbort(error: unknown): void {
  if (!(error instanceof AbortError)) throw error
}
