/**
 * An AbortSignal that fires on SIGINT or SIGTERM, so long-running commands (`serve`, `sync`) stop cleanly:
 * abort their work, flush the store, close the node. `dispose` removes the handlers again.
 */
export function terminationSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController()
  const onSignal = (name: NodeJS.Signals): void => controller.abort(new Error(`interrupted by ${name}`))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}

/** Resolves when `signal` aborts. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}
