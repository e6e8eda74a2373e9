/**
 * Tunables of the numbered-batch downloader. Each is the default of an optional field of `QueueInit` (or
 * `FSMInit`) and says where its value comes from. reference: /work/shared/reference/fsm-downloaders.md
 * (Prysm@7ac522d8 beacon-chain/sync/initial-sync, Lodestar@6de07362 packages/beacon-node/src/sync/range).
 */

/**
 * Items per batch (one FSM covers `[start, start + batchSize)`). Prysm's `BlockBatchLimit` is 64, Lodestar uses
 * one epoch (32). A batch is also one request, so it must not exceed what a server returns in one reply; a
 * server that caps its reply by bytes answers with a prefix, and the queue asks for the rest.
 */
export const DEFAULT_BATCH_SIZE = 64

/**
 * Batches that may be Downloading or Downloaded at once. Prysm went from 8 to 4 (#13599) because larger blocks
 * wasted bandwidth on re-fetched batches; Lodestar buffers 10. Held, Pending and Delivered batches are not
 * counted: Lodestar counted its unvalidated batches and deadlocked on runs of empty epochs longer than the
 * window (#9417). With `DEFAULT_BATCH_SIZE` this buffers at most 512 items ahead of the consumer.
 */
export const DEFAULT_WINDOW = 8

/**
 * Requests one peer may serve at once for this queue. Retries that all landed on the same peers exhausted
 * their rate limits (Lodestar #6435, #8033); Lodestar later settled on 2 (`MAX_CONCURRENT_REQUESTS`). Two keeps
 * one request in flight while the previous reply is on the wire.
 */
export const DEFAULT_MAX_IN_FLIGHT_PER_PEER = 2

/**
 * Failed downloads after which a batch fails for good (a failure is a timeout, a rejected request, an invalid
 * or empty reply). Lodestar's `MAX_BATCH_DOWNLOAD_ATTEMPTS`. A peer leaving, or the queue moving a batch to
 * make room, is not a failure and is not counted.
 */
export const DEFAULT_MAX_DOWNLOAD_ATTEMPTS = 5

/**
 * How long a batch that every peer able to serve it has failed waits before it is asked again, doubling with
 * each failed download (250 ms, 0.5 s, 1 s, 2 s: 3.75 s before the last of 5 attempts). Retried at once, a
 * peer that resets every stream, dialled first, used up a batch's attempts in 40 ms, before an honest peer's
 * state had come, and the sync failed (an outside tester's attack). A peer that has not failed it yet is asked
 * at once.
 */
export const RETRY_BACKOFF_MS = 250

/**
 * Consumer rejections blaming a batch ('this', or 'previous' from its successor) after which it fails for good.
 * Lodestar's `MAX_BATCH_PROCESSING_ATTEMPTS`: by the third different download that the consumer rejects, the
 * problem is more likely the consumer's or the whole peer set's than one peer's, and a caller should re-plan.
 */
export const DEFAULT_MAX_PROCESS_ATTEMPTS = 3

/**
 * How long a batch the consumer rejected with a local fault waits before it is delivered again. Prysm's
 * `skippedMachineTimeout`. A local fault (the consumer's store is busy, its own dependency is syncing) is not
 * the peers' fault: the items are kept and re-delivered, never re-downloaded, which would only drain the peers'
 * rate limits (Lodestar #6435). Repeated local faults on the same batch double the wait up to `DEFAULT_MAX_HOLD_MS`.
 */
export const DEFAULT_HOLD_TIMEOUT_MS = 10_000

/** Upper bound of the doubling hold: three doublings of `DEFAULT_HOLD_TIMEOUT_MS`. */
export const DEFAULT_MAX_HOLD_MS = 80_000

/**
 * Longest wait for one request before it counts as a failed attempt and the batch is asked of another peer.
 * The consensus-spec `RESP_TIMEOUT` both Prysm and Lodestar use, and `DEFAULT_REQUEST_TIMEOUT_MS` of the rest of
 * the library.
 */
export const DEFAULT_FETCH_TIMEOUT_MS = 10_000

/**
 * A head batch (the lowest not yet delivered) that the whole window waits on is asked of a second, idle peer
 * once its request has taken this many times the median of the last successful requests, and at least
 * `HEDGE_AFTER_MIN_MS`. A peer that answers slowly but validly, or crawls just above the transfer floor,
 * otherwise held every batch behind its one for as long as it took (a minute, for a 2 MiB reply at 32 KiB/s),
 * and a sync with honest peers waiting idle gave up. The first valid reply wins; the other request is dropped
 * uncharged, its peer not blamed.
 */
export const HEDGE_AFTER_MEDIANS = 3

/** The shortest wait before a head batch is asked of a second peer (see `HEDGE_AFTER_MEDIANS`). */
export const HEDGE_AFTER_MIN_MS = 1_000

/** Peers a batch's one request may be hedged with, one after another (see `HEDGE_AFTER_MEDIANS`). */
export const HEDGES_PER_REQUEST = 2

/** Successful request durations the hedge's median is taken over. */
export const HEDGE_DURATION_SAMPLES = 32

/**
 * How long the queue waits with work to do and no eligible peer before it emits 'stalled', and how often it
 * emits it again and re-reads `io.peers()` while the stall lasts. Lighthouse's 15 s safety-net retry (#8919):
 * an event-driven loop still needs a timer, or a missed peer notification stalls it forever.
 */
export const DEFAULT_NO_PEER_WATCHDOG_MS = 15_000

/**
 * How long the queue waits with no eligible peer before `run()` fails with `NoPeersError`. Lighthouse fails a
 * chain whose batch waited over 10 minutes (#8919): by then the caller's peer view is stale and it should
 * re-plan the target. `Infinity` waits for ever.
 */
export const DEFAULT_NO_PEER_TIMEOUT_MS = 10 * 60_000
