/**
 * Every tunable lives here once, with the reason for its value. `Init` objects document which constant is
 * their default.
 */

/**
 * Most nodes of one trie depth that may be handed out by `TrieSync.missing` and not yet committed.
 * Deepest-first order alone does not bound the width of the in-memory partial trie when many peers pull work
 * at once; go-ethereum hit OOM on bootnodes with 250 peers before adding this cap (PR #21491). Counted from
 * `missing` until commit, not until delivery, because a delivered node waiting on its children still holds
 * memory. reference: go-ethereum@02b73d4e trie/sync.go maxFetchesPerDepth
 */
export const MAX_FETCHES_PER_DEPTH = 16384

/**
 * Uncommitted bytes after which a sync driver should flush the scheduler to the store. go-ethereum's
 * `ethdb.IdealBatchSize`: large enough that writes are batched, small enough that a crash loses little.
 */
export const IDEAL_BATCH_BYTES = 100 * 1024
