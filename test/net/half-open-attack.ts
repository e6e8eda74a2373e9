import type { Connection, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
import {
  MAX_CONTENTS_REQUEST_BYTES,
  MAX_HASHES_REQUEST_BYTES,
  MAX_INBOUND_STREAMS,
  MAX_NODES_REQUEST_BYTES,
  MAX_STATUS_REQUEST_BYTES
} from '../../src/constants.js'
import { NODES_PROTOCOL } from '../../src/net/nodes-protocol.js'
import { lengthPrefix } from '../../src/net/rpc.js'
import { CONTENTS_PROTOCOL, encodeContentsRequest, HASHES_PROTOCOL, STATUS_PROTOCOL } from '../../src/net/topic-protocols.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { TopicHandle } from '../../src/topic/topic-handle.js'
import { Prng } from '../../src/util/prng.js'
import { createDsfgNode, createTestNode, type DsfgNode } from '../helpers/libp2p.js'

/** The served protocols and the largest request frame each accepts. */
export const REQUEST_CAPS: Readonly<Record<string, number>> = {
  [NODES_PROTOCOL]: MAX_NODES_REQUEST_BYTES,
  [STATUS_PROTOCOL]: MAX_STATUS_REQUEST_BYTES,
  [CONTENTS_PROTOCOL]: MAX_CONTENTS_REQUEST_BYTES,
  [HASHES_PROTOCOL]: MAX_HASHES_REQUEST_BYTES
}

/** Streams one attacker opens: as many on each served protocol as a connection may (`MAX_INBOUND_STREAMS`). */
export const HALF_OPEN_STREAMS = Object.keys(REQUEST_CAPS).length * MAX_INBOUND_STREAMS

/** The unsigned varint length prefix of a frame, as lpStream writes it. */
export { lengthPrefix }

/** One stream of the attack, and when the server ended it (ms after `started`; undefined while it is open). */
export interface HalfOpen {
  stream: Stream
  kind: 'oversized' | 'late'
  endedAtMs?: number
}

export interface HalfOpenOptions {
  /** What an oversized stream's length prefix claims (2 MiB was legal before the caps). */
  claimedBytes: number
  /** How much of its claimed frame an oversized stream sends. */
  sentBytes: number
  /** Time origin of `endedAtMs`. */
  started: number
}

/**
 * The half-open-frame attack of issue 14 from one connection: `MAX_INBOUND_STREAMS` streams on each served
 * protocol, half sending a length prefix of `claimedBytes` and `sentBytes` of the frame, half claiming exactly
 * the protocol's cap and sending half of it. None ever finishes its frame.
 */
export async function openHalfFrames(connection: Connection, options: HalfOpenOptions): Promise<HalfOpen[]> {
  const out: HalfOpen[] = []
  const filler = new Uint8Array(options.sentBytes)
  for (const [protocol, cap] of Object.entries(REQUEST_CAPS)) {
    for (let i = 0; i < MAX_INBOUND_STREAMS; i++) {
      const stream = await connection.newStream(protocol)
      const entry: HalfOpen = { stream, kind: i % 2 === 0 ? 'oversized' : 'late' }
      stream.addEventListener('close', () => {
        entry.endedAtMs = Date.now() - options.started
      })
      if (entry.kind === 'oversized') {
        stream.send(lengthPrefix(options.claimedBytes))
        stream.send(filler)
      } else {
        stream.send(lengthPrefix(cap))
        stream.send(new Uint8Array(Math.floor(cap / 2)))
      }
      out.push(entry)
    }
  }
  return out
}

/** A serving node with a reply budget and write deadline of the test's, holding `count` random items of `topic`. */
export async function budgetedServer(options: {
  topic: string
  count: number
  itemBytes: number
  seed: number
  /** The write deadline (`requestTimeoutMs`). */
  deadlineMs: number
  budget: number
  perPeer: number
}): Promise<DsfgNode> {
  const server = await createDsfgNode({
    store: new MemoryStore(),
    requestTimeoutMs: options.deadlineMs,
    maxServingReplyBytes: options.budget,
    maxServingReplyBytesPerPeer: options.perPeer
  })
  const prng = new Prng(options.seed)
  const items = Array.from({ length: options.count }, () => prng.bytes(options.itemBytes))
  await server.services.dsfg.topicStore.appendMany(options.topic, items)
  return server
}

/**
 * A slow reader's stream: a contents request for 256 items of `topic` from `from` on `connection`, its reader
 * paused, so the server holds its reply (about 2 MiB with large items) until its write deadline.
 */
export async function openSlowRead(connection: Connection, topic: string, from: number): Promise<Stream> {
  const stream = await connection.newStream(CONTENTS_PROTOCOL)
  stream.pause()
  const request = encodeContentsRequest(topic, from, 256)
  stream.send(lengthPrefix(request.byteLength))
  stream.send(request)
  return stream
}

/**
 * `count` plain libp2p nodes, each connected to `target` (stop them when done). They dial 250 ms apart: libp2p
 * accepts at most 5 connections a second from one address (`inboundConnectionThreshold`).
 */
export async function connectedAttackers(count: number, target: Multiaddr): Promise<Libp2p[]> {
  const attackers = await Promise.all(Array.from({ length: count }, () => createTestNode()))
  for (const attacker of attackers) {
    await attacker.dial(target)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return attackers
}

/** An honest node that will download `topic` (no checkpoint sync) when told to follow; `stop` ends both. */
export async function honestJoiner(
  topic: string
): Promise<{ node: DsfgNode; topic: TopicHandle; follow: () => Promise<void>; stop: () => Promise<void> }> {
  const node = await createDsfgNode({ store: new MemoryStore() })
  const handle = node.services.dsfg.topic({ name: topic, checkpointSync: false })
  const controller = new AbortController()
  return {
    node,
    topic: handle,
    follow: () => handle.follow({ signal: controller.signal }),
    stop: async () => {
      controller.abort()
      await node.stop()
    }
  }
}
