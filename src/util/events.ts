/**
 * Dispatches a `CustomEvent` whose listeners cannot break the caller: a sync loop must not die because an
 * application's progress handler threw.
 */
export function dispatchSafely(target: EventTarget, type: string, detail: unknown): void {
  try {
    target.dispatchEvent(new CustomEvent(type, { detail }))
  } catch {
    // Listeners' errors are theirs.
  }
}
