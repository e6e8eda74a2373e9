import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  DEFAULT_OUTBOUND_CONCURRENCY_PER_PEER,
  DEFAULT_OUTBOUND_REQUEST_BURST,
  DEFAULT_OUTBOUND_REQUESTS_PER_SECOND,
  DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MAX_CHECKPOINT_RECORD_BYTES,
  MAX_FRAME_BYTES,
  MAX_HASHES_PER_REQUEST,
  MAX_ITEMS_PER_REQUEST,
  MAX_PIPELINED_CONTENTS_REQUESTS,
  PREPARED_SESSION_UNUSED_MS
} from '../constants.js'
import {
  AbortError,
  InvalidInputError,
  PeerBusyError,
  PeerFaultError,
  PeerRequestError,
  ProtocolError,
  RequestRejectedError
} from '../errors.js'
import type { QueueIO } from '../fsm/types.js'
import { Status } from '../net/codec.js'
import { FrameSessions, ReplyFrameError } from '../net/frame-session.js'
import { failureOutcome, requestLabel, statusOutcome } from '../net/request-outcome.js'
import { requestTokens, TokenBuckets } from '../net/rate-limiter.js'
import { type OpenStream, requestFrame } from '../net/rpc.js'
import {
  CONTENTS_PROTOCOL,
  decodeContentsResponse,
  decodeHashesResponse,
  decodeStatusResponse,
  encodeContentsRequest,
  encodeHashesRequest,
  encodeStatusRequest,
  HASHES_PROTOCOL,
  type Item,
  STATUS_PROTOCOL,
  type TopicState
} from '../net/topic-protocols.js'
import { keccak256 } from '../trie/keccak.js'
import { verifyRangeProof } from '../proof/range-proof.js'
import { sleep } from '../util/abort.js'
import { equalBytes, uint64BE } from '../util/bytes.js'
import { toHex } from '../util/hex.js'
import { type Clock, systemClock } from '../util/clock.js'
import { type Log, silentLog } from '../util/log.js'
import type { CountGroup } from '../util/metrics.js'

/**
 * Largest status reply: a list of the code, three integers of at most 7 bytes and two 32-byte hashes is under
 * 100 bytes, plus a signed checkpoint record; anything much larger is not a status reply.
 */
const MAX_STATUS_REPLY_BYTES = 256 + MAX_CHECKPOINT_RECORD_BYTES

/** Largest hashes reply for `count` hashes: 33 bytes each (RLP header + hash) plus the code and list headers. */
const maxHashesReplyBytes = (count: number): number => count * 33 + 32

/**
 * lpStream errors (the `cause` of `requestFrame`'s ProtocolError) that only the sender can have caused: a
 * length prefix past the limit, or more bytes than any legal reply. Everything else that breaks a read (reset,
 * early close, connection loss) may be the network's doing and blames nobody.
 */
const OVERSIZED_FRAME_ERRORS = new Set(['InvalidDataLengthError', 'StreamBufferError'])
const MALFORMED_FRAME_ERRORS = new Set(['InvalidMessageLengthError', 'InvalidDataLengthLengthError'])

export interface FetcherInit {
  /** Opens a stream to a peer for a protocol (for example the connection manager's `openStream`). */
  openStream: OpenStream
  /** Maps a peer id string to the peer to dial; `undefined` when it cannot be reached. @default peerIdFromString */
  peerId?: (peer: string) => PeerId | undefined
  /** Paces the per-peer token buckets. @default systemClock */
  clock?: Clock
  /**
   * Longest wait for a reply's first byte once the request is sent, and for each next one.
   * @default DEFAULT_REQUEST_TIMEOUT_MS (10 s)
   */
  requestTimeoutMs?: number
  /**
   * The slowest average rate a reply may come at once `requestTimeoutMs` has passed: a 2 MiB contents reply on a
   * thin link shared with other replies takes far longer than any fixed deadline, and is still honest while it
   * comes. @default DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND (32 KiB/s)
   */
  minReplyBytesPerSecond?: number
  /**
   * Request tokens per second spent at each peer, counted as servers count them (`requestTokens`: one per
   * `REQUEST_COST_UNIT` items or hashes asked for). @default DEFAULT_OUTBOUND_REQUESTS_PER_SECOND (400)
   */
  outboundRatePerSecond?: number
  /** Request tokens spent at a peer at once after a quiet spell. @default DEFAULT_OUTBOUND_REQUEST_BURST (200) */
  outboundBurst?: number
  /** Requests in flight to one peer; more wait in order. @default DEFAULT_OUTBOUND_CONCURRENCY_PER_PEER (5) */
  maxConcurrentPerPeer?: number
  /** Where failed requests are logged (the service hands it `dsfg:fetcher`). @default silentLog */
  log?: Log
  /** Counts each request by protocol and outcome (`requestLabel`); none by default. */
  requestsSent?: CountGroup
}

export interface FetchOptions {
  /** Aborts the request, also while it waits for its turn at the peer. */
  signal?: AbortSignal
}

export interface ContentsOptions extends FetchOptions {
  /** keccak256 of items `from .. from + amount - 1`, exactly `amount` of them: every item served must match. */
  expectedHashes?: readonly Uint8Array[]
  /**
   * A trusted checkpoint root whose trie holds items `from .. from + amount - 1`: the peer must prove the items
   * it serves against it (a range proof from `from` to its last item), or the reply is its fault.
   */
  root?: Uint8Array
  /**
   * Streams `peer`'s contents requests may spread over (`FrameSessions.request`): more than one for a link that
   * carries more than a stream's window in a round trip. @default 1
   */
  lanes?: number
}

/**
 * The FSM queue's `io.fetch`, and optionally a trusted checkpoint whose root the items are proven against (up to
 * its `number`): the request then asks for a range proof, and the reply carries only proven items.
 */
export type ProvenQueueFetch = (
  peer: string,
  from: number,
  amount: number,
  options: { signal: AbortSignal; proveAgainst?: { number: number; root: Uint8Array }; lanes?: number }
) => ReturnType<QueueIO['fetch']>

export interface QueueFetchOptions {
  /** Hashes of items `from .. from + amount - 1` when known (exactly `amount`), to check every item against. */
  expectedHashes?: (from: number, amount: number) => readonly Uint8Array[] | undefined
  /**
   * Told of every reply that proves its peer faulty. The queue blames a peer only for replies it validates
   * itself; a fault found here reaches it as a failed request. A throwing hook is ignored.
   */
  onPeerFault?: (error: PeerFaultError) => void
}

/**
 * The client side of the topic protocols: status, contents and hashes requests to one peer at a time, paced by
 * a token bucket and capped in concurrency per peer so that a slow or rate-limiting peer delays only the
 * requests addressed to it. Replies are validated strictly; every failure is typed and says who is to blame:
 *
 * - `PeerFaultError`: the reply proves this peer faulty (malformed, oversized, wrong content);
 * - `PeerBusyError`: the peer answered RATE_LIMITED; `RequestRejectedError`: it answered INVALID_REQUEST;
 * - `PeerRequestError`: timeout, reset, dial failure, unknown peer: no proof against anyone;
 * - `AbortError`: the caller's signal aborted; `InvalidInputError`: the caller's arguments were wrong.
 *
 * An UNAVAILABLE answer is an empty result (`null` for status).
 */
export class Fetcher {
  private readonly openStream: OpenStream
  private readonly peerId: (peer: string) => PeerId | undefined
  private readonly clock: Clock
  private readonly timeoutMs: number
  private readonly minBytesPerSecond: number
  private readonly buckets: TokenBuckets
  private readonly slots: PeerSlots
  private readonly log: Log
  private readonly requestsSent: CountGroup | undefined
  /** One long-lived contents stream per peer, its requests pipelined (`MAX_PIPELINED_CONTENTS_REQUESTS`). */
  private contentsSessions: FrameSessions

  constructor(init: FetcherInit) {
    this.openStream = init.openStream
    this.peerId = init.peerId ?? defaultPeerId
    this.clock = init.clock ?? systemClock
    this.timeoutMs = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.minBytesPerSecond = init.minReplyBytesPerSecond ?? DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND
    if (!(this.minBytesPerSecond > 0)) throw new InvalidInputError('minReplyBytesPerSecond must be positive')
    this.buckets = new TokenBuckets({
      ratePerSecond: init.outboundRatePerSecond ?? DEFAULT_OUTBOUND_REQUESTS_PER_SECOND,
      burst: init.outboundBurst ?? DEFAULT_OUTBOUND_REQUEST_BURST,
      clock: this.clock
    })
    const max = init.maxConcurrentPerPeer ?? DEFAULT_OUTBOUND_CONCURRENCY_PER_PEER
    if (!Number.isSafeInteger(max) || max < 1) throw new InvalidInputError('maxConcurrentPerPeer must be a positive integer')
    this.slots = new PeerSlots(max)
    this.log = init.log ?? silentLog
    this.requestsSent = init.requestsSent
    this.contentsSessions = this.openSessions()
  }

  /** Ends the long-lived contents streams (a stopping service: their requests fail); later requests open new ones. */
  closeSessions(): void {
    this.contentsSessions.close()
    this.contentsSessions = this.openSessions()
  }

  private openSessions(): FrameSessions {
    return new FrameSessions(this.openStream, {
      protocol: CONTENTS_PROTOCOL,
      maxResponseBytes: MAX_FRAME_BYTES,
      maxUnanswered: MAX_PIPELINED_CONTENTS_REQUESTS,
      timeoutMs: this.timeoutMs,
      minBytesPerSecond: this.minBytesPerSecond
    })
  }

  /**
   * Opens `peer`'s contents stream now, ahead of the first contents request (`FrameSessions.prepare`), when one
   * will likely follow soon (a joiner's status request): its protocol negotiation overlaps the status round
   * trip. Closed unused after `PREPARED_SESSION_UNUSED_MS`.
   */
  prepareContents(peer: string): void {
    let id: PeerId | undefined
    try {
      id = this.peerId(peer)
    } catch {
      return // not a peer id: the request it goes with fails on it
    }
    if (id !== undefined) this.contentsSessions.prepare(id, PREPARED_SESSION_UNUSED_MS)
  }

  /** `peer`'s state of `topic`, or `null` when it holds nothing of the topic. */
  async status(peer: string, topic: string, options: FetchOptions = {}): Promise<TopicState | null> {
    const frame = encodeRequest(() => encodeStatusRequest(topic))
    return this.tracked(peer, STATUS_PROTOCOL, options.signal, async () => {
      const reply = await this.request(peer, STATUS_PROTOCOL, frame, 1, MAX_STATUS_REPLY_BYTES, options.signal)
      const { code, state } = decodeReply(peer, () => decodeStatusResponse(reply))
      checkStatus(peer, STATUS_PROTOCOL, code)
      return { code, value: state }
    })
  }

  /**
   * Up to `amount` items from `from`, ascending and inside the range (a short or empty reply is legal here;
   * whether it is enough is the caller's call).
   */
  async contents(peer: string, topic: string, from: number, amount: number, options: ContentsOptions = {}): Promise<Item[]> {
    checkUint(from, 'from')
    if (!Number.isSafeInteger(amount) || amount < 1 || amount > MAX_ITEMS_PER_REQUEST) {
      throw new InvalidInputError(`amount must be 1 to ${MAX_ITEMS_PER_REQUEST}`)
    }
    const expected = options.expectedHashes
    if (expected !== undefined && expected.length !== amount) {
      throw new InvalidInputError(`expectedHashes holds ${expected.length} hashes for ${amount} items`)
    }
    const root = options.root
    if (root !== undefined && !(root instanceof Uint8Array && root.length === 32)) throw new InvalidInputError('root must be 32 bytes')
    const frame = encodeRequest(() => encodeContentsRequest(topic, from, amount, root))
    return this.tracked(peer, CONTENTS_PROTOCOL, options.signal, async () => {
      const reply = await this.request(peer, CONTENTS_PROTOCOL, frame, requestTokens(amount), MAX_FRAME_BYTES, options.signal, options.lanes)
      const { code, items, proof } = decodeReply(peer, () => decodeContentsResponse(reply, from, amount))
      checkStatus(peer, CONTENTS_PROTOCOL, code)
      if (root !== undefined && items.length > 0) checkRangeProof(peer, topic, root, from, items, proof)
      if (expected !== undefined) {
        for (const item of items) {
          if (!equalBytes(keccak256(item.data), expected[item.n - from]!)) {
            throw new PeerFaultError(peer, 'hash-mismatch', `item ${item.n} of ${topic} does not match its expected hash`)
          }
        }
      }
      return { code, value: items }
    })
  }

  /** keccak256 of items `from .. to` (inclusive) that `peer` holds: a prefix of the range, possibly empty. */
  async hashes(peer: string, topic: string, from: number, to: number, options: FetchOptions = {}): Promise<Uint8Array[]> {
    checkUint(from, 'from')
    checkUint(to, 'to')
    if (to < from || to - from + 1 > MAX_HASHES_PER_REQUEST) {
      throw new InvalidInputError(`hashes range must hold 1 to ${MAX_HASHES_PER_REQUEST} numbers`)
    }
    const frame = encodeRequest(() => encodeHashesRequest(topic, from, to))
    const count = to - from + 1
    return this.tracked(peer, HASHES_PROTOCOL, options.signal, async () => {
      const reply = await this.request(peer, HASHES_PROTOCOL, frame, requestTokens(count), maxHashesReplyBytes(count), options.signal)
      const { code, hashes } = decodeReply(peer, () => decodeHashesResponse(reply, from, to))
      checkStatus(peer, HASHES_PROTOCOL, code)
      return { code, value: hashes }
    })
  }

  /**
   * `contents` for `topic` in the shape of the FSM queue's `io.fetch`. Asks for at most `MAX_ITEMS_PER_REQUEST`
   * items (a short reply is legal for the queue, which asks for the rest).
   */
  queueFetch(topic: string, options: QueueFetchOptions = {}): ProvenQueueFetch {
    return async (peer, from, amount, { signal, proveAgainst: proven, lanes }) => {
      let n = Math.min(amount, MAX_ITEMS_PER_REQUEST)
      // A proof covers the items its checkpoint commits to: ask for the rest of the batch in a later request.
      if (proven !== undefined) n = Math.min(n, proven.number - from + 1)
      try {
        const items = await this.contents(peer, topic, from, n, {
          signal,
          lanes,
          root: proven?.root,
          expectedHashes: proven === undefined ? options.expectedHashes?.(from, n) : undefined
        })
        return items
      } catch (err) {
        if (err instanceof PeerFaultError) {
          try {
            options.onPeerFault?.(err)
          } catch (hookError) {
            // The hook's errors are its own.
            this.log.error('the onPeerFault hook threw: %e', hookError)
          }
        }
        throw err
      }
    }
  }

  /**
   * Runs one request and counts how it ended (`requestsSent`). A failure is logged: a caller's abort at trace
   * level, anything a peer or the network did at debug level (the caller decides what it means).
   */
  private async tracked<T>(
    peer: string,
    protocol: string,
    signal: AbortSignal | undefined,
    run: () => Promise<{ code: Status; value: T }>
  ): Promise<T> {
    try {
      const { code, value } = await run()
      this.requestsSent?.increment({ [requestLabel(protocol, statusOutcome(code))]: true })
      return value
    } catch (err) {
      const outcome = failureOutcome(err, signal)
      this.requestsSent?.increment({ [requestLabel(protocol, outcome)]: true })
      if (outcome === 'aborted') this.log.trace('%s request to %s aborted', protocol, peer)
      else this.log('%s request to %s: %s: %e', protocol, peer, outcome, err)
      throw err
    }
  }

  /** Requests to `peer` in flight and waiting for their turn. */
  load(peer: string): { active: number; waiting: number } {
    return this.slots.load(peer)
  }

  /** Sends `frame` once `peer`'s bucket has `tokens` (what the server charges for it, `requestTokens`). */
  private async request(
    peer: string,
    protocol: string,
    frame: Uint8Array,
    tokens: number,
    maxResponseBytes: number,
    signal: AbortSignal | undefined,
    lanes?: number
  ): Promise<Uint8Array> {
    const id = this.peerId(peer)
    if (id === undefined) throw new PeerRequestError(peer, 'not-connected', 'peer is not connected')
    await this.slots.acquire(peer, signal)
    try {
      await this.takeTokens(peer, tokens, signal)
      const options = { signal, timeoutMs: this.timeoutMs, minBytesPerSecond: this.minBytesPerSecond, maxResponseBytes, log: this.log }
      // Contents requests share the peer's long-lived stream (replies of at most MAX_FRAME_BYTES); the small
      // status and hashes requests take a stream each.
      const reply =
        protocol === CONTENTS_PROTOCOL
          ? await this.contentsSessions.request(id, frame, { signal, lanes })
          : await requestFrame(this.openStream, id, protocol, frame, options)
      // Under Node the reply is a Buffer view; decoded items are views into it, and callers get Uint8Arrays.
      return new Uint8Array(reply.buffer, reply.byteOffset, reply.byteLength)
    } catch (err) {
      throw classify(peer, protocol, err, signal)
    } finally {
      this.slots.release(peer)
    }
  }

  /** Waits, holding the peer's slot, until its bucket has `tokens`: later requests to it queue behind this one. */
  private async takeTokens(peer: string, tokens: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      const wait = this.buckets.waitTime(peer, tokens)
      if (wait === 0 && this.buckets.take(peer, tokens)) return
      await sleep(Math.max(wait, 1), { clock: this.clock, signal })
    }
  }
}

/** A concurrency cap per peer with a FIFO of waiters; a peer with nothing in flight or waiting is forgotten. */
class PeerSlots {
  private readonly max: number
  private readonly active = new Map<string, number>()
  private readonly waiting = new Map<string, Array<() => void>>()

  constructor(max: number) {
    this.max = max
  }

  load(peer: string): { active: number; waiting: number } {
    return { active: this.active.get(peer) ?? 0, waiting: this.waiting.get(peer)?.length ?? 0 }
  }

  acquire(peer: string, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted === true) {
      return Promise.reject(new AbortError('aborted before it was sent', { cause: signal.reason }))
    }
    const active = this.active.get(peer) ?? 0
    if (active < this.max) {
      this.active.set(peer, active + 1)
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(peer) ?? []
      this.waiting.set(peer, queue)
      const onAbort = (): void => {
        const i = queue.indexOf(grant)
        if (i >= 0) queue.splice(i, 1)
        if (queue.length === 0 && this.waiting.get(peer) === queue) this.waiting.delete(peer)
        reject(new AbortError('aborted while waiting for a free slot', { cause: signal?.reason }))
      }
      // The slot passes straight from the releasing request to this one: `active` does not change.
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      queue.push(grant)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  release(peer: string): void {
    const queue = this.waiting.get(peer)
    const next = queue?.shift()
    if (queue?.length === 0) this.waiting.delete(peer)
    if (next !== undefined) {
      next()
      return
    }
    const active = (this.active.get(peer) ?? 1) - 1
    if (active > 0) this.active.set(peer, active)
    else this.active.delete(peer)
  }
}

function defaultPeerId(peer: string): PeerId {
  try {
    return peerIdFromString(peer)
  } catch (err) {
    throw new InvalidInputError(`not a peer id: ${peer}`, { cause: err })
  }
}

function checkUint(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidInputError(`${what} must be a non-negative safe integer`)
}

/** Encodes a request; the codecs reject only bad arguments here (a topic name out of bounds). */
function encodeRequest(encode: () => Uint8Array): Uint8Array {
  try {
    return encode()
  } catch (err) {
    throw new InvalidInputError(err instanceof Error ? err.message : 'bad request', { cause: err })
  }
}

/** Decodes a reply; whatever the codec rejects is the sender's fault. */
function decodeReply<T>(peer: string, decode: () => T): T {
  try {
    return decode()
  } catch (err) {
    if (err instanceof ProtocolError) throw new PeerFaultError(peer, 'malformed', err.message, { cause: err })
    throw err
  }
}

/** Turns a non-OK status into its typed error; OK and UNAVAILABLE (an empty result) pass. */
function checkStatus(peer: string, protocol: string, code: Status): void {
  switch (code) {
    case Status.OK:
    case Status.UNAVAILABLE:
      return
    case Status.RATE_LIMITED:
      throw new PeerBusyError(`${peer}: rate limiting ${protocol} requests`)
    case Status.INVALID_REQUEST:
      throw new RequestRejectedError(`${peer}: rejected a ${protocol} request as invalid`)
    default: {
      const exhaustive: never = code
      throw new PeerFaultError(peer, 'malformed', `unknown status ${String(exhaustive)}`)
    }
  }
}

/** Types a failed request by who is to blame: the caller (abort), the peer (a bad frame) or nobody. */
function classify(peer: string, protocol: string, err: unknown, signal: AbortSignal | undefined): Error {
  if (err instanceof AbortError) return err
  if (signal?.aborted === true) return new AbortError(`${protocol} request to ${peer} aborted`, { cause: err })
  if (err instanceof ReplyFrameError) return new PeerFaultError(peer, err.fault, `${protocol} bad reply frame`, { cause: err })
  if (err instanceof ProtocolError) {
    const cause = errorName(err.cause)
    if (OVERSIZED_FRAME_ERRORS.has(cause)) {
      return new PeerFaultError(peer, 'oversized', `${protocol} reply too large`, { cause: err })
    }
    if (MALFORMED_FRAME_ERRORS.has(cause)) {
      return new PeerFaultError(peer, 'malformed', `${protocol} bad reply frame`, { cause: err })
    }
    return new PeerRequestError(peer, 'transport', `${protocol} stream failed before a reply`, { cause: err })
  }
  // The caller's signal did not abort, so an abort here is `requestFrame`'s own deadline.
  const name = errorName(err)
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new PeerRequestError(peer, 'timeout', `no ${protocol} reply in time`, { cause: err })
  }
  return new PeerRequestError(peer, 'transport', `${protocol} request failed`, { cause: err })
}

function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string'
    ? (err as { name: string }).name
    : ''
}

/**
 * Checks that `items` (ascending from `from`, as decoded) are exactly the leaves of the trie at `root` from key
 * `from` to the last item's key, given the reply's `proof`; anything else proves the peer faulty.
 */
function checkRangeProof(peer: string, topic: string, root: Uint8Array, from: number, items: readonly Item[], proof: Uint8Array[]): void {
  const last = items[items.length - 1]!.n
  try {
    verifyRangeProof(
      root,
      uint64BE(from),
      uint64BE(last),
      items.map((item) => uint64BE(item.n)),
      items.map((item) => item.data),
      proof
    )
  } catch (err) {
    throw new PeerFaultError(peer, 'bad-proof', `items ${from}..${last} of ${topic} are not proven against ${toHex(root)}`, { cause: err })
  }
}
