import { MAX_SERVING_REPLY_BYTES, MAX_SERVING_REPLY_BYTES_PER_PEER } from '../constants.js'

export interface ReplyBudgetInit {
  /** Reply bytes held at once over all peers. @default MAX_SERVING_REPLY_BYTES (64 MiB) */
  maxBytes?: number
  /** Reply bytes one peer may hold at once. @default MAX_SERVING_REPLY_BYTES_PER_PEER (12 MiB) */
  maxBytesPerPeer?: number
}

/** Bytes a built reply holds against a `ReplyBudget` until `release()`; releasing twice releases once. */
export interface ReplyCharge {
  readonly bytes: number
  release(): void
}

/** A snapshot of a budget, for tests, metrics and logs. */
export interface ReplyBudgetStats {
  /** Reply bytes charged now. */
  inFlight: number
  /** The most ever charged at once. */
  peak: number
  /** Replies refused because they did not fit. */
  refused: number
  /** Peers holding a charge now. */
  peers: number
}

/**
 * The reply bytes a server holds in memory, over all peers and per peer: a reply is charged once built and
 * released once its stream has written it out or failed. A reply that does not fit is refused, and the caller
 * answers RATE_LIMITED instead. Pure bookkeeping, no I/O: `frameHandler` decides when a reply is out.
 */
export class ReplyBudget {
  private readonly maxBytes: number
  private readonly maxBytesPerPeer: number
  private readonly perPeer = new Map<string, number>()
  private inFlight = 0
  private peak = 0
  private refused = 0

  constructor(init: ReplyBudgetInit = {}) {
    this.maxBytes = init.maxBytes ?? MAX_SERVING_REPLY_BYTES
    this.maxBytesPerPeer = Math.min(init.maxBytesPerPeer ?? MAX_SERVING_REPLY_BYTES_PER_PEER, this.maxBytes)
  }

  /** Whether `peer` and the server have any room left: checked before a reply is built, so a full budget costs no store read. */
  hasRoom(peer: string): boolean {
    return this.inFlight < this.maxBytes && (this.perPeer.get(peer) ?? 0) < this.maxBytesPerPeer
  }

  /** Charges `bytes` to `peer`, or returns `undefined` (counted as refused) if they would pass either cap. */
  charge(peer: string, bytes: number): ReplyCharge | undefined {
    const held = this.perPeer.get(peer) ?? 0
    if (this.inFlight + bytes > this.maxBytes || held + bytes > this.maxBytesPerPeer) {
      this.refused++
      return undefined
    }
    this.perPeer.set(peer, held + bytes)
    this.inFlight += bytes
    this.peak = Math.max(this.peak, this.inFlight)
    let released = false
    return {
      bytes,
      release: () => {
        if (released) return
        released = true
        this.inFlight -= bytes
        const left = (this.perPeer.get(peer) ?? bytes) - bytes
        if (left > 0) this.perPeer.set(peer, left)
        else this.perPeer.delete(peer)
      }
    }
  }

  /** Counts a request refused before its reply was built (`hasRoom` was false). */
  refuse(): void {
    this.refused++
  }

  stats(): ReplyBudgetStats {
    return { inFlight: this.inFlight, peak: this.peak, refused: this.refused, peers: this.perPeer.size }
  }
}
