import type { Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { MAX_ITEM_BYTES } from '../constants.js'
import { ProtocolError } from '../errors.js'
import { decodeFrame, encodeFrame, expectBytes, expectList, expectUint } from '../net/codec.js'
import type { Item } from '../net/topic-protocols.js'

/**
 * The two gossipsub topics of a DSFG topic: live items (`[n, item]`) and the publisher's signed checkpoint
 * records (libp2p envelopes, see `checkpoint-record.ts`). Gossip carries only small messages; bulk data goes over the request
 * protocols (gossipsub silently drops messages past about 1 MiB).
 */
export function itemsTopic(topic: string): string {
  return `dsfg/${topic}/items`
}

export function checkpointsTopic(topic: string): string {
  return `dsfg/${topic}/checkpoints`
}

/** A publisher's statement: items `0..number` have trie root `root`, and its head is `head`. */
export interface Checkpoint {
  number: number
  root: Uint8Array
  head: number
  headHash: Uint8Array
}

export function encodeGossipItem(item: Item): Uint8Array {
  return encodeFrame([item.n, item.data] as never)
}

export function decodeGossipItem(data: Uint8Array): Item {
  const [n, item] = expectList(decodeFrame(data, 'gossip item'), 2, 'gossip item')
  // A copy: the decoded bytes are a view of the message, which may be a pooled Node Buffer.
  const decoded = { n: expectUint(n, 'item number'), data: new Uint8Array(expectBytes(item, 'item')) }
  if (decoded.data.length === 0 || decoded.data.length > MAX_ITEM_BYTES) throw new ProtocolError('gossip item: bad size')
  return decoded
}

/** Whether a gossip message was signed by `publisher` (gossipsub's StrictSign has checked the signature). */
export function signedBy(message: Message, publisher: PeerId | undefined): boolean {
  if (publisher === undefined) return true
  return message.type === 'signed' && message.from.equals(publisher)
}
