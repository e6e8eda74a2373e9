import type { GossipSub } from '@libp2p/gossipsub'
import {
  type AbortOptions,
  type ComponentLogger,
  type Logger,
  type Metrics,
  type PeerId,
  type PeerStore,
  type PrivateKey,
  type Startable,
  serviceCapabilities,
  serviceDependencies
} from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import {
  DEFAULT_INBOUND_REQUEST_BURST,
  DEFAULT_INBOUND_REQUESTS_PER_SECOND,
  DEFAULT_REQUEST_FRAME_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MAX_CHECKPOINT_RECORD_BYTES,
  MAX_CONTENTS_REQUEST_BYTES,
  MAX_CUT_OFF_PEERS,
  MAX_HASHES_PER_REQUEST,
  MAX_HASHES_REQUEST_BYTES,
  MAX_FRAME_BYTES,
  MAX_INBOUND_STREAMS,
  MAX_NODES_REQUEST_BYTES,
  MAX_PIPELINED_CONTENTS_REQUESTS,
  MAX_PIPELINED_NODES_REQUESTS,
  MAX_SERVING_REPLY_BYTES,
  MAX_SERVING_REPLY_BYTES_PER_PEER,
  MAX_SUBTRIE_READS,
  MAX_STATUS_REQUEST_BYTES,
  MIN_REPLY_RESERVE_BYTES,
  PEER_CUT_OFF_MS
} from '../constants.js'
import { PeerFaultError, PeerRequestError, ProtocolError, ServiceConfigError } from '../errors.js'
import { payloadBytesOf, Status } from '../net/codec.js'
import { FrameSessions } from '../net/frame-session.js'
import { answerNodes, decodeNodesRequestWhole, encodeNodesResponse, NODES_PROTOCOL, type NodesReplyItem, type NodesRequest, requestNodes } from '../net/nodes-protocol.js'
import { requestTokens, TokenBuckets } from '../net/rate-limiter.js'
import { failureOutcome, requestLabel } from '../net/request-outcome.js'
import { ReplyBudget, type ReplyBudgetStats } from '../net/reply-budget.js'
import { type FrameHandlerOptions, type FrameViolation, frameHandler } from '../net/rpc.js'
import {
  CONTENTS_PROTOCOL,
  encodeContentsResponse,
  encodeHashesResponse,
  encodeStatusResponse,
  HASHES_PROTOCOL,
  STATUS_PROTOCOL
} from '../net/topic-protocols.js'
import type { KVStore } from '../store/kv-store.js'
import { MemoryStore } from '../store/memory-store.js'
import { PEER_FAULT_OFFENCES, TRIE_PENALTY_OFFENCES } from '../peers/offence-kinds.js'
import { PenaltyTags, tagValue } from '../peers/penalty-tags.js'
import { type OffenceKind, PeerScorer, type PeerScorerInit } from '../peers/peer-scorer.js'
import { StateSyncer, type StateSyncerInit, type StateSyncResult } from '../sync/state-syncer.js'
import { openCheckpoint, sealCheckpoint } from '../topic/checkpoint-record.js'
import { type Checkpoint, checkpointsTopic } from '../topic/gossip.js'
import { GossipFeeds } from '../topic/gossip-feeds.js'
import { Fetcher } from '../topic/fetcher.js'
import type { TopicProvider } from '../topic/provider.js'
import { TopicHandle } from '../topic/topic-handle.js'
import type { SelectFork } from '../topic/sync/target.js'
import { TopicServer } from '../topic/topic-server.js'
import { TopicStateManager } from '../topic/topic-state-manager.js'
import { TopicStore } from '../topic/topic-store.js'
import { throwIfAborted } from '../util/abort.js'
import { type Clock, systemClock } from '../util/clock.js'
import { eventSource } from '../util/events.js'
import { countServed, type DsfgMetrics, registerDsfgMetrics } from './dsfg-metrics.js'
import type { StateSyncHandle } from './state-sync-handle.js'

export interface DsfgComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
  logger: ComponentLogger
  /** The node's metrics implementation, if it has one (`createLibp2p({ metrics })`): DSFG registers its `dsfg_*` metrics there. */
  metrics?: Metrics
  /** This node's key: it signs the checkpoint records of topics this node publishes. */
  privateKey: PrivateKey
  /** The gossipsub service, when the node has one named `pubsub` (declared before or after `dsfg`). */
  pubsub?: GossipSub
}

/** A topic this node serves and follows. */
export interface TopicConfig {
  name: string
  /** The topic's publisher: only its signed items and checkpoints are accepted, and its checkpoints decide. */
  publisher?: PeerId
  /** Peers that must reach a head (or report a checkpoint) before it becomes the target (without a publisher). @default 1 */
  quorum?: number
  /**
   * Checkpoint sync: a trusted checkpoint at least `checkpointSyncMinItems` items past our head has its topic
   * trie trie-synced and adopted while the items after it download. `false` downloads every item.
   * @default true
   */
  checkpointSync?: boolean
  /** @default DEFAULT_CHECKPOINT_SYNC_MIN_ITEMS (1024) */
  checkpointSyncMinItems?: number
  /** Chooses which peer-reported checkpoint to trie-sync when there is no publisher. @default defaultSelectFork */
  selectFork?: SelectFork
}

export interface DsfgInit {
  /** Where trie nodes (and topic data) live. @default a new MemoryStore */
  store?: KVStore
  /** Topics to serve (status, contents, hashes) and to open with `topic(name)`. More can be opened later. */
  topics?: (string | TopicConfig)[]
  /**
   * What this node serves on the status, contents and hashes protocols, when the application keeps its items
   * in storage of its own (the DSFG hooks `getCurrentTopicState`, `getContents`, `getContentHashes`).
   * @default the service's `topicStore`
   */
  provider?: TopicProvider
  /** Deadline of one request to a peer. @default DEFAULT_REQUEST_TIMEOUT_MS (10 s) */
  requestTimeoutMs?: number
  /**
   * Time a peer has, once it opens a stream to us, to send its whole request frame; past it the stream is reset
   * and the peer charged a limit violation. @default DEFAULT_REQUEST_FRAME_TIMEOUT_MS (5 s)
   */
  requestFrameTimeoutMs?: number
  /** Concurrent inbound streams per connection and protocol. @default MAX_INBOUND_STREAMS (16) */
  maxInboundStreams?: number
  /**
   * Request tokens a second each peer may spend on the nodes protocol, and on the topic protocols (status,
   * contents, hashes) together; past it (and its burst) a request is answered RATE_LIMITED without touching
   * the store. A request costs one token per `REQUEST_COST_UNIT` (64) items, hashes or nodes it asks for, at
   * least one (`requestTokens`).
   * @default DEFAULT_INBOUND_REQUESTS_PER_SECOND (500)
   */
  inboundRatePerSecond?: number
  /** Request tokens a peer may spend at once. @default DEFAULT_INBOUND_REQUEST_BURST (250) */
  inboundBurst?: number
  /**
   * Reply bytes this node holds at once over all served protocols and peers, from when a reply is built until
   * its stream has written it out (a peer that does not read holds it until `requestTimeoutMs`, then its
   * stream is aborted); past it requests are answered RATE_LIMITED.
   * @default MAX_SERVING_REPLY_BYTES (64 MiB)
   */
  maxServingReplyBytes?: number
  /** The share of `maxServingReplyBytes` one peer may hold. @default MAX_SERVING_REPLY_BYTES_PER_PEER (12 MiB) */
  maxServingReplyBytesPerPeer?: number
  /**
   * The peer ledger every offence goes to: the score at which a peer is disconnected, how fast scores decay,
   * how long an offender is left out of the topic downloader, how many peers are scored.
   * @default PEER_SCORE_THRESHOLD (100), PEER_SCORE_HALF_LIFE_MS (5 min), PEER_COOL_DOWN_MS (10 s), MAX_SCORED_PEERS (1024)
   */
  peerScoring?: Omit<PeerScorerInit, 'clock'>
}

export interface SyncRootOptions extends Partial<Omit<StateSyncerInit, 'store' | 'fetchNodes' | 'log' | 'metrics'>> {
  signal?: AbortSignal
  /**
   * Follow a topic's checkpoints while syncing: each newer checkpoint signed by `publisher` on
   * `dsfg/<topic>/checkpoints` re-targets the sync to its root. Needs the gossipsub service.
   */
  follow?: { topic: string; publisher: PeerId }
}

/** The DSFG service as `node.services.dsfg` exposes it. */
export interface Dsfg {
  readonly store: KVStore
  /** Syncs the trie at `root` from peers that speak `/dsfg/nodes/1.0.0` into the store. */
  syncRoot(root: Uint8Array, options?: SyncRootOptions): Promise<StateSyncResult>
  /** Like `syncRoot`, returning a handle that can re-target the sync and report progress. */
  startStateSync(root: Uint8Array, options?: SyncRootOptions): StateSyncHandle
  /** Connected peers known to serve trie nodes. */
  nodePeers(): PeerId[]
  /** The reply bytes this node holds for peers it serves (`DsfgInit.maxServingReplyBytes`): now, at most so far, refusals, replies given up. */
  replyStats(): ReplyBudgetStats
  /**
   * Whether this node refuses `peer`'s connections now: it was disconnected for its offences less than
   * `PEER_CUT_OFF_MS` ago. `createDsfgNode` passes it to libp2p's connection gater (`denyInboundEncryptedConnection`
   * and `denyDialPeer`); an application with its own node can do the same.
   */
  refusesPeer(peer: PeerId): boolean
  /**
   * Calls `onCheckpoint` for every checkpoint record of `topic` signed by `publisher` on gossip, until
   * `options.signal` aborts or the service stops.
   */
  followCheckpoints(topic: string, publisher: PeerId, onCheckpoint: (cp: Checkpoint) => void, options?: AbortOptions): void
  /** Announces a checkpoint record on `dsfg/<topic>/checkpoints`, signed with this node's key; resolves to how many peers got it. */
  publishCheckpoint(topic: string, checkpoint: Checkpoint, options?: AbortOptions): Promise<number>
  /** The handle of a topic: publish, checkpoint, state, proofs, follow. Opens (and serves) it if new. */
  topic(name: string | TopicConfig): TopicHandle
  /** The topic items and their tries, in this node's store. */
  readonly topicStore: TopicStore
}

/** The request protocols this service serves. */
type ServedProtocol = typeof NODES_PROTOCOL | typeof STATUS_PROTOCOL | typeof CONTENTS_PROTOCOL | typeof HASHES_PROTOCOL

/**
 * What each served protocol's reply may come to, reserved from the reply budget before it is built: the frame
 * cap for nodes and contents, 8,192 RLP-encoded hashes (33 bytes each) and headers for hashes, a state with the
 * largest checkpoint record for status.
 */
const REPLY_RESERVE: { readonly [P in ServedProtocol]: number } = {
  [NODES_PROTOCOL]: MAX_FRAME_BYTES,
  [STATUS_PROTOCOL]: MAX_CHECKPOINT_RECORD_BYTES + 1024,
  [CONTENTS_PROTOCOL]: MAX_FRAME_BYTES,
  [HASHES_PROTOCOL]: MAX_HASHES_PER_REQUEST * 33 + 1024
}

/** Each served protocol's RATE_LIMITED reply, sent when the reply budget has no room: a few bytes, built once. */
const REPLY_REFUSALS: { readonly [P in ServedProtocol]: Uint8Array } = {
  [NODES_PROTOCOL]: encodeNodesResponse(Status.RATE_LIMITED),
  [STATUS_PROTOCOL]: encodeStatusResponse(Status.RATE_LIMITED),
  [CONTENTS_PROTOCOL]: encodeContentsResponse(Status.RATE_LIMITED),
  [HASHES_PROTOCOL]: encodeHashesResponse(Status.RATE_LIMITED)
}

/** Each served protocol's largest legal request (`constants.ts` derives them): longer frames are refused unread. */
const MAX_REQUEST_BYTES: { readonly [P in ServedProtocol]: number } = {
  [NODES_PROTOCOL]: MAX_NODES_REQUEST_BYTES,
  [STATUS_PROTOCOL]: MAX_STATUS_REQUEST_BYTES,
  [CONTENTS_PROTOCOL]: MAX_CONTENTS_REQUEST_BYTES,
  [HASHES_PROTOCOL]: MAX_HASHES_REQUEST_BYTES
}

/** Request frames a client may write ahead of their replies on one stream of each served protocol (1: a stream a request). */
const MAX_PIPELINED_REQUESTS: { readonly [P in ServedProtocol]: number } = {
  [NODES_PROTOCOL]: MAX_PIPELINED_NODES_REQUESTS,
  [STATUS_PROTOCOL]: 1,
  [CONTENTS_PROTOCOL]: MAX_PIPELINED_CONTENTS_REQUESTS,
  [HASHES_PROTOCOL]: 1
}

export class DsfgService implements Dsfg, Startable {
  readonly store: KVStore
  private readonly components: DsfgComponents
  private readonly log: Logger
  private readonly requestTimeoutMs: number
  private readonly requestFrameTimeoutMs: number
  private readonly maxInboundStreams: number
  private readonly peers = new Map<string, PeerId>()
  /** Peers disconnected for their offences, and until when their connections are refused (oldest first). */
  private readonly cutOff = new Map<string, number>()
  private controller = new AbortController()
  private topologyId: string | null = null
  private statusTopologyId: string | null = null
  private running = false
  /** `stop()` ran and `start()` has not since: no new topic handles (they would never be closed). */
  private stopped = false
  readonly topicStore: TopicStore
  private readonly topicServer: TopicServer
  private readonly fetcher: Fetcher
  private readonly topicStates: TopicStateManager
  private readonly topics = new Map<string, TopicHandle>()
  /** Running state syncs (`startStateSync`): told of peers as they come and go, and awaited by `stop()`. */
  private readonly stateSyncs = new Map<StateSyncer, Promise<StateSyncResult>>()
  private readonly topicConfigs: TopicConfig[]
  /**
   * The node's gossipsub and its subscriptions (shared by topic handles and checkpoint-following state syncs),
   * looked up once, when first needed (see `gossip()`).
   */
  private gossipLookup: { found: { pubsub: GossipSub; feeds: GossipFeeds } | undefined } | undefined
  /** Per-peer token buckets for `/dsfg/nodes/1.0.0` requests. */
  private readonly nodeRequests: TokenBuckets
  /** Nodes replies reading subtries now (`MAX_SUBTRIE_READS` at most). */
  private subtrieReads = 0
  /** Reply bytes in flight, over every served protocol. */
  private readonly replyBudget: ReplyBudget
  private readonly clock: Clock = systemClock
  /** The one peer ledger: every offence of every protocol and syncer is weighed here. */
  private readonly scorer: PeerScorer
  /** The ledger's scores as the peer store shows them. */
  private readonly tags: PenaltyTags
  /** The `dsfg_*` metrics, when the node has a metrics implementation. */
  private readonly metrics: DsfgMetrics | undefined
  private readonly stateSyncLog: Logger

  constructor(components: DsfgComponents, init: DsfgInit = {}) {
    this.components = components
    this.log = components.logger.forComponent('dsfg:service')
    this.stateSyncLog = components.logger.forComponent('dsfg:state-sync')
    this.metrics = registerDsfgMetrics(components.metrics, {
      stateSyncs: () => [...this.stateSyncs.keys()].map((s) => s.stats()),
      replyBudget: () => this.replyBudget.stats(),
      topics: () =>
        Promise.all(
          [...this.topics.values()].map(async (t) => ({
            name: t.name,
            mode: t.mode,
            target: t.target,
            head: await this.topicStore.head(t.name).catch((err: unknown) => {
              // A scrape while the store closes, say: the gauge shows no items rather than failing the scrape.
              this.log('reading the head of %s for the metrics failed: %e', t.name, err)
              return -1
            })
          }))
        )
    })
    this.store = init.store ?? new MemoryStore()
    this.requestTimeoutMs = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.requestFrameTimeoutMs = init.requestFrameTimeoutMs ?? DEFAULT_REQUEST_FRAME_TIMEOUT_MS
    this.maxInboundStreams = init.maxInboundStreams ?? MAX_INBOUND_STREAMS
    this.topicStore = new TopicStore(this.store)
    this.scorer = new PeerScorer({ ...init.peerScoring, clock: this.clock })
    this.tags = new PenaltyTags({
      peerStore: components.peerStore,
      connectionManager: components.connectionManager,
      scorer: this.scorer,
      clock: this.clock,
      log: this.log
    })
    const rate = {
      ratePerSecond: init.inboundRatePerSecond ?? DEFAULT_INBOUND_REQUESTS_PER_SECOND,
      burst: init.inboundBurst ?? DEFAULT_INBOUND_REQUEST_BURST
    }
    this.nodeRequests = new TokenBuckets(rate)
    this.replyBudget = new ReplyBudget({
      maxBytes: init.maxServingReplyBytes ?? MAX_SERVING_REPLY_BYTES,
      maxBytesPerPeer: init.maxServingReplyBytesPerPeer ?? MAX_SERVING_REPLY_BYTES_PER_PEER
    })
    this.topicServer = new TopicServer({
      provider: init.provider ?? this.topicStore,
      inboundRatePerSecond: rate.ratePerSecond,
      inboundBurst: rate.burst,
      onRateLimited: (peer) => this.limitViolated(peer),
      onProviderError: (err, peer) => this.log.error('serving %s failed: %e', peer, err),
      log: components.logger.forComponent('dsfg:topic-server')
    })
    this.fetcher = new Fetcher({
      openStream: (peer, protocol, options) => this.components.connectionManager.openStream(peer, protocol, options),
      requestTimeoutMs: this.requestTimeoutMs,
      log: components.logger.forComponent('dsfg:fetcher'),
      requestsSent: this.metrics?.sent
    })
    this.topicConfigs = (init.topics ?? []).map((t) => (typeof t === 'string' ? { name: t } : t))
    this.topicStates = new TopicStateManager({
      topics: this.topicConfigs.map((t) => t.name),
      fetchStatus: (peer, topic, options) => {
        // A joiner (nothing of the topic stored) asks a peer that has items for contents right after its
        // status: the contents stream is negotiated beside the status round trip instead of after it. One
        // no request uses is closed within PREPARED_SESSION_UNUSED_MS (a peer with nothing, say).
        this.topicStore.head(topic).then(
          (head) => {
            if (head < 0 && this.running) this.fetcher.prepareContents(peer)
          },
          () => undefined
        )
        return this.fetcher.status(peer, topic, options)
      },
      clock: this.clock,
      logger: components.logger,
      onPeerFault: (peer, err) => {
        const kind = err instanceof PeerFaultError ? PEER_FAULT_OFFENCES[err.reason] : 'malformed'
        this.blame(peer, kind, 'a bad status reply')
      }
    })
  }

  readonly [Symbol.toStringTag] = '@dsfg/service'

  /** What this service offers other services. */
  readonly [serviceCapabilities]: string[] = ['@dsfg/sync']

  /**
   * Identify tells the registrar which protocols a peer speaks: without it no peer ever shows up as a DSFG peer.
   * gossipsub is optional (live items and checkpoint gossip), so it is looked up, not declared.
   */
  readonly [serviceDependencies]: string[] = ['@libp2p/identify']

  async start(): Promise<void> {
    if (this.running) return
    if (this.controller.signal.aborted) this.controller = new AbortController()
    await this.components.registrar.handle(
      NODES_PROTOCOL,
      frameHandler(
        countServed(this.metrics?.served, NODES_PROTOCOL, (frame, peer, maxReplyBytes) => this.answerNodes(frame, peer, maxReplyBytes)),
        this.frameOptions(NODES_PROTOCOL)
      ),
      { maxInboundStreams: this.maxInboundStreams }
    )
    this.topologyId = await this.components.registrar.register(NODES_PROTOCOL, {
      onConnect: (peer) => this.peerConnected(peer),
      onDisconnect: (peer) => this.peerDisconnected(peer)
    })
    const answers = this.topicServer.handlers()
    for (const protocol of [STATUS_PROTOCOL, CONTENTS_PROTOCOL, HASHES_PROTOCOL] as const) {
      const answer = answers[protocol]
      await this.components.registrar.handle(
        protocol,
        frameHandler(countServed(this.metrics?.served, protocol, answer), this.frameOptions(protocol)),
        { maxInboundStreams: this.maxInboundStreams }
      )
    }
    this.statusTopologyId = await this.components.registrar.register(STATUS_PROTOCOL, {
      onConnect: (peer) => {
        const key = peer.toString()
        this.topicStates.addPeer(key)
        // Reconnecting does not cut a cool-down short.
        const cooledAt = this.scorer.cooledAt(key)
        if (cooledAt !== undefined) this.topicStates.suspendPeer(key, cooledAt - this.clock.now())
      },
      onDisconnect: (peer) => this.topicStates.removePeer(peer.toString())
    })
    this.topicStates.start()
    this.stopped = false
    for (const config of this.topicConfigs) this.topic(config)
    this.running = true
  }

  /**
   * Stops serving and syncing: every topic handle's `follow`, `syncOnce` and `items` ends with `AbortError`, and
   * every state sync started here is aborted; resolves once all of them have stopped, so nothing writes the
   * stores after it. The stores belong to the application, which closes them after this.
   */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.stopped = true
    this.controller.abort()
    await Promise.all([...this.topics.values()].map((handle) => handle.close()))
    // A closed handle stays closed: a restarted service hands out new ones.
    this.topics.clear()
    await Promise.allSettled([...this.stateSyncs.values()])
    await this.topicStates.stop()
    this.fetcher.closeSessions()
    for (const protocol of [NODES_PROTOCOL, STATUS_PROTOCOL, CONTENTS_PROTOCOL, HASHES_PROTOCOL]) {
      await this.components.registrar.unhandle(protocol)
    }
    for (const id of [this.topologyId, this.statusTopologyId]) if (id !== null) this.components.registrar.unregister(id)
    this.topologyId = null
    this.statusTopologyId = null
    this.peers.clear()
    this.tags.stop()
  }

  /** The reply bytes this node holds for the peers it serves: now, at most so far, and replies refused for want of room. */
  replyStats(): ReplyBudgetStats {
    return this.replyBudget.stats()
  }

  nodePeers(): PeerId[] {
    return [...this.peers.values()]
  }

  refusesPeer(peer: PeerId): boolean {
    const key = peer.toString()
    const until = this.cutOff.get(key)
    if (until === undefined) return false
    if (until > this.clock.now()) return true
    this.cutOff.delete(key)
    return false
  }

  async syncRoot(root: Uint8Array, options: SyncRootOptions = {}): Promise<StateSyncResult> {
    return this.startStateSync(root, options).done
  }

  startStateSync(root: Uint8Array, options: SyncRootOptions = {}): StateSyncHandle {
    const { signal, follow, ...tunables } = options
    // One long-lived stream per peer for this sync's requests, closed with it.
    const sessions = new FrameSessions((p, protocol, opts) => this.components.connectionManager.openStream(p, protocol, opts), {
      protocol: NODES_PROTOCOL,
      maxResponseBytes: MAX_FRAME_BYTES,
      maxUnanswered: MAX_PIPELINED_NODES_REQUESTS,
      timeoutMs: this.requestTimeoutMs
    })
    const syncer = new StateSyncer({
      requestTimeoutMs: this.requestTimeoutMs,
      ...tunables,
      store: this.store,
      log: this.stateSyncLog,
      metrics: this.metrics?.trieNodes,
      fetchNodes: (peer, hashes, { signal, subtrieBytes }) => this.fetchNodes(sessions, peer, hashes, signal, subtrieBytes),
      onPenalty: (penalty) => {
        tunables.onPenalty?.(penalty)
        this.blame(penalty.peer, TRIE_PENALTY_OFFENCES[penalty.reason], penalty.reason)
      }
    })
    for (const peer of this.peers.keys()) syncer.addPeer(peer)
    const combined = signal === undefined ? this.controller.signal : AbortSignal.any([signal, this.controller.signal])
    const following = new AbortController()
    if (follow !== undefined) {
      let newest = -1
      this.followCheckpoints(
        follow.topic,
        follow.publisher,
        (cp) => {
          if (cp.number <= newest) return
          newest = cp.number
          syncer.retarget(cp.root)
        },
        { signal: following.signal }
      )
    }
    const done = syncer.sync(root, { signal: combined }).finally(() => {
      following.abort()
      sessions.close()
      this.stateSyncs.delete(syncer)
    })
    this.stateSyncs.set(syncer, done)
    // The caller owns `done`; this only keeps an unobserved failure from becoming an unhandled rejection.
    done.catch(() => undefined)
    return { done, events: eventSource(syncer), retarget: (r) => syncer.retarget(r), stats: () => syncer.stats() }
  }

  followCheckpoints(topic: string, publisher: PeerId, onCheckpoint: (cp: Checkpoint) => void, options: AbortOptions = {}): void {
    const signal = options.signal === undefined ? this.controller.signal : AbortSignal.any([options.signal, this.controller.signal])
    if (signal.aborted) return
    // The shared validator runs before gossipsub forwards anything: forged or malformed checkpoints die there.
    const open = (data: Uint8Array) => openCheckpoint(data, { topic, publisher })
    const release = this.requireFeeds().listen(checkpointsTopic(topic), open, undefined, (record) => {
      onCheckpoint(record.checkpoint)
    })
    signal.addEventListener('abort', release, { once: true })
  }

  async publishCheckpoint(topic: string, checkpoint: Checkpoint, options: AbortOptions = {}): Promise<number> {
    const pubsub = this.requirePubsub()
    throwIfAborted(options.signal)
    const record = await sealCheckpoint(topic, checkpoint, this.components.privateKey)
    // Checked once more before the record leaves: once handed to gossipsub it is sent whatever happens next.
    throwIfAborted(options.signal)
    const result = await pubsub.publish(checkpointsTopic(topic), record.envelope)
    return result.recipients.length
  }

  topic(name: string | TopicConfig): TopicHandle {
    if (this.stopped) throw new ServiceConfigError('the DSFG service is stopped: topic handles come from a running node')
    const config = typeof name === 'string' ? { name } : name
    let handle = this.topics.get(config.name)
    if (handle === undefined) {
      this.topicStates.addTopic(config.name)
      const gossip = this.gossip()
      handle = new TopicHandle(config.name, {
        log: this.components.logger.forComponent('dsfg:topic'),
        metrics: this.metrics?.topicItems,
        store: this.topicStore,
        fetcher: this.fetcher,
        states: this.topicStates,
        pubsub: gossip?.pubsub,
        feeds: gossip?.feeds,
        publisher: config.publisher,
        privateKey: this.components.privateKey,
        quorum: config.quorum,
        selectFork: config.selectFork,
        checkpointSyncMinItems: config.checkpointSyncMinItems,
        syncTrie:
          config.checkpointSync === false
            ? undefined
            : (root, { signal, onProgress, onPenalty }) => {
                const run = this.startStateSync(root, { signal, onPenalty: (p) => onPenalty(p.peer, p.reason) })
                run.events.addEventListener('progress', (e) => onProgress(e.detail))
                return { done: run.done, retarget: (r) => run.retarget(r) }
              },
        onPeerFault: (peer, kind, reason) => this.blame(peer, kind, `${config.name}: ${reason}`)
      })
      this.topics.set(config.name, handle)
    }
    return handle
  }

  /**
   * Asks `peer` for trie nodes (the state syncer's `fetchNodes`), counting the request by outcome. The syncer
   * logs and weighs failures; only the count is made here.
   */
  private fetchNodes(
    sessions: FrameSessions,
    peer: string,
    hashes: Uint8Array[],
    signal: AbortSignal,
    subtrieBytes: number | undefined
  ): Promise<NodesReplyItem[]> {
    // Not async, as `requestNodes` is not: the hashes are not kept for the round trip.
    const id = this.peers.get(peer)
    if (id === undefined) return Promise.reject(new PeerRequestError(peer, 'not-connected', 'peer is not connected'))
    return this.countedNodesRequest(requestNodes(sessions, id, hashes, { signal, subtrieBytes }), signal)
  }

  private async countedNodesRequest(request: Promise<NodesReplyItem[]>, signal: AbortSignal): Promise<NodesReplyItem[]> {
    try {
      const nodes = await request
      this.metrics?.sent.increment({ [requestLabel(NODES_PROTOCOL, 'ok')]: true })
      return nodes
    } catch (err) {
      this.metrics?.sent.increment({ [requestLabel(NODES_PROTOCOL, failureOutcome(err, signal))]: true })
      throw err
    }
  }

  /** How a served protocol reads its request frames: capped at the protocol's largest legal request, and in time. */
  private frameOptions(protocol: ServedProtocol): FrameHandlerOptions {
    return {
      maxRequestBytes: MAX_REQUEST_BYTES[protocol],
      maxPipelinedRequests: MAX_PIPELINED_REQUESTS[protocol],
      frameTimeoutMs: this.requestFrameTimeoutMs,
      timeoutMs: this.requestTimeoutMs,
      replyBudget: {
        budget: this.replyBudget,
        reserveBytes: REPLY_RESERVE[protocol],
        // Nodes and contents replies can be cut short: reserved what fits the peer's share, down to this.
        minReserveBytes: protocol === NODES_PROTOCOL || protocol === CONTENTS_PROTOCOL ? MIN_REPLY_RESERVE_BYTES : undefined,
        refusal: REPLY_REFUSALS[protocol]
      },
      onError: (err, peer) => this.log('%s request from %p failed: %e', protocol, peer, err),
      onViolation: (violation, peer) => this.frameViolated(protocol, violation, peer)
    }
  }

  /**
   * A nodes request costs one token per `REQUEST_COST_UNIT` hashes it asks for, so it is decoded first (at most
   * `MAX_NODES_REQUEST_BYTES`); a frame that does not decode costs one. The nodes read to send subtries as their
   * leaves are charged after the reply, in the same tokens.
   */
  private async answerNodes(frame: Uint8Array, peer: string, maxReplyBytes = MAX_FRAME_BYTES): Promise<Uint8Array> {
    let request: NodesRequest
    try {
      request = decodeNodesRequestWhole(frame)
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err
      this.log('malformed nodes request from %s: %e', peer, err)
      return encodeNodesResponse(this.admitNodes(peer, 1) ? Status.INVALID_REQUEST : Status.RATE_LIMITED)
    }
    const { hashes } = request
    if (!this.admitNodes(peer, requestTokens(hashes.length))) return encodeNodesResponse(Status.RATE_LIMITED)
    // Reading subtries holds their nodes and leaves beside the reply: with `MAX_SUBTRIE_READS` replies doing so
    // already, this one goes as nodes (which the client takes as well), never waiting for a turn.
    const subtrieBytes = request.subtrieBytes > 0 && this.subtrieReads < MAX_SUBTRIE_READS ? request.subtrieBytes : 0
    if (subtrieBytes > 0) this.subtrieReads++
    try {
      return await answerNodes(this.store, hashes, {
        maxResponseBytes: payloadBytesOf(maxReplyBytes),
        subtrieBytes,
        // The nodes read for subtries cost what nodes asked for do, paid after the reply.
        onSubtrieReads: (nodes) => this.nodeRequests.spend(peer, requestTokens(nodes))
      })
    } finally {
      if (subtrieBytes > 0) this.subtrieReads--
    }
  }

  private admitNodes(peer: string, tokens: number): boolean {
    if (this.nodeRequests.take(peer, tokens)) return true
    this.limitViolated(peer)
    return false
  }

  /** A request frame too large, too slow or cut short, or a reply left unread: the stream is gone, and the peer charged for it. */
  private frameViolated(protocol: string, violation: FrameViolation, peer: PeerId): void {
    this.log('%s request frame from %p: %s', protocol, peer, violation)
    this.metrics?.served.increment({ [requestLabel(protocol, 'bad-frame')]: true })
    this.limitViolated(peer.toString())
  }

  /** A peer's request went past a limit (rate, frame size or deadline): a light offence, a flood of them a disconnect. */
  private limitViolated(peer: string): void {
    this.blame(peer, 'limit', 'a request past a limit')
  }

  private requireFeeds(): GossipFeeds {
    return this.requireGossip().feeds
  }

  private requirePubsub(): GossipSub {
    return this.requireGossip().pubsub
  }

  private requireGossip(): { pubsub: GossipSub; feeds: GossipFeeds } {
    const gossip = this.gossip()
    if (gossip === undefined) throw new ServiceConfigError('this node has no gossipsub service named "pubsub"')
    return gossip
  }

  /**
   * The node's gossipsub, if it has one named `pubsub`, looked up when first needed rather than in the
   * constructor: libp2p builds services in the order they are declared, and its components throw
   * `MissingServiceError` for one that is not (yet) there, so reading it early failed without gossipsub (which is
   * optional) or with it declared after `dsfg`.
   */
  private gossip(): { pubsub: GossipSub; feeds: GossipFeeds } | undefined {
    if (this.gossipLookup === undefined) {
      let pubsub: GossipSub | undefined
      try {
        pubsub = this.components.pubsub
      } catch (err) {
        this.log('no gossipsub service: live items and checkpoint gossip are off (%e)', err)
        pubsub = undefined
      }
      const log = this.components.logger.forComponent('dsfg:gossip')
      this.gossipLookup = { found: pubsub === undefined ? undefined : { pubsub, feeds: new GossipFeeds(pubsub, { log }) } }
    }
    return this.gossipLookup.found
  }

  private peerConnected(peer: PeerId): void {
    const key = peer.toString()
    this.peers.set(key, peer)
    for (const s of this.stateSyncs.keys()) s.addPeer(key)
  }

  private peerDisconnected(peer: PeerId): void {
    const key = peer.toString()
    this.peers.delete(key)
    for (const s of this.stateSyncs.keys()) s.removePeer(key)
  }

  /**
   * Where every offence of every protocol and syncer goes. The ledger weighs it; the peer store's
   * `dsfg-penalty` tag shows the new score (`PenaltyTags`); at the threshold the peer's connections are closed. Any offence
   * about data we asked for also leaves the peer out of the topic downloader for the cool-down, after which it
   * is asked again if it is still connected. (Its requests past our limits are no reason to stop asking it.)
   * Our scores outlive a disconnection: the ledger's decay and cap bound them, and a peer cut off that dials
   * again starts where it left off.
   */
  private blame(peer: string, kind: OffenceKind, reason: string): void {
    const before = tagValue(this.scorer.score(peer))
    const { score, disconnect } = this.scorer.offence(peer, kind)
    if (this.metrics !== undefined) {
      this.metrics.offences.increment({ [kind]: true })
      if (disconnect) this.metrics.disconnects.increment()
    }
    this.log('peer %s: %s (%s), score %d%s', peer, kind, reason, Math.round(score), disconnect ? ': disconnecting' : '')
    const cooledAt = this.scorer.cooledAt(peer)
    if (kind !== 'limit' && cooledAt !== undefined) this.topicStates.suspendPeer(peer, cooledAt - this.clock.now())
    if (disconnect) this.refuseFor(peer, PEER_CUT_OFF_MS)
    if (disconnect || tagValue(score) !== before) this.tags.set(peer, tagValue(score), disconnect)
  }

  /** Refuses `peer`'s connections for `ms` (see `refusesPeer`), forgetting the oldest cut-off past `MAX_CUT_OFF_PEERS`. */
  private refuseFor(peer: string, ms: number): void {
    this.cutOff.delete(peer)
    this.cutOff.set(peer, this.clock.now() + ms)
    if (this.cutOff.size > MAX_CUT_OFF_PEERS) this.cutOff.delete(this.cutOff.keys().next().value!)
  }
}
