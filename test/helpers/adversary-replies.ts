import { MAX_FRAME_BYTES } from '../../src/constants.js'
import { encodeFrame, Status } from '../../src/net/codec.js'
import {
  answerNodesRequest,
  decodeNodesRequest,
  decodeNodesResponse,
  encodeNodesRequest,
  encodeNodesResponse,
  NODES_PROTOCOL
} from '../../src/net/nodes-protocol.js'
import * as wire from '../../src/net/topic-protocols.js'
import type { KVStore } from '../../src/store/kv-store.js'
import type { TopicProvider } from '../../src/topic/provider.js'
import { answerContents, answerHashes, answerStatus } from '../../src/topic/topic-server.js'
import {
  type AdversaryEntries,
  type AdversaryProtocol,
  type AdversaryRequests,
  changesEntries,
  isFrameFault,
  lieAbout,
  type Rule
} from './adversary-model.js'

/** The end-to-end driver's half of the adversary model: each protocol's replies as frames. */

export const PROTOCOL_IDS: Readonly<Record<AdversaryProtocol, string>> = {
  nodes: NODES_PROTOCOL,
  status: wire.STATUS_PROTOCOL,
  contents: wire.CONTENTS_PROTOCOL,
  hashes: wire.HASHES_PROTOCOL
}

/** One protocol's requests and honest replies as frames, seen as a status code and a list of entries. */
interface FrameCodec<P extends AdversaryProtocol> {
  request(frame: Uint8Array): AdversaryRequests[P]
  honest(frame: Uint8Array, peer: string): Promise<Uint8Array>
  /** The same request for at most `limit` entries, where a reply must be made for the shorter range (a proof). */
  limit?(request: AdversaryRequests[P], limit: number): Uint8Array
  /**
   * The request whose honest reply a lie is made of, when not the request itself: a nodes request allowing
   * subtries as their leaves, asked for plain nodes (a lie about entries changes node blobs).
   */
  forLies?(frame: Uint8Array): Uint8Array
  /** `extra`: what the reply carries beside its entries (a contents reply's proof), handed back to `encode`. */
  decode(reply: Uint8Array, request: AdversaryRequests[P]): { code: Status; entries: AdversaryEntries[P][]; extra?: unknown }
  encode(code: Status, entries: AdversaryEntries[P][], extra?: unknown): Uint8Array
}

function nodesCodec(store: KVStore): FrameCodec<'nodes'> {
  return {
    request: (frame) => ({ hashes: decodeNodesRequest(frame) }),
    honest: (frame) => answerNodesRequest(store, frame),
    forLies: (frame) => encodeNodesRequest(decodeNodesRequest(frame)),
    decode: (reply, request) => {
      const { code, nodes } = decodeNodesResponse(reply, request.hashes.length)
      return { code, entries: nodes }
    },
    encode: (code, nodes) => encodeNodesResponse(code, nodes)
  }
}

function contentsCodec(provider: TopicProvider): FrameCodec<'contents'> {
  return {
    request: (frame) => wire.decodeContentsRequest(frame),
    honest: (frame, peer) => answerContents(provider, frame, peer),
    limit: (req, limit) => wire.encodeContentsRequest(req.topic, req.from, Math.min(req.amount, limit), req.root),
    decode: (reply, { from, amount }) => {
      const { code, items, proof } = wire.decodeContentsResponse(reply, from, amount)
      return { code, entries: items, extra: proof }
    },
    encode: (code, items, proof) => wire.encodeContentsResponse(code, items, (proof as Uint8Array[] | undefined) ?? [])
  }
}

function hashesCodec(provider: TopicProvider): FrameCodec<'hashes'> {
  return {
    request: (frame) => wire.decodeHashesRequest(frame),
    honest: (frame, peer) => answerHashes(provider, frame, peer),
    decode: (reply, { from, to }) => {
      const { code, hashes } = wire.decodeHashesResponse(reply, from, to)
      return { code, entries: hashes }
    },
    encode: (code, hashes) => wire.encodeHashesResponse(code, hashes)
  }
}

function statusCodec(provider: TopicProvider): FrameCodec<'status'> {
  return {
    request: (frame) => ({ topic: wire.decodeStatusRequest(frame) }),
    honest: (frame, peer) => answerStatus(provider, frame, peer),
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
    }
  }
}

/** Reads and answers one protocol's requests as rules say (transport faults are the caller's). */
export interface Replier<P extends AdversaryProtocol> {
  request(frame: Uint8Array): AdversaryRequests[P]
  reply(rule: Rule<P>, frame: Uint8Array, request: AdversaryRequests[P], peer: string): Promise<Uint8Array>
}

function replier<P extends AdversaryProtocol>(protocol: P, codec: FrameCodec<P>): Replier<P> {
  return {
    request: codec.request,
    reply: async (rule, frame, request, peer) => {
      if (rule.reply !== undefined) return rule.reply
      const fault = rule.fault ?? 'honest'
      if (isFrameFault(fault)) {
        switch (fault) {
          case 'oversized':
            return new Uint8Array(MAX_FRAME_BYTES + 1)
          case 'garbage':
            return Uint8Array.of(0xc5, 0x01) // an RLP list header promising five bytes, followed by one
          case 'unavailable':
            return codec.encode(Status.UNAVAILABLE, [])
          case 'rate-limited':
            return codec.encode(Status.RATE_LIMITED, [])
          default: {
            const exhaustive: never = fault
            throw new Error(`unknown fault ${String(exhaustive)}`)
          }
        }
      }
      if (rule.unproven === true && protocol === 'contents') {
        const req = request as AdversaryRequests['contents']
        frame = wire.encodeContentsRequest(req.topic, req.from, req.amount)
      }
      let asked = rule.limit !== undefined && codec.limit !== undefined ? codec.limit(request, rule.limit) : frame
      if ((changesEntries(rule) || rule.plain === true) && codec.forLies !== undefined) asked = codec.forLies(asked)
      const honest = await codec.honest(asked, peer)
      if (!changesEntries(rule)) return honest
      const { code, entries, extra } = codec.decode(honest, request)
      const proof = rule.proof !== undefined && protocol === 'contents' ? rule.proof(extra as Uint8Array[]) : extra
      // A status lie is a state the peer claims to hold: it says so with OK, whatever it honestly holds.
      return codec.encode(rule.state === undefined ? code : Status.OK, lieAbout(protocol, rule, entries, request), proof)
    }
  }
}

/** The replier of each protocol over the adversary's honest data. */
export function repliers(store: KVStore, provider: TopicProvider): { [P in AdversaryProtocol]: Replier<P> } {
  return {
    nodes: replier('nodes', nodesCodec(store)),
    status: replier('status', statusCodec(provider)),
    contents: replier('contents', contentsCodec(provider)),
    hashes: replier('hashes', hashesCodec(provider))
  }
}
