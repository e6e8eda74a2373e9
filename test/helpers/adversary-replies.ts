import { MAX_FRAME_BYTES } from '../../src/constants.js'
import { encodeFrame, Status } from '../../src/net/codec.js'
import { answerNodesRequest, decodeNodesRequest, decodeNodesResponse, encodeNodesResponse, NODES_PROTOCOL } from '../../src/net/nodes-protocol.js'
import * as wire from '../../src/net/topic-protocols.js'
import type { KVStore } from '../../src/store/kv-store.js'
import type { TopicProvider } from '../../src/topic/provider.js'
import { answerContents, answerHashes, answerStatus } from '../../src/topic/topic-server.js'
import { keccak256 } from '../../src/trie/keccak.js'

/** The DSFG request protocols an adversary speaks, by short name. */
export type AdversaryProtocol = 'nodes' | 'status' | 'contents' | 'hashes'

export const PROTOCOL_IDS: Readonly<Record<AdversaryProtocol, string>> = {
  nodes: NODES_PROTOCOL,
  status: wire.STATUS_PROTOCOL,
  contents: wire.CONTENTS_PROTOCOL,
  hashes: wire.HASHES_PROTOCOL
}

/**
 * What an adversary does with one request. The reply faults start from the honest reply (the library's own
 * server functions over the adversary's data) and change it:
 *
 * - `honest`: the honest reply;
 * - `corrupt`: every entry altered so that it fails verification (a node or item with its last byte flipped, a
 *   wrong hash); a status reply with `lowest` above `head`, which the codec rejects;
 * - `reorder`: the entries in reverse order; `duplicate`: every entry twice;
 * - `too-many`: one entry more than the request allows (repeats of the last);
 * - `oversized`: a frame one byte past `MAX_FRAME_BYTES`; `garbage`: a frame that is not RLP;
 * - `unavailable`, `rate-limited`: that status and no data;
 * - `stall`: never answers, keeps the stream open; `reset`: resets the stream without a reply;
 * - `disconnect`: drops the connection to the asking peer mid-request (it may dial again);
 * - `stop`: stops the whole adversary node mid-request (gone for good).
 */
export type Fault =
  | 'honest'
  | 'corrupt'
  | 'reorder'
  | 'duplicate'
  | 'too-many'
  | 'oversized'
  | 'garbage'
  | 'unavailable'
  | 'rate-limited'
  | 'stall'
  | 'reset'
  | 'disconnect'
  | 'stop'

export interface Rule {
  /** @default 'honest' */
  fault?: Fault
  /** Waits this long before acting (a slow peer). */
  delayMs?: number
  /** Status only: the state to report instead of ours (a higher head, a forged checkpoint); `honest` is ours. */
  state?: (honest: wire.TopicState | null) => wire.TopicState
  /** At most this many entries of the honest reply: a legal short reply (applied before the fault). */
  limit?: number
  /** This exact reply frame instead of any fault. */
  reply?: Uint8Array
  /**
   * Contents only: the checkpoint root the request names is ignored, so the reply carries the adversary's own
   * items with no proof: what a forger on another history can send at best.
   */
  unproven?: boolean
}

/** Faults that do not produce a reply frame: the transport carries them out. */
export type TransportFault = Extract<Fault, 'stall' | 'reset' | 'disconnect' | 'stop'>

export function isTransportFault(fault: Fault): fault is TransportFault {
  return fault === 'stall' || fault === 'reset' || fault === 'disconnect' || fault === 'stop'
}

/** One protocol's honest reply, seen as a status code and a list of entries that faults can change. */
interface ReplyCodec<E> {
  honest(frame: Uint8Array, peer: string): Promise<Uint8Array>
  /** Most entries the request allows in a reply. */
  allowed(frame: Uint8Array): number
  /** The same request for at most `limit` entries, where a reply must be made for the shorter range (a proof). */
  limit?(frame: Uint8Array, limit: number): Uint8Array
  /** `extra`: what the reply carries beside its entries (a contents reply's proof), handed back to `encode`. */
  decode(reply: Uint8Array, frame: Uint8Array): { code: Status; entries: E[]; extra?: unknown }
  encode(code: Status, entries: E[], extra?: unknown): Uint8Array
  corrupt(entry: E): E
  /** An entry to add after `entries` (the last one again, or a filler when there is none). */
  more(entries: E[], frame: Uint8Array): E
  /** Replaces the entries with a lie (status only). */
  lie?(state: (honest: wire.TopicState | null) => wire.TopicState, entries: E[]): E[]
}

/** A copy of `bytes` with its last byte flipped: same length, fails any hash check. */
function flipped(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice()
  out[out.length - 1]! ^= 0xff
  return out
}

function nodesCodec(store: KVStore): ReplyCodec<Uint8Array> {
  return {
    honest: (frame) => answerNodesRequest(store, frame),
    allowed: (frame) => decodeNodesRequest(frame).length,
    decode: (reply, frame) => {
      const { code, nodes } = decodeNodesResponse(reply, decodeNodesRequest(frame).length)
      return { code, entries: nodes }
    },
    encode: (code, nodes) => encodeNodesResponse(code, nodes),
    corrupt: flipped,
    more: (nodes) => nodes.at(-1) ?? Uint8Array.of(0x80)
  }
}

function contentsCodec(provider: TopicProvider): ReplyCodec<wire.Item> {
  return {
    honest: (frame, peer) => answerContents(provider, frame, peer),
    allowed: (frame) => wire.decodeContentsRequest(frame).amount,
    limit: (frame, limit) => {
      const req = wire.decodeContentsRequest(frame)
      return wire.encodeContentsRequest(req.topic, req.from, Math.min(req.amount, limit), req.root)
    },
    decode: (reply, frame) => {
      const { from, amount } = wire.decodeContentsRequest(frame)
      const { code, items, proof } = wire.decodeContentsResponse(reply, from, amount)
      return { code, entries: items, extra: proof }
    },
    encode: (code, items, proof) => wire.encodeContentsResponse(code, items, (proof as Uint8Array[] | undefined) ?? []),
    corrupt: (item) => ({ n: item.n, data: flipped(item.data) }),
    more: (items, frame) => {
      const last = items.at(-1)
      return last === undefined ? { n: wire.decodeContentsRequest(frame).from, data: Uint8Array.of(1) } : { n: last.n + 1, data: last.data }
    }
  }
}

function hashesCodec(provider: TopicProvider): ReplyCodec<Uint8Array> {
  return {
    honest: (frame, peer) => answerHashes(provider, frame, peer),
    allowed: (frame) => {
      const { from, to } = wire.decodeHashesRequest(frame)
      return to - from + 1
    },
    decode: (reply, frame) => {
      const { from, to } = wire.decodeHashesRequest(frame)
      const { code, hashes } = wire.decodeHashesResponse(reply, from, to)
      return { code, entries: hashes }
    },
    encode: (code, hashes) => wire.encodeHashesResponse(code, hashes),
    corrupt: flipped,
    more: (hashes) => hashes.at(-1) ?? keccak256(Uint8Array.of(1))
  }
}

function statusCodec(provider: TopicProvider): ReplyCodec<wire.TopicState> {
  return {
    honest: (frame, peer) => answerStatus(provider, frame, peer),
    allowed: () => 1,
    decode: (reply) => {
      const { code, state } = wire.decodeStatusResponse(reply)
      return { code, entries: state === null ? [] : [state] }
    },
    encode: (code, states) => {
      if (states.length <= 1) return wire.encodeStatusResponse(code, states[0])
      // More than one state: the fields of each in one list, which no client can read.
      return encodeFrame([
        code,
        ...states.flatMap((s) => [s.lowest, s.head, s.headHash, s.checkpoint.number, s.checkpoint.root, s.record ?? new Uint8Array(0)])
      ] as never)
    },
    corrupt: (state) => ({ ...state, lowest: state.head + 1 }),
    more: (states) => states.at(-1)!,
    lie: (state, states) => [state(states[0] ?? null)]
  }
}

/** Answers one request of one protocol as a rule says. */
export type Replier = (rule: Rule, frame: Uint8Array, peer: string) => Promise<Uint8Array>

function replier<E>(codec: ReplyCodec<E>): Replier {
  return async (rule, frame, peer) => {
    const fault = rule.fault ?? 'honest'
    if (rule.reply !== undefined) return rule.reply
    switch (fault) {
      case 'oversized':
        return new Uint8Array(MAX_FRAME_BYTES + 1)
      case 'garbage':
        return Uint8Array.of(0xc5, 0x01) // an RLP list header promising five bytes, followed by one
      case 'unavailable':
        return codec.encode(Status.UNAVAILABLE, [])
      case 'rate-limited':
        return codec.encode(Status.RATE_LIMITED, [])
      default:
        break
    }
    if (rule.unproven === true) {
      const req = wire.decodeContentsRequest(frame)
      frame = wire.encodeContentsRequest(req.topic, req.from, req.amount)
    }
    const asked = rule.limit !== undefined && codec.limit !== undefined ? codec.limit(frame, rule.limit) : frame
    const honest = await codec.honest(asked, peer)
    if (fault === 'honest' && rule.state === undefined && rule.limit === undefined) return honest
    let { code, entries, extra } = codec.decode(honest, frame)
    if (rule.limit !== undefined) entries = entries.slice(0, rule.limit)
    if (rule.state !== undefined && codec.lie !== undefined) {
      code = Status.OK
      entries = codec.lie(rule.state, entries)
    }
    return codec.encode(code, mutate(codec, fault, entries, frame), extra)
  }
}

function mutate<E>(codec: ReplyCodec<E>, fault: Fault, entries: E[], frame: Uint8Array): E[] {
  switch (fault) {
    case 'corrupt':
      return entries.map((e) => codec.corrupt(e))
    case 'reorder':
      return [...entries].reverse()
    case 'duplicate':
      return entries.flatMap((e) => [e, e])
    case 'too-many': {
      const out = [...entries]
      while (out.length <= codec.allowed(frame)) out.push(codec.more(out, frame))
      return out
    }
    default:
      return entries
  }
}

/** The replier of each protocol over the adversary's honest data. */
export function repliers(store: KVStore, provider: TopicProvider): Record<AdversaryProtocol, Replier> {
  return {
    nodes: replier(nodesCodec(store)),
    status: replier(statusCodec(provider)),
    contents: replier(contentsCodec(provider)),
    hashes: replier(hashesCodec(provider))
  }
}
