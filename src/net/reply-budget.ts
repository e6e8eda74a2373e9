import { MAX_SERVING_REPLY_BYTES, MAX_SERVING_REPLY_BYTES_PER_PEER } from '../constants.js'

export interface ReplyBudgetInit {
  /** Reply bytes held at once over all peers. @default MAX_SERVING_REPLY_BYTES (64 MiB) */
  maxBytes?: number
  /** Reply bytes one peer may hold at once. @default MAX_SERVING_REPLY_BYTES_PER_PEER (12 MiB) */
  maxBytesPerPeer?: number
}

/**
 * Bytes a reply holds against a `ReplyBudget` until `release()`: reserved at its largest before it is built,
 * then `resize`d to what it came to. Releasing twice releases once; a released charge does not resize.
 */
export interface ReplyCharge {
  readonly bytes: number
  resize(bytes: number): void
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
    const move = (delta: number): void => {
      this.inFlight += delta
      this.peak = Math.max(this.peak, this.inFlight)
      const left = (this.perPeer.get(peer) ?? 0) + delta
      if (left > 0) this.perPeer.set(peer, left)
      else this.perPeer.delete(peer)
    }
    const charge = {
      bytes,
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
      }
    }
    return charge
  }

  stats(): ReplyBudgetStats {
    return { inFlight: this.inFlight, peak: this.peak, refused: this.refused, peers: this.perPeer.size }
  }
}
