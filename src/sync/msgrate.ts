import {
  CAPACITY_OVERESTIMATION,
  CAPACITY_WARMUP_REPLIES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MEASUREMENT_IMPACT,
  RTT_MAX_ESTIMATE_MS,
  RTT_MIN_CONFIDENCE,
  RTT_MIN_ESTIMATE_MS,
  TTL_SCALING,
  TUNING_CONFIDENCE_CAP,
  TUNING_IMPACT
} from '../constants.js'

/**
 * How much faster an idle peer must be than another, by capacity and by the time the other still needs for a
 * request, before it is asked for that request's nodes too (`RateTracker.outpaces`). Two: peers of about one
 * speed never qualify, and a copy costs the idle peer's link at most half the time it saves.
 */
const OUTPACE_FACTOR = 2

// reference: go-ethereum@02b73d4e p2p/msgrate/msgrate.go (Tracker, Trackers): per-peer throughput and
// round-trip moving averages, a global round-trip estimate tuned towards a low percentile of the peers',
// and a confidence that new peers lower and time restores.

export interface RateTrackerInit {
  /** @default RTT_MIN_ESTIMATE_MS */
  rttMinMs?: number
  /** @default RTT_MAX_ESTIMATE_MS */
  rttMaxMs?: number
  /** Cap on `targetTimeout()`. @default DEFAULT_REQUEST_TIMEOUT_MS */
  ttlLimitMs?: number
  /** Milliseconds clock; injected so tests are deterministic. @default Date.now */
  now?: () => number
}

interface PeerRate {
  /** Items per second, moving average of useful deliveries. */
  capacity: number
  /** Round trip in ms, moving average. */
  rtt: number
  /** Replies with items measured so far (counted up to `CAPACITY_WARMUP_REPLIES`). */
  replies: number
  /** Its quickest reply with items, in ms: about its bare round trip. */
  quickest: number
}

/** Measured capacity and round trip per peer, and the request size and timeout derived from them. */
export class RateTracker {
  private readonly peers = new Map<string, PeerRate>()
  private readonly rttMin: number
  private readonly rttMax: number
  private readonly ttlLimit: number
  private readonly now: () => number
  private roundtrip: number
  private confidence = 1
  private tuned: number

  constructor(init: RateTrackerInit = {}) {
    this.rttMin = init.rttMinMs ?? RTT_MIN_ESTIMATE_MS
    this.rttMax = init.rttMaxMs ?? RTT_MAX_ESTIMATE_MS
    this.ttlLimit = init.ttlLimitMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.now = init.now ?? Date.now
    // Start pessimistic but inside the timeout cap, so the first requests are small and not cut off early.
    this.roundtrip = Math.min(this.rttMax, Math.max(this.rttMin, this.ttlLimit / TTL_SCALING))
    this.tuned = this.now()
  }

  /** Starts tracking a peer with the mean capacity and median round trip of the others. */
  track(peer: string): void {
    if (this.peers.has(peer)) return
    let capacity = 0
    for (const p of this.peers.values()) capacity += p.capacity
    if (this.peers.size > 0) capacity /= this.peers.size
    this.peers.set(peer, { capacity, rtt: this.medianRoundTrip(), replies: 0, quickest: Number.POSITIVE_INFINITY })
    // A new peer makes the estimate less trustworthy until it is measured (msgrate `detune`).
    const n = this.peers.size
    if (n === 1) this.confidence = 1
    else if (n < TUNING_CONFIDENCE_CAP) this.confidence = Math.max(RTT_MIN_CONFIDENCE, (this.confidence * (n - 1)) / n)
  }

  untrack(peer: string): void {
    this.peers.delete(peer)
  }

  /**
   * Measures `peer` afresh, its round trip kept: its next reply sets its capacity (a slow start), for items of
   * another size than those it was measured on (a trie sync's tasks, once each brings a whole subtrie).
   */
  restart(peer: string): void {
    const p = this.peers.get(peer)
    if (p === undefined) return
    p.capacity = 0
    p.replies = 0
  }

  /**
   * Records a reply: `items` useful items after `elapsedMs`. Zero items (a timeout or an empty reply) drops
   * the peer's capacity to zero, so its next request is a single item. During a peer's first
   * `CAPACITY_WARMUP_REPLIES` replies a faster measurement is taken whole (a slow start): each request is
   * sized by the last, so the average would climb from a single item only a tenth of the way per reply.
   */
  update(peer: string, elapsedMs: number, items: number): void {
    const p = this.peers.get(peer)
    if (p === undefined) return
    if (items === 0) {
      p.capacity = 0
      return
    }
    const elapsed = Math.max(elapsedMs, 1)
    const measured = (items * 1000) / elapsed
    const averaged = (1 - MEASUREMENT_IMPACT) * p.capacity + MEASUREMENT_IMPACT * measured
    p.capacity = p.replies < CAPACITY_WARMUP_REPLIES ? Math.max(averaged, measured) : averaged
    p.replies = Math.min(CAPACITY_WARMUP_REPLIES, p.replies + 1)
    p.rtt = (1 - MEASUREMENT_IMPACT) * p.rtt + MEASUREMENT_IMPACT * elapsed
    p.quickest = Math.min(p.quickest, elapsed)
  }

  /**
   * Whether the peer is in its first `CAPACITY_WARMUP_REPLIES` replies (its capacity still comes mostly from
   * small first requests) and none of them failed.
   */
  warming(peer: string): boolean {
    const p = this.peers.get(peer)
    return p !== undefined && p.replies < CAPACITY_WARMUP_REPLIES && p.capacity > 0
  }

  /**
   * Whether `fast`, idle, would deliver `items` well before `slow` is expected to. `slow` has `itemsAhead` items
   * of its requests to send (these `items` last among them: one peer's replies share its link), the oldest sent
   * `elapsedMs` ago; its link has been on them for `sendingMs` (since its last reply, if that came later).
   * Either that request is overdue (`overdueAfter`), or `fast` has `OUTPACE_FACTOR` times the capacity of
   * `slow` and `slow` needs more than `OUTPACE_FACTOR` times what `fast` takes for `items`, a round trip
   * included. False while either has no measured capacity (a peer that has not answered is the late rule's,
   * `HEDGE_AFTER_ROUND_TRIPS`). Peers of about one speed qualify only when one of them is overdue: copies
   * between them would cost bandwidth at every level of a sync.
   */
  outpaces(fast: string, slow: string, items: number, itemsAhead: number, elapsedMs: number, sendingMs: number): boolean {
    const f = this.peers.get(fast)
    const s = this.peers.get(slow)
    if (f === undefined || s === undefined || s.capacity <= 0 || f.capacity <= 0) return false
    // Already far later than its own capacity says (`overdueAfter`): a peer whose first small replies came quick
    // (taken whole in its warm-up) and whose larger ones crawl keeps a high capacity, so its requests never look
    // long (an outside tester's made a sync 3.8 times as long as the fast peer's alone).
    if (elapsedMs > this.overdueAfter(fast, slow, itemsAhead)) return true
    if (f.capacity < OUTPACE_FACTOR * s.capacity) return false
    // What is left of its queue counts from its last reply: since its oldest request, its link also carried the
    // replies that came meanwhile. Counted from the oldest, a crawler given requests that queued behind each other
    // looked nearly done while most of its queue was still to come.
    return (itemsAhead * 1000) / s.capacity - sendingMs > OUTPACE_FACTOR * (f.rtt + (items * 1000) / f.capacity)
  }

  /**
   * How long after its peer's oldest request still out a request with `itemsAhead` items of that peer's
   * requests up to it is overdue for `fast`: `OUTPACE_FACTOR` times what its peer's capacity says it takes,
   * and `fast`'s bare round trip (its quickest reply). Infinite while either is unmeasured.
   */
  overdueAfter(fast: string, slow: string, itemsAhead: number): number {
    const f = this.peers.get(fast)
    const s = this.peers.get(slow)
    if (f === undefined || s === undefined || s.capacity <= 0 || f.capacity <= 0) return Number.POSITIVE_INFINITY
    return OUTPACE_FACTOR * ((itemsAhead * 1000) / s.capacity + f.quickest)
  }

  /** Items the peer should deliver within `targetRttMs`, at least 1. */
  capacity(peer: string, targetRttMs: number): number {
    const p = this.peers.get(peer)
    const throughput = ((p?.capacity ?? 0) * targetRttMs) / 1000
    return Math.max(1, Math.ceil(1 + CAPACITY_OVERESTIMATION * throughput))
  }

  /** The round trip requests should be sized for: slightly under the estimate, to push it down. */
  targetRoundTrip(): number {
    this.tune()
    return 0.9 * this.roundtrip
  }

  /** The round-trip estimate itself. */
  roundTrip(): number {
    this.tune()
    return this.roundtrip
  }

  /** How long to wait for a reply before giving up on it. */
  targetTimeout(): number {
    this.tune()
    return Math.min(this.ttlLimit, (TTL_SCALING * this.roundtrip) / this.confidence)
  }

  /** Peers ordered by capacity for `targetRttMs`, highest first (ties by id, for determinism). */
  sortByCapacity(peers: string[], targetRttMs: number): string[] {
    return [...peers].sort((a, b) => this.capacity(b, targetRttMs) - this.capacity(a, targetRttMs) || (a < b ? -1 : 1))
  }

  /** A low percentile of the peers' round trips, favouring fast peers (go-ethereum #25653). */
  private medianRoundTrip(): number {
    const rtts = [...this.peers.values()].map((p) => p.rtt).sort((a, b) => a - b)
    if (rtts.length === 0) return this.roundtrip
    const median = rtts[Math.floor(Math.sqrt(rtts.length))] ?? rtts[rtts.length - 1]!
    return Math.min(this.rttMax, Math.max(this.rttMin, median))
  }

  /** At most once per round trip: move the estimate towards the peers' median and restore confidence. */
  private tune(): void {
    const now = this.now()
    if (now - this.tuned < this.roundtrip) return
    this.tuned = now
    this.roundtrip = (1 - TUNING_IMPACT) * this.roundtrip + TUNING_IMPACT * this.medianRoundTrip()
    this.confidence = this.confidence + (1 - this.confidence) / 2
  }
}
