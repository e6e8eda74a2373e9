import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { type Dsfg, type DsfgInit, dsfg } from '../../src/service/index.js'

export type DsfgNode = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>; dsfg: Dsfg }>

/** A real libp2p node on 127.0.0.1 (TCP, noise, yamux, identify) running the DSFG service. */
export async function createDsfgNode(init: DsfgInit = {}): Promise<DsfgNode> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), dsfg: dsfg(init) }
  }) as Promise<DsfgNode>
}

/** Dials `to` from `from` and waits until `from`'s DSFG service lists it as a node peer (identify done). */
export async function connect(from: DsfgNode, to: Libp2p, timeoutMs = 5000): Promise<void> {
  await from.dial(to.getMultiaddrs()[0]!)
  const deadline = Date.now() + timeoutMs
  while (!from.services.dsfg.nodePeers().some((p) => p.equals(to.peerId))) {
    if (Date.now() > deadline) throw new Error('peer did not show up as a DSFG peer in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}
