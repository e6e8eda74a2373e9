import { AbortError } from '../errors.js'

/**
 * One promise chain per key: `run(key, fn)` starts `fn` once every earlier call for the same key has settled,
 * so a topic's writes happen one at a time, in call order, while different topics proceed in parallel. A
 * caller whose signal aborts while it waits leaves the queue at once with `AbortError`, without holding up
 * the calls behind it. Keys with nothing queued are forgotten, so the map holds only busy keys.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>()

  async run<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    throwIfAborted(signal)
    const previous = this.tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const done = new Promise<void>((resolve) => {
      release = resolve
    })
    // Chained on `previous`, not on `done` alone: a caller that gives up early releases `done` while
    // `previous` may still run, and the next caller must still wait for that.
    const tail = previous.then(() => done)
    this.tails.set(key, tail)
    try {
      await waitFor(previous, signal)
      return await fn()
    } finally {
      release()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}

/** Resolves with `promise` (which never rejects here), or rejects with `AbortError` when `signal` aborts first. */
async function waitFor(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return promise
  throwIfAborted(signal)
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort!)
  }
}

/** Throws the library's `AbortError` (with the signal's reason as `cause`) when `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortError(signal)
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError('topic store operation aborted', { cause: signal.reason })
}
