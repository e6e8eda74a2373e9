import {
  MAX_CHECKPOINT_RECORD_BYTES,
  MAX_HASHES_PER_REQUEST,
  MAX_ITEM_BYTES,
  MAX_ITEMS_PER_REQUEST,
  MAX_PROOF_NODES,
  MAX_TOPIC_BYTES
} from '../constants.js'
import { ProtocolError } from '../errors.js'
import type { RlpItem } from '../trie/node.js'
import { type RlpSpan, readRlpSpan } from '../util/rlp-span.js'
import { decodeFrame, encodeFrame, expectBytes, expectItems, expectList, expectStatus, expectUint, Status } from './codec.js'

/** 2.0.0: the reply also carries the newest signed checkpoint record the peer holds. */
export const STATUS_PROTOCOL = '/dsfg/status/2.0.0'
/** 2.0.0: a request may name a checkpoint root, and the reply then carries a range proof against it. */
export const CONTENTS_PROTOCOL = '/dsfg/contents/2.0.0'
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
  /**
   * The newest signed checkpoint record (a libp2p envelope, see `checkpoint-record.ts`) the peer holds for the
   * topic, unverified: whoever uses it checks the signature, which is what it trusts, not the peer.
   */
  record?: Uint8Array
}

export function encodeTopic(topic: string): Uint8Array {
  const bytes = textEncoder.encode(topic)
  if (bytes.length === 0 || bytes.length > MAX_TOPIC_BYTES) throw new ProtocolError('topic name must be 1 to 256 bytes')
  return bytes
}

export function decodeTopic(item: RlpItem | undefined): string {
  const bytes = expectBytes(item, 'topic')
  if (bytes.length === 0 || bytes.length > MAX_TOPIC_BYTES) throw new ProtocolError('topic: must be 1 to 256 bytes')
  try {
    return textDecoder.decode(bytes)
  } catch (err) {
    throw new ProtocolError('topic: not UTF-8', { cause: err })
  }
}

// status: [topic] → [code, lowest, head, headHash, checkpointNumber, checkpointRoot, record]  (record: empty for none)

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
    state.checkpoint.root,
    state.record ?? new Uint8Array(0)
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
  const [, lowest, head, headHash, cpNumber, cpRoot, record] = expectList(item, 7, 'status response')
  const state: TopicState = {
    lowest: expectUint(lowest, 'lowest'),
    head: expectUint(head, 'head'),
    headHash: expectBytes(headHash, 'headHash', 32),
    checkpoint: { number: expectUint(cpNumber, 'checkpoint number'), root: expectBytes(cpRoot, 'checkpoint root', 32) }
  }
  const recordBytes = expectBytes(record, 'checkpoint record')
  if (recordBytes.length > MAX_CHECKPOINT_RECORD_BYTES) throw new ProtocolError('status response: checkpoint record too large')
  if (recordBytes.length > 0) state.record = recordBytes
  if (state.lowest > state.head) throw new ProtocolError('status response: lowest above head')
  if (state.checkpoint.number > state.head) throw new ProtocolError('status response: checkpoint above head')
  return { code, state }
}

// contents: [topic, from, amount, root] → [code, [[n, item]…], [proofNode…]]
// `root` is empty for no proof; otherwise the reply's items and a range proof of them against that root.

export interface ContentsRequest {
  topic: string
  from: number
  amount: number
  /** The checkpoint root to prove the items against, when the client wants a proof. */
  root?: Uint8Array
}

export function encodeContentsRequest(topic: string, from: number, amount: number, root?: Uint8Array): Uint8Array {
  return encodeFrame([encodeTopic(topic), from, amount, root ?? new Uint8Array(0)] as never)
}

export function decodeContentsRequest(frame: Uint8Array): ContentsRequest {
  const [topic, from, amount, root] = expectList(decodeFrame(frame, 'contents request'), 4, 'contents request')
  const req: ContentsRequest = { topic: decodeTopic(topic), from: expectUint(from, 'from'), amount: expectUint(amount, 'amount') }
  if (req.amount === 0 || req.amount > MAX_ITEMS_PER_REQUEST) {
    throw new ProtocolError(`contents request: amount must be 1 to ${MAX_ITEMS_PER_REQUEST}`)
  }
  const rootBytes = expectBytes(root, 'root')
  if (rootBytes.length !== 0 && rootBytes.length !== 32) throw new ProtocolError('contents request: root must be empty or 32 bytes')
  if (rootBytes.length === 32) req.root = rootBytes
  return req
}

/**
 * Written straight into one buffer of the exact size: a generic RLP encoder builds nested arrays and copies
 * every item twice more (into its list, then into the frame), which was a tenth of a serving node's CPU.
 * The bytes are exactly `RLP.encode([code, [[n, data]…]])`.
 */
export function encodeContentsResponse(code: Status, items: readonly Item[] = [], proof: readonly Uint8Array[] = []): Uint8Array {
  let listPayload = 0
  for (const item of items) {
    const entry = uintLength(item.n) + stringLength(item.data)
    listPayload += headerLength(entry) + entry
  }
  let proofPayload = 0
  for (const node of proof) proofPayload += stringLength(node)
  const payload = uintLength(code) + headerLength(listPayload) + listPayload + headerLength(proofPayload) + proofPayload
  const out = new Uint8Array(headerLength(payload) + payload)
  let pos = writeHeader(out, 0, payload, 0xc0)
  pos = writeUint(out, pos, code)
  pos = writeHeader(out, pos, listPayload, 0xc0)
  for (const item of items) {
    pos = writeHeader(out, pos, uintLength(item.n) + stringLength(item.data), 0xc0)
    pos = writeUint(out, pos, item.n)
    pos = writeString(out, pos, item.data)
  }
  pos = writeHeader(out, pos, proofPayload, 0xc0)
  for (const node of proof) pos = writeString(out, pos, node)
  return out
}

/**
 * Decodes a contents reply and checks its shape against the request: numbers inside `[from, from+amount)`,
 * strictly ascending, at most `amount`, items non-empty and within `MAX_ITEM_BYTES`. The items are views into
 * `frame`, not copies (a reply carries up to `MAX_RESPONSE_BYTES` of items, and a generic decoder copied each
 * one four times: once per nesting level). The RLP must be canonical, as `@ethereumjs/rlp` requires.
 */
export function decodeContentsResponse(
  frame: Uint8Array,
  from: number,
  amount: number
): { code: Status; items: Item[]; proof: Uint8Array[] } {
  const what = 'contents response'
  const outer = expectSpan(frame, 0, frame.length, true)
  if (outer.end !== frame.length) throw new ProtocolError(`${what}: not valid RLP (bytes after the frame)`)
  if (outer.start >= outer.end) throw new ProtocolError(`${what}: expected 3 items, got 0`)
  const code = expectSpan(frame, outer.start, outer.end, false)
  const status = toStatus(readUint(frame, code.start, code.end, `${what} status`), what)
  if (code.end >= outer.end) throw new ProtocolError(`${what}: expected 3 items, got 1`)
  const list = expectSpan(frame, code.end, outer.end, true)
  if (list.end >= outer.end) throw new ProtocolError(`${what}: expected 3 items, got 2`)
  const proofList = expectSpan(frame, list.end, outer.end, true)
  if (proofList.end !== outer.end) throw new ProtocolError(`${what}: expected 3 items, got more`)
  const proof: Uint8Array[] = []
  for (let pos = proofList.start; pos < proofList.end; ) {
    if (proof.length === MAX_PROOF_NODES) throw new ProtocolError(`${what}: more than ${MAX_PROOF_NODES} proof nodes`)
    const node = expectSpan(frame, pos, proofList.end, false)
    proof.push(frame.subarray(node.start, node.end))
    pos = node.end
  }
  const items: Item[] = []
  let last = from - 1
  for (let pos = list.start; pos < list.end; ) {
    if (items.length === amount) throw new ProtocolError(`${what}: more than ${amount} items`)
    const entry = expectSpan(frame, pos, list.end, true)
    if (entry.start >= entry.end) throw new ProtocolError('contents item: expected 2 items')
    const number = expectSpan(frame, entry.start, entry.end, false)
    const n = readUint(frame, number.start, number.end, 'item number')
    if (number.end >= entry.end) throw new ProtocolError('contents item: expected 2 items')
    const value = expectSpan(frame, number.end, entry.end, false)
    if (value.end !== entry.end) throw new ProtocolError('contents item: expected 2 items')
    const data = frame.subarray(value.start, value.end)
    if (n < from || n >= from + amount) throw new ProtocolError(`${what}: item ${n} outside the range`)
    if (n <= last) throw new ProtocolError(`${what}: item numbers not strictly ascending`)
    if (data.length === 0 || data.length > MAX_ITEM_BYTES) throw new ProtocolError(`${what}: bad item size`)
    last = n
    items.push({ n, data })
    pos = entry.end
  }
  if (status !== Status.OK && (items.length > 0 || proof.length > 0)) throw new ProtocolError(`${what}: error status with items`)
  return { code: status, items, proof }
}

// hashes: [topic, from, to] → [code, [hash…]]   (inclusive range)

export function encodeHashesRequest(topic: string, from: number, to: number): Uint8Array {
  return encodeFrame([encodeTopic(topic), from, to] as never)
}

/** `[topic, from, to]`: item hashes `from..to`, inclusive. */
export interface HashesRequest {
  topic: string
  from: number
  to: number
}

export function decodeHashesRequest(frame: Uint8Array): HashesRequest {
  const [topic, from, to] = expectList(decodeFrame(frame, 'hashes request'), 3, 'hashes request')
  const req = { topic: decodeTopic(topic), from: expectUint(from, 'from'), to: expectUint(to, 'to') }
  if (req.to < req.from || req.to - req.from + 1 > MAX_HASHES_PER_REQUEST) {
    throw new ProtocolError(`hashes request: range must hold 1 to ${MAX_HASHES_PER_REQUEST} numbers`)
  }
  return req
}

/** Written straight into one buffer, as `encodeContentsResponse` is: exactly `RLP.encode([code, [hash…]])`. */
export function encodeHashesResponse(code: Status, hashes: readonly Uint8Array[] = []): Uint8Array {
  let listPayload = 0
  for (const hash of hashes) listPayload += stringLength(hash)
  const payload = uintLength(code) + headerLength(listPayload) + listPayload
  const out = new Uint8Array(headerLength(payload) + payload)
  let pos = writeHeader(out, 0, payload, 0xc0)
  pos = writeUint(out, pos, code)
  pos = writeHeader(out, pos, listPayload, 0xc0)
  for (const hash of hashes) pos = writeString(out, pos, hash)
  return out
}

/** The hashes of items `from..` (a prefix of the requested range when the peer has fewer). */
export function decodeHashesResponse(frame: Uint8Array, from: number, to: number): { code: Status; hashes: Uint8Array[] } {
  const [code, list] = expectList(decodeFrame(frame, 'hashes response'), 2, 'hashes response')
  const status = expectStatus(code, 'hashes response')
  const hashes = expectItems(list!, to - from + 1, 'hashes response').map((h) => expectBytes(h, 'item hash', 32))
  if (status !== Status.OK && hashes.length > 0) throw new ProtocolError('hashes response: error status with hashes')
  return { code: status, hashes }
}

// Canonical RLP, read and written in place (contents replies only: they carry the bulk of a topic sync).

/** Malformed RLP in a contents reply (the only frame decoded in place). */
function contentsRlpError(why: string): ProtocolError {
  return new ProtocolError(`contents response: not valid RLP (${why})`)
}

/** The list (or byte string) at `pos` in a contents reply, ending by `end`; anything else is a `ProtocolError`. */
function expectSpan(frame: Uint8Array, pos: number, end: number, list: boolean): RlpSpan {
  const span = readRlpSpan(frame, pos, end, contentsRlpError)
  if (span.list !== list) throw new ProtocolError(`contents response: expected ${list ? 'a list' : 'a byte string'}`)
  return span
}

/** The canonical RLP unsigned integer in `frame[start..end)`, as `expectUint` reads it. */
function readUint(frame: Uint8Array, start: number, end: number, what: string): number {
  if (end - start > 7) throw new ProtocolError(`${what}: integer too large`)
  if (end > start && frame[start] === 0) throw new ProtocolError(`${what}: integer has leading zeros`)
  let n = 0
  for (let i = start; i < end; i++) n = n * 256 + frame[i]!
  if (!Number.isSafeInteger(n)) throw new ProtocolError(`${what}: integer too large`)
  return n
}

function toStatus(code: number, what: string): Status {
  if (code > Status.RATE_LIMITED) throw new ProtocolError(`${what}: unknown status ${code}`)
  return code as Status
}

function headerLength(payload: number): number {
  return payload <= 55 ? 1 : 1 + byteLength(payload)
}

function byteLength(n: number): number {
  let bytes = 0
  for (; n > 0; n = Math.floor(n / 256)) bytes++
  return bytes
}

/** RLP length of the canonical encoding of the unsigned integer `n`. */
function uintLength(n: number): number {
  return n < 0x80 && n > 0 ? 1 : 1 + byteLength(n)
}

/** RLP length of the byte string `data`. */
function stringLength(data: Uint8Array): number {
  return data.length === 1 && data[0]! < 0x80 ? 1 : headerLength(data.length) + data.length
}

function writeHeader(out: Uint8Array, pos: number, payload: number, offset: 0x80 | 0xc0): number {
  if (payload <= 55) {
    out[pos] = offset + payload
    return pos + 1
  }
  const bytes = byteLength(payload)
  out[pos] = offset + 55 + bytes
  writeBigEndian(out, pos + 1, payload, bytes)
  return pos + 1 + bytes
}

function writeUint(out: Uint8Array, pos: number, n: number): number {
  if (n < 0x80 && n > 0) {
    out[pos] = n
    return pos + 1
  }
  const bytes = byteLength(n)
  out[pos] = 0x80 + bytes
  writeBigEndian(out, pos + 1, n, bytes)
  return pos + 1 + bytes
}

function writeString(out: Uint8Array, pos: number, data: Uint8Array): number {
  if (data.length === 1 && data[0]! < 0x80) {
    out[pos] = data[0]!
    return pos + 1
  }
  pos = writeHeader(out, pos, data.length, 0x80)
  out.set(data, pos)
  return pos + data.length
}

function writeBigEndian(out: Uint8Array, pos: number, n: number, bytes: number): void {
  for (let i = bytes - 1; i >= 0; i--) {
    out[pos + i] = n % 256
    n = Math.floor(n / 256)
  }
}
