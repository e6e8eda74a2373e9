import { noise } from '@chainsafe/libp2p-noise'
import type { PrivateKey } from '@libp2p/interface'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import type { DsfgInit } from '../service/index.js'
import { type DsfgLibp2p, dsfgNodeServices, dsfgStreamMuxer } from './node-services.js'
import { closeDialledResets } from './ws-reset.js'

export interface CreateBrowserDsfgNodeOptions extends DsfgInit {
  /** The node's identity. @default a new Ed25519 key each time (libp2p's own default) */
  privateKey?: PrivateKey
}

/**
 * The browser's ready-made node (`dsfg/node` under the `browser` condition): WebSockets (dial only: a tab
 * cannot listen), noise, yamux, identify, gossipsub and the DSFG service. A tab dials the `/ws` address of a
 * `dsfg serve --ws`.
 */
export async function createDsfgNode(options: CreateBrowserDsfgNodeOptions = {}): Promise<DsfgLibp2p> {
  const { privateKey, ...init } = options
  return createLibp2p({
    privateKey,
    addresses: { listen: [] },
    // A connection libp2p resets closes its WebSocket too (`closeDialledResets`).
    transports: [(components) => closeDialledResets(webSockets()(components))],
    connectionEncrypters: [noise()],
    streamMuxers: [dsfgStreamMuxer()],
    // libp2p's browser default refuses to dial private addresses and plain `ws://`: a tab here dials only the
    // addresses its application hands it (a server on 127.0.0.1 or a LAN in development and tests), and every
    // byte it gets over them is verified whatever the transport.
    connectionGater: { denyDialMultiaddr: () => false },
    services: dsfgNodeServices(init)
  })
}
