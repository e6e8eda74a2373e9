import type { Libp2p } from 'libp2p'
import type { DsfgLibp2p as DsfgNode } from '../../src/node/create-node.js'
import { until } from './wait.js'

// Tests use the library's own node factory (127.0.0.1 by default).
export { createDsfgNode, type DsfgLibp2p as DsfgNode } from '../../src/node/create-node.js'

/** Dials `to` from `from` and waits until `from`'s DSFG service lists it as a node peer (identify done). */
export async function connect(from: DsfgNode, to: Libp2p, timeoutMs = 5000): Promise<void> {
  await from.dial(to.getMultiaddrs()[0]!)
  await until(() => from.services.dsfg.nodePeers().some((p) => p.equals(to.peerId)), 'the peer to show up as a DSFG peer', timeoutMs, 10)
}
