/**
 * Dispatches a `CustomEvent` from a sync loop. A listener that throws does not break the loop: Node's
 * EventTarget never throws from `dispatchEvent`, it reports the error as an uncaught exception instead, as for
 * any EventTarget, so applications' listeners must not throw. The guard covers EventTarget implementations
 * that do throw synchronously.
 */
export function dispatchSafely(target: EventTarget, type: string, detail: unknown): void {
  try {
    target.dispatchEvent(new CustomEvent(type, { detail }))
  } catch {
    // A synchronously throwing listener is the listener's problem, not the loop's.
  }
}
