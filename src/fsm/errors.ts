import { DsfgError } from '../errors.js'

/** A batch state machine was asked for a transition its current status does not allow (a bug in the caller). */
export class InvalidBatchTransitionError extends DsfgError {
  static override readonly code: string = 'ERR_INVALID_BATCH_TRANSITION'
  /** First item number of the batch. */
  readonly start: number
  /** Status the batch was in. */
  readonly status: string
  /** Statuses the transition is allowed from. */
  readonly expected: readonly string[]
  readonly transition: string

  constructor(transition: string, start: number, status: string, expected: readonly string[]) {
    super(`batch ${start}: ${transition} is not allowed in status ${status} (expected ${expected.join(' or ')})`)
    this.transition = transition
    this.start = start
    this.status = status
    this.expected = expected
  }
}

/** The window of batches broke its ordering invariant, or a batch was added twice (a bug in the queue). */
export class InvalidBatchesStatusError extends DsfgError {
  static override readonly code: string = 'ERR_INVALID_BATCHES_STATUS'
}

/** Why a batch gave up. */
export type BatchFailureKind = 'download' | 'process'

/**
 * A batch used up its download or processing attempts. Says which range and which peers took part; the last
 * failure is the `cause`.
 */
export class BatchFailedError extends DsfgError {
  static override readonly code: string = 'ERR_BATCH_FAILED'
  readonly start: number
  /** Last item number of the batch (inclusive). */
  readonly end: number
  readonly kind: BatchFailureKind
  /** Peers whose downloads failed ('download'), or whose content the consumer rejected ('process'). */
  readonly peers: readonly string[]

  constructor(kind: BatchFailureKind, start: number, end: number, peers: readonly string[], cause?: unknown) {
    const what = kind === 'download' ? 'download attempts' : 'processing attempts'
    super(`batch [${start}, ${end}] failed: too many ${what} (peers: ${peers.join(', ') || 'none'})`, { cause })
    this.kind = kind
    this.start = start
    this.end = end
    this.peers = peers
  }
}

/** A reply held items that are not a valid answer to the request; `fault` says how. */
export class InvalidItemsError extends DsfgError {
  static override readonly code: string = 'ERR_INVALID_ITEMS'
  readonly fault: string

  constructor(fault: string, message: string) {
    super(message)
    this.fault = fault
  }
}

/** A peer did not answer a batch request in time. */
export class RequestTimeoutError extends DsfgError {
  static override readonly code: string = 'ERR_REQUEST_TIMEOUT'
}

/** No peer claimed the items the queue needed for longer than `noPeerTimeoutMs`. */
export class NoPeersError extends DsfgError {
  static override readonly code: string = 'ERR_NO_PEERS'
  /** The range nobody could serve. */
  readonly from: number
  readonly to: number

  constructor(from: number, to: number, waitedMs: number) {
    super(`no peer has items [${from}, ${to}] after waiting ${waitedMs} ms`)
    this.from = from
    this.to = to
  }
}

/** The consumer's `deliver` rejected, or resolved with something that is not a `ConsumerResult`. */
export class DeliveryError extends DsfgError {
  static override readonly code: string = 'ERR_DELIVERY'
}

/** `run()` was called on a queue that already ran or was stopped: a queue runs once. */
export class QueueClosedError extends DsfgError {
  static override readonly code: string = 'ERR_QUEUE_CLOSED'
}
