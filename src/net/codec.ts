import { RLP } from '@ethereumjs/rlp'
import { MAX_FRAME_BYTES, MAX_RESPONSE_BYTES } from '../constants.js'
import { ProtocolError } from '../errors.js'
import type { RlpItem } from '../trie/node.js'
import { rlpDepthWithin } from '../util/rlp-depth.js'

/**
 * What a reply frame of `frameBytes` leaves for its payload (nodes, or items with their proof): less the
 * frame's room for RLP headers, `MAX_FRAME_BYTES - MAX_RESPONSE_BYTES`. A server whose reply budget gave a reply
 * less than a whole frame cuts the reply to this.
 */
export function payloadBytesOf(frameBytes: number): number {
  return Math.max(0, frameBytes - (MAX_FRAME_BYTES - MAX_RESPONSE_BYTES))
}

/** Response status codes shared by every DSFG request protocol. */
export const Status = {
  OK: 0,
  INVALID_REQUEST: 1,
  UNAVAILABLE: 2,
  RATE_LIMITED: 3
} as const
export type Status = (typeof Status)[keyof typeof Status]

/** Decodes one RLP frame from a peer; anything malformed becomes a `ProtocolError`. */
/** No wire message nests lists deeper than this (a contents reply is 3 deep). */
const MAX_FRAME_DEPTH = 8

export function decodeFrame(bytes: Uint8Array, what: string): RlpItem {
  if (!rlpDepthWithin(bytes, MAX_FRAME_DEPTH)) throw new ProtocolError(`${what}: lists nested deeper than ${MAX_FRAME_DEPTH}`)
  try {
    return RLP.decode(bytes) as RlpItem
  } catch (err) {
    throw new ProtocolError(`${what}: not valid RLP`, { cause: err })
  }
}

export function encodeFrame(item: RlpItem | number | bigint): Uint8Array {
  return RLP.encode(item as Parameters<typeof RLP.encode>[0])
}

/** An RLP list of exactly `length` items, or a `ProtocolError`. */
export function expectList(item: RlpItem, length: number, what: string): RlpItem[] {
  if (!Array.isArray(item)) throw new ProtocolError(`${what}: expected a list`)
  if (item.length !== length) throw new ProtocolError(`${what}: expected ${length} items, got ${item.length}`)
  return item
}

/** An RLP list of at most `max` items, or a `ProtocolError`. */
export function expectItems(item: RlpItem, max: number, what: string): RlpItem[] {
  if (!Array.isArray(item)) throw new ProtocolError(`${what}: expected a list`)
  if (item.length > max) throw new ProtocolError(`${what}: ${item.length} items, at most ${max} allowed`)
  return item
}

export function expectBytes(item: RlpItem | undefined, what: string, length?: number): Uint8Array {
  if (item === undefined || Array.isArray(item)) throw new ProtocolError(`${what}: expected a byte string`)
  if (length !== undefined && item.length !== length) {
    throw new ProtocolError(`${what}: expected ${length} bytes, got ${item.length}`)
  }
  return item
}

/** A canonical RLP unsigned integer (no leading zeros) that fits a safe JS integer. */
export function expectUint(item: RlpItem | undefined, what: string): number {
  const bytes = expectBytes(item, what)
  if (bytes.length > 7) throw new ProtocolError(`${what}: integer too large`)
  if (bytes.length > 0 && bytes[0] === 0) throw new ProtocolError(`${what}: integer has leading zeros`)
  let n = 0
  for (const b of bytes) n = n * 256 + b
  if (!Number.isSafeInteger(n)) throw new ProtocolError(`${what}: integer too large`)
  return n
}

export function expectStatus(item: RlpItem | undefined, what: string): Status {
  const code = expectUint(item, `${what} status`)
  if (code > Status.RATE_LIMITED) throw new ProtocolError(`${what}: unknown status ${code}`)
  return code as Status
}
