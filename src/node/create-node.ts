import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { type Identify, identify } from '@libp2p/identify'
import type { ComponentLogger, Metrics, PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { type Dsfg, type DsfgInit, dsfg } from '../service/index.js'
import { keccak256 } from '../trie/keccak.js'
import { toHex } from '../util/hex.js'

export type DsfgLibp2p = Libp2p<{ identify: Identify; pubsub: GossipSub; dsfg: Dsfg }>

export interface CreateDsfgNodeOptions extends DsfgInit {
  /** Multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /**
   * The node's identity: its peer id is derived from this key, so the same key gives the same peer id across
   * restarts. @default a new Ed25519 key each time (libp2p's own default)
   */
  privateKey?: PrivateKey
  /**
   * libp2p's limits on inbound connections. A node that serves many joiners passes `SERVER_CONNECTION_LIMITS`.
   * @default libp2p's own (5 new connections a second per host, 10 upgrades in progress, 300 connections)
   */
  connectionLimits?: { inboundConnectionThreshold?: number; maxIncomingPendingConnections?: number; maxConnections?: number }
  /** The node's metrics implementation, as `createLibp2p` takes it (`prometheusMetrics()`): DSFG's `dsfg_*` metrics go there. */
  metrics?: (components: { logger: ComponentLogger }) => Metrics
  /** The node's logger. @default libp2p's, enabled with `DEBUG=dsfg*` */
  logger?: ComponentLogger
}

/**
 * A ready libp2p node with the transport stack DSFG is built for (TCP, noise, yamux, identify, gossipsub) and
 * the DSFG service. Applications with their own node add `dsfg(init)` to its services instead.
 */
export async function createDsfgNode(options: CreateDsfgNodeOptions = {}): Promise<DsfgLibp2p> {
  const { listen, privateKey, connectionLimits, metrics, logger, ...init } = options
  return createLibp2p({
    privateKey,
    metrics,
    logger,
    connectionManager: connectionLimits,
    addresses: { listen: listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      // Publishing with no subscriber yet is normal for a publisher that starts first: don't throw.
      pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true, fastMsgIdFn: fastMessageId }),
      dsfg: dsfg(init)
    }
  })
}

const encoder = new TextEncoder()

/**
 * gossipsub's fast de-duplication key: every mesh peer forwards each message, and without it each copy has
 * its signature verified again before being found a duplicate (measured: a third of a follower's CPU at 200
 * items/s). gossipsub caches a message under this key only once its signature checked out, and the key covers
 * exactly the signed fields (author, sequence number, topic, data, each length-prefixed): a later copy with
 * the same key is the same signed message. keccak-256 keeps anyone from crafting a colliding key.
 */
function fastMessageId(msg: { from?: Uint8Array; seqno?: Uint8Array; topic: string; data?: Uint8Array }): string {
  const parts = [msg.from, msg.seqno, encoder.encode(msg.topic), msg.data]
  let length = 0
  for (const part of parts) length += 4 + (part?.length ?? 0)
  const buffer = new Uint8Array(length)
  const view = new DataView(buffer.buffer)
  let offset = 0
  for (const part of parts) {
    view.setUint32(offset, part?.length ?? 0)
    offset += 4
    if (part !== undefined) buffer.set(part, offset)
    offset += part?.length ?? 0
  }
  return toHex(keccak256(buffer))
}
