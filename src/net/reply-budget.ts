import { MAX_SERVING_REPLY_BYTES, MAX_SERVING_REPLY_BYTES_PER_PEER } from '../constants.js'

export interface ReplyBudgetInit {
  /** Reply bytes held at once over all peers. @default MAX_SERVING_REPLY_BYTES (64 MiB) */
  maxBytes?: number
  /** Reply bytes one peer may hold at once. @default MAX_SERVING_REPLY_BYTES_PER_PEER (12 MiB) */
  maxBytesPerPeer?: number
  /** Milliseconds clock, for who shares the budget. @default performance.now */
  now?: () => number
}

/** How long a peer that asked for room counts among those sharing the budget. */
const SHARER_MS = 1_000

/** Least time between two counts of the peers sharing the budget. */
const SHARER_RECOUNT_MS = 100

/**
 * Bytes a reply holds against a `ReplyBudget` until `release()`: reserved at its largest before it is built,
 * then `resize`d to what it came to. Releasing twice releases once; a released charge does not resize.
 */
export interface ReplyCharge {
  readonly bytes: number
  resize(bytes: number): void
  release(): void
  /**
   * Whether the reply's reader has stopped taking it (no byte out for a while): only a stalled reply that was
   * given an `evict` may be given up for another peer. A new charge is not stalled.
   */
  stalled(stalled: boolean): void
}

/** A snapshot of a budget, for tests, metrics and logs. */
export interface ReplyBudgetStats {
  /** Reply bytes charged now. */
  inFlight: number
  /** The most ever charged at once. */
  peak: number
  /** Replies refused because they did not fit. */
  refused: number
  /** Replies given up for a peer holding less (see `ReplyBudget.charge`). */
  evicted: number
  /** Peers holding a charge now. */
  peers: number
  /** Hosts holding a charge now. */
  hosts: number
}

/** How a reply is charged, besides its peer and its largest size. */
export interface ChargeOptions {
  /**
   * Makes the charge evictable: called once, after the charge was released, it must give the reply up.
   */
  evict?: () => void
  /** The least the reply may be cut to: it is charged what fits, at least this. @default its largest size */
  minBytes?: number
  /**
   * What the peer's address counts as (`hostKey`): while peers of two or more hosts share the budget, each host
   * may hold only an equal part of it. @default the peer itself
   */
  host?: string
}

interface Held {
  bytes: number
  /** The host it charged its first reply from: all its charges count there. */
  host: string
  /** This peer's evictable charges, oldest first (Set order is insertion order). */
  charges: Set<Charge>
}

interface Charge extends ReplyCharge {
  bytes: number
  /** Order of charging: a lower one is older. */
  seq: number
  evict?: () => void
  isStalled: boolean
}

/**
 * The reply bytes a server holds in memory, over all peers and per peer: a reply is charged once built and
 * released once its stream has written it out or failed. A reply that does not fit is refused, and the caller
 * answers RATE_LIMITED instead. Pure bookkeeping, no I/O: `frameHandler` decides when a reply is out, and what
 * giving one up means (aborting its stream).
 *
 * The per-peer cap alone does not keep the budget for everyone: peer ids are free. So a peer that holds part of
 * the budget may hold at most an equal share of it, one share kept for a peer holding nothing yet (`capOf`).
 * And a few peers that never read would fill it until their write deadlines pass: when the whole budget is
 * held, a peer takes the room it needs from peers holding more than it does, from their stalled replies
 * (`ReplyCharge.stalled`) that were given an `evict`, oldest first: those are released and evicted. A reply its
 * reader keeps taking is never given up, however much its peer holds; one its reader stopped taking is, to a
 * peer holding less, long before its deadline. Replies that are still being built or written to a reader count
 * as held and are not evicted, so when they fill the budget a request is refused (RATE_LIMITED), which costs
 * nothing, rather than a reply built only to be given up.
 */
export class ReplyBudget {
  private readonly maxBytes: number
  private readonly maxBytesPerPeer: number
  private readonly perPeer = new Map<string, Held>()
  private inFlight = 0
  private peak = 0
  private refused = 0
  private evicted = 0
  private charged = 0
  private readonly now: () => number
  /** Bytes charged to each host. */
  private readonly perHost = new Map<string, number>()
  /** When each peer was last refused room, and from which host, for `sharers`. */
  private readonly askedAt = new Map<string, { at: number; host: string }>()
  /** The peers holding nothing that were refused room within `SHARER_MS`, at the last count. */
  private readonly refusedOnly = new Set<string>()
  private hostsSharing = 0
  private countedAt = Number.NEGATIVE_INFINITY

  constructor(init: ReplyBudgetInit = {}) {
    this.maxBytes = init.maxBytes ?? MAX_SERVING_REPLY_BYTES
    this.maxBytesPerPeer = Math.min(init.maxBytesPerPeer ?? MAX_SERVING_REPLY_BYTES_PER_PEER, this.maxBytes)
    this.now = init.now ?? (() => performance.now())
  }

  /**
   * Charges `peer` for a reply of up to `bytes`, or returns `undefined` (counted as refused) when not even
   * `minBytes` fit the caps of `peer` and its host, or the server's when no bigger holder can make room (see the
   * class). A reply that can be cut short (`minBytes` below `bytes`) is charged what fits, at least `minBytes`:
   * the charge's `bytes` is what its reply may come to.
   */
  charge(peer: string, bytes: number, options: ChargeOptions = {}): ReplyCharge | undefined {
    const { evict } = options
    const minBytes = Math.min(options.minBytes ?? bytes, bytes)
    const existing = this.perPeer.get(peer)
    const host = existing?.host ?? options.host ?? peer
    const held = existing?.bytes ?? 0
    const hostHeld = this.perHost.get(host) ?? 0
    // Whole bytes: shares are fractions, and charges left with fractions never summed back to 0 (an outside
    // tester saw a host that held nothing counted among the hosts for good, shrinking every host's part).
    const want = Math.floor(Math.min(bytes, this.capOf(peer, held, minBytes) - held, this.hostCapOf(hostHeld, minBytes) - hostHeld))
    const granted = this.grant(peer, held, want, minBytes)
    if (granted === undefined) {
      // Only a refusal counts a peer among the sharers once it holds nothing: a peer charged a reply counts
      // while it holds it. Counting every peer that asked let 50 peer ids, each asking for the status of a topic
      // the server does not have (a few bytes answered UNAVAILABLE, 2.5 a second each), shrink every share
      // below one 512 KiB item with its proof: a topic of such items was served to nobody (an outside tester).
      this.askedAt.set(peer, { at: this.now(), host })
      this.refused++
      return undefined
    }
    bytes = granted
    const owner = existing ?? { bytes: 0, host, charges: new Set<Charge>() }
    if (existing === undefined) this.perPeer.set(peer, owner)
    let released = false
    const move = (delta: number): void => {
      this.inFlight += delta
      this.peak = Math.max(this.peak, this.inFlight)
      owner.bytes += delta
      const onHost = (this.perHost.get(owner.host) ?? 0) + delta
      if (onHost > 0) this.perHost.set(owner.host, onHost)
      else this.perHost.delete(owner.host)
    }
    const charge: Charge = {
      bytes,
      seq: this.charged++,
      isStalled: false,
      stalled: (stalled: boolean): void => {
        charge.isStalled = stalled
      },
      // A reply comes to at most what was reserved for it, so a resize is not refused: it only gives back.
      resize: (to: number): void => {
        if (released) return
        move(to - charge.bytes)
        charge.bytes = to
      },
      release: (): void => {
        if (released) return
        released = true
        move(-charge.bytes)
        owner.charges.delete(charge)
        if (owner.bytes <= 0 && owner.charges.size === 0 && this.perPeer.get(peer) === owner) this.perPeer.delete(peer)
      }
    }
    if (evict !== undefined) {
      charge.evict = evict
      owner.charges.add(charge)
    }
    move(bytes)
    return charge
  }

  /**
   * What a peer holding `held` may hold: its cap, and no more than an equal share of the budget among the
   * peers sharing it (holding part, or refused within `SHARER_MS`), with one share left over. A peer holding
   * nothing may always ask for one reply of `minBytes`, the least its reply can be cut to. Without the share,
   * peers whose readers take every byte (never stalled, so never evicted) kept the budget full with replies
   * being built: an outside tester's 10 peer ids from one address kept an honest client refused until it gave
   * up. Counting only the holders was not enough: the refused ids, asking again at once, took the share left
   * over before the honest client, backing off, asked again. And a share that let a peer holding nothing
   * reserve a whole reply (2 MiB) let 31 ids fill 64 MiB with one reply each; a reply that can be cut short is
   * now reserved only up to the share.
   */
  private capOf(peer: string, held: number, minBytes: number): number {
    const share = Math.min(this.maxBytesPerPeer, this.maxBytes / (this.sharers(peer) + 1))
    return held === 0 ? Math.min(this.maxBytesPerPeer, Math.max(share, minBytes)) : share
  }

  /**
   * What of `want` bytes a peer holding `held` is charged: all of it if it fits or stalled replies of bigger
   * holders make room, else what is free if that is at least `minBytes`, else `minBytes` if room can be made.
   */
  private grant(peer: string, held: number, want: number, minBytes: number): number | undefined {
    if (want < minBytes) return undefined
    if (this.makeRoom(peer, held, want)) return want
    const free = this.maxBytes - this.inFlight
    if (free >= minBytes) return free
    return this.makeRoom(peer, held, minBytes) ? minBytes : undefined
  }

  /**
   * What a host holding `hostHeld` may hold while peers of two or more hosts share the budget: an equal part of
   * it among those hosts, one part kept over; a host holding nothing may always ask for one reply of `minBytes`.
   * Peer ids are free, addresses are not: an outside tester's 31 ids from one address took 31 of every 32 parts
   * of a server a peer's share alone divides. With one host (every client on 127.0.0.1, or behind one NAT) the
   * peers' shares alone apply.
   */
  private hostCapOf(hostHeld: number, minBytes: number): number {
    this.recount()
    const hosts = Math.max(this.hostsSharing, this.perHost.size)
    if (hosts < 2) return Number.POSITIVE_INFINITY
    const share = this.maxBytes / (hosts + 1)
    return hostHeld === 0 ? Math.max(share, minBytes) : share
  }

  /**
   * Peers sharing the budget, `asker` among them: those holding part of it, and those holding none that were
   * refused room within `SHARER_MS`.
   */
  private sharers(asker: string): number {
    this.recount()
    // Counted by the last count (not `askedAt`, which may hold a refusal newer than it, or one expired since).
    const counted = this.perPeer.has(asker) || this.refusedOnly.has(asker)
    return this.perPeer.size + this.refusedOnly.size + (counted ? 0 : 1)
  }

  /**
   * Counts the peers holding nothing that were refused room within `SHARER_MS`, and the hosts of those and of
   * the holders: at most once per `SHARER_RECOUNT_MS` (so a count may be up to that old).
   */
  private recount(): void {
    const now = this.now()
    if (now - this.countedAt < SHARER_RECOUNT_MS) return
    const hosts = new Set<string>(this.perHost.keys())
    this.refusedOnly.clear()
    for (const [peer, asked] of this.askedAt) {
      if (now - asked.at > SHARER_MS) this.askedAt.delete(peer)
      else {
        hosts.add(asked.host)
        if (!this.perPeer.has(peer)) this.refusedOnly.add(peer)
      }
    }
    this.hostsSharing = hosts.size
    this.countedAt = now
  }

  /**
   * Makes `bytes` fit the server's budget for a peer holding `held`, by evicting the oldest stalled charges of
   * peers holding more (counted as they lose charges); evicts nothing unless that makes enough room.
   */
  private makeRoom(peer: string, held: number, bytes: number): boolean {
    const short = this.inFlight + bytes - this.maxBytes
    if (short <= 0) return true
    const victims: Charge[] = []
    // What each holder picked from would hold, and how many of its charges were picked.
    const picked = new Map<Held, { left: number; taken: number }>()
    let freed = 0
    while (freed < short) {
      let from: Held | undefined
      let oldest: Charge | undefined
      for (const [other, entry] of this.perPeer) {
        if (other === peer) continue
        const state = picked.get(entry)
        if ((state?.left ?? entry.bytes) <= held) continue
        const next = nthCharge(entry, state?.taken ?? 0)
        if (next !== undefined && (oldest === undefined || next.seq < oldest.seq)) {
          from = entry
          oldest = next
        }
      }
      if (from === undefined || oldest === undefined) return false
      victims.push(oldest)
      freed += oldest.bytes
      const state = picked.get(from)
      picked.set(from, { left: (state?.left ?? from.bytes) - oldest.bytes, taken: (state?.taken ?? 0) + 1 })
    }
    for (const victim of victims) {
      this.evicted++
      victim.release()
      victim.evict!()
    }
    return true
  }

  stats(): ReplyBudgetStats {
    return { inFlight: this.inFlight, peak: this.peak, refused: this.refused, evicted: this.evicted, peers: this.perPeer.size, hosts: this.perHost.size }
  }
}

/** `entry`'s `n`th evictable charge that is stalled now, oldest first. */
function nthCharge(entry: Held, n: number): Charge | undefined {
  let i = 0
  for (const charge of entry.charges) if (charge.isStalled && i++ === n) return charge
  return undefined
}
