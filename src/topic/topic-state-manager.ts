import type { ComponentLogger, Logger } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { BUSY_PEER_BACKOFF_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_STATUS_REFRESH_MS, MAX_BUSY_PEER_BACKOFF_MS } from '../constants.js'
import { InvalidInputError, PeerBusyError, PeerFaultError, PeerRequestError, ProtocolError } from '../errors.js'
import type { PeerInfo } from '../fsm/types.js'
import type { TopicState } from '../net/topic-protocols.js'
import { equalBytes } from '../util/bytes.js'
import { type Clock, systemClock } from '../util/clock.js'
import { dispatchSafely } from '../util/events.js'
import { PeerBackoff } from '../util/peer-backoff.js'

/**
 * Asks `peer` for its state of `topic`: `null` when it holds nothing of it. Rejects with `PeerFaultError` (or
 * `ProtocolError`) when the reply proves the peer faulty, with anything else when the request merely failed;
 * must reject soon after `signal` aborts. `Fetcher.status` has this shape.
 */
export type StatusFetcher = (peer: string, topic: string, options: { signal: AbortSignal }) => Promise<TopicState | null>

export interface TopicStateManagerInit {
  /** Topics to keep peers' states of. More can be added with `addTopic`. */
  topics?: Iterable<string>
  fetchStatus: StatusFetcher
  /** Pause between the end of one status round with a peer and the next. @default DEFAULT_STATUS_REFRESH_MS (30 s) */
  refreshIntervalMs?: number
  /** Deadline of one status round with a peer. @default DEFAULT_REQUEST_TIMEOUT_MS (10 s) */
  statusTimeoutMs?: number
  /**
   * Pause after a round in which the peer answered RATE_LIMITED, instead of the refresh interval; rounds
   * refused in a row double it. @default BUSY_PEER_BACKOFF_MS (500 ms)
   */
  busyBackoffMs?: number
  /** Cap on that doubling pause. @default MAX_BUSY_PEER_BACKOFF_MS (4 s) */
  maxBusyBackoffMs?: number
  /**
   * Called when a peer's status reply is malformed; its state of that topic is then forgotten. A throwing hook
   * is ignored.
   */
  onPeerFault?: (peer: string, error: unknown) => void
  /** @default systemClock */
  clock?: Clock
  /** Logs failed status requests when given. */
  logger?: ComponentLogger
}

export interface PeerStateChange {
  peer: string
  topic: string
  /** `null` when the peer no longer reports anything for the topic (or its reply was malformed). */
  state: TopicState | null
}

export interface TopicStateManagerEvents {
  /** A peer's state of a topic changed (first reply included). */
  'peer:state': CustomEvent<PeerStateChange>
  /** A peer left the table: removed, or suspended for a while (it is back with its first 'peer:state'). */
  'peer:removed': CustomEvent<{ peer: string }>
}

/** One status round with one peer: a request per topic, under one deadline. */
interface Round {
  readonly controller: AbortController
  readonly deadline: unknown
  done: Promise<void>
}

interface PeerEntry {
  readonly id: string
  /** Topic → last state; topics the peer holds nothing of are absent. */
  readonly states: Map<string, TopicState>
  /** Next refresh, while idle and running. */
  timer: unknown
  /** The status round in flight. */
  round: Round | null
  removed: boolean
  /** While suspended: when the peer is asked again (`timer` is then the wake-up). */
  suspendedUntil: number | null
}

/**
 * The table of peers' topic states (DESIGN.md section 2, step 1): asks each added peer for its state of every
 * topic at once and then every `refreshIntervalMs`, and answers which peers may be asked for which range
 * (`peers(topic)` is the FSM queue's `io.peers()`). Serves nothing itself; the topic server does. I/O goes
 * through the injected `fetchStatus`, time through the injected clock.
 */
export class TopicStateManager extends TypedEventEmitter<TopicStateManagerEvents> {
  private readonly fetchStatus: StatusFetcher
  private readonly refreshMs: number
  private readonly timeoutMs: number
  private readonly onPeerFault: ((peer: string, error: unknown) => void) | undefined
  private readonly clock: Clock
  private readonly log: Logger | undefined
  private readonly topicSet = new Set<string>()
  private readonly entries = new Map<string, PeerEntry>()
  /** Every round in flight, including those of peers removed meanwhile: what `stop()` waits for. */
  private readonly rounds = new Set<Round>()
  /** Peers whose last round was refused (RATE_LIMITED): asked again after a short wait, not the refresh interval. */
  private readonly busy: PeerBackoff
  private running = false

  constructor(init: TopicStateManagerInit) {
    super()
    this.fetchStatus = init.fetchStatus
    this.refreshMs = init.refreshIntervalMs ?? DEFAULT_STATUS_REFRESH_MS
    this.timeoutMs = init.statusTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    if (!(this.refreshMs > 0) || !(this.timeoutMs > 0)) throw new InvalidInputError('intervals must be positive')
    this.onPeerFault = init.onPeerFault
    this.clock = init.clock ?? systemClock
    this.busy = new PeerBackoff({
      initialMs: init.busyBackoffMs ?? BUSY_PEER_BACKOFF_MS,
      maxMs: init.maxBusyBackoffMs ?? MAX_BUSY_PEER_BACKOFF_MS
    })
    this.log = init.logger?.forComponent('dsfg:topic-state')
    for (const topic of init.topics ?? []) this.topicSet.add(topic)
  }

  readonly [Symbol.toStringTag] = '@dsfg/topic-state-manager'

  get topics(): string[] {
    return [...this.topicSet]
  }

  /** Starts polling every known peer. */
  start(): void {
    if (this.running) return
    this.running = true
    for (const entry of this.entries.values()) {
      if (entry.suspendedUntil !== null) this.resumeAt(entry, entry.suspendedUntil)
      else if (entry.round === null) void this.poll(entry)
    }
  }

  /** Stops polling: aborts the rounds in flight, clears every timer and waits for the rounds to end. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    for (const entry of this.entries.values()) {
      this.clock.clearTimeout(entry.timer)
      entry.timer = undefined
    }
    const rounds = [...this.rounds]
    for (const round of rounds) this.endRound(round)
    await Promise.all(rounds.map((r) => r.done))
  }

  /** Tracks `peer`: asks it for its states now (or at `start()`) and then periodically. Known peers are left alone. */
  addPeer(peer: string): void {
    if (this.entries.has(peer)) return
    const entry: PeerEntry = { id: peer, states: new Map(), timer: undefined, round: null, removed: false, suspendedUntil: null }
    this.entries.set(peer, entry)
    if (this.running) void this.poll(entry)
  }

  /** Forgets `peer` and aborts its round in flight; 'peer:removed' if it was known. */
  removePeer(peer: string): void {
    const entry = this.entries.get(peer)
    if (entry === undefined) return
    entry.removed = true
    this.entries.delete(peer)
    this.busy.clear(peer)
    this.clock.clearTimeout(entry.timer)
    if (entry.round !== null) this.endRound(entry.round)
    dispatchSafely(this, 'peer:removed', { peer })
  }

  /**
   * Leaves `peer` out for `ms` (a cool-down after an offence): forgets its states, so `peers()` no longer
   * offers it, aborts its round in flight and asks it nothing until then; then asks it again, and it is back
   * with its first reply. A peer already suspended stays out until the later of the two ends. Does nothing for
   * an unknown peer; `removePeer` ends the suspension with the peer.
   */
  suspendPeer(peer: string, ms: number): void {
    const entry = this.entries.get(peer)
    if (entry === undefined) return
    const until = Math.max(this.clock.now() + Math.max(0, ms), entry.suspendedUntil ?? 0)
    entry.suspendedUntil = until
    this.clock.clearTimeout(entry.timer)
    entry.timer = undefined
    if (entry.round !== null) {
      this.endRound(entry.round)
      entry.round = null
    }
    entry.states.clear()
    if (this.running) this.resumeAt(entry, until)
    dispatchSafely(this, 'peer:removed', { peer })
  }

  /** Whether `peer` is suspended (see `suspendPeer`). */
  suspended(peer: string): boolean {
    return (this.entries.get(peer)?.suspendedUntil ?? null) !== null
  }

  /** Starts tracking `topic`: every peer is asked for its states at once (after the round in flight, if any). */
  addTopic(topic: string): void {
    if (this.topicSet.has(topic)) return
    this.topicSet.add(topic)
    if (!this.running) return
    for (const entry of this.entries.values()) {
      if (entry.suspendedUntil !== null) continue // asked for every topic when it is back
      // A round in flight was started without the topic.
      if (entry.round === null) void this.refresh(entry.id)
      else void entry.round.done.then(() => this.refresh(entry.id))
    }
  }

  /** Stops tracking `topic` and forgets every peer's state of it (without 'peer:state' events). */
  removeTopic(topic: string): void {
    this.topicSet.delete(topic)
    for (const entry of this.entries.values()) entry.states.delete(topic)
  }

  /**
   * Asks `peer` again now (say, after a checkpoint announced a head nobody claims yet) and resolves when the
   * round ends; joins the round in flight if there is one. Does nothing for an unknown or suspended peer or
   * while stopped.
   */
  async refresh(peer: string): Promise<void> {
    const entry = this.entries.get(peer)
    if (entry === undefined || !this.running || entry.suspendedUntil !== null) return
    if (entry.round !== null) return entry.round.done
    this.clock.clearTimeout(entry.timer)
    entry.timer = undefined
    return this.poll(entry)
  }

  /** Peers that hold something of `topic`, with the range each claims: the FSM queue's `io.peers()`. */
  peers(topic: string): PeerInfo[] {
    const out: PeerInfo[] = []
    for (const entry of this.entries.values()) {
      const state = entry.states.get(topic)
      if (state !== undefined) out.push({ id: entry.id, lowest: state.lowest, head: state.head })
    }
    return out
  }

  /** Every peer's last state of `topic`, by peer id (the shape `TopicSyncIO.states()` wants). */
  states(topic: string): Map<string, TopicState> {
    const out = new Map<string, TopicState>()
    for (const entry of this.entries.values()) {
      const state = entry.states.get(topic)
      if (state !== undefined) out.set(entry.id, state)
    }
    return out
  }

  /** `peer`'s last state of `topic`, if it reported one. */
  state(peer: string, topic: string): TopicState | undefined {
    return this.entries.get(peer)?.states.get(topic)
  }

  /** Tracked peers. */
  peerIds(): string[] {
    return [...this.entries.keys()]
  }

  /** Arms `entry`'s wake-up at the end of its suspension: it is asked again then. */
  private resumeAt(entry: PeerEntry, until: number): void {
    this.clock.clearTimeout(entry.timer)
    entry.timer = this.clock.setTimeout(() => {
      entry.timer = undefined
      entry.suspendedUntil = null
      if (this.running && !entry.removed) void this.poll(entry)
    }, Math.max(0, until - this.clock.now()))
  }

  /** One status round with `entry`: every topic at once, then the next round is scheduled. */
  private poll(entry: PeerEntry): Promise<void> {
    const controller = new AbortController()
    const timeout = new PeerRequestError(entry.id, 'timeout', 'no status reply in time')
    const round: Round = {
      controller,
      deadline: this.clock.setTimeout(() => controller.abort(timeout), this.timeoutMs),
      done: Promise.resolve()
    }
    const topics = [...this.topicSet]
    round.done = Promise.all(topics.map((topic) => this.ask(entry, topic, controller.signal))).then((answers) => {
      this.endRound(round)
      if (entry.round !== round) return // a stop and a restart began another round meanwhile
      entry.round = null
      if (this.running && !entry.removed) {
        entry.timer = this.clock.setTimeout(() => {
          entry.timer = undefined
          void this.poll(entry)
        }, this.nextRoundIn(entry.id, answers.includes('busy')))
      }
    })
    this.rounds.add(round)
    entry.round = round
    return round.done
  }

  /**
   * The pause before `peer`'s next round: the refresh interval, or, after a round it refused (RATE_LIMITED), a
   * busy peer's short wait. A refused first round left a joiner without the peer's state, and so without
   * anything to download, for a whole refresh interval (30 s) after the server had room again.
   */
  private nextRoundIn(peer: string, refused: boolean): number {
    if (!refused) {
      this.busy.clear(peer)
      return this.refreshMs
    }
    const now = this.clock.now()
    return Math.min(this.refreshMs, this.busy.failed(peer, now) - now)
  }

  /** Aborts `round` (a no-op once it has answered) and clears its deadline. */
  private endRound(round: Round): void {
    this.clock.clearTimeout(round.deadline)
    round.controller.abort()
    this.rounds.delete(round)
  }

  /** Asks for one topic and records the answer; never rejects. 'busy' when the peer answered RATE_LIMITED. */
  private async ask(entry: PeerEntry, topic: string, signal: AbortSignal): Promise<'busy' | undefined> {
    let state: TopicState | null
    try {
      state = await this.fetchStatus(entry.id, topic, { signal })
      if (state !== null && !isTopicState(state)) {
        throw new PeerFaultError(entry.id, 'malformed', `invalid state of ${topic}`)
      }
    } catch (err) {
      // Aborted by removal, suspension or stop: the answer no longer matters.
      if (entry.removed || !this.running || entry.suspendedUntil !== null) return undefined
      if (err instanceof PeerFaultError || err instanceof ProtocolError) {
        // Nothing it said about the topic can be trusted any more.
        this.record(entry, topic, null)
        try {
          this.onPeerFault?.(entry.id, err)
        } catch (hookError) {
          // The hook's errors are its own.
          this.log?.error('the onPeerFault hook threw: %e', hookError)
        }
        return undefined
      }
      // Timeouts, busy peers, resets: keep the last state, which is most likely still right, and ask again later
      // (soon, for a busy peer).
      this.log?.('status of %s from %s failed: %e', topic, entry.id, err)
      return err instanceof PeerBusyError ? 'busy' : undefined
    }
    if (entry.removed || !this.running || entry.suspendedUntil !== null || !this.topicSet.has(topic)) return undefined
    this.record(entry, topic, state)
    return undefined
  }

  private record(entry: PeerEntry, topic: string, state: TopicState | null): void {
    const previous = entry.states.get(topic)
    if (state === null) {
      if (!entry.states.delete(topic)) return
    } else {
      entry.states.set(topic, state)
      if (previous !== undefined && sameState(previous, state)) return
    }
    dispatchSafely(this, 'peer:state', { peer: entry.id, topic, state })
  }
}

/** A cheap check of what an injected `fetchStatus` returned: the codec's rules for a status reply. */
function isTopicState(value: unknown): value is TopicState {
  if (typeof value !== 'object' || value === null) return false
  const s = value as Partial<TopicState>
  const uint = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
  const hash = (h: unknown): boolean => h instanceof Uint8Array && h.length === 32
  const cp = s.checkpoint
  return (
    uint(s.lowest) &&
    uint(s.head) &&
    s.lowest <= s.head &&
    hash(s.headHash) &&
    typeof cp === 'object' &&
    cp !== null &&
    uint(cp.number) &&
    cp.number <= s.head &&
    hash(cp.root)
  )
}

function sameState(a: TopicState, b: TopicState): boolean {
  return (
    a.lowest === b.lowest &&
    a.head === b.head &&
    a.checkpoint.number === b.checkpoint.number &&
    equalBytes(a.headHash, b.headHash) &&
    equalBytes(a.checkpoint.root, b.checkpoint.root)
  )
}
