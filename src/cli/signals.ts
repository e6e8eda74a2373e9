import { InterruptedError } from '../errors.js'

/**
 * An AbortSignal that fires on SIGINT or SIGTERM, so long-running commands (`serve`, `sync`) stop cleanly:
 * abort their work, flush the store, close the node. `dispose` removes the handlers again.
 */
export function terminationSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController()
  // A typed reason: the error report gives it its own exit code and message, not "internal error".
  const onInt = (): void => controller.abort(new InterruptedError('SIGINT'))
  const onTerm = (): void => controller.abort(new InterruptedError('SIGTERM'))
  process.once('SIGINT', onInt)
  process.once('SIGTERM', onTerm)
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
    }
  }
}

/** Resolves when `signal` aborts. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}
