import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { DsfgError } from '../../errors.js'
import type { DemoCommand, DemoEvent, DemoEventName, DemoEventOf } from './demo-protocol.js'

/** How long a child that was sent SIGKILL may take to be reaped. */
const KILL_WAIT_MS = 2_000

/** A step of the demo did not give the expected, verified result (or one of its processes failed). */
export class DemoFailedError extends DsfgError {
  static override readonly code: string = 'ERR_DEMO_FAILED'
}

export interface DemoChildInit {
  /** How the demo's log names it: `publisher`, `server-1`, `joiner`. */
  readonly name: string
  /** The arguments after the CLI entry file (`demo-node --role …`). */
  readonly args: readonly string[]
  /** Rejects every wait when it aborts: Ctrl-C, or another process that failed. */
  readonly signal: AbortSignal
  /** Writes one line of the demo's log (the child's stderr arrives here, prefixed with its name). */
  readonly log: (line: string) => void
  /** Every event the child reports, as it arrives. */
  readonly onEvent?: (event: DemoEvent) => void
  /** The child exited before `stop()` asked it to. */
  readonly onUnexpectedExit: (error: DemoFailedError) => void
}

interface Waiter {
  /** Looks at the events that arrived since its last look; true when it is done. */
  check(): boolean
  fail(error: unknown): void
}

/**
 * One process of the demo, started with the same Node and CLI entry as this one: its stdout events are
 * collected (and can be waited for, always with a deadline), commands go to its stdin, and `stop()` ends it,
 * killing it when it does not exit in time.
 */
export class DemoChild {
  readonly name: string
  readonly pid: number | undefined
  private readonly process: ChildProcessWithoutNullStreams
  private readonly init: DemoChildInit
  private readonly events: DemoEvent[] = []
  private readonly waiters = new Set<Waiter>()
  private readonly closed: Promise<void>
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  private failure: DemoFailedError | undefined
  private stopping = false
  /** The child's last stderr line, preferring its `dsfg: …` error line: what a failure message quotes. */
  private lastError = ''

  constructor(init: DemoChildInit) {
    this.init = init
    this.name = init.name
    const entry = process.argv[1]
    if (entry === undefined) throw new DemoFailedError('cannot tell which CLI entry file to start the demo processes from')
    this.process = spawn(process.execPath, [...process.execArgv, entry, ...init.args], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.pid = this.process.pid
    // A child that is gone makes writes to its stdin fail: its exit is reported on its own.
    this.process.stdin.on('error', () => undefined)
    createInterface({ input: this.process.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => this.onLine(line))
    createInterface({ input: this.process.stderr, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      if (line.trim() === '') return
      if (line.startsWith('dsfg') || !this.lastError.startsWith('dsfg')) this.lastError = line.trim()
      init.log(`${this.name}: ${line}`)
    })
    this.closed = new Promise((resolve) => {
      this.process.once('error', (err) => {
        this.lastError = err.message
        // A process that never started emits no 'close'.
        if (this.process.pid === undefined) this.onClose(null, null, resolve)
      })
      this.process.once('close', (code, signal) => this.onClose(code, signal, resolve))
    })
  }

  private onLine(line: string): void {
    let event: DemoEvent
    try {
      event = JSON.parse(line) as DemoEvent
    } catch {
      this.init.log(`${this.name}: ${line}`)
      return
    }
    if (typeof event !== 'object' || event === null || typeof event.event !== 'string') return
    this.events.push(event)
    this.init.onEvent?.(event)
    for (const waiter of [...this.waiters]) waiter.check()
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null, resolve: () => void): void {
    if (this.exit !== undefined) return
    this.exit = { code, signal }
    resolve()
    const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`
    this.failure = this.stopping
      ? new DemoFailedError(`the ${this.name} process was stopped`)
      : new DemoFailedError(`the ${this.name} process exited unexpectedly (${how})${this.lastError === '' ? '' : `: ${this.lastError}`}`)
    // Nothing it could report is coming any more: every wait ends now, and its timer with it.
    for (const waiter of [...this.waiters]) waiter.fail(this.failure)
    if (!this.stopping) this.init.onUnexpectedExit(this.failure)
  }

  /** The newest event of this kind so far. */
  latest<E extends DemoEventName>(name: E): DemoEventOf<E> | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]!.event === name) return this.events[i] as DemoEventOf<E>
    return undefined
  }

  /** Every event of this kind so far. */
  all<E extends DemoEventName>(name: E): DemoEventOf<E>[] {
    return this.events.filter((e): e is DemoEventOf<E> => e.event === name)
  }

  /**
   * The first event of kind `name` (arrived already or to come) that `match` accepts. Rejects with
   * `DemoFailedError` after `timeoutMs` ("timed out … waiting for <name> <what>") or when the child exits, and
   * with the signal's reason when it aborts.
   */
  waitFor<E extends DemoEventName>(
    name: E,
    what: string,
    timeoutMs: number,
    match: (event: DemoEventOf<E>) => boolean = () => true
  ): Promise<DemoEventOf<E>> {
    const signal = this.init.signal
    return new Promise((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure)
      if (signal.aborted) return reject(signal.reason)
      let next = 0
      const finish = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        this.waiters.delete(waiter)
      }
      const waiter: Waiter = {
        check: () => {
          for (; next < this.events.length; next++) {
            const event = this.events[next]!
            if (event.event === name && match(event as DemoEventOf<E>)) {
              finish()
              resolve(event as DemoEventOf<E>)
              return true
            }
          }
          return false
        },
        fail: (error) => {
          finish()
          reject(error)
        }
      }
      const onAbort = (): void => waiter.fail(signal.reason)
      const timer = setTimeout(() => {
        waiter.fail(new DemoFailedError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for the ${this.name} ${what}`))
      }, timeoutMs)
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(waiter)
      waiter.check()
    })
  }

  send(command: DemoCommand): void {
    if (this.exit === undefined && this.process.stdin.writable) this.process.stdin.write(`${JSON.stringify(command)}\n`)
  }

  /**
   * Asks the child to stop (a `stop` command, then the end of its stdin) and waits up to `timeoutMs` for it
   * to exit, then kills it. Resolves to its exit code, `null` when it had to be killed (or never started).
   */
  async stop(timeoutMs: number): Promise<number | null> {
    if (this.exit === undefined) {
      this.stopping = true
      this.send({ cmd: 'stop' })
      this.process.stdin.end()
      if (!(await this.closedWithin(timeoutMs))) {
        this.process.kill('SIGKILL')
        await this.closedWithin(KILL_WAIT_MS)
        return null
      }
    }
    return this.exit?.signal === null ? this.exit.code : null
  }

  private async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms)
    })
    try {
      return await Promise.race([this.closed.then(() => true), timeout])
    } finally {
      clearTimeout(timer)
    }
  }
}
