import {
  type ConsumerResult,
  DEFAULT_WINDOW,
  type DeliverOptions,
  type Item,
  type PeerFault,
  type PeerInfo,
  Queue,
  type QueueInit,
  type QueueIO,
  type QueueResult,
  type QueueStalled
} from '../../src/fsm/index.js'
import type { ContentsRequest } from '../../src/net/topic-protocols.js'
import type { Behaviour as ModelBehaviour } from '../helpers/adversary-model.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { FakePeers } from '../helpers/fake-peers.js'

/** The honest content of item `n`. */
export function item(n: number): Item {
  return { n, data: Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, 0xaa) }
}

/** Honest items `from..to` inclusive. */
export function items(from: number, to: number): Item[] {
  const out: Item[] = []
  for (let n = from; n <= to; n++) out.push(item(n))
  return out
}

/** `from..to` inclusive. */
export function range(from: number, to: number): number[] {
  const out: number[] = []
  for (let n = from; n <= to; n++) out.push(n)
  return out
}

/** Lets every promise chain that is ready run (one macrotask turn drains the microtask queue). */
export async function settle(turns = 2): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/**
 * Runs the fake clock forward in steps until `promise` settles, and returns its outcome. Throws when it does not
 * settle within `maxMs` of fake time: a deadlock.
 */
export async function drive<T>(
  clock: FakeClock,
  promise: Promise<T>,
  options: { stepMs?: number; maxMs?: number; onStep?: () => void } = {}
): Promise<T> {
  let settled = false
  promise.then(
    () => {
      settled = true
    },
    () => {
      settled = true
    }
  )
  const step = options.stepMs ?? 250
  const until = clock.now() + (options.maxMs ?? 3_600_000)
  for (;;) {
    await settle()
    options.onStep?.()
    if (settled) break
    if (clock.now() >= until) throw new Error(`drive: not settled after ${options.maxMs ?? 3_600_000} ms of fake time`)
    clock.advance(step)
  }
  return promise
}

/**
 * What a simulated peer does with one request: the adversary model's behaviour for contents requests
 * (adversary-model.ts), over honest items `from..from + amount - 1`. The request's `topic` is empty.
 */
export type Behaviour = ModelBehaviour<'contents'>

export interface SimRequest {
  peer: string
  from: number
  amount: number
  at: number
  /** Index of this request among the peer's requests. */
  index: number
}

/** Answers with every asked item. */
export const honest: Behaviour = 'honest'

/** Answers like `honest`, `delayMs` later (of fake time). */
export function honestAfter(delayMs: number | ((req: ContentsRequest) => number)): Behaviour {
  return typeof delayMs === 'number' ? { delayMs } : ({ request }) => ({ delayMs: delayMs(request) })
}

/**
 * Peers behind `io.peers()` / `io.fetch()`, answering through the model's unit driver (`FakePeers`) on the fake
 * clock. Records every request, checks it against the peer's claimed range, and counts the requests in flight
 * per peer (a request ends when answered or aborted).
 */
export class SimNetwork {
  readonly requests: SimRequest[] = []
  readonly violations: string[] = []
  readonly signals: AbortSignal[] = []
  readonly maxActive = new Map<string, number>()
  private readonly peerTable = new Map<string, PeerInfo>()
  private readonly active = new Map<string, number>()
  private readonly clock: FakeClock
  private readonly answers: FakePeers<'contents'>

  constructor(clock: FakeClock) {
    this.clock = clock
    this.answers = new FakePeers({ protocol: 'contents', honest: ({ from, amount }) => items(from, from + amount - 1), clock })
  }

  add(id: string, options: { lowest?: number; head?: number; behaviour?: Behaviour } = {}): void {
    this.peerTable.set(id, { id, lowest: options.lowest ?? 0, head: options.head ?? Number.MAX_SAFE_INTEGER })
    this.answers.set(id, options.behaviour ?? honest)
  }

  remove(id: string): void {
    this.peerTable.delete(id)
  }

  setBehaviour(id: string, behaviour: Behaviour): void {
    this.answers.set(id, behaviour)
  }

  peers = (): PeerInfo[] => [...this.peerTable.values()].map(({ id, lowest, head }) => ({ id, lowest, head }))

  /** Requests made to `peer`, or all. */
  asked(peer?: string): SimRequest[] {
    return peer === undefined ? this.requests : this.requests.filter((r) => r.peer === peer)
  }

  /** How many requests covered item `n`. */
  timesAsked(n: number): number {
    return this.requests.filter((r) => r.from <= n && n < r.from + r.amount).length
  }

  inFlight(peer: string): number {
    return this.active.get(peer) ?? 0
  }

  fetch = (peer: string, from: number, amount: number, options: { signal: AbortSignal }): Promise<Item[]> => {
    const sim = this.peerTable.get(peer)
    if (sim === undefined) {
      this.violations.push(`asked unknown peer ${peer}`)
      return Promise.reject(new Error(`no such peer ${peer}`))
    }
    if (sim.lowest > from || sim.head < from + amount - 1) {
      this.violations.push(`${peer} [${sim.lowest}, ${sim.head}] asked for [${from}, ${from + amount - 1}]`)
    }
    this.requests.push({ peer, from, amount, at: this.clock.now(), index: this.answers.requestsOf(peer) })
    this.signals.push(options.signal)
    const active = (this.active.get(peer) ?? 0) + 1
    this.active.set(peer, active)
    this.maxActive.set(peer, Math.max(this.maxActive.get(peer) ?? 0, active))
    let open = true
    const end = (): void => {
      if (!open) return
      open = false
      this.active.set(peer, (this.active.get(peer) ?? 1) - 1)
    }
    // A request ends when aborted, even if a late reply still comes.
    options.signal.addEventListener('abort', end, { once: true })
    const answer = this.answers.answer(peer, { topic: '', from, amount }, { signal: options.signal })
    answer.then(end, end)
    return answer
  }
}

export type ConsumerScript = (items: Item[], call: number) => ConsumerResult

/**
 * The consumer: accepts batches and rolls back the last accepted one on a 'previous' or 'both' fault, the way
 * the contract says. Records every delivery and any delivery that does not continue exactly from its head.
 */
export class SimConsumer {
  readonly calls: Item[][] = []
  readonly violations: string[] = []
  private readonly accepted: Item[][] = []
  private readonly script: ConsumerScript
  private readonly clock: FakeClock | undefined
  private readonly delayMs: number
  private busy = false

  constructor(script: ConsumerScript = () => ({ ok: true }), options: { clock?: FakeClock; delayMs?: number } = {}) {
    this.script = script
    this.clock = options.clock
    this.delayMs = options.delayMs ?? 0
  }

  get head(): number {
    const last = this.accepted[this.accepted.length - 1]
    return last?.[last.length - 1]?.n ?? Number.NaN
  }

  /** Every number the consumer holds, in the order it holds them. */
  get sequence(): number[] {
    return this.accepted.flat().map((i) => i.n)
  }

  /** Whether each held item has the honest content. */
  get allHonest(): boolean {
    return this.accepted.flat().every((i) => i.data.every((b, k) => b === item(i.n).data[k]))
  }

  deliver = async (batch: Item[], options: DeliverOptions): Promise<ConsumerResult> => {
    if (this.busy) this.violations.push('two deliveries at once')
    this.busy = true
    try {
      const call = this.calls.length
      this.calls.push(batch)
      if (this.clock !== undefined && this.delayMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = this.clock!.setTimeout(resolve, this.delayMs)
          options.signal.addEventListener('abort', () => {
            this.clock!.clearTimeout(timer)
            resolve()
          })
        })
      }
      const result = this.script(batch, call)
      if (result.ok) {
        this.check(batch)
        this.accepted.push(batch)
      } else if ((result.fault === 'previous' || result.fault === 'both') && options.unvalidated !== undefined) {
        // discard the unvalidated batch, which must be the last one held
        const last = this.accepted.pop()
        const { from, to } = options.unvalidated
        if (last?.[0]?.n !== from || last[last.length - 1]?.n !== to) {
          this.violations.push(`unvalidated [${from}, ${to}] is not the last batch held`)
        }
      }
      return result
    } finally {
      this.busy = false
    }
  }

  private check(batch: Item[]): void {
    const expected = this.accepted.length === 0 ? undefined : this.head + 1
    batch.forEach((it, i) => {
      if (i === 0 && expected !== undefined && it.n !== expected) {
        this.violations.push(`got ${it.n}, expected ${expected}`)
      }
      if (i > 0 && it.n !== batch[i - 1]!.n + 1) this.violations.push(`gap or repeat at ${it.n}`)
    })
  }
}

export function makeIO(net: SimNetwork, consumer: SimConsumer): QueueIO {
  return { peers: net.peers, fetch: net.fetch, deliver: consumer.deliver }
}

export interface Harness {
  clock: FakeClock
  net: SimNetwork
  consumer: SimConsumer
  queue: Queue
  faults: PeerFault[]
  stalls: QueueStalled[]
  /** Times the window (Downloading + Downloaded) was seen above its bound. */
  windowViolations: string[]
  /** Runs the queue under the fake clock until it settles. */
  run(options?: { stepMs?: number; maxMs?: number; onStep?: () => void; signal?: AbortSignal }): Promise<QueueResult>
}

/**
 * A queue over a `SimNetwork` and a `SimConsumer` with a fake clock. The window bound is checked at every
 * request the queue makes and at every step of the clock.
 */
export function harness(
  init: Omit<QueueInit, 'io' | 'clock'>,
  options: { consumer?: SimConsumer; clock?: FakeClock } = {}
): Harness {
  const clock = options.clock ?? new FakeClock()
  const net = new SimNetwork(clock)
  const consumer = options.consumer ?? new SimConsumer()
  const faults: PeerFault[] = []
  const stalls: QueueStalled[] = []
  const windowViolations: string[] = []
  const window = init.window ?? DEFAULT_WINDOW
  const checkWindow = (): void => {
    const state = queue.getDebugState()
    if (state.window > window) windowViolations.push(`${state.window} batches in the window at ${clock.now()}`)
  }
  const io: QueueIO = {
    peers: net.peers,
    fetch: (peer, from, amount, opts) => {
      checkWindow()
      return net.fetch(peer, from, amount, opts)
    },
    deliver: consumer.deliver
  }
  const queue = new Queue({ ...init, io, clock })
  queue.addEventListener('peer:fault', (e) => faults.push(e.detail))
  queue.addEventListener('stalled', (e) => stalls.push(e.detail))
  return {
    clock,
    net,
    consumer,
    queue,
    faults,
    stalls,
    windowViolations,
    run: (opts = {}) =>
      drive(clock, queue.run({ signal: opts.signal }), {
        ...opts,
        onStep: () => {
          checkWindow()
          opts.onStep?.()
        }
      })
  }
}
