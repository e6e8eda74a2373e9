import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { PeerId, PrivateKey, ServiceMap } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p, type ServiceFactoryMap } from 'libp2p'
import { MAX_FRAME_BYTES } from '../../src/constants.js'
import type { DsfgLibp2p as DsfgNode } from '../../src/node/create-node.js'
import { frameHandler } from '../../src/net/rpc.js'
import { until } from './wait.js'

// Tests of the DSFG service use the library's own node factory (127.0.0.1 by default).
export { createDsfgNode, type DsfgLibp2p as DsfgNode } from '../../src/node/create-node.js'

export interface TestNodeInit {
  /** @default a new Ed25519 key */
  privateKey?: PrivateKey
}

/**
 * A libp2p node on 127.0.0.1 (TCP, noise, yamux) with `services` and nothing else: the tests' one factory of
 * nodes that are not DSFG nodes (plain clients, bare topic servers, adversaries).
 */
export async function createTestNode<T extends ServiceMap = Record<string, unknown>>(
  services?: ServiceFactoryMap<T>,
  init: TestNodeInit = {}
): Promise<Libp2p<T>> {
  return createLibp2p<T>({
    ...(init.privateKey === undefined ? {} : { privateKey: init.privateKey }),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(services === undefined ? {} : { services })
  })
}

export interface ServeFramesOptions {
  /** Concurrent inbound streams per connection. @default 64 */
  maxInboundStreams?: number
  /** @default 64 */
  maxOutboundStreams?: number
  /** Deadline of reading the request and writing the reply. @default 5000 */
  timeoutMs?: number
  /** Request frames a stream may carry ahead of their replies (`frameHandler`'s). @default 1 */
  maxPipelinedRequests?: number
}

/**
 * Answers `protocol` on `node` one request frame at a time through the library's own `frameHandler`, replacing
 * any handler already there: how tests stand up a server, a recording server or an adversary. `answer` may
 * take its time (or never answer: the stream stays open); a throw resets the stream.
 */
export async function serveFrames(
  node: Libp2p,
  protocol: string,
  answer: (frame: Uint8Array, peer: PeerId) => Promise<Uint8Array>,
  options: ServeFramesOptions = {}
): Promise<void> {
  await node.handle(protocol, frameHandler(answer, {
      maxRequestBytes: MAX_FRAME_BYTES,
      maxPipelinedRequests: options.maxPipelinedRequests,
      timeoutMs: options.timeoutMs ?? 5_000
    }), {
    force: true,
    maxInboundStreams: options.maxInboundStreams ?? 64,
    maxOutboundStreams: options.maxOutboundStreams ?? 64
  })
}

/** Dials `to` from `from` and waits until `from`'s DSFG service lists it as a node peer (identify done). */
export async function connect(from: DsfgNode, to: Libp2p, timeoutMs = 5000): Promise<void> {
  await from.dial(to.getMultiaddrs()[0]!)
  await until(() => from.services.dsfg.nodePeers().some((p) => p.equals(to.peerId)), 'the peer to show up as a DSFG peer', timeoutMs, 10)
}
