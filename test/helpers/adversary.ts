import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { type Identify, identify } from '@libp2p/identify'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { createLibp2p, type Libp2p } from 'libp2p'
import { MAX_FRAME_BYTES } from '../../src/constants.js'
import { decodeFrame, expectStatus, Status } from '../../src/net/codec.js'
import { decodeNodesRequest, encodeNodesResponse } from '../../src/net/nodes-protocol.js'
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
  type Fault,
  isTransportFault,
  PROTOCOL_IDS,
  type Replier,
  type Rule,
  repliers
} from './adversary-replies.js'
import { until } from './wait.js'

export type { AdversaryProtocol, Fault, Rule } from './adversary-replies.js'

/** One request as the adversary received it; `call` counts this protocol's requests from 1. */
export interface AdversaryCall {
  protocol: AdversaryProtocol
  call: number
  peer: PeerId
  frame: Uint8Array
}

/** A fault for every request, a rule, or a choice per request (say honest first, then gone). */
export type Behaviour = Fault | Rule | ((call: AdversaryCall) => Fault | Rule | Promise<Fault | Rule>)

export interface AdversaryInit {
  /** Trie nodes served on `/dsfg/nodes/1.0.0` (and topic data, when `topics` is not given). @default a new MemoryStore */
  store?: KVStore
  /** What the topic protocols serve honestly. @default a TopicStore over `store` */
  topics?: TopicProvider
  /** How each protocol answers. @default 'honest' for every protocol */
  behaviour?: Partial<Record<AdversaryProtocol, Behaviour>>
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
 * A real libp2p node on 127.0.0.1 (TCP, noise, yamux, identify, gossipsub) that speaks the DSFG request
 * protocols from honest data (`store`, `topics`) but answers each as `behaviour` says: corrupt, reordered,
 * duplicated, too many, oversized, slow, stalled, reset, disconnected, or lying about its topic state. Its
 * honest replies come from the library's own server functions and codecs, and every fault is a change of one.
 * It can also gossip forged items and checkpoints, and flood another node with requests.
 */
export async function createAdversary(init: AdversaryInit = {}): Promise<Adversary> {
  const store = init.store ?? new MemoryStore()
  const reply = repliers(store, init.topics ?? new TopicStore(store))
  const privateKey = await generateKeyPair('Ed25519')
  const node: AdversaryLibp2p = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true }) }
  })
  const counts: Record<AdversaryProtocol, number> = { nodes: 0, status: 0, contents: 0, hashes: 0 }
  for (const protocol of Object.keys(PROTOCOL_IDS) as AdversaryProtocol[]) {
    const behaviour = init.behaviour?.[protocol] ?? 'honest'
    const handler = async (stream: Stream, connection: Connection): Promise<void> => {
      const call: AdversaryCall = { protocol, call: 0, peer: connection.remotePeer, frame: new Uint8Array(0) }
      await serve(stream, connection, node, async (frame) => {
        call.call = ++counts[protocol]
        call.frame = frame
        return toRule(typeof behaviour === 'function' ? await behaviour(call) : behaviour)
      }, reply[protocol])
    }
    // Many outbound streams, so that a flood is limited by the server under test, not by the adversary.
    await node.handle(PROTOCOL_IDS[protocol], handler, { maxInboundStreams: init.maxInboundStreams ?? 64, maxOutboundStreams: 4096 })
  }
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

function toRule(behaviour: Fault | Rule): Rule {
  return typeof behaviour === 'string' ? { fault: behaviour } : behaviour
}

/** Reads one request frame, decides, and answers (or misbehaves) on the stream. */
async function serve(
  stream: Stream,
  connection: Connection,
  node: Libp2p,
  decide: (frame: Uint8Array) => Promise<Rule>,
  reply: Replier
): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES, maxBufferSize: MAX_FRAME_BYTES + 16 })
  try {
    const frame = (await lp.read()).subarray()
    const rule = await decide(frame)
    if (rule.delayMs !== undefined) await new Promise((r) => setTimeout(r, rule.delayMs))
    const fault = rule.fault ?? 'honest'
    if (rule.reply === undefined && isTransportFault(fault)) {
      switch (fault) {
        case 'stall':
          return // the stream stays open until the client gives up
        case 'reset':
          stream.abort(new Error('adversary reset'))
          return
        case 'disconnect':
          connection.abort(new Error('adversary disconnect'))
          return
        case 'stop':
          await node.stop()
          return
        default: {
          const exhaustive: never = fault
          throw new Error(`unknown fault ${String(exhaustive)}`)
        }
      }
    }
    await lp.write(await reply(rule, frame, connection.remotePeer.toString()))
    await stream.close()
  } catch {
    stream.abort(new Error('adversary failed'))
  }
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

// ---- the nodes-only adversary of the first state-sync tests, now a behaviour of the one above ------------

/** What an adversarial nodes server does with one request. */
export type NodesBehaviour = (hashes: Uint8Array[], call: number) => Promise<NodesAnswer> | NodesAnswer

export type NodesAnswer =
  /** Reply with these node blobs (status OK). */
  | { nodes: Uint8Array[] }
  /** Reply with these raw bytes as the frame. */
  | { frame: Uint8Array }
  /** Never reply; keep the stream open. */
  | { silent: true }
  /** Reset the stream without a reply. */
  | { reset: true }
  /** Stop the whole node (a disconnect mid-request). */
  | { disconnect: true }

export interface AdversaryNode {
  node: Libp2p
  /** Nodes requests received so far. */
  calls(): number
  stop(): Promise<void>
}

/** An adversary whose nodes protocol answers as `behaviour` says (see `createAdversary`). */
export async function createNodesAdversary(behaviour: NodesBehaviour): Promise<AdversaryNode> {
  const adversary = await createAdversary({
    behaviour: {
      nodes: async ({ call, frame }) => {
        const answer = await behaviour(decodeNodesRequest(frame), call)
        if ('nodes' in answer) return { reply: encodeNodesResponse(Status.OK, answer.nodes) }
        if ('frame' in answer) return { reply: answer.frame }
        if ('silent' in answer) return 'stall'
        return 'reset' in answer ? 'reset' : 'stop'
      }
    }
  })
  return { node: adversary.node, calls: () => adversary.calls('nodes'), stop: adversary.stop }
}
