import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { createLibp2p, type Libp2p } from 'libp2p'
import { MAX_FRAME_BYTES } from '../../src/constants.js'
import { Status } from '../../src/net/codec.js'
import { decodeNodesRequest, encodeNodesResponse, NODES_PROTOCOL } from '../../src/net/nodes-protocol.js'

/** What an adversarial nodes server does with one request. */
export type NodesBehaviour = (
  hashes: Uint8Array[],
  call: number
) => Promise<NodesAnswer> | NodesAnswer

export type NodesAnswer =
  /** Reply with these node blobs (status OK). */
  | { nodes: Uint8Array[] }
  /** Reply with these raw bytes as the frame. */
  | { frame: Uint8Array }
  /** Never reply; keep the stream open. */
  | { silent: true }
  /** Reset the stream without a reply. */
  | { reset: true }
  /** Stop the whole node (a disconnect mid-request). */
  | { disconnect: true }

export interface AdversaryNode {
  node: Libp2p
  /** Requests received so far. */
  calls(): number
  stop(): Promise<void>
}

/**
 * A real libp2p node on 127.0.0.1 that speaks `/dsfg/nodes/1.0.0` but answers as `behaviour` says: honest,
 * corrupt, silent, slow, partial, oversized, or gone mid-stream.
 */
export async function createNodesAdversary(behaviour: NodesBehaviour): Promise<AdversaryNode> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  let calls = 0
  await node.handle(
    NODES_PROTOCOL,
    async (stream: Stream) => {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES, maxBufferSize: MAX_FRAME_BYTES + 16 })
      try {
        const hashes = decodeNodesRequest((await lp.read()).subarray())
        calls++
        const answer = await behaviour(hashes, calls)
        if ('silent' in answer) return
        if ('reset' in answer) {
          stream.abort(new Error('adversary reset'))
          return
        }
        if ('disconnect' in answer) {
          await node.stop()
          return
        }
        await lp.write('frame' in answer ? answer.frame : encodeNodesResponse(Status.OK, answer.nodes))
        await stream.close()
      } catch {
        stream.abort(new Error('adversary failed'))
      }
    },
    { maxInboundStreams: 64 }
  )
  return {
    node,
    calls: () => calls,
    stop: async () => {
      await node.stop()
    }
  }
}
