import { PeerBusyError, ProtocolError } from '../../src/errors.js'
import { type Clock, systemClock } from '../../src/util/clock.js'
import {
  type AdversaryCall,
  type AdversaryEntries,
  type AdversaryProtocol,
  type AdversaryRequests,
  type Behaviour,
  type Fault,
  lieAbout,
  type Rule,
  toRule
} from './adversary-model.js'

export interface FakePeersInit<P extends AdversaryProtocol> {
  protocol: P
  /** What an honest peer answers to `request`: the test's data. */
  honest: (request: AdversaryRequests[P], peer: string) => AdversaryEntries[P][] | Promise<AdversaryEntries[P][]>
  /** The clock `delayMs` runs on. @default systemClock */
  clock?: Clock
}

/**
 * The unit-test driver of the adversary model (adversary-model.ts): peers behind in-process I/O functions (a
 * `NodeFetcher`, a queue's `fetch`), each answering by its behaviour, with every request logged. Entry lies
 * change the honest entries as they would end to end; what lives in a frame or a stream becomes what the client
 * would have made of it: `garbage` and `oversized` a `ProtocolError`, `rate-limited` a `PeerBusyError`,
 * `unavailable` no entries, `stall` a request that ends only when aborted, and `reset`, `disconnect` and `stop`
 * a failed request. An aborted request rejects at once (unless the rule says `lateAfterAbort`).
 */
export class FakePeers<P extends AdversaryProtocol> {
  /** Every request, in the order they came. */
  readonly calls: AdversaryCall<P>[] = []
  private readonly protocol: P
  private readonly honest: FakePeersInit<P>['honest']
  private readonly clock: Clock
  private readonly behaviours = new Map<string, Behaviour<P>>()
  private readonly counts = new Map<string, number>()

  constructor(init: FakePeersInit<P>) {
    this.protocol = init.protocol
    this.honest = init.honest
    this.clock = init.clock ?? systemClock
  }

  /** Makes `peer` answer as `behaviour` says from now on. */
  set(peer: string, behaviour: Behaviour<P> = 'honest'): void {
    this.behaviours.set(peer, behaviour)
  }

  /** Requests `peer` got so far. */
  requestsOf(peer: string): number {
    return this.counts.get(peer) ?? 0
  }

  /** `peer`'s answer to `request`. The behaviour is asked at once, before this returns. */
  answer(peer: string, request: AdversaryRequests[P], options: { signal?: AbortSignal } = {}): Promise<AdversaryEntries[P][]> {
    const behaviour = this.behaviours.get(peer)
    if (behaviour === undefined) return Promise.reject(new Error(`no such peer ${peer}`))
    const call: AdversaryCall<P> = { protocol: this.protocol, call: (this.counts.get(peer) ?? 0) + 1, peer, request }
    this.counts.set(peer, call.call)
    this.calls.push(call)
    const chosen = typeof behaviour === 'function' ? behaviour(call) : behaviour
    return chosen instanceof Promise ? chosen.then((c) => this.carryOut(call, toRule(c), options.signal)) : this.carryOut(call, toRule(chosen), options.signal)
  }

  private carryOut(call: AdversaryCall<P>, rule: Rule<P>, signal: AbortSignal | undefined): Promise<AdversaryEntries[P][]> {
    const late = rule.lateAfterAbort === true
    return new Promise((resolve, reject) => {
      let open = true
      let timer: unknown
      const close = (): void => {
        open = false
        signal?.removeEventListener('abort', onAbort)
        if (timer !== undefined) this.clock.clearTimeout(timer)
      }
      const onAbort = (): void => {
        if (late || !open) return
        close()
        reject(new Error('aborted'))
      }
      if (signal?.aborted === true) {
        onAbort()
        return
      }
      signal?.addEventListener('abort', onAbort)
      const act = (): void => {
        timer = undefined
        if (!open && !late) return
        close()
        const fault = rule.fault ?? 'honest'
        const failure = failureOf(fault, call.peer)
        if (fault === 'stall') return
        if (failure !== undefined) {
          reject(failure)
          return
        }
        if (fault === 'unavailable') {
          resolve([])
          return
        }
        // Synchronous honest data is answered at once, as a reply that arrives before anything else can happen.
        const honest = this.honest(call.request, call.peer)
        if (honest instanceof Promise) honest.then((entries) => resolve(lieAbout(this.protocol, rule, entries, call.request)), reject)
        else resolve(lieAbout(this.protocol, rule, honest, call.request))
      }
      const afterHold = (): void => {
        if (rule.delayMs !== undefined && rule.delayMs > 0) timer = this.clock.setTimeout(act, rule.delayMs)
        else act()
      }
      if (rule.hold === undefined) afterHold()
      else rule.hold().then(afterHold, reject)
    })
  }
}

/** The error a client meets for `fault`, or none when the fault is in the entries (or in not answering). */
function failureOf(fault: Fault, peer: string): Error | undefined {
  switch (fault) {
    case 'garbage':
    case 'oversized':
      return new ProtocolError(`${fault} reply from ${peer}`)
    case 'rate-limited':
      return new PeerBusyError(`${peer} is rate limiting`)
    case 'reset':
    case 'disconnect':
    case 'stop':
      return new Error(`${peer}: ${fault}`)
    default:
      return undefined
  }
}
