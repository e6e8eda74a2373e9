/**
 * @packageDocumentation
 *
 * DSFG: a late joiner of a js-libp2p gossipsub topic catches up on everything the topic carried, from
 * untrusted peers, with every byte verified against a Merkle-Patricia trie root.
 */
export * from './errors.js'
export { keccak256, EMPTY_ROOT } from './trie/keccak.js'
export {
  decodeNode,
  nodeChildren,
  type TrieNode,
  type BranchNode,
  type ExtensionNode,
  type LeafNode,
  type ChildRef,
  type HashChild,
  type NodeLeaf
} from './trie/node.js'
export type { KVStore, BatchOp } from './store/kv-store.js'
export { MemoryStore } from './store/memory-store.js'
export { toHex, fromHex } from './util/hex.js'
export { LevelStore, type LevelStoreInit } from './store/level-store.js'
export { openStore, MEMORY_STORE_SPEC } from './store/open-store.js'
export { createProof, verifyProof, type ProofOptions } from './proof/proof.js'
export { createRangeProof, verifyRangeProof, type RangeProofResult } from './proof/range-proof.js'
export {
  StackTrie,
  importSorted,
  type NodeSink,
  type ImportSortedOptions,
  type ImportResult
} from './trie/stack-trie.js'
export {
  walkTrie,
  trieGet,
  trieEntries,
  checkTrieComplete,
  checkStoredSubtries,
  verifyTrie,
  DEFAULT_VERIFY_READ_BATCH,
  DEFAULT_VERIFY_MAX_MISSING,
  type WalkOptions,
  type WalkedNode,
  type TrieEntry,
  type TrieCompleteness,
  type VerifyTrieOptions,
  type TrieVerification
} from './trie/walk.js'
export * from './constants.js'
export { TrieSync, type TrieSyncInit, type LeafCallback, type ProcessResult, type HashedBlob, hashBlob } from './sync/trie-sync.js'
export {
  StateSyncer,
  type StateSyncerInit,
  type StateSyncerEvents,
  type StateSyncStats,
  type StateSyncResult,
  type NodeFetcher,
  type PeerPenalty,
  type PenaltyReason
} from './sync/state-syncer.js'
export { RateTracker, type RateTrackerInit } from './sync/msgrate.js'
export { PeerScorer, OFFENCE_WEIGHTS, type PeerScorerInit, type OffenceKind, type OffenceVerdict } from './peers/peer-scorer.js'
export { type Clock, systemClock } from './util/clock.js'
export { dsfg, type Dsfg, type DsfgComponents, type DsfgInit, type SyncRootOptions, type StateSyncHandle } from './service/index.js'
export { createDsfgNode, type CreateDsfgNodeOptions, type DsfgLibp2p } from './node/create-node.js'
export { NODES_PROTOCOL, fetchNodes, PeerBusyError, RequestRejectedError } from './net/nodes-protocol.js'
export { Status } from './net/codec.js'
export { accountEntries, topicItems, buildFixtureTrie, type Entry } from './fixtures/generate.js'
export * from './fsm/index.js'
export { uint64BE, equalBytes } from './util/bytes.js'
export { TopicStore, type TopicStoreOptions } from './topic/topic-store.js'
export {
  TopicHandle,
  type FollowOptions,
  type TopicHandleEvents,
  type TopicSyncProgress,
  type TopicCheckpointEvent,
  type TopicTrustMode,
  type TrieSyncStarter
} from './topic/topic-handle.js'
export { TopicSync, DEFAULT_TOPIC_QUORUM } from './topic/sync/topic-sync.js'
export type { TopicSyncInit, TopicSyncIO, TopicSyncEvents, SyncMode, TrieSyncRun } from './topic/sync/types.js'
export { type SelectFork, type TrieCheckpoint, defaultSelectFork } from './topic/sync/target.js'
export { TopicStateManager } from './topic/topic-state-manager.js'
export { TopicServer } from './topic/topic-server.js'
export { Fetcher } from './topic/fetcher.js'
export type { TopicProvider } from './topic/provider.js'
export { type Checkpoint, itemsTopic, checkpointsTopic } from './topic/gossip.js'
export type { TopicConfig } from './service/dsfg-service.js'
export { STATUS_PROTOCOL, CONTENTS_PROTOCOL, HASHES_PROTOCOL, type TopicState } from './net/topic-protocols.js'
