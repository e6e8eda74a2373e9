import type { PeerId } from '@libp2p/interface'
import { MAX_FRAME_BYTES, MAX_NODES_PER_REQUEST, MAX_RESPONSE_BYTES, NODES_READ_CHUNK } from '../constants.js'
import { PeerBusyError, ProtocolError, RequestRejectedError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { MAX_NODE_BYTES } from '../trie/node.js'
import { type NodesReplyItem, readSubtriesLeaves, SubtrieLeaves } from '../trie/subtrie.js'
import { toHex } from '../util/hex.js'
import { readRlpSpan } from '../util/rlp-span.js'
import { type EncodedRlp, encodeRlpBytesList, encodeRlpMixedList } from '../util/rlp-write.js'
import { decodeFrame, encodeFrame, expectBytes, expectItems, expectUint, Status } from './codec.js'
import type { FrameSessions } from './frame-session.js'
import { type OpenStream, requestFrame } from './rpc.js'

/**
 * Nodes by hash. A stream carries one request or, kept open, up to `MAX_PIPELINED_NODES_REQUESTS` written ahead
 * of their replies, which come in request order (`requestNodes`); a server answers both kinds of client.
 */
export const NODES_PROTOCOL = '/dsfg/nodes/1.0.0'

/**
 * `[[hash…]]`, or `[[hash…], subtrieBytes]` to have the subtrie of any of them whose leaves take at most
 * `subtrieBytes` (and fit the reply) sent as its leaves rather than as the node (`readSubtriesLeaves`).
 */
export function encodeNodesRequest(hashes: Uint8Array[], subtrieBytes = 0): Uint8Array {
  return encodeRlpBytesList([], hashes, subtrieBytes > 0 ? [encodeFrame(subtrieBytes)] : [])
}

/** A nodes request: its hashes, and the most bytes a subtrie sent as its leaves may take (0: none). */
export interface NodesRequest {
  hashes: Uint8Array[]
  subtrieBytes: number
}

/** The hashes of a nodes request (`decodeNodesRequestWhole` for its subtrie bytes too). */
export function decodeNodesRequest(frame: Uint8Array, maxHashes = MAX_NODES_PER_REQUEST): Uint8Array[] {
  return decodeNodesRequestWhole(frame, maxHashes).hashes
}

export function decodeNodesRequestWhole(frame: Uint8Array, maxHashes = MAX_NODES_PER_REQUEST): NodesRequest {
  const items = decodeFrame(frame, 'nodes request')
  if (!Array.isArray(items) || items.length < 1 || items.length > 2) throw new ProtocolError('nodes request: expected a list of 1 or 2 items')
  const hashes = expectItems(items[0]!, maxHashes, 'nodes request hashes').map((h) => expectBytes(h, 'node hash', 32))
  const subtrieBytes = items.length === 2 ? expectUint(items[1], 'nodes request subtrie bytes') : 0
  if (subtrieBytes > MAX_RESPONSE_BYTES) throw new ProtocolError(`nodes request: subtries of up to ${subtrieBytes} bytes, at most ${MAX_RESPONSE_BYTES} allowed`)
  return { hashes, subtrieBytes }
}

/** `[code, [node…]]`; a subtrie sent as its leaves is that list, whole, in its node's place. */
export function encodeNodesResponse(code: Status, nodes: (Uint8Array | EncodedRlp)[] = []): Uint8Array {
  return encodeRlpMixedList([encodeFrame(code)], nodes)
}

export { type NodesReplyItem, SubtrieLeaves } from '../trie/subtrie.js'

/**
 * Reads the reply in place (the hot path of a trie sync: a generic RLP decode copied every node twice and built
 * arrays of them), with the rules `decodeFrame` and `expectStatus` apply. The nodes are views into `frame`,
 * with no copy: a copy of each was an allocation of its own, 1.3 µs a node against 0.35 µs for a view. A
 * caller keeping a node for long copies it, so it does not hold the whole reply (`TrieSync` copies the nodes
 * that wait for their children; the others are written to the store within a commit). A list in a node's place
 * (a subtrie's leaves) is a `ProtocolError` unless `subtries` says the request allowed them.
 */
export function decodeNodesResponse(frame: Uint8Array, maxNodes: number): { code: Status; nodes: Uint8Array[] }
export function decodeNodesResponse(frame: Uint8Array, maxNodes: number, subtries: boolean): { code: Status; nodes: NodesReplyItem[] }
export function decodeNodesResponse(frame: Uint8Array, maxNodes: number, subtries = false): { code: Status; nodes: NodesReplyItem[] } {
  const fail = (why: string): ProtocolError => new ProtocolError(`nodes response: ${why}`)
  const outer = readRlpSpan(frame, 0, frame.length, fail)
  if (!outer.list || outer.end !== frame.length) throw fail('expected one list')
  const code = readRlpSpan(frame, outer.start, outer.end, fail)
  if (code.list) throw fail('status: expected a byte string')
  if (code.end >= outer.end) throw fail('expected 2 items, got 1')
  const list = readRlpSpan(frame, code.end, outer.end, fail)
  if (!list.list) throw fail('expected a list of nodes')
  if (list.end !== outer.end) throw fail('expected 2 items, got more')
  const status = statusOf(frame.subarray(code.start, code.end))
  const nodes: NodesReplyItem[] = []
  for (let pos = list.start; pos < list.end; ) {
    const node = readRlpSpan(frame, pos, list.end, fail)
    if (node.list && !subtries) throw fail('node: expected a byte string')
    if (nodes.length === maxNodes) throw fail(`more than ${maxNodes} nodes`)
    nodes.push(node.list ? new SubtrieLeaves(frame, node.start, node.end) : frame.subarray(node.start, node.end))
    pos = node.end
  }
  if (status !== Status.OK && nodes.length > 0) throw new ProtocolError('nodes response: error status with nodes')
  return { code: status, nodes }
}

/** A canonical status code, as `expectStatus` reads it. */
function statusOf(bytes: Uint8Array): Status {
  if (bytes.length > 1 || (bytes.length === 1 && bytes[0] === 0)) throw new ProtocolError('nodes response: bad status')
  const code = bytes.length === 0 ? 0 : bytes[0]!
  if (code > Status.RATE_LIMITED) throw new ProtocolError(`nodes response: unknown status ${code}`)
  return code as Status
}

export interface NodesServerLimits {
  /** @default MAX_NODES_PER_REQUEST */
  maxNodesPerRequest?: number
  /** @default MAX_RESPONSE_BYTES */
  maxResponseBytes?: number
  /**
   * Send the subtrie of a node asked for as its leaves when they take at most this many bytes and fit the reply
   * (the request's `subtrieBytes`). @default 0 (never)
   */
  subtrieBytes?: number
  /** Told the nodes read below the nodes asked for, to read their subtries (the server charges its peer for them). */
  onSubtrieReads?: (nodes: number) => void
}

/**
 * Answers a nodes request from the store: the nodes it has, in request order, stopping before the reply
 * would pass the byte limit (RATE_LIMITED if not even the first fits). A malformed request gets status
 * INVALID_REQUEST.
 */
export async function answerNodesRequest(store: KVStore, frame: Uint8Array, limits: NodesServerLimits = {}): Promise<Uint8Array> {
  let request: NodesRequest
  try {
    request = decodeNodesRequestWhole(frame, limits.maxNodesPerRequest ?? MAX_NODES_PER_REQUEST)
  } catch (err) {
    if (err instanceof ProtocolError) return encodeNodesResponse(Status.INVALID_REQUEST)
    throw err
  }
  return answerNodes(store, request.hashes, { ...limits, subtrieBytes: request.subtrieBytes })
}

/**
 * `answerNodesRequest` for the hashes of a request already decoded. The store is read a chunk at a time, in
 * request order, until the reply is full, each chunk's values at most `NODES_READ_CHUNK` times the largest node
 * for a reply of `MAX_RESPONSE_BYTES` (in proportion for a smaller one): reading all of them at once held every
 * value asked for, up to 1,024 leaves of up to 1 MiB each, to send 2 MiB of them (an outside tester took a server
 * from 363 MB to 3.2 GB of RSS with one peer id asking for a trie's largest leaves). A store that knows its
 * largest value (`KVStore.largestValueBytes`) is read in chunks that many of them fit, all 1,024 at once for a
 * trie of small nodes. A value past `MAX_NODE_BYTES` is left out: no client accepts it. Reading stops, and the
 * reply holds what was found, once the values read come to that many of the largest node, left-out ones too.
 */
export async function answerNodes(
  store: Pick<KVStore, 'getMany' | 'largestValueBytes'>,
  hashes: Uint8Array[],
  limits: NodesServerLimits = {}
): Promise<Uint8Array> {
  const maxBytes = limits.maxResponseBytes ?? MAX_RESPONSE_BYTES
  // A store that does not know its largest value (a `LevelStore` an earlier version wrote) serves nodes only: its
  // subtries could be read only a node or two at a time within their bound.
  const subtrieBytes = store.largestValueBytes?.() === undefined ? 0 : (limits.subtrieBytes ?? 0)
  // The nodes found, in request order, until they alone fill the reply (and one more, to tell a reply too small
  // for its first node).
  const found: Uint8Array[] = []
  // Whether each is the first of its hash in the request: only those have their subtries read.
  const firsts: boolean[] = []
  const seen = new Set<string>()
  let foundBytes = 0
  const readBytes = (NODES_READ_CHUNK * MAX_NODE_BYTES * maxBytes) / MAX_RESPONSE_BYTES
  const chunk = Math.max(1, Math.floor(readBytes / Math.max(1, store.largestValueBytes?.() ?? MAX_NODE_BYTES)))
  // Bytes read, those left out included: a request repeating one value past `MAX_NODE_BYTES` 1,024 times cost a
  // server 1.6 s of CPU for an empty reply, and 8 peer ids sending such requests made an honest sync fail.
  let read = 0
  for (let at = 0; at < hashes.length && read < readBytes && foundBytes <= maxBytes; at += chunk) {
    const values = await store.getMany(at === 0 && hashes.length <= chunk ? hashes : hashes.slice(at, at + chunk))
    for (let v = 0; v < values.length; v++) {
      const value = values[v]
      if (value === undefined) continue
      read += value.length
      if (value.length > MAX_NODE_BYTES) continue
      if (subtrieBytes > 0) {
        const key = toHex(hashes[at + v]!)
        firsts.push(!seen.has(key))
        seen.add(key)
      }
      found.push(value)
      foundBytes += value.length
      if (foundBytes > maxBytes) break
    }
  }
  // Their subtries, read together, as their leaves where those fit; a subtrie too large for the reply is found so
  // only after reading up to its room, and then goes as its node.
  let leaves: (EncodedRlp | null)[] | null = null
  if (subtrieBytes > 0 && found.length > 0) {
    const roots = found.filter((_, i) => firsts[i])
    // A few roots at a time, and none once their leaves fill the reply or the reads pass their bound: read all
    // together, many subtries that each fit gave way to the budget, and their reads went for nothing.
    const rootLeaves: (EncodedRlp | null)[] = []
    let room = maxBytes
    let readLeft = 2 * SUBTRIE_READ_FACTOR * maxBytes
    let nodesRead = 0
    for (let at = 0; at < roots.length; at += SUBTRIE_READ_GROUP) {
      const group = roots.slice(at, at + SUBTRIE_READ_GROUP)
      if (room <= 0 || readLeft <= 0) {
        for (const _ of group) rootLeaves.push(null)
        continue
      }
      const sub = await readSubtriesLeaves(store, group, Math.min(subtrieBytes, room), Math.min(SUBTRIE_READ_FACTOR * maxBytes, readLeft / 2))
      nodesRead += sub.nodes
      readLeft -= sub.read
      for (const l of sub.leaves) {
        if (l !== null) room -= l.rlp.length
        rootLeaves.push(l)
      }
    }
    if (nodesRead > 0) limits.onSubtrieReads?.(nodesRead)
    leaves = []
    for (let i = 0, r = 0; i < found.length; i++) leaves.push(firsts[i] ? rootLeaves[r++]! : null)
  }
  const nodes: (Uint8Array | EncodedRlp)[] = []
  let bytes = 0
  for (let i = 0; i < found.length; i++) {
    const sub = leaves?.[i] ?? null
    if (sub !== null && bytes + sub.rlp.length <= maxBytes) {
      nodes.push(sub)
      bytes += sub.rlp.length
      continue
    }
    const value = found[i]!
    if (bytes + value.length > maxBytes) {
      // Not even the first node fits: busy for now, not "none of them here", after which the client would
      // never ask us for them again. Only a limit below the largest node (a server's busy reply budget) does it.
      return nodes.length === 0 ? encodeNodesResponse(Status.RATE_LIMITED) : encodeNodesResponse(Status.OK, nodes)
    }
    bytes += value.length
    nodes.push(value)
  }
  return encodeNodesResponse(Status.OK, nodes)
}

/**
 * What reading the subtries of one nodes request may hold below the nodes asked for, in replies' worth (and read,
 * twice that). A client sizes its requests to a quarter of a reply's leaves (`SUBTRIE_REQUEST_BYTES`), some 0.4 of
 * a reply in nodes; the root's subtrie, asked for by a flooder, is read only this far.
 */
const SUBTRIE_READ_FACTOR = 1

/** Subtries read together (a level of all of them at a time) while a nodes reply is built. */
const SUBTRIE_READ_GROUP = 16

export interface FetchNodesOptions {
  signal?: AbortSignal
  timeoutMs?: number
}

/**
 * Asks `peer` for nodes by hash. Resolves with the blobs it sent (unverified: the caller hashes them; an
 * "unavailable" status is an empty list), as views into the reply: copy what you keep for long. Rejects with
 * `ProtocolError` for a malformed or oversized reply, `PeerBusyError` when rate limited, `RequestRejectedError`
 * when the peer calls the request invalid.
 */
export async function fetchNodes(
  openStream: OpenStream,
  peer: PeerId,
  hashes: Uint8Array[],
  options: FetchNodesOptions = {}
): Promise<Uint8Array[]> {
  const reply = await requestFrame(openStream, peer, NODES_PROTOCOL, encodeNodesRequest(hashes), {
    signal: options.signal,
    timeoutMs: options.timeoutMs,
    maxResponseBytes: MAX_FRAME_BYTES
  })
  return nodesOf(reply, hashes.length, false) as Uint8Array[]
}

/**
 * `fetchNodes` on the peer's long-lived session (`FrameSessions` made for `NODES_PROTOCOL` with at most
 * `MAX_PIPELINED_NODES_REQUESTS` unanswered and replies up to `MAX_FRAME_BYTES`): no stream opening or protocol
 * negotiation per request. Rejects as `fetchNodes` does, and with `StreamEndedError` when the session's stream
 * ended before the reply. With `subtrieBytes`, the reply may carry subtries as their leaves (`SubtrieLeaves`).
 */
export function requestNodes(
  sessions: FrameSessions,
  peer: PeerId,
  hashes: Uint8Array[],
  options: { signal?: AbortSignal; subtrieBytes?: number } = {}
): Promise<NodesReplyItem[]> {
  // Not async: the hashes are encoded at once and not kept for the round trip (a trie sync has some 16k out,
  // each a view, and held that long they outlived the garbage collections meanwhile).
  const asked = hashes.length
  let frame: Uint8Array
  try {
    frame = encodeNodesRequest(hashes, options.subtrieBytes)
  } catch (err) {
    return Promise.reject(err)
  }
  const subtries = (options.subtrieBytes ?? 0) > 0
  return sessions.request(peer, frame, options).then((reply) => nodesOf(reply, asked, subtries))
}

/** The nodes of a reply to a request of `asked` hashes, or the error its status stands for. */
function nodesOf(reply: Uint8Array, asked: number, subtries: boolean): NodesReplyItem[] {
  const { code, nodes } = decodeNodesResponse(reply, asked, subtries)
  switch (code) {
    case Status.OK:
    case Status.UNAVAILABLE:
      return nodes
    case Status.RATE_LIMITED:
      throw new PeerBusyError('peer is rate limiting node requests')
    case Status.INVALID_REQUEST:
      throw new RequestRejectedError('peer rejected the nodes request as invalid')
    default: {
      const exhaustive: never = code
      throw new ProtocolError(`unknown status ${String(exhaustive)}`)
    }
  }
}
