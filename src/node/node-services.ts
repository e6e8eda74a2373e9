import { yamux } from '@chainsafe/libp2p-yamux'
import type { StreamMuxerFactory } from '@libp2p/interface'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { type Identify, identify } from '@libp2p/identify'
import type { Libp2p } from 'libp2p'
import { MAX_STREAM_WINDOW_BYTES } from '../constants.js'
import { type Dsfg, type DsfgInit, dsfg } from '../service/index.js'
import { keccak256 } from '../trie/keccak.js'
import { toHex } from '../util/hex.js'

export type DsfgLibp2p = Libp2p<{ identify: Identify; pubsub: GossipSub; dsfg: Dsfg }>

/** The services of a ready-made node, in Node and in a browser: identify, gossipsub and DSFG. */
export function dsfgNodeServices(init: DsfgInit) {
  return {
    identify: identify(),
    // Publishing with no subscriber yet is normal for a publisher that starts first: don't throw.
    pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true, fastMsgIdFn: fastMessageId }),
    dsfg: dsfg(init)
  }
}

/**
 * The stream muxer of a ready-made node: yamux with its windows kept at `MAX_STREAM_WINDOW_BYTES`, so a reply
 * on a thin link arrives in pieces whose progress the request deadlines can see.
 */
export function dsfgStreamMuxer(): () => StreamMuxerFactory {
  return yamux({ streamOptions: { maxStreamWindowSize: MAX_STREAM_WINDOW_BYTES } })
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
