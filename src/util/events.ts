import type { EventHandler } from 'main-event'

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

/**
 * A read-only view of an event target: listeners can be added and removed, nothing else. Handles give this to
 * applications instead of the engine behind it, so the events are theirs but `run`, `commit` or a forged
 * `dispatchEvent` are not.
 */
export interface EventSource<EventMap extends object> {
  addEventListener<K extends keyof EventMap>(
    type: K,
    listener: EventHandler<EventMap[K]> | null,
    options?: Parameters<EventTarget['addEventListener']>[2]
  ): void
  removeEventListener<K extends keyof EventMap>(
    type: K,
    listener?: EventHandler<EventMap[K]> | null,
    options?: Parameters<EventTarget['removeEventListener']>[2]
  ): void
}

/** The listener side of `target` alone (see `EventSource`). */
export function eventSource<EventMap extends object>(target: EventSource<EventMap>): EventSource<EventMap> {
  const source: EventSource<EventMap> = {
    addEventListener: (type, listener, options) => target.addEventListener(type, listener, options),
    removeEventListener: (type, listener, options) => target.removeEventListener(type, listener, options)
  }
  return Object.freeze(source)
}
