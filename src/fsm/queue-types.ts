import type { Clock } from '../util/clock.js'
import type { Log } from '../util/log.js'
import type { FSMStatus } from './fsm.js'
import type { PeerFault, PeerFaultReason, QueueIO } from './types.js'

export interface QueueInit {
  /** First item number to deliver. */
  start: number
  /** Highest item number to deliver (inclusive). `start > target` means nothing to do. Grows with `setTarget`. */
  target: number
  io: QueueIO
  /** Items per batch and per request. @default DEFAULT_BATCH_SIZE (64) */
  batchSize?: number
  /** Most batches Downloading or Downloaded at once. @default DEFAULT_WINDOW (8) */
  window?: number
  /**
   * Bytes of items a batch may hold from short replies before it is split: its prefix becomes a batch of its
   * own (downloaded), and the rest batches of `batchSize` items as it is then. The window then bounds what is
   * held in bytes too when items turn out larger than the batches were sized for. @default Infinity
   */
  splitBytes?: number
  /** Most requests in flight per peer. @default DEFAULT_MAX_IN_FLIGHT_PER_PEER (2) */
  maxInFlightPerPeer?: number
  /** First hold after a local consumer fault; doubles on each repeat. @default DEFAULT_HOLD_TIMEOUT_MS (10 s) */
  holdTimeoutMs?: number
  /** Longest hold. @default DEFAULT_MAX_HOLD_MS (80 s) */
  maxHoldMs?: number
  /** Longest wait for one request. @default DEFAULT_FETCH_TIMEOUT_MS (10 s) */
  fetchTimeoutMs?: number
  /** Wait with no eligible peer before (each) 'stalled' event. @default DEFAULT_NO_PEER_WATCHDOG_MS (15 s) */
  noPeerWatchdogMs?: number
  /** Wait with no eligible peer before `run()` fails; `Infinity` never. @default DEFAULT_NO_PEER_TIMEOUT_MS (10 min) */
  noPeerTimeoutMs?: number
  /**
   * Wait before asking again a peer whose fetch rejected with `PeerBusyError` (RATE_LIMITED); refusals in a row
   * double it. A refusal is no failed attempt and no fault. @default BUSY_PEER_BACKOFF_MS (500 ms)
   */
  busyBackoffMs?: number
  /** Cap on that doubling wait. @default MAX_BUSY_PEER_BACKOFF_MS (4 s) */
  maxBusyBackoffMs?: number
  /** @default DEFAULT_MAX_DOWNLOAD_ATTEMPTS (5) */
  maxDownloadAttempts?: number
  /** @default DEFAULT_MAX_PROCESS_ATTEMPTS (3) */
  maxProcessAttempts?: number
  /** Called for every fault of a peer (also dispatched as 'peer:fault'); a throwing hook is ignored. */
  onPeerFault?: (peer: string, reason: PeerFaultReason) => void
  /** @default systemClock */
  clock?: Clock
  /** Where failed downloads and our own failures are logged (a topic sync hands it its own). @default silentLog */
  log?: Log
}

export interface BatchDelivered {
  /** The batch. */
  start: number
  count: number
  /** The numbers handed to the consumer (fewer than the batch if it already had some). */
  from: number
  to: number
  items: number
  /** Peers that served the batch. */
  peers: string[]
}

export interface QueueProgress {
  /** Highest number the consumer holds. */
  head: number
  target: number
  /** Items the consumer holds from this run. */
  delivered: number
  /** Batches in the window. */
  batches: number
  /** Requests in flight. */
  inFlight: number
  elapsedMs: number
}

export interface QueueStalled {
  /** The range no peer could be asked for. */
  from: number
  to: number
  /** How long no eligible peer has been there. */
  waitingMs: number
  /** Peers `io.peers()` listed, none of them eligible. */
  peers: number
}

/** A peer answered RATE_LIMITED: what was asked of it (or, for the consumer, of its peers) waits `waitMs`. */
export interface QueueRefused {
  /** The peer that refused a fetch; undefined when the consumer was refused by the peers it asked. */
  peer: string | undefined
  waitMs: number
}

export interface QueueEvents {
  'batch:delivered': CustomEvent<BatchDelivered>
  refused: CustomEvent<QueueRefused>
  'peer:fault': CustomEvent<PeerFault>
  stalled: CustomEvent<QueueStalled>
  progress: CustomEvent<QueueProgress>
}

export interface QueueResult {
  /** Highest number delivered: the target. */
  head: number
  /** Items delivered by this run. */
  delivered: number
  elapsedMs: number
}

export interface BatchDebugState {
  start: number
  count: number
  status: FSMStatus
  /** The peer asked, while Downloading. */
  peer?: string
  downloadAttempts: number
  processAttempts: number
  /** Items held for the batch (a prefix while Pending or Downloading). */
  items: number
}

export interface QueueDebugState {
  phase: 'idle' | 'running' | 'closed'
  head: number
  target: number
  /** Start of the next batch to create. */
  nextStart: number
  delivered: number
  inFlight: number
  /** Batches Downloading or Downloaded (what `window` bounds). */
  window: number
  batches: BatchDebugState[]
}
