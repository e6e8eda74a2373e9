import { MAX_HASHES_PER_REQUEST, MAX_ITEM_BYTES, MAX_ITEMS_PER_REQUEST, MAX_TOPIC_BYTES } from '../constants.js'
import { ProtocolError } from '../errors.js'
import type { RlpItem } from '../trie/node.js'
import { decodeFrame, encodeFrame, expectBytes, expectItems, expectList, expectStatus, expectUint, Status } from './codec.js'

export const STATUS_PROTOCOL = '/dsfg/status/1.0.0'
export const CONTENTS_PROTOCOL = '/dsfg/contents/1.0.0'
export const HASHES_PROTOCOL = '/dsfg/hashes/1.0.0'

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { fatal: true })

/** A numbered topic item. */
export interface Item {
  n: number
  data: Uint8Array
}

/** What a peer reports about a topic. `head` is the highest item number it holds. */
export interface TopicState {
  lowest: number
  head: number
  /** keccak256 of item `head`. */
  headHash: Uint8Array
  checkpoint: { number: number; root: Uint8Array }
}

export function encodeTopic(topic: string): Uint8Array {
  const bytes = textEncoder.encode(topic)
  if (bytes.length === 0 || bytes.length > MAX_TOPIC_BYTES) throw new ProtocolError('topic name must be 1 to 256 bytes')
  return bytes
}

function decodeTopic(item: RlpItem | undefined): string {
  const bytes = expectBytes(item, 'topic')
  if (bytes.length === 0 || bytes.length > MAX_TOPIC_BYTES) throw new ProtocolError('topic: must be 1 to 256 bytes')
  try {
    return textDecoder.decode(bytes)
  } catch (err) {
    throw new ProtocolError('topic: not UTF-8', { cause: err })
  }
}

// status: [topic] → [code, lowest, head, headHash, checkpointNumber, checkpointRoot]

export function encodeStatusRequest(topic: string): Uint8Array {
  return encodeFrame([encodeTopic(topic)])
}

export function decodeStatusRequest(frame: Uint8Array): string {
  const [topic] = expectList(decodeFrame(frame, 'status request'), 1, 'status request')
  return decodeTopic(topic)
}

export function encodeStatusResponse(code: Status, state?: TopicState): Uint8Array {
  if (code !== Status.OK || state === undefined) return encodeFrame([code] as never)
  return encodeFrame([
    code,
    state.lowest,
    state.head,
    state.headHash,
    state.checkpoint.number,
    state.checkpoint.root
  ] as never)
}

/** `null` when the peer has nothing for the topic (or refuses to say). */
export function decodeStatusResponse(frame: Uint8Array): { code: Status; state: TopicState | null } {
  const item = decodeFrame(frame, 'status response')
  if (!Array.isArray(item) || item.length === 0) throw new ProtocolError('status response: expected a list')
  const code = expectStatus(item[0], 'status response')
  if (code !== Status.OK) {
    expectList(item, 1, 'status response')
    return { code, state: null }
  }
  const [, lowest, head, headHash, cpNumber, cpRoot] = expectList(item, 6, 'status response')
  const state: TopicState = {
    lowest: expectUint(lowest, 'lowest'),
    head: expectUint(head, 'head'),
    headHash: expectBytes(headHash, 'headHash', 32),
    checkpoint: { number: expectUint(cpNumber, 'checkpoint number'), root: expectBytes(cpRoot, 'checkpoint root', 32) }
  }
  if (state.lowest > state.head) throw new ProtocolError('status response: lowest above head')
  if (state.checkpoint.number > state.head) throw new ProtocolError('status response: checkpoint above head')
  return { code, state }
}

// contents: [topic, from, amount] → [code, [[n, item]…]]

export function encodeContentsRequest(topic: string, from: number, amount: number): Uint8Array {
  return encodeFrame([encodeTopic(topic), from, amount] as never)
}

export function decodeContentsRequest(frame: Uint8Array): { topic: string; from: number; amount: number } {
  const [topic, from, amount] = expectList(decodeFrame(frame, 'contents request'), 3, 'contents request')
  const req = { topic: decodeTopic(topic), from: expectUint(from, 'from'), amount: expectUint(amount, 'amount') }
  if (req.amount === 0 || req.amount > MAX_ITEMS_PER_REQUEST) {
    throw new ProtocolError(`contents request: amount must be 1 to ${MAX_ITEMS_PER_REQUEST}`)
  }
  return req
}

export function encodeContentsResponse(code: Status, items: Item[] = []): Uint8Array {
  return encodeFrame([code, items.map((i) => [i.n, i.data])] as never)
}

/**
 * Decodes a contents reply and checks its shape against the request: numbers inside `[from, from+amount)`,
 * strictly ascending, at most `amount`, items non-empty and within `MAX_ITEM_BYTES`.
 */
export function decodeContentsResponse(frame: Uint8Array, from: number, amount: number): { code: Status; items: Item[] } {
  const [code, list] = expectList(decodeFrame(frame, 'contents response'), 2, 'contents response')
  const status = expectStatus(code, 'contents response')
  const entries = expectItems(list!, amount, 'contents response')
  const items: Item[] = []
  let last = from - 1
  for (const entry of entries) {
    const [n, data] = expectList(entry, 2, 'contents item')
    const item = { n: expectUint(n, 'item number'), data: expectBytes(data, 'item') }
    if (item.n < from || item.n >= from + amount) throw new ProtocolError(`contents response: item ${item.n} outside the range`)
    if (item.n <= last) throw new ProtocolError('contents response: item numbers not strictly ascending')
    if (item.data.length === 0 || item.data.length > MAX_ITEM_BYTES) throw new ProtocolError('contents response: bad item size')
    last = item.n
    items.push(item)
  }
  if (status !== Status.OK && items.length > 0) throw new ProtocolError('contents response: error status with items')
  return { code: status, items }
}

// hashes: [topic, from, to] → [code, [hash…]]   (inclusive range)

export function encodeHashesRequest(topic: string, from: number, to: number): Uint8Array {
  return encodeFrame([encodeTopic(topic), from, to] as never)
}

export function decodeHashesRequest(frame: Uint8Array): { topic: string; from: number; to: number } {
  const [topic, from, to] = expectList(decodeFrame(frame, 'hashes request'), 3, 'hashes request')
  const req = { topic: decodeTopic(topic), from: expectUint(from, 'from'), to: expectUint(to, 'to') }
  if (req.to < req.from || req.to - req.from + 1 > MAX_HASHES_PER_REQUEST) {
    throw new ProtocolError(`hashes request: range must hold 1 to ${MAX_HASHES_PER_REQUEST} numbers`)
  }
  return req
}

export function encodeHashesResponse(code: Status, hashes: Uint8Array[] = []): Uint8Array {
  return encodeFrame([code, hashes] as never)
}

/** The hashes of items `from..` (a prefix of the requested range when the peer has fewer). */
export function decodeHashesResponse(frame: Uint8Array, from: number, to: number): { code: Status; hashes: Uint8Array[] } {
  const [code, list] = expectList(decodeFrame(frame, 'hashes response'), 2, 'hashes response')
  const status = expectStatus(code, 'hashes response')
  const hashes = expectItems(list!, to - from + 1, 'hashes response').map((h) => expectBytes(h, 'item hash', 32))
  if (status !== Status.OK && hashes.length > 0) throw new ProtocolError('hashes response: error status with hashes')
  return { code: status, hashes }
}
