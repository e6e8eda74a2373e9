import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { type Identify, identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { type Dsfg, type DsfgInit, dsfg } from '../service/index.js'

export type DsfgLibp2p = Libp2p<{ identify: Identify; pubsub: GossipSub; dsfg: Dsfg }>

export interface CreateDsfgNodeOptions extends DsfgInit {
  /** Multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
}

/**
 * A ready libp2p node with the transport stack DSFG is built for (TCP, noise, yamux, identify, gossipsub) and
 * the DSFG service. Applications with their own node add `dsfg(init)` to its services instead.
 */
export async function createDsfgNode(options: CreateDsfgNodeOptions = {}): Promise<DsfgLibp2p> {
  const { listen, ...init } = options
  return createLibp2p({
    addresses: { listen: listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      // Publishing with no subscriber yet is normal for a publisher that starts first: don't throw.
      pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true }),
      dsfg: dsfg(init)
    }
  })
}
