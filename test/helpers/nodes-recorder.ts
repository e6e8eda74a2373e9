import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { MAX_FRAME_BYTES } from '../../src/constants.js'
import { answerNodesRequest, decodeNodesRequest, NODES_PROTOCOL } from '../../src/net/nodes-protocol.js'
import type { KVStore } from '../../src/store/kv-store.js'
import { toHex } from '../../src/util/hex.js'

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
    const handler = async (stream: Stream, connection: { remotePeer: PeerId }): Promise<void> => {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES, maxBufferSize: MAX_FRAME_BYTES + 16 })
      try {
        const frame = (await lp.read()).subarray()
        const peer = connection.remotePeer.toString()
        const list = byPeer.get(peer) ?? []
        byPeer.set(peer, list)
        for (const hash of decodeNodesRequest(frame)) list.push(toHex(hash))
        await lp.write(await answerNodesRequest(store, frame))
        await stream.close()
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
    }
    await node.handle(NODES_PROTOCOL, handler, { force: true, maxInboundStreams: 64 })
  }
  return { requestedBy: (peer) => [...(byPeer.get(peer.toString()) ?? [])] }
}
