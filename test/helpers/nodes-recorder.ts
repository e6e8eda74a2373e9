import type { Libp2p, PeerId } from '@libp2p/interface'
import { answerNodesRequest, decodeNodesRequest, NODES_PROTOCOL } from '../../src/net/nodes-protocol.js'
import type { KVStore } from '../../src/store/kv-store.js'
import { toHex } from '../../src/util/hex.js'
import { serveFrames } from './libp2p.js'

export interface NodesRecorder {
  /** The hashes `peer` asked any of the recorded nodes for, as hex, in the order the requests came. */
  requestedBy(peer: PeerId): string[]
}

/**
 * Takes over the nodes protocol of each of `servers`: every request is recorded under the peer that sent it,
 * then answered honestly from that server's store by the library's own `answerNodesRequest` (without the
 * service's rate limit). What a sync fetched is then counted where it was served, as the crash loop counts it.
 */
export async function recordNodesRequests(servers: { node: Libp2p; store: KVStore }[]): Promise<NodesRecorder> {
  const byPeer = new Map<string, string[]>()
  for (const { node, store } of servers) {
    await serveFrames(node, NODES_PROTOCOL, async (frame, peer) => {
      const list = byPeer.get(peer.toString()) ?? []
      byPeer.set(peer.toString(), list)
      for (const hash of decodeNodesRequest(frame)) list.push(toHex(hash))
      return answerNodesRequest(store, frame)
    })
  }
  return { requestedBy: (peer) => [...(byPeer.get(peer.toString()) ?? [])] }
}
