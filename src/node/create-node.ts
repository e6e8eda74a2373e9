import { noise } from '@chainsafe/libp2p-noise'
import type { ComponentLogger, Metrics, PeerId, PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { InvalidInputError } from '../errors.js'
import type { DsfgInit } from '../service/index.js'
import { HostConnectionLimit } from './host-limit.js'
import { type DsfgLibp2p, dsfgNodeServices, dsfgStreamMuxer } from './node-services.js'
import { guardedWebSockets } from './ws-guard.js'

export type { DsfgLibp2p } from './node-services.js'

/** Where a node listens unless told otherwise: TCP on 127.0.0.1, a free port. */
export const DEFAULT_LISTEN_ADDRESS = '/ip4/127.0.0.1/tcp/0'

export interface CreateDsfgNodeOptions extends DsfgInit {
  /** Multiaddrs to listen on (TCP, or WebSockets with `/ws`). @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /**
   * The node's identity: its peer id is derived from this key, so the same key gives the same peer id across
   * restarts. @default a new Ed25519 key each time (libp2p's own default)
   */
  privateKey?: PrivateKey
  /**
   * libp2p's limits on inbound connections. A node that serves many joiners passes `SERVER_CONNECTION_LIMITS`.
   * `maxConnectionsPerHost` is DSFG's: the most inbound connections one IP address may hold at once, counted
   * from the accepted socket (before the handshake) to its close; 0 is no limit.
   * @default libp2p's own (5 new connections a second per host, 10 upgrades in progress, 300 connections), and no limit per host
   */
  connectionLimits?: {
    inboundConnectionThreshold?: number
    maxIncomingPendingConnections?: number
    maxConnections?: number
    maxConnectionsPerHost?: number
  }
  /** The node's metrics implementation, as `createLibp2p` takes it (`prometheusMetrics()`): DSFG's `dsfg_*` metrics go there. */
  metrics?: (components: { logger: ComponentLogger }) => Metrics
  /** The node's logger. @default libp2p's, enabled with `DEBUG=dsfg*` */
  logger?: ComponentLogger
}

/**
 * A ready libp2p node with the transport stack DSFG is built for (TCP and WebSockets, noise, yamux, identify,
 * gossipsub) and the DSFG service. Applications with their own node add `dsfg(init)` to its services instead.
 */
export async function createDsfgNode(options: CreateDsfgNodeOptions = {}): Promise<DsfgLibp2p> {
  const { listen, privateKey, connectionLimits = {}, metrics, logger, ...init } = options
  const { maxConnectionsPerHost = 0, ...libp2pLimits } = connectionLimits
  if (!Number.isSafeInteger(maxConnectionsPerHost) || maxConnectionsPerHost < 0) {
    throw new InvalidInputError(`maxConnectionsPerHost must be a whole number, 0 for no limit (got ${maxConnectionsPerHost})`)
  }
  let node: DsfgLibp2p | undefined
  let perHost: HostConnectionLimit | undefined
  const refused = (peer: PeerId): boolean => node?.services.dsfg.refusesPeer(peer) ?? false
  node = await createLibp2p({
    // Started below, once the limit per host can count from the first connection.
    start: false,
    privateKey,
    metrics,
    logger,
    connectionManager: libp2pLimits,
    addresses: { listen: listen ?? [DEFAULT_LISTEN_ADDRESS] },
    // WebSockets listens only on a `/ws` listen address (`dsfg serve --ws`): that is what a browser tab dials.
    // WebSockets with the bounds its listener lacks: an upgrade deadline, and the limit per host on its raw sockets.
    transports: [
      tcp(),
      guardedWebSockets({
        maxSocketsPerHost: maxConnectionsPerHost,
        log: () => node!.logger.forComponent('dsfg:connections')
      })
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [dsfgStreamMuxer()],
    // A peer the service cut off for its offences is refused at once on its return, before muxing and identify,
    // and not dialled either.
    connectionGater: {
      denyInboundConnection: (maConn) => perHost?.deny(maConn) ?? false,
      denyInboundEncryptedConnection: refused,
      denyDialPeer: refused
    },
    services: dsfgNodeServices(init)
  })
  if (maxConnectionsPerHost > 0) perHost = new HostConnectionLimit(maxConnectionsPerHost, node.logger.forComponent('dsfg:connections'))
  await node.start()
  return node
}
