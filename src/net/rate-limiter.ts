import { REQUEST_COST_UNIT } from '../constants.js'
import type { Clock } from '../util/clock.js'
import { systemClock } from '../util/clock.js'

/**
 * The tokens a request asking for `asked` items, hashes or nodes costs: one per `REQUEST_COST_UNIT`, at least
 * one. Limiting by work rather than by requests keeps a peer that asks for the most per request to the same
 * budget of server work as one that asks for little.
 */
export function requestTokens(asked: number): number {
  return Math.max(1, Math.ceil(asked / REQUEST_COST_UNIT))
}

export interface TokenBucketInit {
  /** Tokens added per second. */
  ratePerSecond: number
  /** Most tokens a key may save up (the burst). */
  burst: number
  /** Most keys tracked; the least recently used are forgotten beyond it, so memory stays bounded. */
  maxKeys?: number
  clock?: Clock
}

interface Bucket {
  tokens: number
  updated: number
}

/**
 * A token bucket per key (per peer): `take` succeeds while the key has tokens. Used by servers to rate-limit
 * inbound requests and by clients to pace outbound ones. Pure apart from the injected clock.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()
  private readonly rate: number
  private readonly burst: number
  private readonly maxKeys: number
  private readonly clock: Clock

  constructor(init: TokenBucketInit) {
    this.rate = init.ratePerSecond
    this.burst = init.burst
    this.maxKeys = init.maxKeys ?? 10_000
    this.clock = init.clock ?? systemClock
  }

  /**
   * Takes `cost` tokens from `key` if it has them. A cost above the burst is charged as the whole burst: a bucket
   * never holds more, and the request would otherwise never pass.
   */
  take(key: string, cost = 1): boolean {
    const bucket = this.refill(key)
    const charge = Math.min(cost, this.burst)
    if (bucket.tokens < charge) return false
    bucket.tokens -= charge
    return true
  }

  /**
   * Charges `cost` tokens for work already done (a nodes reply's subtrie reads), into debt if need be, so a key
   * pays for it in waiting before its next request passes: down to minus four bursts at most (a key forgotten
   * and seen again starts afresh anyway).
   */
  spend(key: string, cost: number): void {
    const bucket = this.refill(key)
    bucket.tokens = Math.max(-4 * this.burst, bucket.tokens - cost)
  }

  /** Milliseconds until `key` has `cost` tokens (0 when it has them now; a cost above the burst counts as the burst). */
  waitTime(key: string, cost = 1): number {
    const bucket = this.refill(key)
    const charge = Math.min(cost, this.burst)
    if (bucket.tokens >= charge) return 0
    return Math.ceil(((charge - bucket.tokens) / this.rate) * 1000)
  }

  private refill(key: string): Bucket {
    const now = this.clock.now()
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: this.burst, updated: now }
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next().value
        if (oldest !== undefined) this.buckets.delete(oldest)
      }
    } else {
      this.buckets.delete(key) // re-inserted below: Map order is recency order
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.updated) * this.rate) / 1000)
      bucket.updated = now
    }
    this.buckets.set(key, bucket)
    return bucket
  }
}
