import {
  DEFAULT_INBOUND_REQUEST_BURST,
  DEFAULT_INBOUND_REQUESTS_PER_SECOND,
  MAX_CHECKPOINT_RECORD_BYTES,
  MAX_HASHES_PER_REQUEST,
  MAX_ITEM_BYTES,
  MAX_ITEMS_PER_REQUEST,
  MAX_PROOF_NODES,
  MAX_RESPONSE_BYTES
} from '../constants.js'
import { MissingNodeError, ProtocolError } from '../errors.js'
import { verifyProof } from '../proof/proof.js'
import { equalBytes, uint64BE } from '../util/bytes.js'
import { payloadBytesOf, Status } from '../net/codec.js'
import { requestTokens, TokenBuckets } from '../net/rate-limiter.js'
import {
  CONTENTS_PROTOCOL,
  type ContentsRequest,
  decodeContentsRequest,
  decodeHashesRequest,
  decodeStatusRequest,
  encodeContentsResponse,
  encodeHashesResponse,
  encodeStatusResponse,
  HASHES_PROTOCOL,
  type HashesRequest,
  type Item,
  STATUS_PROTOCOL,
  type TopicState
} from '../net/topic-protocols.js'
import type { Clock } from '../util/clock.js'
import type { Log } from '../util/log.js'
import type { TopicProvider } from './provider.js'

/** The request protocols a topic server answers. */
export type TopicProtocol = typeof STATUS_PROTOCOL | typeof CONTENTS_PROTOCOL | typeof HASHES_PROTOCOL

/**
 * Answers one request frame from `peer` (its peer id string) with one reply frame; never rejects.
 * `maxReplyBytes`, when given, is the room the server's reply budget gave the reply (a contents reply is cut to
 * it: see `answerContentsRequest`).
 */
export type TopicAnswer = (frame: Uint8Array, peer: string, maxReplyBytes?: number) => Promise<Uint8Array>

export interface AnswerOptions {
  /** Most items in one contents reply (fewer than the request asks for is legal). @default MAX_ITEMS_PER_REQUEST */
  maxItems?: number
  /** Most item bytes in one contents reply; the reply stops before passing it. @default MAX_RESPONSE_BYTES */
  maxResponseBytes?: number
  /** Most hashes in one hashes reply. @default MAX_HASHES_PER_REQUEST */
  maxHashes?: number
  /** Called when the provider throws or returns something the protocol cannot carry; the peer gets UNAVAILABLE. */
  onProviderError?: (err: unknown, peer: string) => void
  /** Where malformed requests are logged (the service hands it `dsfg:topic-server`). */
  log?: Log
}

/**
 * Answers `[topic]` with our state of the topic: UNAVAILABLE when we hold nothing of it, INVALID_REQUEST for a
 * malformed frame. Never throws.
 */
export async function answerStatus(
  provider: TopicProvider,
  frame: Uint8Array,
  peer: string,
  options: AnswerOptions = {}
): Promise<Uint8Array> {
  let topic: string
  try {
    topic = decodeStatusRequest(frame)
  } catch (err) {
    options.log?.('malformed status request from %s: %e', peer, err)
    return encodeStatusResponse(Status.INVALID_REQUEST)
  }
  try {
    const state = await provider.getCurrentTopicState(topic)
    if (state === null) return encodeStatusResponse(Status.UNAVAILABLE)
    // A state the client would reject must not leave this node as if it were ours to vouch for.
    if (!isWireState(state)) throw new ProtocolError(`provider returned an invalid state for topic ${topic}`)
    return encodeStatusResponse(Status.OK, state)
  } catch (err) {
    options.onProviderError?.(err, peer)
    return encodeStatusResponse(Status.UNAVAILABLE)
  }
}

/**
 * Answers `[topic, from, amount]` with the items we hold from `from`: ascending, inside the range, at most
 * `maxItems`, and stopping before the item bytes pass `maxResponseBytes` (a short reply is legal; the client
 * asks for the rest). UNAVAILABLE when we hold none of them. Never throws. `room`: see `answerContentsRequest`.
 */
export async function answerContents(
  provider: TopicProvider,
  frame: Uint8Array,
  peer: string,
  options: AnswerOptions = {},
  room?: number
): Promise<Uint8Array> {
  let req: ContentsRequest
  try {
    req = decodeContentsRequest(frame)
  } catch (err) {
    options.log?.('malformed contents request from %s: %e', peer, err)
    return encodeContentsResponse(Status.INVALID_REQUEST)
  }
  return answerContentsRequest(provider, req, peer, options, room)
}

/**
 * `answerContents` for a request already decoded. Never throws. `room`, when given, is what the server's reply
 * budget let this reply have (a whole frame, or less while it is busy): the items and their proof stay within
 * it too, less the frame's room for RLP headers. A reply the room cuts to nothing (its first item, or that
 * item's proof, does not fit) is RATE_LIMITED, a refusal the client asks again after: not UNAVAILABLE, which
 * says we hold none of the items.
 */
export async function answerContentsRequest(
  provider: TopicProvider,
  req: ContentsRequest,
  peer: string,
  options: AnswerOptions = {},
  room?: number
): Promise<Uint8Array> {
  const amount = contentsAmount(req, options)
  const configured = options.maxResponseBytes ?? MAX_RESPONSE_BYTES
  const roomBytes = room === undefined ? configured : payloadBytesOf(room)
  const maxBytes = Math.min(configured, roomBytes)
  // Whether the room, not the request or what we hold, ended the reply before its first item.
  let cutByRoom = false
  const items: Item[] = []
  let bytes = 0
  let last = req.from - 1
  // Read in chunks sized to what is left of the reply, by the largest item seen so far: asking the provider for
  // all `amount` items at once held up to 256 × 64 KiB (16 MiB) per request to send 2 MiB of it, and a server
  // building a few dozen replies at once went past a gigabyte. The first chunk is one reply's worth even at the
  // largest item size.
  let chunk = Math.min(amount, Math.max(1, Math.floor(maxBytes / MAX_ITEM_BYTES)))
  for (let next = req.from; items.length < amount; ) {
    let held: Item[]
    try {
      held = await provider.getContents(req.topic, next, chunk)
    } catch (err) {
      options.onProviderError?.(err, peer)
      return encodeContentsResponse(Status.UNAVAILABLE)
    }
    // The provider is trusted to be right, not to be well formed: whatever would make the client reject the
    // whole reply (and blame us) ends it instead.
    let ended = false
    let largest = 1
    for (const item of held) {
      if (items.length >= amount) break
      if (!Number.isSafeInteger(item.n) || item.n <= last || item.n >= req.from + amount) ended = true
      else if (item.data.length === 0 || item.data.length > MAX_ITEM_BYTES) ended = true
      else if (bytes + item.data.length > maxBytes) {
        ended = true
        cutByRoom = items.length === 0 && item.data.length <= configured
      }
      if (ended) break
      bytes += item.data.length
      last = item.n
      largest = Math.max(largest, item.data.length)
      items.push(item)
    }
    if (ended || held.length < chunk) break
    next = last + 1
    // At least one more: the reply ends at the first item that does not fit, as if read all at once.
    chunk = Math.min(amount - items.length, Math.max(1, Math.floor((maxBytes - bytes) / largest)))
  }
  if (items.length === 0) return encodeContentsResponse(cutByRoom ? Status.RATE_LIMITED : Status.UNAVAILABLE)
  if (req.root === undefined) return encodeContentsResponse(Status.OK, items)
  let proof = await proveContents(provider, req.topic, req.root, items, peer, options)
  // The proof holds both edge leaves, each with its whole item (up to MAX_ITEM_BYTES): items and proof together
  // must stay within the reply's budget, or the frame outgrows what the client reads. Drop items from the end
  // (a short reply is legal) until they fit.
  while (proof !== null && items.length > 1 && bytes + byteSize(proof) > maxBytes) {
    bytes -= items.pop()!.data.length
    proof = await proveContents(provider, req.topic, req.root, items, peer, options)
  }
  if (proof === null) return encodeContentsResponse(Status.UNAVAILABLE)
  // One item and its proof past a smaller room than the reply's own bound: there is no shorter reply to send.
  if (roomBytes < configured && bytes + byteSize(proof) > roomBytes) return encodeContentsResponse(Status.RATE_LIMITED)
  return encodeContentsResponse(Status.OK, items, proof)
}

function byteSize(blobs: readonly Uint8Array[]): number {
  let total = 0
  for (const blob of blobs) total += blob.length
  return total
}

/**
 * The range proof of `items` against `root`, or `null` when we cannot give one: no such trie here, or our
 * items are not that trie's (a history other than the one the client syncs). Both edge items are checked
 * against the proof before it leaves, so an honest node on another history answers UNAVAILABLE rather than
 * a reply the client must blame it for.
 */
async function proveContents(
  provider: TopicProvider,
  topic: string,
  root: Uint8Array,
  items: readonly Item[],
  peer: string,
  options: AnswerOptions
): Promise<Uint8Array[] | null> {
  if (provider.getContentsProof === undefined) return null
  const first = items[0]!
  const last = items[items.length - 1]!
  let proof: Uint8Array[]
  try {
    proof = await provider.getContentsProof(topic, root, first.n, last.n)
  } catch (err) {
    // Not an error of ours to report: most often the trie of a root we never verified.
    if (err instanceof MissingNodeError) options.log?.('no proof of %s items %d..%d against a root we lack: %e', topic, first.n, last.n, err)
    else options.onProviderError?.(err, peer)
    return null
  }
  if (proof.length > MAX_PROOF_NODES) return null
  for (const item of [first, last]) {
    let proven: Uint8Array | null
    try {
      proven = verifyProof(root, uint64BE(item.n), proof)
    } catch (err) {
      // Our provider's proof does not hold our own item: another history, or a provider bug.
      options.log?.('our proof of %s item %d does not verify: %e', topic, item.n, err)
      return null
    }
    if (proven === null || !equalBytes(proven, item.data)) return null
  }
  return proof
}

/**
 * Answers `[topic, from, to]` with the hashes of the items we hold from `from` (a prefix of the range, at most
 * `maxHashes`). UNAVAILABLE when we hold none of them. Never throws.
 */
export async function answerHashes(
  provider: TopicProvider,
  frame: Uint8Array,
  peer: string,
  options: AnswerOptions = {}
): Promise<Uint8Array> {
  let req: HashesRequest
  try {
    req = decodeHashesRequest(frame)
  } catch (err) {
    options.log?.('malformed hashes request from %s: %e', peer, err)
    return encodeHashesResponse(Status.INVALID_REQUEST)
  }
  return answerHashesRequest(provider, req, peer, options)
}

/** `answerHashes` for a request already decoded. Never throws. */
export async function answerHashesRequest(
  provider: TopicProvider,
  req: HashesRequest,
  peer: string,
  options: AnswerOptions = {}
): Promise<Uint8Array> {
  const count = hashesCount(req, options)
  let held: Uint8Array[]
  try {
    held = await provider.getContentHashes(req.topic, req.from, req.from + count - 1)
  } catch (err) {
    options.onProviderError?.(err, peer)
    return encodeHashesResponse(Status.UNAVAILABLE)
  }
  // The longest prefix of well-formed hashes, at most `count` (a slice only when the provider gave more or bad ones).
  let good = 0
  const most = Math.min(count, held.length)
  while (good < most && held[good]!.length === 32) good++
  if (good === 0) return encodeHashesResponse(Status.UNAVAILABLE)
  return encodeHashesResponse(Status.OK, good === held.length ? held : held.slice(0, good))
}

export interface TopicServerInit extends AnswerOptions {
  provider: TopicProvider
  /** @default systemClock */
  clock?: Clock
  /**
   * Request tokens per second each peer may spend, over all topic protocols: a request costs one per
   * `REQUEST_COST_UNIT` items or hashes it asks for (`requestTokens`), a status request one.
   * @default DEFAULT_INBOUND_REQUESTS_PER_SECOND (500)
   */
  inboundRatePerSecond?: number
  /** Request tokens a peer may spend at once after a quiet spell. @default DEFAULT_INBOUND_REQUEST_BURST (250) */
  inboundBurst?: number
  /** Called for each request refused as RATE_LIMITED (the service cuts off a peer that keeps at it). */
  onRateLimited?: (peer: string) => void
}

/** Answers every topic protocol from one `TopicProvider`, rate-limiting each peer on its own by the work it asks for. */
export class TopicServer {
  private readonly provider: TopicProvider
  private readonly options: AnswerOptions
  private readonly limiter: TokenBuckets
  private readonly onRateLimited: ((peer: string) => void) | undefined

  constructor(init: TopicServerInit) {
    const { provider, clock, inboundRatePerSecond, inboundBurst, onRateLimited, ...options } = init
    this.provider = provider
    this.onRateLimited = onRateLimited
    this.options = options
    this.limiter = new TokenBuckets({
      ratePerSecond: inboundRatePerSecond ?? DEFAULT_INBOUND_REQUESTS_PER_SECOND,
      burst: inboundBurst ?? DEFAULT_INBOUND_REQUEST_BURST,
      clock
    })
  }

  async answerStatus(frame: Uint8Array, peer: string): Promise<Uint8Array> {
    // The token is taken before the frame is even decoded: a flood of garbage costs the flooder, not us.
    if (!this.admit(peer, 1)) return encodeStatusResponse(Status.RATE_LIMITED)
    return answerStatus(this.provider, frame, peer, this.options)
  }

  /**
   * A contents or hashes request is decoded first (a frame of a few hundred bytes, `MAX_CONTENTS_REQUEST_BYTES`),
   * since what it costs depends on how much it asks for; a frame that does not decode costs one token.
   */
  async answerContents(frame: Uint8Array, peer: string, maxReplyBytes?: number): Promise<Uint8Array> {
    let req: ContentsRequest
    try {
      req = decodeContentsRequest(frame)
    } catch (err) {
      this.options.log?.('malformed contents request from %s: %e', peer, err)
      return encodeContentsResponse(this.admit(peer, 1) ? Status.INVALID_REQUEST : Status.RATE_LIMITED)
    }
    if (!this.admit(peer, requestTokens(contentsAmount(req, this.options)))) return encodeContentsResponse(Status.RATE_LIMITED)
    return answerContentsRequest(this.provider, req, peer, this.options, maxReplyBytes)
  }

  async answerHashes(frame: Uint8Array, peer: string): Promise<Uint8Array> {
    let req: HashesRequest
    try {
      req = decodeHashesRequest(frame)
    } catch (err) {
      this.options.log?.('malformed hashes request from %s: %e', peer, err)
      return encodeHashesResponse(this.admit(peer, 1) ? Status.INVALID_REQUEST : Status.RATE_LIMITED)
    }
    if (!this.admit(peer, requestTokens(hashesCount(req, this.options)))) return encodeHashesResponse(Status.RATE_LIMITED)
    return answerHashesRequest(this.provider, req, peer, this.options)
  }

  /** Takes `tokens` for `peer`'s request; reports a refusal. */
  private admit(peer: string, tokens: number): boolean {
    if (this.limiter.take(peer, tokens)) return true
    this.onRateLimited?.(peer)
    return false
  }

  /** One answer function per protocol id, for the service to register with `frameHandler`. */
  handlers(): Record<TopicProtocol, TopicAnswer> {
    return {
      [STATUS_PROTOCOL]: (frame, peer) => this.answerStatus(frame, peer),
      [CONTENTS_PROTOCOL]: (frame, peer, maxReplyBytes) => this.answerContents(frame, peer, maxReplyBytes),
      [HASHES_PROTOCOL]: (frame, peer) => this.answerHashes(frame, peer)
    }
  }
}

/** Items a contents reply to `req` may carry: what it asks for, within what we serve in one reply. */
function contentsAmount(req: ContentsRequest, options: AnswerOptions): number {
  return Math.min(req.amount, options.maxItems ?? MAX_ITEMS_PER_REQUEST)
}

/** Hashes a hashes reply to `req` may carry. */
function hashesCount(req: HashesRequest, options: AnswerOptions): number {
  return Math.min(req.to - req.from + 1, options.maxHashes ?? MAX_HASHES_PER_REQUEST)
}

function isWireState(state: TopicState): boolean {
  const uint = (n: number): boolean => Number.isSafeInteger(n) && n >= 0
  return (
    uint(state.lowest) &&
    uint(state.head) &&
    uint(state.checkpoint.number) &&
    state.lowest <= state.head &&
    state.checkpoint.number <= state.head &&
    state.headHash.length === 32 &&
    state.checkpoint.root.length === 32 &&
    (state.record === undefined || state.record.length <= MAX_CHECKPOINT_RECORD_BYTES)
  )
}
