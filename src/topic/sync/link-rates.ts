import { DEFAULT_TOPIC_REPLY_TARGET_MS, LANE_BYTES_PER_SECOND, MAX_LANES_PER_PEER } from '../../constants.js'

// reference: go-ethereum@02b73d4e p2p/msgrate/msgrate.go (a peer's request sized to what it delivers within a
// target round trip). msgrate measures each request alone, one in flight per peer; here several requests share
// a peer's link, so the rate is the bytes a peer delivered over the time it had any request in flight.

/**
 * The weight each new reply's bytes and busy time take in a peer's sums (the older ones fade by the rest): a
 * quarter follows a link that slows down (another transfer starts on it) within a few replies, while one reply
 * that came unusually fast or slow moves the rate little. The rate is the ratio of the two sums, not an
 * average of per-reply rates: replies sharing a link end close together, and the second of two, a few
 * milliseconds after the first, would on its own claim an absurd rate.
 */
const RATE_WEIGHT = 0.25

/**
 * Busy time a peer's replies must have spanned, in all, before its rate counts: a first reply alone may be mostly
 * round trips. Counted whole, not in the decaying sum: that one settles at four times the time between replies,
 * and a peer answering more often than every 50 ms (any fast link) was never measured.
 */
const MIN_MEASURED_MS = 200

/** Peers measured at once; past it an idle one is dropped (`dropIdle`). */
const MAX_MEASURED_PEERS = 1024

/** Requests in flight at a peer whose rate is not measured yet: a slow start, as TCP's initial window. */
const UNMEASURED_IN_FLIGHT = 2

export interface LinkRatesInit {
  /** Most requests in flight at one peer, however fast. */
  maxInFlight: number
  /** How long a peer's requests in flight should take together. @default DEFAULT_TOPIC_REPLY_TARGET_MS */
  targetMs?: number
  /** Milliseconds clock. @default performance.now */
  now?: () => number
}

interface PeerLink {
  active: number
  /** When the current busy spell (or its part not yet measured) began. */
  since: number
  /** Decaying sums of busy time and of the bytes delivered in it. */
  ms: number
  bytes: number
  /** All the busy time measured, up to `MIN_MEASURED_MS`. */
  spanMs: number
}

/**
 * Each peer's measured download rate, and the work it should get from it: how many contents requests in flight,
 * so that they take about `targetMs` on its link. A fixed number of reply-sized requests fills a fast link and
 * swamps a thin one (four 2 MiB replies take 34 s at 2 Mbit/s); sized from the rate, a slow peer gets less
 * work instead of failing what it was given. And over how many streams (`lanes`): a fast one gets several.
 */
export class LinkRates {
  private readonly peers = new Map<string, PeerLink>()
  private readonly maxInFlight: number
  private readonly targetMs: number
  private readonly now: () => number

  constructor(init: LinkRatesInit) {
    this.maxInFlight = Math.max(1, init.maxInFlight)
    this.targetMs = init.targetMs ?? DEFAULT_TOPIC_REPLY_TARGET_MS
    this.now = init.now ?? (() => performance.now())
  }

  /** A request to `peer` was sent. */
  started(peer: string): void {
    let link = this.peers.get(peer)
    if (link === undefined) {
      if (this.peers.size >= MAX_MEASURED_PEERS) this.dropIdle()
      link = { active: 0, since: this.now(), ms: 0, bytes: 0, spanMs: 0 }
      this.peers.set(peer, link)
    }
    if (link.active === 0) link.since = this.now()
    link.active++
  }

  /** A request to `peer` ended with `bytes` of items (0 for a failure: the time it took counts all the same). */
  ended(peer: string, bytes: number): void {
    const link = this.peers.get(peer)
    if (link === undefined || link.active === 0) return
    const now = this.now()
    link.active--
    link.ms = (1 - RATE_WEIGHT) * link.ms + (now - link.since)
    link.spanMs = Math.min(MIN_MEASURED_MS, link.spanMs + (now - link.since))
    link.bytes = (1 - RATE_WEIGHT) * link.bytes + bytes
    link.since = now
  }

  /**
   * A request to `peer` ended without telling anything of its link (our abort, or a refusal to serve it now):
   * its time is not measured.
   */
  cancelled(peer: string): void {
    const link = this.peers.get(peer)
    if (link === undefined || link.active === 0) return
    link.active--
    if (link.active > 0) return
    // The spell ends here: what it measured so far waits for the next.
    link.since = this.now()
  }

  /** `peer`'s measured rate in bytes a second; 0 before its first measurement. */
  bytesPerSecond(peer: string): number {
    const link = this.peers.get(peer)
    if (link === undefined || link.spanMs < MIN_MEASURED_MS || !(link.ms > 0)) return 0
    return (link.bytes * 1000) / link.ms
  }

  /**
   * Streams `peer`'s requests may spread over: one for every `LANE_BYTES_PER_SECOND` of its measured rate, at
   * least one and at most `MAX_LANES_PER_PEER`. One stream carries at most a window a round trip
   * (`MAX_STREAM_WINDOW_BYTES`); a peer is given more only once it has shown it carries far more than the
   * slowest rate a reply may move at, so replies sharing its link never come near their deadlines.
   */
  lanes(peer: string): number {
    return Math.max(1, Math.min(MAX_LANES_PER_PEER, Math.floor(this.bytesPerSecond(peer) / LANE_BYTES_PER_SECOND)))
  }

  /**
   * Bounds the map over a long sync that sees many peers come and go (nothing tells it a peer left): the
   * earliest measured peer with no request in flight goes; a peer that returns is measured again.
   */
  private dropIdle(): void {
    for (const [peer, link] of this.peers) {
      if (link.active > 0) continue
      this.peers.delete(peer)
      return
    }
  }

  /**
   * Requests `peer` may have in flight when each asks for `requestBytes` (a batch's bytes, before `items` cuts
   * it): as many as its link carries in `targetMs`, plus one, so the next reply is on its way while the last
   * ends (a request costs round trips before its reply starts).
   */
  inFlight(peer: string, requestBytes: number): number {
    const budget = this.budget(peer)
    if (budget === 0 || !(requestBytes > 0)) return Math.min(this.maxInFlight, UNMEASURED_IN_FLIGHT)
    const each = Math.min(requestBytes, budget)
    return Math.max(1, Math.min(this.maxInFlight, Math.floor(budget / each) + 1))
  }

  /** Bytes `peer`'s link carries in `targetMs`, 0 while unmeasured. */
  private budget(peer: string): number {
    return (this.bytesPerSecond(peer) * this.targetMs) / 1000
  }
}
