import type { PeerId, Stream } from '@libp2p/interface'
import { setMaxListeners } from 'main-event'
import { Uint8ArrayList } from 'uint8arraylist'
import { DEFAULT_REQUEST_TIMEOUT_MS, MAX_LANES_PER_PEER, PIPELINED_REPLY_GAP_MS } from '../constants.js'
import { AbortError, ProtocolError, StreamEndedError } from '../errors.js'
import { raceSignal } from '../util/abort.js'
import { concatBytes } from '../util/bytes.js'
import { asUint8Array, lengthPrefix, type OpenStream, requestFrame } from './rpc.js'
import { TransferDeadline } from './transfer-deadline.js'

/**
 * Many requests on one long-lived stream, replies in request order (`frameHandler` with `maxPipelinedRequests`
 * on the server). Against a stream per request this saves, on every request, the stream's opening and
 * multistream-select's round trip (libp2p v3 waits for the protocol's confirmation before the request frame
 * can go out), the close handshake and the per-stream work of both ends; and requests queue back to back at
 * the server instead of one round trip apart.
 */

export interface FrameSessionInit {
  protocol: string
  /** Largest reply frame accepted; a longer length prefix ends the session with `ProtocolError`. */
  maxResponseBytes: number
  /**
   * Requests written and not yet answered, at most; later ones wait their turn unwritten. Must not pass the
   * server's `maxPipelinedRequests`, which sizes its read buffer for that many frames.
   */
  maxUnanswered: number
  /** @default DEFAULT_REQUEST_TIMEOUT_MS */
  timeoutMs?: number
  /**
   * For replies that may take long on a thin link. Unset, each request has `timeoutMs` from when it is made.
   * Set, a request has no deadline of its own (its caller's signal only) while it waits behind the replies
   * before it: the reply being read is held to a `TransferDeadline` (`timeoutMs` without a byte, and this rate
   * after that), its first byte due `timeoutMs` after its request's writing or, when the replies before it took
   * longer, `replyGapMs` after the last of them. Five 2 MiB replies queued on a 2 Mbit/s link take 40 s; a peer
   * that stops sending is still cut `timeoutMs` after its last byte.
   */
  minBytesPerSecond?: number
  /**
   * With `minBytesPerSecond`: how soon after the reply before it a reply must start once its request has waited
   * past `timeoutMs`. @default PIPELINED_REPLY_GAP_MS
   */
  replyGapMs?: number
}

/** A reply frame that broke the rules: what the peer sent is to blame, `oversized` or otherwise `malformed`. */
export class ReplyFrameError extends ProtocolError {
  readonly fault: 'oversized' | 'malformed'

  constructor(fault: 'oversized' | 'malformed', message: string) {
    super(message)
    this.fault = fault
  }
}

interface Pending {
  /** The session it waits on; a request handed over to a new session moves with its abort handling. */
  owner: FrameSession
  readonly frame: Uint8Array
  /** The caller's signal and the deadline together (neither, with a transfer deadline and no caller's signal). */
  readonly signal: AbortSignal | undefined
  resolve(reply: Uint8Array): void
  reject(err: Error): void
  /** The caller gave up on it after it was written: its reply is still read, then dropped. */
  abandoned: boolean
  /** When it was written (`performance.now()`), once it was. */
  writtenAt?: number
  done: boolean
}

/** The longest varint length prefix a reply may have (a frame of at most 2^53 bytes). */
const MAX_PREFIX_BYTES = 8

/**
 * What a session hands back when the server ended the stream cleanly after answering `answered` requests: the
 * requests it had not answered, still waiting (a server that answers one request a stream, or one that closed
 * an idle stream just as a request went out).
 */
export type SessionEnded = (leftovers: Pending[], answered: number) => void

/**
 * One long-lived request stream to one peer. Replies are parsed as their bytes arrive, so the read buffer never
 * holds more than one unfinished reply. A reply that breaks the frame rules fails its request with
 * `ProtocolError` (the peer is to blame) and ends the session; a stream that resets fails every request still
 * waiting with `StreamEndedError`, which blames nobody. A stream the server ends cleanly hands its unanswered
 * requests to `onEnded`, or fails them too.
 */
export class FrameSession {
  private readonly stream: Stream
  private readonly init: FrameSessionInit
  private readonly maxUnanswered: number
  private readonly onEnded: SessionEnded | undefined
  private answered = 0
  /** Written, in order, waiting for their replies. */
  private readonly unanswered: Pending[] = []
  /** Not yet written: more than `maxUnanswered` requests were made. */
  private readonly queued: Pending[] = []
  private readonly buffer = new Uint8ArrayList()
  /** The length of the reply being read, once its prefix is complete; -1 while reading a prefix. */
  private expected = -1
  private prefixBytes = 0
  private ended = false
  /** The deadline of the reply being read, with `minBytesPerSecond` set and a request unanswered. */
  private replyDeadline: TransferDeadline | undefined

  private readonly onClosed: (() => void) | undefined

  /** `onClosed`: called once when the session can take no more requests, so its owner forgets it. */
  constructor(stream: Stream, init: FrameSessionInit, options: { onEnded?: SessionEnded; onClosed?: () => void } = {}) {
    this.stream = stream
    this.init = init
    this.maxUnanswered = init.maxUnanswered
    this.onEnded = options.onEnded
    this.onClosed = options.onClosed
    stream.addEventListener('message', (event) => this.onData(event.data))
    stream.addEventListener('close', (event) => this.end(new StreamEndedError(`${init.protocol}: stream closed`, { cause: event.error })))
    stream.addEventListener('remoteCloseWrite', () => this.onRemoteEnd())
  }

  /** Whether the session can take no more requests (the stream ended, or a reply broke the rules). */
  get closed(): boolean {
    return this.ended
  }

  /** Whether a request was ever made on it. */
  get used(): boolean {
    return this.answered > 0 || this.unanswered.length > 0 || this.queued.length > 0
  }

  /**
   * Sends `frame` and resolves with its reply frame; rejects with `AbortError` on abort or at the deadline
   * (with `minBytesPerSecond`: the reply's transfer deadline rejects with its `TimeoutError` and ends the
   * session, whose other requests fail with `StreamEndedError`).
   */
  request(frame: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    if (this.ended) return Promise.reject(new StreamEndedError(`${this.init.protocol}: session closed`))
    const signal = this.requestSignal(options.signal)
    if (signal?.aborted === true) return Promise.reject(new AbortError(`${this.init.protocol}: request aborted`, { cause: signal.reason }))
    return new Promise<Uint8Array>((resolve, reject) => {
      const onAbort = (): void => {
        if (pending.done) return
        settle()
        reject(new AbortError(`${this.init.protocol}: request aborted`, { cause: signal?.reason }))
        pending.owner.forget(pending)
      }
      const settle = (): void => {
        pending.done = true
        signal?.removeEventListener('abort', onAbort)
      }
      const pending: Pending = {
        owner: this,
        frame,
        signal,
        resolve: (reply) => {
          settle()
          resolve(reply)
        },
        reject: (err) => {
          settle()
          reject(err)
        },
        abandoned: false,
        done: false
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.adopt([pending])
    })
  }

  /** The caller's signal, with the request's own deadline unless replies have transfer deadlines instead. */
  private requestSignal(caller: AbortSignal | undefined): AbortSignal | undefined {
    if (this.init.minBytesPerSecond !== undefined) return caller
    const timeout = AbortSignal.timeout(this.init.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)
    const signal = caller === undefined ? timeout : AbortSignal.any([caller, timeout])
    setMaxListeners(Infinity, signal)
    return signal
  }

  /** Takes over requests still waiting (handed back by an ended session), behind any of its own. */
  adopt(pendings: Pending[]): void {
    for (const pending of pendings) {
      if (pending.done) continue
      if (this.ended) {
        pending.reject(new StreamEndedError(`${this.init.protocol}: session closed`))
        continue
      }
      pending.owner = this
      this.queued.push(pending)
    }
    this.writeQueued()
  }

  /**
   * A request whose caller gave up: unwritten, it is dropped; written, its reply is read and dropped. Once every
   * written request has been given up (the peer stopped answering, as far as the callers can tell), the stream
   * is reset instead, so later requests go out on a new one rather than queue behind replies that may never
   * come: what a timed-out request on a stream of its own did.
   */
  private forget(pending: Pending): void {
    const index = this.queued.indexOf(pending)
    if (index >= 0) {
      this.queued.splice(index, 1)
      return
    }
    pending.abandoned = true
    if (this.ended || !this.unanswered.every((p) => p.abandoned)) return
    const err = new StreamEndedError(`${this.init.protocol}: every request on the stream was given up`)
    this.end(err)
    this.stream.abort(err)
  }

  /**
   * The server ended its side cleanly. Ours closes too, or the half-open stream would hold one of the server's
   * inbound stream slots; requests it did not answer go to `onEnded` if it answered any (so a server closing
   * every stream at once cannot make us open streams in a loop).
   */
  private onRemoteEnd(): void {
    if (this.ended) return
    const leftovers = [...this.unanswered, ...this.queued].filter((p) => !p.done)
    this.unanswered.length = 0
    this.queued.length = 0
    this.close(new StreamEndedError(`${this.init.protocol}: the peer ended the stream`))
    if (leftovers.length === 0) return
    if (this.onEnded !== undefined && this.answered > 0) this.onEnded(leftovers, this.answered)
    else for (const p of leftovers) p.reject(new StreamEndedError(`${this.init.protocol}: the peer ended the stream`))
  }

  /** Ends the session: requests still waiting fail with `StreamEndedError`, and the stream closes. */
  close(reason = new StreamEndedError(`${this.init.protocol}: session closed`)): void {
    if (this.ended) return
    this.end(reason)
    this.stream.close().catch((err: unknown) => this.stream.abort(err instanceof Error ? err : new Error(String(err))))
  }

  private writeQueued(): void {
    while (!this.ended && this.queued.length > 0 && this.unanswered.length < this.maxUnanswered) {
      const pending = this.queued.shift()!
      pending.writtenAt = performance.now()
      this.unanswered.push(pending)
      this.watchReply()
      try {
        // A false return asks to wait for 'drain'; the stream buffers the frame meanwhile, and request frames
        // are small and few.
        this.stream.send(concatBytes(lengthPrefix(pending.frame.byteLength), pending.frame))
      } catch (err) {
        this.fail(new StreamEndedError(`${this.init.protocol}: write failed`, { cause: err }))
        return
      }
    }
  }

  /** `data` is a chunk or a list of chunks (the stream's own `Uint8ArrayList`, of another copy of that package). */
  private onData(data: Uint8Array | Iterable<Uint8Array>): void {
    if (this.ended) return
    const before = this.buffer.byteLength
    if (data instanceof Uint8Array) this.buffer.append(data)
    else for (const chunk of data) this.buffer.append(chunk)
    this.replyDeadline?.moved(this.buffer.byteLength - before)
    for (;;) {
      if (this.expected < 0 && !this.readPrefix()) return
      if (this.ended || this.buffer.byteLength < this.prefixBytes + this.expected) return
      const end = this.prefixBytes + this.expected
      const reply = asUint8Array(this.buffer.subarray(this.prefixBytes, end))
      this.buffer.consume(end)
      this.expected = -1
      const pending = this.unanswered.shift()
      if (pending === undefined) {
        this.fail(new ReplyFrameError('malformed', `${this.init.protocol}: a reply frame nobody asked for`))
        return
      }
      this.answered++
      this.replyDeadline?.dispose()
      this.replyDeadline = undefined
      const next = this.watchReply()
      // What arrived of the next reply with the end of this one is its progress.
      if (this.buffer.byteLength > 0) next?.moved(this.buffer.byteLength)
      if (!pending.abandoned) pending.resolve(reply)
      this.writeQueued()
    }
  }

  /** Reads the next reply's length prefix; false while it is incomplete. */
  private readPrefix(): boolean {
    let length = 0
    let scale = 1
    for (let i = 0; i < this.buffer.byteLength; i++) {
      if (i >= MAX_PREFIX_BYTES) {
        this.fail(new ReplyFrameError('malformed', `${this.init.protocol}: bad reply frame (length prefix too long)`))
        return false
      }
      const byte = this.buffer.get(i)
      length += (byte & 0x7f) * scale
      scale *= 0x80
      if (byte < 0x80) {
        if (length > this.init.maxResponseBytes) {
          this.fail(new ReplyFrameError('oversized', `${this.init.protocol}: bad reply frame (${length} bytes, at most ${this.init.maxResponseBytes})`))
          return false
        }
        this.expected = length
        this.prefixBytes = i + 1
        return true
      }
    }
    return false
  }

  /**
   * With `minBytesPerSecond`, starts the deadline of the next reply to read, if there is one and none runs. Its
   * expiry fails that reply's request with the deadline's `TimeoutError` (the peer stopped sending, or crawled)
   * and ends the session. Returns the deadline running, if any.
   */
  private watchReply(): TransferDeadline | undefined {
    const minBytesPerSecond = this.init.minBytesPerSecond
    if (minBytesPerSecond === undefined || this.replyDeadline !== undefined || this.ended || this.unanswered.length === 0) {
      return this.replyDeadline
    }
    const idleMs = this.init.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    // Its first byte is due `idleMs` after its request went out, as on a stream of its own; later only if the
    // replies before it were still coming, and then a short gap after the last of them: a server reads
    // pipelined requests ahead and builds their replies at once, so an honest one sends the next reply as soon
    // as the last is out. Without the gap rule a server answering each request 9.5 s after the last reply
    // made the fifth wait 47.5 s without a fault (an outside tester's attack), and the sync gave up.
    const waited = performance.now() - (this.unanswered[0]!.writtenAt ?? performance.now())
    const firstByteMs = Math.max(this.init.replyGapMs ?? PIPELINED_REPLY_GAP_MS, idleMs - waited)
    const deadline = new TransferDeadline({ idleMs, firstByteMs, minBytesPerSecond })
    this.replyDeadline = deadline
    deadline.signal.addEventListener(
      'abort',
      () => {
        if (this.replyDeadline !== deadline) return
        const reason: unknown = deadline.signal.reason
        this.fail(reason instanceof Error ? reason : new StreamEndedError(`${this.init.protocol}: no reply in time`))
      },
      { once: true }
    )
    return deadline
  }

  /**
   * A reply broke the rules, or its deadline passed: its request takes the blame, the others are retried; the
   * stream is reset.
   */
  private fail(err: Error): void {
    const first = this.unanswered.shift()
    this.end(new StreamEndedError(`${this.init.protocol}: session ended`, { cause: err }))
    if (first !== undefined && !first.done) first.reject(err)
    this.stream.abort(err)
  }

  private end(err: StreamEndedError): void {
    if (this.ended && this.unanswered.length === 0 && this.queued.length === 0) return
    if (!this.ended) this.onClosed?.()
    this.ended = true
    this.replyDeadline?.dispose()
    this.replyDeadline = undefined
    for (const pending of this.unanswered.splice(0)) if (!pending.done) pending.reject(err)
    for (const pending of this.queued.splice(0)) if (!pending.done) pending.reject(err)
    this.buffer.consume(this.buffer.byteLength)
  }
}

/** A peer's lane `lane`: its first lane is keyed by the peer id alone. */
function laneKey(peer: PeerId, lane: number): string {
  return lane === 0 ? peer.toString() : `${peer.toString()}#${lane}`
}

/**
 * A `FrameSession` per peer (or a few, `request`'s `lanes`), opened on the first request and again after one
 * ends. The owner closes them all when done (a state sync, when it finishes).
 */
export class FrameSessions {
  private readonly openStream: OpenStream
  private readonly init: FrameSessionInit
  /** By lane key (`laneKey`): a session opening or open. */
  private readonly sessions = new Map<string, Promise<FrameSession>>()
  /** By lane key: the requests made on it and not yet settled, from before its session opens. */
  private readonly load = new Map<string, number>()
  /** Peers that ended a stream after its first reply with more requests written: they get a stream a request. */
  private readonly oneAtATime = new Set<string>()
  private closed = false

  constructor(openStream: OpenStream, init: FrameSessionInit) {
    this.openStream = openStream
    this.init = init
  }

  /**
   * Sends `frame` to `peer` on one of its sessions and resolves with the reply frame. With `lanes` above 1 the
   * peer may have that many sessions, each a stream of its own, and the request goes on the one with the fewest
   * requests waiting (a new one when each has some): a stream carries at most its receive window a round trip
   * (`MAX_STREAM_WINDOW_BYTES`), so a peer whose link carries more needs several.
   */
  async request(peer: PeerId, frame: Uint8Array, options: { signal?: AbortSignal; lanes?: number } = {}): Promise<Uint8Array> {
    if (this.oneAtATime.has(peer.toString())) return this.alone(peer, frame, options.signal)
    const key = this.leastLoaded(peer, options.lanes ?? 1)
    this.load.set(key, (this.load.get(key) ?? 0) + 1)
    try {
      const session = await this.session(peer, options.signal, key)
      return await session.request(frame, { signal: options.signal })
    } finally {
      const load = (this.load.get(key) ?? 1) - 1
      if (load > 0) this.load.set(key, load)
      else this.load.delete(key)
    }
  }

  /** The key of `peer`'s lane, of the first `lanes`, with the fewest requests; the earliest of equals. */
  private leastLoaded(peer: PeerId, lanes: number): string {
    const count = Math.max(1, Math.min(MAX_LANES_PER_PEER, Math.floor(lanes)))
    let best = laneKey(peer, 0)
    let bestLoad = this.load.get(best) ?? 0
    for (let lane = 1; lane < count && bestLoad > 0; lane++) {
      const key = laneKey(peer, lane)
      const load = this.load.get(key) ?? 0
      if (load < bestLoad) {
        best = key
        bestLoad = load
      }
    }
    return best
  }

  /**
   * Opens `peer`'s session ahead of its first request, so the stream's protocol negotiation overlaps whatever
   * comes before that request (a status round trip) instead of delaying it. A session no request used within
   * `unusedMs` is closed: a server charges a stream that brings no request frame within its frame deadline
   * (`DEFAULT_REQUEST_FRAME_TIMEOUT_MS`), and one closed before its first byte breaks no rule. A failed opening
   * is left to the next request, which opens one again.
   */
  prepare(peer: PeerId, unusedMs: number): void {
    // A closed session leaves the map as it closes (`onClosed`), so an entry is one opening or open.
    if (this.closed || this.oneAtATime.has(peer.toString()) || this.sessions.has(peer.toString())) return
    this.session(peer, undefined).then(
      (session) => {
        const timer = setTimeout(() => {
          if (!session.used) session.close()
        }, unusedMs)
        timer.unref?.()
      },
      () => undefined
    )
  }

  /** Closes every session; later requests fail with `StreamEndedError`. */
  close(): void {
    this.closed = true
    for (const opening of this.sessions.values()) opening.then((s) => s.close(), () => undefined)
    this.sessions.clear()
  }

  /** One request on a stream of its own, as `requestFrame` sends it. */
  private alone(peer: PeerId, frame: Uint8Array, signal: AbortSignal | undefined): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new StreamEndedError(`${this.init.protocol}: sessions closed`))
    return requestFrame(this.openStream, peer, this.init.protocol, frame, {
      signal,
      timeoutMs: this.init.timeoutMs,
      minBytesPerSecond: this.init.minBytesPerSecond,
      maxResponseBytes: this.init.maxResponseBytes
    })
  }

  /**
   * Requests a session's server left unanswered when it ended the stream go out again. A server that answered
   * only the first is one that answers a request a stream (as servers did before sessions): from then on each
   * request has a stream of its own, so they still run side by side. Otherwise (a server that closed an idle
   * stream as a request went out) they go on a new session.
   */
  private handOver(peer: PeerId, key: string, leftovers: Pending[], answered: number): void {
    if (answered === 1) {
      this.oneAtATime.add(peer.toString())
      for (const p of leftovers) {
        this.alone(peer, p.frame, p.signal).then(
          (reply) => {
            if (!p.done) p.resolve(reply)
          },
          (err: unknown) => {
            if (!p.done) p.reject(err instanceof Error ? err : new Error(String(err)))
          }
        )
      }
      return
    }
    this.session(peer, undefined, key).then(
      (session) => session.adopt(leftovers),
      (err: unknown) => {
        const reason = err instanceof StreamEndedError ? err : new StreamEndedError(`${this.init.protocol}: reopening failed`, { cause: err })
        for (const p of leftovers) if (!p.done) p.reject(reason)
      }
    )
  }

  private async session(peer: PeerId, signal: AbortSignal | undefined, key = laneKey(peer, 0)): Promise<FrameSession> {
    if (this.closed) throw new StreamEndedError(`${this.init.protocol}: sessions closed`)
    const existing = this.sessions.get(key)
    if (existing !== undefined) {
      // The caller's signal holds while it waits for an opening another request (or `prepare`) started.
      const session = await (signal === undefined ? existing : raceSignal(existing, signal, `${this.init.protocol}: request aborted`)).catch(
        (err: unknown) => {
          if (err instanceof AbortError) throw err
          return undefined
        }
      )
      if (session !== undefined && !session.closed) return session
      if (this.sessions.get(key) === existing) this.sessions.delete(key)
      if (signal?.aborted === true) throw new AbortError(`${this.init.protocol}: request aborted`, { cause: signal.reason })
      return this.session(peer, signal, key)
    }
    // The stream's opening is shared by every request waiting for it, so it has a deadline of its own rather
    // than the first caller's signal.
    const timeout = AbortSignal.timeout(this.init.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)
    setMaxListeners(Infinity, timeout)
    const opening = this.openStream(peer, this.init.protocol, { signal: timeout }).then((stream) => {
      if (this.closed) {
        stream.abort(new StreamEndedError(`${this.init.protocol}: sessions closed`))
        throw new StreamEndedError(`${this.init.protocol}: sessions closed`)
      }
      const session = new FrameSession(stream, this.init, {
        onEnded: (leftovers, answered) => this.handOver(peer, key, leftovers, answered),
        // Forgotten once closed (a peer gone, an unused prepared session): the map holds no dead stream.
        onClosed: () => {
          if (this.sessions.get(key) === opening) this.sessions.delete(key)
        }
      })
      return session
    })
    this.sessions.set(key, opening)
    opening.catch(() => {
      if (this.sessions.get(key) === opening) this.sessions.delete(key)
    })
    if (signal === undefined) return opening
    // A caller that gives up does not abort the opening the others may share.
    return raceSignal(opening, signal, `${this.init.protocol}: request aborted`)
  }
}
