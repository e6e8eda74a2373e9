import { TypedEventEmitter } from 'main-event'
import { dispatchSafely } from '../util/events.js'
import {
  BUSY_PEER_BACKOFF_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  HEDGE_AFTER_ROUND_TRIPS,
  IDEAL_BATCH_BYTES,
  MAX_NODE_REQUESTS_PER_PEER,
  MAX_BUSY_PEER_BACKOFF_MS,
  MAX_NODES_PER_REQUEST,
  MAX_PEER_OFFENCES,
  MAX_RESPONSE_BYTES,
  MAX_STALLED_PROBE_BACKOFF_MS,
  RTT_MIN_ESTIMATE_MS,
  STALLED_PROBE_BACKOFF_MS,
  SUBTRIE_REQUEST_BYTES,
  SUBTRIE_MIN_DEPTH,
  SUBTRIE_PROBE_TASKS,
  UNTRUSTED_COPIES
} from '../constants.js'
import { AbortError, BusyError, InvalidNodeError, NodeUnavailableError, PeerBusyError, ProtocolError, RequestRejectedError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { equalBytes, hashAt, hashesEqualAt } from '../util/bytes.js'
import { type Clock, systemClock } from '../util/clock.js'
import { ByteMap } from '../util/byte-map.js'
import { toHex } from '../util/hex.js'
import { type Log, silentLog } from '../util/log.js'
import type { VerifiedCounts } from '../util/metrics.js'
import { PeerBackoff } from '../util/peer-backoff.js'
import { type NodesReplyItem, SubtrieLeaves } from '../trie/subtrie.js'
import { RateTracker } from './msgrate.js'
import { type HashedBlob, hashBlob, hashBlobs, hashSubtrie, type LeafCallback, TrieSync } from './trie-sync.js'

// reference: go-ethereum@e7872729 (v1.9.25) eth/downloader/statesync.go for the request loop, ready set and
// attempts; go-ethereum@02b73d4e p2p/msgrate for sizing and timeouts; eth/protocols/snap/sync.go for
// per-request spin-down on a new root and for reverting a timed-out request to the idle peers at once.

/**
 * Asks one peer for the nodes with these hashes and resolves with whatever blobs it sent, unverified: the
 * syncer hashes every blob itself. With `subtrieBytes`, the peer may send a node's subtrie as its leaves
 * (`SubtrieLeaves`, at most that many bytes) instead of the node; the syncer rebuilds and hashes it. Rejects with
 * `ProtocolError` when the reply broke the protocol (the peer is blamed), `RequestRejectedError` when the peer
 * called the request invalid (one allowing subtries: the peer is asked node by node after), and with any other
 * error when the stream failed (the request is simply retried).
 */
export type NodeFetcher = (
  peer: string,
  hashes: Uint8Array[],
  options: { signal: AbortSignal; subtrieBytes?: number }
) => Promise<NodesReplyItem[]>

/** Why a peer was penalised. */
export type PenaltyReason = 'invalid-node' | 'unrequested-node' | 'protocol-error' | 'stalled'

/**
 * A peer's offence, reported to the caller's peer ledger (the service's `PeerScorer`), which decides whether
 * the peer is disconnected: the syncer only decides whom it asks.
 */
export interface PeerPenalty {
  peer: string
  reason: PenaltyReason
  /**
   * Whether the syncer asks the peer nothing more: in this sync after `maxPeerOffences` offences, or until it
   * answers a probe when it stalled.
   */
  excluded: boolean
}

export interface StateSyncStats {
  root: Uint8Array
  /** Nodes received, verified and accepted by the scheduler. */
  nodes: number
  /** Bytes of those nodes. */
  bytes: number
  /** Nodes written to the store. */
  committed: number
  /** Nodes scheduled and not yet committed. */
  pending: number
  /** Connected peers the syncer may use: not left out for offences, and answering (none stalled). */
  peers: number
  /** Connected peers that stalled (a request timed out or failed) and have not answered since. */
  stalled: number
  /** Usable peers left alone for now because they answered RATE_LIMITED (their short busy wait). */
  busy: number
  /** Requests in flight. */
  inFlight: number
  /** Verified nodes that were no longer needed (late or duplicate replies). */
  duplicates: number
  /** Accepted nodes per second since the sync started. */
  rate: number
  elapsedMs: number
  /** Root changes since the sync started. */
  retargets: number
}

export interface StateSyncResult extends StateSyncStats {}

export interface StateSyncerEvents {
  progress: CustomEvent<StateSyncStats>
  retarget: CustomEvent<{ from: Uint8Array; to: Uint8Array }>
  'peer:penalised': CustomEvent<PeerPenalty>
  /**
   * Every connected peer the sync may use has stalled (none answers): the sync keeps probing them and goes
   * on when one answers or another joins. Whether to give up is the caller's decision (abort the sync).
   */
  stalled: CustomEvent<StateSyncStats>
}

export interface StateSyncerInit {
  store: KVStore
  fetchNodes: NodeFetcher
  /** Called for each offence of a peer (bad data, a broken reply, a stall); a throwing hook is ignored. */
  onPenalty?: (penalty: PeerPenalty) => void
  /** Passed to each trie scheduler (see `TrieSync`). */
  onLeaf?: LeafCallback
  /** @default MAX_NODES_PER_REQUEST (1024) */
  maxNodesPerRequest?: number
  /** Requests in flight to one peer at a time. @default MAX_NODE_REQUESTS_PER_PEER (4) */
  maxRequestsPerPeer?: number
  /** Cap on the adaptive request timeout. @default DEFAULT_REQUEST_TIMEOUT_MS (10 s) */
  requestTimeoutMs?: number
  /** Lower bound of the round-trip estimate requests are sized for. @default RTT_MIN_ESTIMATE_MS (1 s) */
  rttMinMs?: number
  /** Uncommitted bytes after which completed nodes are written. @default IDEAL_BATCH_BYTES (100 KiB) */
  flushBytes?: number
  /** Offences after which a peer is asked nothing more in this sync. @default MAX_PEER_OFFENCES (3) */
  maxPeerOffences?: number
  /** Wait before the first probe of a peer that stopped answering. @default STALLED_PROBE_BACKOFF_MS (1 s) */
  probeBackoffMs?: number
  /** Cap on the doubling wait between probes. @default MAX_STALLED_PROBE_BACKOFF_MS (60 s) */
  maxProbeBackoffMs?: number
  /**
   * Wait before asking again a peer that answered RATE_LIMITED (`PeerBusyError`); refusals in a row double it.
   * A refusal is no offence and no silence. @default BUSY_PEER_BACKOFF_MS (500 ms)
   */
  busyBackoffMs?: number
  /** Cap on that doubling wait. @default MAX_BUSY_PEER_BACKOFF_MS (4 s) */
  maxBusyBackoffMs?: number
  /** @default MAX_FETCHES_PER_DEPTH */
  maxFetchesPerDepth?: number
  /** @default systemClock */
  clock?: Clock
  /** Where the sync logs (the service hands it `dsfg:state-sync`). @default silentLog */
  log?: Log
  /** Counts the nodes (and their bytes) each reply added; none by default. */
  metrics?: VerifiedCounts
  /**
   * Whether to let peers send a node's subtrie as its leaves (`SubtrieLeaves`) when the sync starts into a store
   * that holds nothing and no `onLeaf` is given: the client then builds those nodes itself, and neither their
   * hashes nor the branch nodes cross the wire. @default true
   */
  subtries?: boolean
}

/** Hashes (32 bytes each) one after another. */
type Hashes = Uint8Array

const NO_HASHES: Hashes = new Uint8Array(0)

/** `hashes` from the ready set followed by `more`, as one buffer. */
function joinHashes(hashes: Uint8Array[], more: Hashes): Hashes {
  const out = new Uint8Array(hashes.length * 32 + more.length)
  for (let i = 0; i < hashes.length; i++) out.set(hashes[i]!, i * 32)
  out.set(more, hashes.length * 32)
  return out
}

type RequestState = 'active' | 'timed-out' | 'dropped' | 'done'

interface NodeRequest {
  readonly id: number
  readonly peer: string
  /**
   * What it asks for, in the order it asks (no hash twice): its tasks. One buffer, not an object and a view per
   * node: a sync keeps some 16k nodes in flight, and as objects they outlived the scavenges that came during
   * their round trip (a third of what an in-process sync promoted).
   */
  readonly hashes: Hashes
  /** Per task: 1 once this request's reply brought it, so a reply bringing it twice is caught. */
  readonly delivered: Uint8Array
  readonly started: number
  readonly controller: AbortController
  /**
   * A second ask for tasks that are queued or asked of another peer too: a probe of a stalled peer (its one
   * task stays in the ready set) or a hedge of a late request. Its tasks are never put back by it.
   */
  readonly copy: boolean
  /** Whether it let the peer send subtries as their leaves. */
  readonly subtries: boolean
  timer: unknown
  state: RequestState
}

/** A request, with the items of its peer's requests up to it, and when the first of them was sent. */
interface OnTimeRequest {
  readonly req: NodeRequest
  readonly ahead: number
  readonly since: number
}

type SyncEvent =
  | { type: 'reply'; req: NodeRequest; nodes: NodesReplyItem[] }
  | { type: 'failure'; req: NodeRequest; error: unknown }
  | { type: 'timeout'; req: NodeRequest }

/**
 * The trie sync driver: pulls node hashes from a `TrieSync`, sends them to idle peers sized by each peer's
 * measured capacity, verifies and feeds the replies back, and moves to a newer root on `retarget`. I/O goes
 * through the injected `fetchNodes`, time through the injected clock: no sockets, no timers of its own.
 */
export class StateSyncer extends TypedEventEmitter<StateSyncerEvents> {
  private readonly store: KVStore
  private readonly fetchNodes: NodeFetcher
  private readonly init: StateSyncerInit
  private readonly clock: Clock
  private readonly maxNodes: number
  private readonly maxRequestsPerPeer: number
  private readonly flushBytes: number
  private readonly maxOffences: number
  private readonly tracker: RateTracker
  private readonly log: Log
  private readonly trieLog: Log
  private readonly metrics: VerifiedCounts | undefined

  private readonly peers = new Set<string>()
  private readonly offences = new Map<string, number>()
  private readonly banned = new Set<string>()
  /**
   * Peers that did not answer their last request (a timeout or a failure) and have not answered since: each
   * gets nothing but a probe of one node, once its wait has ended.
   */
  private readonly stalled: PeerBackoff
  /** Peers that answered RATE_LIMITED: asked nothing until their (short) wait ends, then as before. */
  private readonly busy: PeerBackoff
  /**
   * Requests a peer may have in flight, for a peer that refused some while serving others (a server sharing its
   * reply budget lets each peer hold only its part): halved at each such refusal, one more after each answer, up
   * to `maxRequestsPerPeer` (then its entry goes). Backing off from such a peer left it idle: 50 joiners of one
   * server each kept one reply at a time and spent the rest of their time waiting.
   */
  private readonly window = new Map<string, number>()
  /**
   * Per peer whose last reply was short (fewer nodes than asked, but some): twice what that reply brought, its
   * next requests' cap. A peer answering every request at once with one node had a high measured rate and was
   * asked for full requests: 11.8 times the trie's hashes for a 20k-key sync (an outside tester's).
   */
  private readonly shortCap = new Map<string, number>()
  /** When each peer last answered a request. */
  private readonly answeredAt = new Map<string, number>()
  /**
   * Peers that answered a copy of several tasks in full: a task's first copy goes to one of them alone when one
   * is idle, and holds the task back from the others until it is late or outpaced (`hedge`).
   */
  private readonly copyAnswerers = new Set<string>()
  /**
   * Peers that held a copy until others were asked for its tasks, or answered a copy of several tasks short: never
   * a first copy's only holder again.
   */
  private readonly copyLaggards = new Set<string>()
  /**
   * Peers measured on tasks that bring whole subtries (a reply carried one): until then a peer is asked for at
   * most `SUBTRIE_PROBE_TASKS` of them at once, since it was measured on single nodes.
   */
  private readonly subtrieMeasured = new Set<string>()
  /**
   * Peers asked node by node for the rest of the sync: they refused a request allowing subtries as invalid (a server
   * of an earlier version), or sent leaves that built no subtrie asked for.
   */
  private readonly nodesOnly = new Set<string>()
  /** Peers that answered a request in this sync: only they are given nodes nobody else is asked for. */
  private readonly proven = new Set<string>()
  /** A wake-up at the earliest due probe or hedge, and when. */
  private wakeTimer: { handle: unknown; at: number } | null = null
  /** Whether every usable peer is silent ('stalled' was dispatched) and none has answered since. */
  private starved = false
  /** Requests in flight, by peer; a peer with none has no entry. */
  private readonly active = new Map<string, Set<NodeRequest>>()
  /** Tasks to ask for again (from failed, dropped or refused requests), each hash mapped to itself. */
  private ready = new ByteMap<Uint8Array>()
  /** Peers that answered without a node, by its hash, while it is pending: it is not asked of them again. */
  private refusals = new ByteMap<Set<string>>()
  private events: SyncEvent[] = []
  private wakeUp: (() => void) | null = null
  private woken = false
  private nextRequestId = 1
  private running = false

  private sched: TrieSync | null = null
  private nextRoot: Uint8Array | null = null
  private started = 0
  private counters = { nodes: 0, bytes: 0, committed: 0, duplicates: 0, retargets: 0 }
  /** Whether this scheduler's requests may have subtries sent as their leaves (see `StateSyncerInit.subtries`). */
  private subtries = false
  /** Reply bytes a delivered task brought, on average over the last replies: what sizes requests by bytes. */
  private taskBytes = 0

  constructor(init: StateSyncerInit) {
    super()
    this.init = init
    this.store = init.store
    this.fetchNodes = init.fetchNodes
    this.clock = init.clock ?? systemClock
    this.log = init.log ?? silentLog
    this.trieLog = this.log.newScope('trie')
    this.metrics = init.metrics
    this.maxNodes = init.maxNodesPerRequest ?? MAX_NODES_PER_REQUEST
    this.maxRequestsPerPeer = Math.max(1, init.maxRequestsPerPeer ?? MAX_NODE_REQUESTS_PER_PEER)
    this.flushBytes = init.flushBytes ?? IDEAL_BATCH_BYTES
    this.maxOffences = init.maxPeerOffences ?? MAX_PEER_OFFENCES
    this.stalled = new PeerBackoff({
      initialMs: init.probeBackoffMs ?? STALLED_PROBE_BACKOFF_MS,
      maxMs: init.maxProbeBackoffMs ?? MAX_STALLED_PROBE_BACKOFF_MS
    })
    this.busy = new PeerBackoff({
      initialMs: init.busyBackoffMs ?? BUSY_PEER_BACKOFF_MS,
      maxMs: init.maxBusyBackoffMs ?? MAX_BUSY_PEER_BACKOFF_MS
    })
    this.tracker = new RateTracker({
      now: () => this.clock.now(),
      ttlLimitMs: init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      rttMinMs: init.rttMinMs ?? RTT_MIN_ESTIMATE_MS
    })
  }

  /** A peer that speaks the nodes protocol connected. */
  addPeer(peer: string): void {
    if (this.peers.has(peer) || this.banned.has(peer)) return
    this.peers.add(peer)
    this.tracker.track(peer)
    this.wake()
  }

  /** A peer disconnected: its requests go straight back to the ready set. */
  removePeer(peer: string): void {
    if (!this.peers.delete(peer)) return
    this.dropRequestsOf(peer)
    this.tracker.untrack(peer)
    this.stalled.clear(peer)
    this.busy.clear(peer)
    this.window.delete(peer)
    this.shortCap.delete(peer)
    this.answeredAt.delete(peer)
    this.proven.delete(peer)
    this.copyAnswerers.delete(peer)
    this.copyLaggards.delete(peer)
    this.subtrieMeasured.delete(peer)
    // `nodesOnly` is kept, as `banned` is: a peer that sent leaves of another subtrie gets none again by reconnecting.
    this.wake()
  }

  /** Moves a running sync to `root`: in-flight requests spin down, then a fresh scheduler starts there. */
  retarget(root: Uint8Array): void {
    if (root.length !== 32) throw new InvalidNodeError('trie root must be a 32-byte hash')
    const current = this.nextRoot ?? this.sched?.root
    if (current !== undefined && equalBytes(current, root)) return
    this.nextRoot = root.slice()
    this.wake()
  }

  stats(): StateSyncStats {
    const elapsedMs = this.running || this.started > 0 ? this.clock.now() - this.started : 0
    return {
      root: this.sched?.root ?? new Uint8Array(32),
      ...this.counters,
      pending: this.sched?.pending ?? 0,
      peers: this.usablePeers().length,
      stalled: [...this.stalled.peers()].filter((p) => !this.banned.has(p)).length,
      busy: this.usablePeers().filter((p) => this.busy.has(p)).length,
      inFlight: this.inFlight,
      rate: elapsedMs > 0 ? (this.counters.nodes * 1000) / elapsedMs : 0,
      elapsedMs
    }
  }

  /**
   * Syncs the trie at `root` into the store and resolves when every node is stored (or the latest root given
   * to `retarget` is). Waits for peers while there are none. Rejects with `NodeUnavailableError` when every
   * connected peer has refused a node, with `AbortError` on abort; completed subtries stay stored either way.
   */
  async sync(root: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<StateSyncResult> {
    if (this.running) throw new BusyError('a sync is already running on this syncer')
    this.running = true
    this.started = this.clock.now()
    this.counters = { nodes: 0, bytes: 0, committed: 0, duplicates: 0, retargets: 0 }
    this.nextRoot = null
    this.starved = false
    const signal = options.signal
    const onAbort = (): void => this.wake()
    signal?.addEventListener('abort', onAbort)
    this.log('syncing root %s with %d peers', toHex(root), this.peers.size)
    try {
      this.sched = await this.openScheduler(root)
      for (;;) {
        if (signal?.aborted) throw new AbortError('state sync aborted')
        await this.handleEvents()
        if (this.nextRoot !== null && this.inFlight === 0) await this.switchRoot()
        if (this.sched.pending === 0 && this.nextRoot === null) {
          // Done once the last nodes are written: a newer root that comes meanwhile is synced too, as `done`
          // promises the latest root stored whole (a sync taking whole subtries can finish within one write).
          await this.flush()
          if (this.nextRoot === null) break
          continue
        }
        if (this.nextRoot === null) {
          this.assign()
          this.checkRefusedByAll()
        }
        this.checkStarved()
        if (this.sched.memSize >= this.flushBytes) await this.flush()
        // `woken` catches a wake() that came while the loop was busy (a peer joined, an abort, a re-target
        // during a flush): without it the loop would wait for an event that was already signalled.
        if (this.events.length === 0 && !this.woken && signal?.aborted !== true) {
          await new Promise<void>((resolve) => (this.wakeUp = resolve))
        }
        this.wakeUp = null
        this.woken = false
      }
      const result = this.stats()
      this.log('synced root %s: %d nodes, %d bytes in %d ms', toHex(result.root), result.nodes, result.bytes, result.elapsedMs)
      return result
    } catch (err) {
      if (err instanceof AbortError) this.log.trace('sync aborted after %d nodes', this.counters.nodes)
      else this.log('sync failed after %d nodes: %e', this.counters.nodes, err)
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
      if (this.wakeTimer !== null) this.clock.clearTimeout(this.wakeTimer.handle)
      this.wakeTimer = null
      for (const peer of [...this.active.keys()]) this.dropRequestsOf(peer)
      this.events = []
      this.ready = new ByteMap()
      this.refusals = new ByteMap()
      // Whatever completed is complete-subtrie data: keep it, so a restart or a new root skips it.
      await this.flush().catch((err: unknown) => this.log.error('storing the completed nodes failed: %e', err))
      this.running = false
    }
  }

  private async openScheduler(root: Uint8Array): Promise<TrieSync> {
    const sched = await TrieSync.open(root, this.store, {
      log: this.trieLog,
      onLeaf: this.init.onLeaf,
      maxFetchesPerDepth: this.init.maxFetchesPerDepth
    })
    // Into a store holding parts of the trie (a resumed sync, a new root), a subtrie's leaves would bring again
    // what is stored: nodes are asked for one by one there, and stored subtries skipped.
    this.subtries = this.init.subtries !== false && this.init.onLeaf === undefined && sched.fresh
    this.taskBytes = 0
    this.subtrieMeasured.clear()
    return sched
  }

  private async switchRoot(): Promise<void> {
    const from = this.sched!.root
    const to = this.nextRoot!
    await this.flush()
    this.sched = await this.openScheduler(to)
    this.ready = new ByteMap()
    this.refusals = new ByteMap()
    this.nextRoot = null
    this.counters.retargets++
    this.log('re-targeted from root %s to %s', toHex(from), toHex(to))
    this.safeDispatch('retarget', { from, to })
  }

  private async flush(): Promise<void> {
    if (this.sched === null) return
    const stored = await this.sched.commit()
    this.counters.committed += stored
    // What is stored survives a restart: said at once, as a sync taking whole subtries stores in few, large steps.
    if (stored > 0) this.safeDispatch('progress', this.stats())
  }

  /** Peers that may have the nodes: connected, not left out for offences, answering. */
  private usablePeers(): string[] {
    return [...this.peers].filter((p) => !this.banned.has(p) && !this.stalled.has(p))
  }

  /**
   * Fills every peer's free request slots, fastest peers first and one request per peer per round, so a slow
   * peer's second request never takes nodes a fast peer's first could have had. Each request is sized to
   * what the peer delivers in a round trip.
   */
  private assign(): void {
    const now = this.clock.now()
    // A busy peer may have the nodes (it counts as usable) but is asked nothing until its wait ends.
    const usable = this.usablePeers().filter((p) => !this.busy.waiting(p, now))
    const proven = usable.filter((p) => this.proven.has(p))
    this.assignToAnswering(proven, usable.length)
    this.wakeAt(Math.min(this.hedge(proven), this.probe(usable.filter((p) => !this.proven.has(p))), this.busy.nextEnd(now)))
  }

  /** `peers` answer; `sharers` peers may take work at all (those being probed count, for the share). */
  private assignToAnswering(peers: string[], sharers: number): void {
    if (peers.length === 0) return
    const targetRtt = this.tracker.targetRoundTrip()
    const order = this.tracker.sortByCapacity(peers, targetRtt)
    // The nodes that can be asked for now, in equal shares among the peers that may take work (those still
    // answering their first probe too): at the top of the trie a level holds fewer nodes than the peers could
    // take, and by capacity alone the first peer measured took a whole level (four 1,024-node requests of
    // 430 KB, 1.8 s on an 8 Mbit/s link) while the others, still in their slow start, got 18 nodes each and
    // then waited for the level below it.
    const share = Math.max(1, Math.ceil((this.ready.size + this.sched!.queued) / Math.max(1, sharers)))
    // Round r tops up every peer with at most r requests out, so a peer whose first reply is back gets its
    // next request in round 0 and the peers still waiting on one get their second in round 1.
    for (let round = 0; round < this.maxRequestsPerPeer; round++) {
      for (const peer of order) {
        if (this.requestsOf(peer) > round || round >= (this.window.get(peer) ?? this.maxRequestsPerPeer)) continue
        let cap = Math.min(this.maxNodes, this.tracker.capacity(peer, targetRtt), share)
        // A peer in its slow start that has answered well so far takes a full share in its first request of
        // the round: it is measured from small requests, which mostly measure the round trip.
        // Not once it brings whole subtries: a peer measured anew on them is warming again, and a crawler given a
        // full share of subtries held them for a minute.
        if (round === 0 && this.tracker.warming(peer) && !this.subtrieMeasured.has(peer)) cap = Math.min(this.maxNodes, share)
        cap = Math.min(cap, this.shortCap.get(peer) ?? cap)
        // A task whose subtrie comes as its leaves brings hundreds of nodes: sized by bytes, the reply is not cut.
        if (this.subtries && this.taskBytes > 0) cap = Math.min(cap, Math.max(1, Math.floor(SUBTRIE_REQUEST_BYTES / this.taskBytes)))
        const again: Uint8Array[] = []
        // First what went back to the ready set (failed, dropped or refused requests), then new nodes straight
        // from the scheduler: they are pending and refused by nobody, so passing them through the ready set
        // (a set, a look-up and a delete each) bought nothing.
        if (this.ready.size > 0) {
          for (const hash of this.ready.values()) {
            if (again.length >= cap) break
            if (!this.sched!.isPending(hash)) {
              this.ready.delete(hash) // delivered meanwhile (a late reply)
              continue
            }
            if (this.hasRefused(hash, peer)) continue
            again.push(hash)
            this.ready.delete(hash)
          }
        }
        const fresh = again.length < cap ? this.sched!.missingHashes(cap - again.length) : NO_HASHES
        let hashes = again.length === 0 ? fresh : joinHashes(again, fresh)
        if (
          this.subtries &&
          !this.subtrieMeasured.has(peer) &&
          !this.nodesOnly.has(peer) &&
          hashes.length > SUBTRIE_PROBE_TASKS * 32 &&
          this.deepEnough(hashes)
        ) {
          // Measured on single nodes so far: a few subtries first (the rest wait in the ready set).
          for (let i = SUBTRIE_PROBE_TASKS; i < hashes.length / 32; i++) {
            const hash = hashAt(hashes, i).slice()
            this.ready.set(hash, hash)
          }
          hashes = hashes.subarray(0, SUBTRIE_PROBE_TASKS * 32)
        }
        if (hashes.length > 0) this.send(peer, hashes, false)
        else if (this.ready.size === 0) return // nothing left to hand out
      }
    }
  }

  /**
   * Gives the answering peers left idle (nothing queued they may take), fastest first, a copy of the tasks of
   * requests that are late: out for `HEDGE_AFTER_ROUND_TRIPS` round trips; and of those a peer outpaces
   * (`RateTracker.outpaces`: their peer is overdue on them, or it has twice the capacity of their peer, which
   * needs more than twice as long for them, behind its other requests). A peer that has not answered yet may be
   * silent, and every fresh peer may be: the late requests of all of them are copied at once, so however many
   * silent peers took the first requests, the sync waits for them about one late-request span, not one timeout
   * each. A task is copied to one idle peer trusted with copies (`trustedWithCopies`) when one is idle, and its
   * copy then holds it back from the others until late or outpaced, as for any request; otherwise to
   * `UNTRUSTED_COPIES` idle peers at a time, holding nothing back. Returns when the next request becomes late or
   * overdue, for the wake-up.
   */
  private hedge(peers: string[]): number {
    const targetRtt = this.tracker.targetRoundTrip()
    const idle = this.tracker.sortByCapacity(
      peers.filter((p) => this.requestsOf(p) === 0),
      targetRtt
    )
    if (idle.length === 0) return Number.POSITIVE_INFINITY
    const now = this.clock.now()
    const lateAfter = Math.min(this.tracker.targetTimeout(), HEDGE_AFTER_ROUND_TRIPS * this.tracker.roundTrip())
    let next = Number.POSITIVE_INFINITY
    const late: NodeRequest[] = []
    /** Requests not late yet, with the items of their peer's requests up to them and when the first was sent. */
    const onTime: OnTimeRequest[] = []
    /** Copies answering peers hold. */
    const copies: OnTimeRequest[] = []
    const answering = new Set(peers)
    for (const requests of this.active.values()) {
      let ahead = 0
      let since = Number.POSITIVE_INFINITY
      // In the order sent: one peer's replies come one after another over its link.
      for (const req of requests) {
        ahead += req.delivered.length
        since = Math.min(since, req.started)
        if (req.copy) {
          if (answering.has(req.peer)) copies.push({ req, ahead, since })
          continue
        }
        if (req.started + lateAfter <= now) late.push(req)
        else {
          next = Math.min(next, req.started + lateAfter)
          onTime.push({ req, ahead, since })
        }
      }
    }
    if (late.length === 0 && onTime.length === 0) return next
    /**
     * How many copies of each task this call gave (`UNTRUSTED_COPIES` for a first copy to a trusted peer: nobody
     * else gets one). Trusted peers come first, so what they refused or had no room for goes to the others.
     */
    const given = new ByteMap<number>()
    const trusted = idle.filter((p) => this.trustedWithCopies(p))
    for (const peer of trusted.length === 0 ? idle : [...trusted, ...idle.filter((p) => !this.trustedWithCopies(p))]) {
      const cap = Math.min(this.maxNodes, this.tracker.capacity(peer, targetRtt), this.shortCap.get(peer) ?? this.maxNodes)
      // Late requests, and those an idle peer would answer well before their own peer is expected to: a peer
      // crawling at 40 KB/s, given a round trip's work like any other (a second at the least), held parts of
      // the trie while the fast peer waited. A 20k-key sync beside an honest peer behind 2 MB/s took 4.0-4.2 s
      // against 2.2 s from the honest peer alone; now 2.5 s.
      const sources = late.slice()
      for (const entry of onTime) if (this.outpacedBy(peer, entry, now)) sources.push(entry.req)
      else next = Math.min(next, entry.since + this.tracker.overdueAfter(peer, entry.req.peer, entry.ahead))
      // A copy held by a peer trusted with copies keeps its tasks from this one until it is late, or this one
      // outpaces its holder; then that holder is trusted no more. A copy held by any other peer keeps nothing
      // back. Each task went to the first idle peer alone (`17153e2`): a peer quick with other requests but
      // silent on copies (an outside tester's sybil of the crawler) held them until late, and the sync took
      // 7.5-8.0 s against 3.0 s when each idle peer got a copy of every task; now 3.0 s. Those copies cost
      // duplicates instead: 1,915 nodes beside 12 fast peers in the same tester's matrix, 412 in the unit
      // test's silent peer beside four (61 now).
      let held: ByteMap<boolean> | null = null
      for (const entry of copies) {
        const holder = entry.req.peer
        const trustedHolder = this.trustedWithCopies(holder)
        const holds = trustedHolder && entry.req.started + lateAfter > now && !this.outpacedBy(peer, entry, now)
        if (holds) next = Math.min(next, entry.req.started + lateAfter, entry.since + this.tracker.overdueAfter(peer, holder, entry.ahead))
        else {
          if (trustedHolder) this.copyLaggards.add(holder)
          sources.push(entry.req)
        }
        held ??= new ByteMap<boolean>()
        for (let i = 0, n = entry.req.delivered.length; i < n; i++) {
          const hash = hashAt(entry.req.hashes, i)
          // Held if any holder still holds it.
          held.set(hash, holds || held.get(hash) === true)
        }
      }
      if (sources.length === 0) continue
      const trustedPeer = this.trustedWithCopies(peer)
      const tasks = new ByteMap<Uint8Array>()
      for (const req of sources) {
        if (req.peer === peer) continue
        for (let i = 0, n = req.delivered.length; i < n && tasks.size < cap; i++) {
          const hash = hashAt(req.hashes, i)
          if (held?.get(hash) === true || (given.get(hash) ?? 0) >= UNTRUSTED_COPIES) continue
          if (this.sched!.isPending(hash) && !this.hasRefused(hash, peer)) tasks.set(hash, hash)
        }
      }
      if (tasks.size === 0) continue
      for (const hash of tasks.values()) {
        const first = trustedPeer && held?.get(hash) === undefined
        given.set(hash, first ? UNTRUSTED_COPIES : (given.get(hash) ?? 0) + 1)
      }
      this.send(peer, joinHashes([...tasks.values()], NO_HASHES), true)
      // Woken when the others may take these tasks again: the copy overdue by its own peer's measure, or late.
      next = Math.min(next, now + Math.min(lateAfter, this.tracker.overdueAfter(peer, peer, tasks.size)))
    }
    return next
  }

  /**
   * Whether `peer` may hold a task's only copy: it answered a copy of several tasks in full, and never held one
   * until the others were asked.
   */
  private trustedWithCopies(peer: string): boolean {
    return this.copyAnswerers.has(peer) && !this.copyLaggards.has(peer)
  }

  /** Whether idle `peer` outpaces `entry`'s peer on it (`RateTracker.outpaces`), counting from its last reply. */
  private outpacedBy(peer: string, { req, ahead, since }: OnTimeRequest, now: number): boolean {
    if (req.peer === peer) return false
    const sending = now - Math.max(since, this.answeredAt.get(req.peer) ?? since)
    return this.tracker.outpaces(peer, req.peer, req.delivered.length, ahead, now - since, sending)
  }

  /**
   * Sends one node it has not refused to each peer that has not answered in this sync (`fresh`), and to each
   * stalled peer whose probe is due, if it has no request out. The node stays in the ready set, so the
   * answering peers fetch it as usual: a peer holds back nothing until it has answered once, so any number of
   * silent peers can join without delaying the sync. Returns when the next probe is due, for the wake-up.
   */
  private probe(fresh: string[]): number {
    let next = Number.POSITIVE_INFINITY
    const now = this.clock.now()
    const due: string[] = []
    for (const peer of fresh) if (this.requestsOf(peer) === 0) due.push(peer)
    for (const peer of this.stalled.peers()) {
      if (this.banned.has(peer) || !this.peers.has(peer) || this.requestsOf(peer) > 0) continue
      const probeAt = this.stalled.until(peer)!
      if (probeAt <= now) due.push(peer)
      else next = Math.min(next, probeAt)
    }
    for (const peer of due) {
      this.refill(1)
      const task = [...this.ready.values()].find((hash) => this.sched!.isPending(hash) && !this.hasRefused(hash, peer))
      if (task === undefined) continue
      this.send(peer, task, true)
    }
    return next
  }

  /** Wakes the loop at `at` (through the injected clock), unless a wake-up is due by then already. */
  private wakeAt(at: number): void {
    if (at === Number.POSITIVE_INFINITY || (this.wakeTimer !== null && this.wakeTimer.at <= at)) return
    if (this.wakeTimer !== null) this.clock.clearTimeout(this.wakeTimer.handle)
    const handle = this.clock.setTimeout(
      () => {
        this.wakeTimer = null
        this.wake()
      },
      Math.max(0, at - this.clock.now())
    )
    this.wakeTimer = { handle, at }
  }

  /** Requests in flight to every peer. */
  private get inFlight(): number {
    let n = 0
    for (const requests of this.active.values()) n += requests.size
    return n
  }

  private requestsOf(peer: string): number {
    return this.active.get(peer)?.size ?? 0
  }

  private dropRequestsOf(peer: string): void {
    for (const req of [...(this.active.get(peer) ?? [])]) this.finish(req, 'dropped')
  }

  private refill(cap: number): void {
    const want = cap - this.ready.size
    if (want <= 0) return
    for (const hash of this.sched!.missing(want)) this.ready.set(hash, hash)
  }

  /** Whether `peer` answered without `hash`'s node. */
  private hasRefused(hash: Uint8Array, peer: string): boolean {
    return this.refusals.size > 0 && this.refusals.get(hash)?.has(peer) === true
  }

  private send(peer: string, hashes: Hashes, copy: boolean): void {
    const subtrieBytes = this.subtries && !this.nodesOnly.has(peer) && this.deepEnough(hashes) ? MAX_RESPONSE_BYTES : undefined
    const req: NodeRequest = {
      id: this.nextRequestId++,
      peer,
      hashes,
      delivered: new Uint8Array(hashes.length / 32),
      started: this.clock.now(),
      controller: new AbortController(),
      copy,
      subtries: subtrieBytes !== undefined,
      timer: undefined,
      state: 'active'
    }
    // Each request keeps its own tasks: none is ever overwritten, which lost tasks and stalled go-ethereum
    // (#15138).
    const requests = this.active.get(peer)
    if (requests === undefined) this.active.set(peer, new Set([req]))
    else requests.add(req)
    req.timer = this.clock.setTimeout(() => this.push({ type: 'timeout', req }), this.tracker.targetTimeout())
    const asked: Uint8Array[] = new Array(req.delivered.length)
    for (let i = 0; i < asked.length; i++) asked[i] = hashAt(hashes, i)
    let pending: Promise<NodesReplyItem[]>
    try {
      pending = this.fetchNodes(peer, asked, { signal: req.controller.signal, subtrieBytes })
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (nodes) => this.push({ type: 'reply', req, nodes }),
      (error: unknown) => this.push({ type: 'failure', req, error })
    )
  }

  /**
   * Whether every node of `hashes` is at least `SUBTRIE_MIN_DEPTH` deep, so its subtrie may come as its leaves. Not
   * the first levels of the trie: a server reads a subtrie until it passes the reply's room and only then sends
   * the node, so asking that of the root's (the whole trie) would cost it a reply's worth of reads for nothing.
   */
  private deepEnough(hashes: Hashes): boolean {
    for (let at = 0; at < hashes.length; at += 32) if (this.sched!.depthAt(hashes, at) < SUBTRIE_MIN_DEPTH) return false
    return true
  }

  /** Ends a request that is still active: stops its timer and puts its tasks back in the ready set. */
  private finish(req: NodeRequest, state: Exclude<RequestState, 'active'>, refused = false): void {
    if (req.state !== 'active') return
    req.state = state
    this.clock.clearTimeout(req.timer)
    const requests = this.active.get(req.peer)
    if (requests?.delete(req) === true && requests.size === 0) this.active.delete(req.peer)
    if (state === 'dropped' || state === 'timed-out') req.controller.abort()
    const { hashes, delivered } = req
    for (let i = 0; i < delivered.length; i++) {
      if (delivered[i] === 1) continue // its reply brought it
      // A node no longer pending needs neither: its refusal is never read again (`accept` forgets those).
      if (this.sched?.isPendingAt(hashes, i * 32) !== true) continue
      if (refused) {
        const hash = hashAt(hashes, i).slice() // not a view: it would keep the whole request's hashes
        const by = this.refusals.get(hash)
        if (by === undefined) this.refusals.set(hash, new Set([req.peer]))
        else by.add(req.peer)
      }
      // A copy's tasks are queued still, or with the request they were copied from, or stored.
      if (!req.copy) {
        const hash = hashAt(hashes, i)
        this.ready.set(hash, hash)
      }
    }
  }

  private push(event: SyncEvent): void {
    this.events.push(event)
    this.wake()
  }

  private wake(): void {
    this.woken = true
    this.wakeUp?.()
  }

  /**
   * Handles the events queued so far; those that arrive meanwhile wait for the next turn of the loop, which
   * checks for an abort, a re-target and a flush between turns (requests sent between the replies below are
   * answered while they are processed).
   */
  private async handleEvents(): Promise<void> {
    for (let queued = this.events.length; queued > 0 && this.events.length > 0; queued--) {
      const event = this.events.shift()!
      switch (event.type) {
        case 'reply':
          await this.onReply(event.req, event.nodes)
          // Replies that arrived together are processed one after another (tens of ms each for a full one at
          // the top of the trie): the nodes this one made known go out at once rather than after the others.
          if (queued > 1 && this.nextRoot === null) this.assign()
          break
        case 'failure':
          this.onFailure(event.req, event.error)
          break
        case 'timeout':
          this.onTimeout(event.req)
          break
        default: {
          const exhaustive: never = event
          throw new InvalidNodeError(`unknown sync event ${String(exhaustive)}`)
        }
      }
    }
  }

  private async onReply(req: NodeRequest, nodes: NodesReplyItem[]): Promise<void> {
    const wasActive = req.state === 'active'
    // Match by hash, never by position: any subset in any order is a valid reply.
    const valid: HashedBlob[] = []
    const { hashes, delivered } = req
    const asked = delivered.length
    let offence: PenaltyReason | null = nodes.length > asked ? 'unrequested-node' : null
    let replyBytes = 0
    // A server answers in the order asked, leaving out what it lacks: each blob is looked for from the task
    // after the last one matched, and a map of the tasks is made only for a reply out of that order.
    let next = 0
    let byHash: ByteMap<number> | null = null
    // The scheduler takes these hashes instead of hashing the blobs again. A subtrie sent as its leaves is
    // rebuilt here, and matched by its root's hash as a node is.
    const withSubtries = nodes.some((n) => n instanceof SubtrieLeaves)
    let hashed: HashedBlob[]
    if (withSubtries) {
      hashed = []
      for (const item of nodes) {
        replyBytes += item.length
        if (!(item instanceof SubtrieLeaves)) hashed.push(hashBlob(item))
        else {
          try {
            hashed.push(hashSubtrie(item))
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err
            this.log('subtrie leaves from %s: %e', req.peer, err)
            offence = 'protocol-error'
          }
        }
      }
    } else {
      for (const node of nodes) replyBytes += node.length
      hashed = hashBlobs(nodes as Uint8Array[])
    }
    for (const node of hashed) {
      let task = -1
      if (byHash === null) {
        let i = next
        while (i < asked && !hashesEqualAt(node.hash, 0, hashes, i * 32)) i++
        if (i < asked) {
          task = i
          next = i + 1
        } else {
          byHash = new ByteMap(asked)
          for (let t = 0; t < asked; t++) byHash.set(hashAt(hashes, t), t)
        }
      }
      if (byHash !== null) task = byHash.get(node.hash) ?? -1
      if (task < 0 || delivered[task] === 1) {
        // Leaves that build another subtrie than any asked for: never stored, and no offence, as an honest server
        // of a trie with nodes no canonical trie has (a leaf of under 32 bytes stored under its hash, say) sends
        // leaves a client rebuilds to another hash. The peer is asked node by node from now on.
        if (node.below !== undefined && task < 0) this.nodesOnly.add(req.peer)
        else offence = 'unrequested-node'
        continue
      }
      delivered[task] = 1
      valid.push(node)
    }
    await this.accept(valid)
    if (valid.length > 0) {
      const perTask = replyBytes / valid.length
      this.taskBytes = this.taskBytes === 0 ? perTask : (this.taskBytes + perTask) / 2
    }
    if (wasActive) {
      if (req.subtries && valid.length > 0 && !this.subtrieMeasured.has(req.peer)) {
        // Its first reply where subtries were allowed: measured on what it sends from here on, anew if that is
        // whole subtries (a server that sends only nodes stays measured as it was).
        this.subtrieMeasured.add(req.peer)
        if (withSubtries) this.tracker.restart(req.peer)
      }
      // What the peer delivered, needed or not: a hedge may have brought the same nodes first.
      this.tracker.update(req.peer, this.clock.now() - req.started, valid.length)
      this.capAfterReply(req.peer, asked, valid.length)
      // Any answer, even "I have none of them", shows the peer is there: it gets work sized by its rate again.
      this.stalled.clear(req.peer)
      this.busy.clear(req.peer)
      this.answeredAt.set(req.peer, this.clock.now())
      this.widen(req.peer)
      this.proven.add(req.peer)
      // A copy of several tasks answered in full earns trust with copies; answered short, even empty (legal:
      // "I don't have them"), loses it for good (a sybil that had earned it refused every later copy at once,
      // never late, while other peers were given none: 10.1 s against 2.9 s, an outside tester's).
      if (req.copy && asked > 1) {
        if (valid.length === asked) this.copyAnswerers.add(req.peer)
        else this.copyLaggards.add(req.peer)
      }
      // An empty reply means "I don't have them": never ask this peer for them again (go-ethereum #20545).
      this.finish(req, 'done', nodes.length === 0)
    }
    if (offence !== null) this.penalise(req.peer, offence)
    this.safeDispatch('progress', this.stats())
  }

  /**
   * A short reply (some nodes, fewer than asked) caps the peer's next requests at twice what it brought; a full
   * one doubles the cap until it is no cap (a slow start): a peer that answers small requests in full and large
   * ones with one node gets no large ones back at once.
   */
  private capAfterReply(peer: string, asked: number, brought: number): void {
    if (brought > 0 && brought < asked) this.shortCap.set(peer, 2 * brought)
    else if (brought === asked && this.shortCap.has(peer)) {
      if (2 * asked >= this.maxNodes) this.shortCap.delete(peer)
      else this.shortCap.set(peer, Math.max(this.shortCap.get(peer)!, 2 * asked))
    }
  }

  /** Feeds hash-verified blobs to the scheduler; returns how many it needed. */
  private async accept(blobs: HashedBlob[]): Promise<number> {
    if (blobs.length === 0) return 0
    const results = await this.sched!.processMany(blobs)
    const bytesBefore = this.counters.bytes
    let useful = 0
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!
      if (r.ok) {
        const below = blobs[i]!.below
        const nodes = below === undefined ? 1 : 1 + below.hashes.length
        useful += nodes
        this.counters.nodes += nodes
        this.counters.bytes += below === undefined ? blobs[i]!.blob.length : below.bytes
        if (this.ready.size > 0) this.ready.delete(r.hash)
        if (this.refusals.size > 0) this.refusals.delete(r.hash)
      } else if (r.error instanceof InvalidNodeError) {
        // The blob hashes to a node of the trie yet is not a node: the root itself commits to garbage.
        throw r.error
      } else {
        this.counters.duplicates++
      }
    }
    if (this.metrics !== undefined && useful > 0) {
      this.metrics.count.increment(useful)
      this.metrics.bytes.increment(this.counters.bytes - bytesBefore)
    }
    return useful
  }

  private onFailure(req: NodeRequest, error: unknown): void {
    if (req.state !== 'active') return // we aborted it (timeout, drop, stop)
    this.log('nodes request %d to %s failed: %e', req.id, req.peer, error)
    if (error instanceof ProtocolError) {
      this.tracker.update(req.peer, this.clock.now() - req.started, 0)
      this.finish(req, 'dropped')
      this.penalise(req.peer, 'protocol-error')
      return
    }
    if (error instanceof PeerBusyError) {
      this.refused(req)
      return
    }
    if (error instanceof RequestRejectedError && req.subtries) {
      // A server of an earlier version reads the request's second item as a malformed request: no offence, and
      // it is asked node by node from now on.
      this.nodesOnly.add(req.peer)
      this.finish(req, 'dropped')
      return
    }
    // The fetcher's own deadline (an `AbortError` we did not cause) is a timeout like ours; any other failure
    // (a reset stream) also leaves the peer unheard, to be probed before it gets work again.
    this.silence(req, error instanceof AbortError)
  }

  private onTimeout(req: NodeRequest): void {
    if (req.state !== 'active') return // a reply or a drop won the race
    this.log('nodes request %d to %s timed out', req.id, req.peer)
    this.silence(req, true)
  }

  /**
   * A request of `req.peer` went unanswered: it and every other request queued behind it on the peer's stream
   * go back to the ready set at once, for the next idle peer, and the peer gets only probes until it answers.
   * Waiting for each pipelined request to time out in turn made a silent peer cost several timeouts.
   * The peer is left out instead of dropped, which only causes churn when it reconnects (go-ethereum #15576).
   */
  private silence(req: NodeRequest, timedOut: boolean): void {
    this.tracker.update(req.peer, this.clock.now() - req.started, 0)
    this.finish(req, timedOut ? 'timed-out' : 'dropped')
    this.dropRequestsOf(req.peer)
    const first = !this.stalled.has(req.peer)
    this.stalled.failed(req.peer, this.clock.now())
    // Reported once per silence, not for each unanswered probe.
    if (first && timedOut) this.report({ peer: req.peer, reason: 'stalled', excluded: true })
  }

  /**
   * `req.peer` answered RATE_LIMITED (its request tokens or its reply budget are used up): "later", not "liar"
   * and not silence. The request's tasks go back to the ready set for the other peers at once, with no offence
   * counted and its measured rate left alone, and it is asked again, with work sized as before, when its short
   * backoff ends or it answers one of its other requests. Treated as silence it waited up to a minute between
   * probes, long after the server had room again.
   */
  private refused(req: NodeRequest): void {
    this.finish(req, 'dropped')
    const answered = this.answeredAt.get(req.peer)
    if (answered !== undefined && answered >= req.started) {
      // It answered a request since this one was sent: it serves, only not this many at once.
      const window = Math.max(1, (this.window.get(req.peer) ?? this.maxRequestsPerPeer) >> 1)
      this.window.set(req.peer, window)
      this.log('peer %s refused a request while serving others: %d in flight from now', req.peer, window)
      return
    }
    // Its other requests stay in flight: each comes back refused too (a few bytes, at once) or answered, which
    // ends the wait. Dropping them threw away the answers on their way and reset the stream they shared.
    const until = this.busy.failed(req.peer, this.clock.now())
    this.log('peer %s is busy: asked again in %d ms', req.peer, until - this.clock.now())
    // Reported like a reply, so a watcher sees `busy` rise while nothing else moves.
    this.safeDispatch('progress', this.stats())
  }

  /** One more request in flight for `peer` (see `window`), which answered one. */
  private widen(peer: string): void {
    const window = this.window.get(peer)
    if (window === undefined) return
    if (window + 1 >= this.maxRequestsPerPeer) this.window.delete(peer)
    else this.window.set(peer, window + 1)
  }

  /** Dispatches 'stalled' once each time every usable peer has gone silent. */
  private checkStarved(): void {
    const starving = this.usablePeers().length === 0 && [...this.stalled.peers()].some((p) => this.peers.has(p) && !this.banned.has(p))
    if (!starving || this.starved) {
      this.starved = starving
      return
    }
    this.starved = true
    this.log('every peer stalled: probing them until one answers')
    this.safeDispatch('stalled', this.stats())
  }

  /** Counts an offence against `peer` in this sync, past `maxPeerOffences` leaves it out, and reports it. */
  private penalise(peer: string, reason: PenaltyReason): void {
    const offences = (this.offences.get(peer) ?? 0) + 1
    this.offences.set(peer, offences)
    const excluded = offences >= this.maxOffences
    if (excluded) {
      this.banned.add(peer)
      this.dropRequestsOf(peer)
    }
    this.report({ peer, reason, excluded })
  }

  private report(penalty: PeerPenalty): void {
    const excluded = penalty.reason === 'stalled' ? ', only probed until it answers' : ', asked nothing more in this sync'
    this.log('peer %s: %s%s', penalty.peer, penalty.reason, penalty.excluded ? excluded : '')
    try {
      this.init.onPenalty?.(penalty)
    } catch (err) {
      // A faulty hook must not break the sync.
      this.log.error('the onPenalty hook threw: %e', err)
    }
    this.safeDispatch('peer:penalised', penalty)
  }

  /** Fails the sync when a node the scheduler needs has been refused by every usable peer. */
  private checkRefusedByAll(): void {
    const peers = this.usablePeers()
    if (peers.length === 0 || this.inFlight > 0) return
    if (this.refusals.size === 0) return
    for (const hash of this.ready.values()) {
      const refusedBy = this.refusals.get(hash)
      if (refusedBy !== undefined && peers.every((p) => refusedBy.has(p))) {
        throw new NodeUnavailableError(
          hash,
          `trie node ${toHex(hash)} failed with all peers (${refusedBy.size} refusals, ${peers.length} peers)`
        )
      }
    }
  }

  private safeDispatch<K extends keyof StateSyncerEvents>(
    type: K,
    detail: StateSyncerEvents[K] extends CustomEvent<infer D> ? D : never
  ): void {
    dispatchSafely(this, type, detail)
  }
}
