import { generateKeyPair } from '@libp2p/crypto/keys'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { type Identify, identify } from '@libp2p/identify'
import type { PeerId } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { MAX_FRAME_BYTES, MAX_PIPELINED_CONTENTS_REQUESTS, MAX_PIPELINED_NODES_REQUESTS } from '../../src/constants.js'
import { decodeFrame, expectStatus, Status } from '../../src/net/codec.js'
import { requestFrame } from '../../src/net/rpc.js'
import type { Item } from '../../src/net/topic-protocols.js'
import type { KVStore } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { sealCheckpoint } from '../../src/topic/checkpoint-record.js'
import { type Checkpoint, checkpointsTopic, encodeGossipItem, itemsTopic } from '../../src/topic/gossip.js'
import type { TopicProvider } from '../../src/topic/provider.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import {
  type AdversaryProtocol,
  type Behaviour,
  type Behaviours,
  isTransportFault,
  ruleFor,
  type TransportFault
} from './adversary-model.js'
import { PROTOCOL_IDS, type Replier, repliers } from './adversary-replies.js'
import { createTestNode, serveFrames } from './libp2p.js'
import { until } from './wait.js'

export type { AdversaryCall, AdversaryProtocol, Behaviour, Behaviours, Fault, Rule } from './adversary-model.js'

export interface AdversaryInit {
  /** Trie nodes served on `/dsfg/nodes/1.0.0` (and topic data, when `topics` is not given). @default a new MemoryStore */
  store?: KVStore
  /** What the topic protocols serve honestly. @default a TopicStore over `store` */
  topics?: TopicProvider
  /** How each protocol answers. @default 'honest' for every protocol */
  behaviour?: Behaviours
  /** Concurrent inbound streams per connection and protocol. @default 64 */
  maxInboundStreams?: number
}

export type AdversaryLibp2p = Libp2p<{ identify: Identify; pubsub: GossipSub }>

/** How the replies to a flood of requests came back. */
export interface FloodResult {
  /** Replies by status code. */
  codes: Record<'ok' | 'invalid' | 'unavailable' | 'rateLimited', number>
  /** Requests that got no reply: the stream was refused or reset, or the request timed out. */
  refused: number
}

export interface Adversary {
  node: AdversaryLibp2p
  /** Requests received so far, of one protocol or of all. */
  calls(protocol?: AdversaryProtocol): number
  /**
   * Gossips a checkpoint record on `dsfg/<topic>/checkpoints`, signed with the adversary's key; resolves to the
   * recipients (sending again until there is one, for up to 5 s).
   */
  publishCheckpoint(topic: string, checkpoint: Checkpoint): Promise<number>
  /** Gossips `bytes` as they are on `dsfg/<topic>/checkpoints` (a relayed record, or garbage), as above. */
  publishRecord(topic: string, bytes: Uint8Array): Promise<number>
  /** Gossips `[n, item]` on `dsfg/<topic>/items`, signed by the adversary, as `publishCheckpoint` does. */
  publishItem(topic: string, item: Item): Promise<number>
  /** Sends `requests` copies of `frame` to `peer` on `protocol`, `concurrency` streams at a time. */
  flood(peer: PeerId, protocol: AdversaryProtocol, frame: Uint8Array, options: FloodOptions): Promise<FloodResult>
  stop(): Promise<void>
}

export interface FloodOptions {
  requests: number
  concurrency: number
  /** Deadline of each request. @default 5000 */
  timeoutMs?: number
}

const CODE_NAMES: Record<Status, keyof FloodResult['codes']> = {
  [Status.OK]: 'ok',
  [Status.INVALID_REQUEST]: 'invalid',
  [Status.UNAVAILABLE]: 'unavailable',
  [Status.RATE_LIMITED]: 'rateLimited'
}

/**
 * The end-to-end driver of the adversary model (adversary-model.ts): a real libp2p node on 127.0.0.1 (TCP,
 * noise, yamux, identify, gossipsub) that speaks the DSFG request protocols from honest data (`store`, `topics`)
 * but answers each as `behaviour` says: corrupt, reordered,
 * duplicated, too many, oversized, slow, stalled, reset, disconnected, or lying about its topic state. Its
 * honest replies come from the library's own server functions and codecs, and every fault is a change of one.
 * It can also gossip forged items and checkpoints, and flood another node with requests.
 */
/** Request frames a stream may carry ahead of their replies, per protocol, as a DSFG service takes them. */
const PIPELINED: Record<AdversaryProtocol, number> = {
  nodes: MAX_PIPELINED_NODES_REQUESTS,
  status: 1,
  contents: MAX_PIPELINED_CONTENTS_REQUESTS,
  hashes: 1
}

export async function createAdversary(init: AdversaryInit = {}): Promise<Adversary> {
  const store = init.store ?? new MemoryStore()
  const replies = repliers(store, init.topics ?? new TopicStore(store))
  const privateKey = await generateKeyPair('Ed25519')
  const node: AdversaryLibp2p = await createTestNode(
    { identify: identify(), pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true }) },
    { privateKey }
  )
  const counts: Record<AdversaryProtocol, number> = { nodes: 0, status: 0, contents: 0, hashes: 0 }
  const serve = async <P extends AdversaryProtocol>(protocol: P, behaviour: Behaviour<P> | undefined): Promise<void> => {
    const replier = replies[protocol] as Replier<P>
    await serveFrames(
      node,
      PROTOCOL_IDS[protocol],
      async (frame, peer) => {
        const request = replier.request(frame)
        const rule = await ruleFor(behaviour, { protocol, call: ++counts[protocol], peer: peer.toString(), request })
        await rule.hold?.()
        if (rule.delayMs !== undefined) await new Promise((r) => setTimeout(r, rule.delayMs))
        const fault = rule.fault ?? 'honest'
        if (rule.reply === undefined && isTransportFault(fault)) return misbehave(node, peer, fault)
        return replier.reply(rule, frame, request, peer.toString())
      },
      // Many outbound streams, so that a flood is limited by the server under test, not by the adversary; a
      // long deadline, so that holds and delays decide when it answers.
      // Pipelined as a DSFG service pipelines: requests written ahead on one stream reach the behaviour at once.
      {
        maxInboundStreams: init.maxInboundStreams ?? 64,
        maxOutboundStreams: 4096,
        timeoutMs: 600_000,
        maxPipelinedRequests: PIPELINED[protocol]
      }
    )
  }
  await serve('nodes', init.behaviour?.nodes)
  await serve('status', init.behaviour?.status)
  await serve('contents', init.behaviour?.contents)
  await serve('hashes', init.behaviour?.hashes)
  // Gossipsub may know a peer's subscription before its own stream to that peer is open: until then a
  // publish reaches nobody, so try again for a while.
  const gossip = async (topic: string, data: Uint8Array): Promise<number> => {
    let recipients = 0
    await until(
      async () => {
        recipients = (await node.services.pubsub.publish(topic, data)).recipients.length
        return recipients > 0
      },
      `a peer to receive gossip on ${topic}`,
      5_000,
      50
    )
    return recipients
  }
  return {
    node,
    calls: (protocol) => (protocol === undefined ? Object.values(counts).reduce((a, b) => a + b, 0) : counts[protocol]),
    publishCheckpoint: async (topic, cp) => gossip(checkpointsTopic(topic), (await sealCheckpoint(topic, cp, privateKey)).envelope),
    publishRecord: (topic, bytes) => gossip(checkpointsTopic(topic), bytes),
    publishItem: (topic, item) => gossip(itemsTopic(topic), encodeGossipItem(item)),
    flood: (peer, protocol, frame, options) => flood(node, peer, PROTOCOL_IDS[protocol], frame, options),
    stop: async () => {
      await node.stop()
    }
  }
}

/**
 * Carries out a transport fault on the request of `peer`: never answers, or fails the stream (the frame
 * handler resets it when the answer throws) after dropping the connection or stopping the node.
 */
async function misbehave(node: Libp2p, peer: PeerId, fault: TransportFault): Promise<never> {
  switch (fault) {
    case 'stall':
      return new Promise<never>(() => {}) // the stream stays open until the client gives up
    case 'reset':
      break
    case 'disconnect':
      for (const connection of node.getConnections(peer)) connection.abort(new Error('adversary disconnect'))
      break
    case 'stop':
      await node.stop()
      break
    default: {
      const exhaustive: never = fault
      throw new Error(`unknown fault ${String(exhaustive)}`)
    }
  }
  throw new Error(`adversary ${fault}`)
}

async function flood(node: Libp2p, peer: PeerId, protocol: string, frame: Uint8Array, options: FloodOptions): Promise<FloodResult> {
  const result: FloodResult = { codes: { ok: 0, invalid: 0, unavailable: 0, rateLimited: 0 }, refused: 0 }
  let left = options.requests
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left--
      try {
        const answer = await requestFrame((p, id, o) => node.dialProtocol(p, id, o), peer, protocol, frame, {
          timeoutMs: options.timeoutMs ?? 5000,
          maxResponseBytes: MAX_FRAME_BYTES
        })
        const list = decodeFrame(answer, 'flood reply')
        result.codes[CODE_NAMES[expectStatus(Array.isArray(list) ? list[0] : undefined, 'flood reply')]]++
      } catch {
        result.refused++
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  return result
}
