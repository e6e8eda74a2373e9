/** One numbered item of a topic. Numbers are dense: every number from 0 to the head has an item. */
export interface Item {
  n: number
  data: Uint8Array
}

/** Which peer served which numbers of a batch (inclusive): the provenance a later blame is based on. */
export interface Source {
  peer: string
  from: number
  to: number
}

/**
 * What a peer claims to hold. A peer is asked for `[from, to]` only if `lowest <= from` and `head >= to`;
 * pruned or lagging peers are neither asked for what they cannot have nor blamed for not having it.
 */
export interface PeerInfo {
  id: string
  lowest: number
  head: number
}

/** Who the consumer holds responsible when it cannot apply a delivered batch. */
export type ConsumerFault =
  /** The delivered items are wrong: download this batch again. */
  | 'this'
  /**
   * The delivered items do not follow from the previous batch, which must be the wrong one: download the
   * previous batch again. Only a batch that is not validated yet can be blamed: the one `deliver` names in
   * `options.unvalidated`. The consumer has discarded those numbers; they are delivered again. Without
   * `unvalidated` there is nothing left to blame but this batch, and the fault counts as 'this'.
   */
  | 'previous'
  /** Either could be wrong: download both again. Discards `options.unvalidated` like 'previous'. */
  | 'both'
  /** The consumer itself failed (busy, out of resources): hold the batch and deliver the same items again. */
  | 'local'

/**
 * The consumer's answer to one `deliver` call. A 'local' fault whose `error` is a `PeerBusyError` (the peers the
 * consumer needed answered RATE_LIMITED) is held for a busy peer's short wait, not a local fault's.
 */
export type ConsumerResult = { ok: true } | { ok: false; fault: ConsumerFault; error?: unknown }

export interface DeliverOptions {
  /** Aborts when the queue stops. */
  signal: AbortSignal
  /**
   * The numbers delivered just before these that are not validated yet: what a 'previous' or 'both' fault
   * discards. A batch is validated, for good, when the batch after it is accepted (Lodestar's
   * `AwaitingValidation`); absent when there is no such batch.
   */
  unvalidated?: { from: number; to: number }
}

/** The I/O the queue runs on, injected so the scheduling loop runs without a network. */
export interface QueueIO {
  /** The peers that may be asked right now, with the range each claims. Called once per scheduling pass. */
  peers(): readonly PeerInfo[]
  /**
   * Asks `peer` for up to `amount` items from `from`. Resolves with the peer's reply, unverified: the queue
   * validates it. Rejects when the request failed; must reject soon after `signal` aborts.
   */
  fetch(peer: string, from: number, amount: number, options: { signal: AbortSignal }): Promise<Item[]>
  /**
   * Requests `peer` may have in flight now (from what its link has delivered, say), within the queue's
   * `maxInFlightPerPeer`: a slow peer gets less work rather than more than it can deliver in time. Called for
   * each peer considered in a scheduling pass. @default the queue's `maxInFlightPerPeer`
   */
  maxInFlight?(peer: string): number
  /**
   * Hands the next items, in order, to the consumer; at most one call is in flight. Each number reaches the
   * consumer once, except the numbers of a batch the consumer discarded with a 'previous' or 'both' fault.
   * A rejection ends `run()` with `DeliveryError`: report retryable trouble as `{ ok: false, fault: 'local' }`.
   */
  deliver(items: Item[], options: DeliverOptions): Promise<ConsumerResult>
}

/** How a reply was wrong (see `validateItems`), or 'rejected-content' for content the consumer proved wrong. */
export type PeerFaultReason =
  | 'malformed'
  | 'too-many'
  | 'out-of-range'
  | 'not-ascending'
  | 'duplicate'
  | 'gap'
  | 'empty'
  | 'rejected-content'

export interface PeerFault {
  peer: string
  reason: PeerFaultReason
  /**
   * 'mild' for an empty reply (the peer may have pruned the range since it reported its state), 'severe' for
   * a reply no honest peer sends.
   */
  severity: 'mild' | 'severe'
  /** The range the faulty reply answered. */
  from: number
  to: number
}
