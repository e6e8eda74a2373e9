/**
 * @packageDocumentation
 *
 * DSFG: a late joiner of a js-libp2p gossipsub topic catches up on everything the topic carried, from
 * untrusted peers, with every byte verified against a Merkle-Patricia trie root.
 *
 * The root is what applications use: the `dsfg` service and its handles, proofs, stores, errors and the types
 * they carry. The pure cores (trie sync scheduler, downloader state machines, trie builder) and every tunable's
 * default are in `dsfg/core`; a ready-made libp2p node (TCP, noise, yamux) is in `dsfg/node`.
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

// Proofs.
export { createProof, verifyProof, type ProofOptions } from './proof/proof.js'
export { createRangeProof, verifyRangeProof, type RangeProofResult } from './proof/range-proof.js'

// Stores.
export type { KVStore, BatchOp } from './store/kv-store.js'
export { MemoryStore } from './store/memory-store.js'
export { LevelStore, type LevelStoreInit } from './store/level-store.js'
export { openStore, MEMORY_STORE_SPEC, type OpenStoreOptions } from './store/open-store.js'
export { TopicStore, type TopicStoreInit, type TopicStoreOptions } from './topic/topic-store.js'

// Errors: classes with a stable `name` and `code`.
export * from './errors.js'
export { PeerBusyError, RequestRejectedError } from './net/nodes-protocol.js'

// Hashing and the byte helpers an application needs around keys, roots and proofs.
export { keccak256, EMPTY_ROOT } from './trie/keccak.js'
export { toHex, fromHex } from './util/hex.js'
export { uint64BE, equalBytes } from './util/bytes.js'

// The protocols the service serves (for a connection gater or a protocol allow-list).
export { NODES_PROTOCOL } from './net/nodes-protocol.js'
export { STATUS_PROTOCOL, CONTENTS_PROTOCOL, HASHES_PROTOCOL } from './net/topic-protocols.js'
