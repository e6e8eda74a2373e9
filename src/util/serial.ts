import { raceSignal, throwIfAborted } from './abort.js'

export interface SerialInit {
  /** The message of the `AbortError` a caller that gave up waiting gets. @default 'operation aborted' */
  abortMessage?: string
}

export interface SerialRunOptions {
  /** Leaves the queue with `AbortError` when it aborts before `fn` started; a running `fn` is not interrupted. */
  signal?: AbortSignal
}

/**
 * A mutex as one promise chain: `run(fn)` starts `fn` once every earlier call has settled (fulfilled or
 * rejected), so calls run one at a time in call order. A caller whose signal aborts while it waits leaves the
 * queue at once, without holding up the calls behind it.
 */
export class Serial {
  private readonly abortMessage: string | undefined
  private tail: Promise<void> = Promise.resolve()
  private queued = 0

  constructor(init: SerialInit = {}) {
    this.abortMessage = init.abortMessage
  }

  /** Calls waiting or running. */
  get size(): number {
    return this.queued
  }

  async run<T>(fn: () => Promise<T>, options: SerialRunOptions = {}): Promise<T> {
    const { signal } = options
    throwIfAborted(signal, this.abortMessage)
    const previous = this.tail
    let release!: () => void
    const done = new Promise<void>((resolve) => {
      release = resolve
    })
    // Chained on `previous`, not on `done` alone: a caller that gives up early releases `done` while
    // `previous` may still run, and the next caller must still wait for that.
    this.tail = previous.then(() => done)
    this.queued++
    try {
      await raceSignal(previous, signal, this.abortMessage)
      return await fn()
    } finally {
      this.queued--
      release()
    }
  }

  /** Resolves once every call made so far has settled. */
  async idle(): Promise<void> {
    await this.tail
  }
}

/**
 * One `Serial` per key: calls with the same key run one at a time in call order, different keys in parallel
 * (a topic's writes, one topic at a time). Keys with nothing queued are forgotten, so the map holds only busy
 * keys.
 */
export class KeyedSerial {
  private readonly init: SerialInit
  private readonly chains = new Map<string, Serial>()

  constructor(init: SerialInit = {}) {
    this.init = init
  }

  async run<T>(key: string, fn: () => Promise<T>, options: SerialRunOptions = {}): Promise<T> {
    throwIfAborted(options.signal, this.init.abortMessage)
    let chain = this.chains.get(key)
    if (chain === undefined) {
      chain = new Serial(this.init)
      this.chains.set(key, chain)
    }
    try {
      return await chain.run(fn, options)
    } finally {
      if (chain.size === 0 && this.chains.get(key) === chain) this.chains.delete(key)
    }
  }

  /** Keys with a call waiting or running. */
  get size(): number {
    return this.chains.size
  }
}
