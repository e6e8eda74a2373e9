/**
 * @packageDocumentation
 *
 * `dsfg/core`: the pure cores behind the service, and every tunable's default. They take no sockets and no
 * timers of their own (I/O is injected as a function bag, time as a `Clock`), so they can be driven directly:
 * the trie sync scheduler and its driver, the numbered-batch downloader's state machines, the trie builder and
 * walker, the peer ledger, and the topic layer's parts for an application that assembles its own service.
 * What an application needs day to day is in the package root.
 */

// Tunables: every default as a named constant (the downloader's in the FSM block below).
export * from './constants.js'

// The trie: node codec, builder, walker and checks.
export {
  decodeNode,
  nodeChildren,
  MAX_NODE_BYTES,
  type TrieNode,
  type BranchNode,
  type ExtensionNode,
  type LeafNode,
  type ChildRef,
  type HashChild,
  type NodeLeaf
} from './trie/node.js'
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

// Trie sync: the go-ethereum-style scheduler and the driver that feeds it from peers.
export { TrieSync, type TrieSyncInit, type LeafCallback, type ProcessResult, type HashedBlob, hashBlob } from './sync/trie-sync.js'
export { StateSyncer, type StateSyncerInit, type NodeFetcher, type PeerPenalty } from './sync/state-syncer.js'
export { RateTracker, type RateTrackerInit } from './sync/msgrate.js'
export { NODES_PROTOCOL, fetchNodes, type FetchNodesOptions } from './net/nodes-protocol.js'
export { Status } from './net/codec.js'

// The peer ledger.
export { PeerScorer, OFFENCE_WEIGHTS, type PeerScorerInit, type OffenceKind, type OffenceVerdict } from './peers/peer-scorer.js'
export { type Clock, systemClock } from './util/clock.js'

// The numbered-batch downloader: FSM, FSMManager, Queue, their constants and errors.
export * from './fsm/index.js'

// The topic layer's parts.
export { TopicSync, DEFAULT_TOPIC_QUORUM } from './topic/sync/topic-sync.js'
export type { TopicSyncInit, TopicSyncIO, TrieSyncRun, VerifiedItem } from './topic/sync/types.js'
export type { TrieSyncStarter, TopicHandleDeps } from './topic/topic-handle.js'
export { TopicStateManager } from './topic/topic-state-manager.js'
export { TopicServer } from './topic/topic-server.js'
export { Fetcher } from './topic/fetcher.js'
