/**
 * What the package root exports in every environment: `index.ts` (Node) adds the LevelDB store, `browser.ts`
 * the IndexedDB one. Nothing here may import `node:*`, classic-level or a transport (checked by
 * `test/browser-entry.test.ts`).
 */

// The service and its handles.
export { dsfg, type Dsfg, type DsfgComponents, type DsfgInit, type SyncRootOptions, type StateSyncHandle } from './service/index.js'
export type { TopicConfig } from './service/dsfg-service.js'
export type {
  AbortOptions,
  FollowOptions,
  PublishResult,
  TopicCheckpointEvent,
  TopicHandle,
  TopicHandleEvents,
  TopicSyncProgress,
  TopicTrustMode
} from './topic/topic-handle.js'
export type { SyncMode, TopicSyncEvents } from './topic/sync/types.js'
export type { StateSyncerEvents, StateSyncResult, StateSyncStats, PenaltyReason } from './sync/state-syncer.js'
export type { EventSource } from './util/events.js'
export type { Item } from './fsm/types.js'
export { type Checkpoint, itemsTopic, checkpointsTopic } from './topic/gossip.js'

// Bring your own: what a node serves, and which checkpoint to trust without a publisher.
export type { TopicProvider } from './topic/provider.js'
export { type SelectFork, type TrieCheckpoint, defaultSelectFork } from './topic/sync/target.js'
export type { TopicState } from './net/topic-protocols.js'
export type { ReplyBudgetStats } from './net/reply-budget.js'

// Proofs.
export { createProof, verifyProof, type ProofOptions } from './proof/proof.js'
export { createRangeProof, verifyRangeProof, type RangeProofResult } from './proof/range-proof.js'

// Stores.
export type { KVStore, BatchOp } from './store/kv-store.js'
export { MemoryStore } from './store/memory-store.js'
export { TopicStore, type TopicStoreInit, type TopicStoreOptions } from './topic/topic-store.js'

// Errors: classes with a stable `name` and `code`.
export * from './errors.js'

// Hashing and the byte helpers an application needs around keys, roots and proofs.
export { keccak256, EMPTY_ROOT } from './trie/keccak.js'
export { toHex, fromHex } from './util/hex.js'
export { uint64BE, equalBytes } from './util/bytes.js'

// The protocols the service serves (for a connection gater or a protocol allow-list).
export { NODES_PROTOCOL } from './net/nodes-protocol.js'
export { STATUS_PROTOCOL, CONTENTS_PROTOCOL, HASHES_PROTOCOL } from './net/topic-protocols.js'
