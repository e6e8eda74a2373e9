import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { setMaxListeners } from 'main-event'
import {
  DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND,
  DEFAULT_REQUEST_FRAME_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  REPLY_PIECE_BYTES,
  REPLY_STALL_MS
} from '../constants.js'
import { ProtocolError, StreamEndedError } from '../errors.js'
import { addressHost } from '../node/host-limit.js'
import { raceSignal } from '../util/abort.js'
import { concatBytes } from '../util/bytes.js'
import type { Log } from '../util/log.js'
import type { ReplyBudget, ReplyCharge } from './reply-budget.js'
import { TransferDeadline } from './transfer-deadline.js'

/**
 * One request per stream: the client writes one varint-length-prefixed frame, the server answers one frame
 * and closes. Both directions are bounded; the client always has a deadline.
 */

/** The errors lpStream raises for frames that break the length rules (too large, bad varint, over the buffer). */
const FRAME_ERRORS: ReadonlySet<string> = new Set([
  'StreamBufferError',
  'InvalidDataLengthError',
  'InvalidDataLengthLengthError',
  'InvalidMessageLengthError'
])

/** A plain `Uint8Array` view of the same bytes: library code hands out no Node `Buffer`s. */
export function asUint8Array(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export type OpenStream = (peer: PeerId, protocol: string, options: { signal: AbortSignal }) => Promise<Stream>

export interface RequestOptions {
  signal?: AbortSignal
  /**
   * The request's deadline; with `minBytesPerSecond`, the longest wait for the reply's first byte and for each
   * next one. @default DEFAULT_REQUEST_TIMEOUT_MS
   */
  timeoutMs?: number
  /**
   * Turns the fixed deadline into one that follows the reply (`TransferDeadline`): it may take as long as its
   * bytes keep coming, at least this fast on average once `timeoutMs` has passed. For replies that may be
   * larger than a thin link carries within `timeoutMs`. None by default: a fixed deadline.
   */
  minBytesPerSecond?: number
  /** Largest response frame accepted. */
  maxResponseBytes: number
  /** Where a failed close after the reply is traced. */
  log?: Log
}

/** Sends one frame and returns the reply frame. A reply over the limit aborts the stream with `ProtocolError`. */
export async function requestFrame(
  openStream: OpenStream,
  peer: PeerId,
  protocol: string,
  frame: Uint8Array,
  options: RequestOptions
): Promise<Uint8Array> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  const deadline =
    options.minBytesPerSecond === undefined ? undefined : new TransferDeadline({ idleMs: timeoutMs, minBytesPerSecond: options.minBytesPerSecond })
  const timeout = deadline?.signal ?? AbortSignal.timeout(timeoutMs)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
  setMaxListeners(Infinity, signal)
  let stream: Stream
  try {
    stream = await openStream(peer, protocol, { signal })
  } catch (err) {
    deadline?.dispose()
    throw err
  }
  const received = (event: { data: { byteLength: number } }): void => deadline?.moved(event.data.byteLength)
  try {
    // The read buffer must hold the largest legal frame plus its length prefix, or lpStream aborts early.
    const lp = lpStream(stream, {
      maxDataLength: options.maxResponseBytes,
      maxBufferSize: options.maxResponseBytes + 16
    })
    // After lpStream's listener: a listener alone would take the bytes lpStream has not yet asked for.
    if (deadline !== undefined) stream.addEventListener('message', received)
    await lp.write(frame, { signal })
    let reply: Uint8Array
    try {
      reply = asUint8Array((await lp.read({ signal })).subarray())
    } catch (err) {
      // Only a frame that breaks the length rules is the peer's fault; a reset or an early end is not.
      if (!signal.aborted && err instanceof Error && FRAME_ERRORS.has(err.name)) {
        throw new ProtocolError(`${protocol}: bad reply frame (${err.message})`, { cause: err })
      }
      throw err
    }
    // The reply is in hand: a close that fails (the server reset first, say) changes nothing.
    await stream.close({ signal }).catch((err: unknown) => options.log?.trace('%s: closing the stream after the reply failed: %e', protocol, err))
    return reply
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  } finally {
    deadline?.dispose()
    stream.removeEventListener('message', received)
  }
}

/**
 * How a peer broke the rules of a request frame: a length prefix past the protocol's cap (or no valid length
 * at all), a frame still unfinished at the deadline, or a stream ended partway through its frame; or of its
 * reply: not read (written out) by the request's deadline.
 */
export type FrameViolation = 'oversized' | 'late' | 'unfinished' | 'unread'

export interface FrameHandlerOptions {
  /** Largest request frame accepted: a longer length prefix aborts the stream before any of the frame is read. */
  maxRequestBytes: number
  /**
   * Request frames of one stream answered at a time (their replies go out in request order); a client may
   * write that many before reading a reply (pipelining), so besides them the read buffer holds up to this many
   * frames. 1: the stream carries one request and the handler closes it after the reply. @default 1
   */
  maxPipelinedRequests?: number
  /**
   * Time the peer has to deliver each whole request frame, from the stream's opening (the first frame) or from
   * the previous reply (the next ones). @default DEFAULT_REQUEST_FRAME_TIMEOUT_MS
   */
  frameTimeoutMs?: number
  /**
   * Deadline of answering the request once its frame arrived, until the reply starts leaving the stream's write
   * buffer, and the longest pause while it leaves: a peer that does not read its reply has its stream aborted
   * (a violation, `unread`), which frees the reply. @default DEFAULT_REQUEST_TIMEOUT_MS
   */
  timeoutMs?: number
  /**
   * The slowest a peer may read its replies, on average, once `timeoutMs` has passed: a peer on a thin link
   * that keeps reading is never cut (a 2 MiB reply may take a minute there), one that trickles below this is
   * (`unread`). @default DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND
   */
  minDrainBytesPerSecond?: number
  /**
   * The server's reply bytes in flight: each reply reserves `reserveBytes` (its largest frame) before it is
   * built, is charged what it came to once built, and is released once written out or its stream fails. A
   * request whose reservation does not fit the peer's share or the server's budget is answered `refusal` (a
   * few bytes, RATE_LIMITED) without being built. A reply that can be cut short gives `minReserveBytes`, the
   * least it may be cut to: it is reserved what fits, at least that, and `answer` is told the room it got.
   */
  replyBudget?: { budget: ReplyBudget; reserveBytes: number; minReserveBytes?: number; refusal: Uint8Array }
  onError?: (err: unknown, peer: PeerId) => void
  /** Called, besides `onError`, when the stream was aborted because the peer broke the frame rules. */
  onViolation?: (violation: FrameViolation, peer: PeerId) => void
}

/** lpStream's errors for a length prefix that is not one, or announces a frame past `maxDataLength`. */
const OVERSIZED_REQUEST_ERRORS: ReadonlySet<string> = new Set([
  'InvalidDataLengthError',
  'InvalidDataLengthLengthError',
  'InvalidMessageLengthError',
  'StreamBufferError'
])

/**
 * The frame rule a failed read of a request frame broke, if any: the length prefix, the deadline (even with no
 * byte sent: the stream held a slot for nothing), or an end partway through the frame. A stream closed or
 * reset before its first byte is a client that gave up, which breaks nothing.
 */
function frameViolation(err: unknown, late: boolean, received: number): FrameViolation | undefined {
  const name = (err as { name?: unknown } | null)?.name
  if (typeof name === 'string' && OVERSIZED_REQUEST_ERRORS.has(name)) return 'oversized'
  if (late) return 'late'
  return received > 0 ? 'unfinished' : undefined
}

/**
 * Answers one request frame from `peer` with its reply frame (unprefixed). `maxReplyBytes`, given when the reply
 * is charged to a reply budget, is the most the reply may come to: one that can be cut short stops there.
 */
export type FrameAnswer = (frame: Uint8Array, peer: PeerId, maxReplyBytes?: number) => Promise<Uint8Array>

/**
 * A libp2p stream handler answering request frames with reply frames, in order: one frame per stream, or up to
 * `maxPipelinedRequests` on a stream the client keeps open. Each frame is bounded twice: by size
 * (`maxRequestBytes`, checked against its length prefix, so nothing past it is ever buffered; with pipelining the
 * read buffer holds at most `maxPipelinedRequests` frames) and by time (`frameTimeoutMs` from the stream's
 * opening or the previous reply). A long-lived stream that stays idle, with no byte of a next frame, for
 * `frameTimeoutMs` is closed without blame. `answer` must not throw for bad input (it answers with an error
 * status); anything that does throw aborts the stream, never the process.
 */
export function frameHandler(
  answer: FrameAnswer,
  options: FrameHandlerOptions
): (stream: Stream, connection: Connection) => Promise<void> {
  const pipelined = Math.max(1, options.maxPipelinedRequests ?? 1)
  return async (stream, connection) => {
    const peer = connection.remotePeer
    // What the reply budget counts the peer's address as, for the hosts' shares.
    const host = options.replyBudget === undefined ? undefined : addressHost(connection.remoteAddr)
    // Bytes received and bytes of frames read so far: their difference is what arrived of the next frames,
    // which may not pass `pipelined` frames' worth (checked here rather than by lpStream, whose overflow a
    // handler busy answering would only see as a failed write).
    const readAhead = pipelined * (options.maxRequestBytes + 16)
    let received = 0
    let consumed = 0
    let flooded = false
    const count = (event: { data: { byteLength: number } }): void => {
      received += event.data.byteLength
      if (flooded || received - consumed <= readAhead) return
      flooded = true
      const err = new ProtocolError(`request frames past the ${readAhead} bytes read ahead`)
      options.onError?.(err, peer)
      options.onViolation?.('oversized', peer)
      stream.abort(err)
    }
    let lp: ReturnType<typeof lpStream>
    try {
      lp = lpStream(stream, { maxDataLength: options.maxRequestBytes, maxBufferSize: readAhead + 16 })
    } catch (err) {
      options.onError?.(err, peer)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      return
    }
    // Added after lpStream's own listener, so both see any bytes that arrived before the handler ran.
    stream.addEventListener('message', count)
    const out = replyWriter(stream)
    // Frames read and not yet answered: their answers start at once, so a pipelining client's requests overlap
    // at the server (each is a store read), and their replies go out in request order.
    const answering: Promise<void>[] = []
    let previous: Promise<void> = Promise.resolve()
    let failed = false
    const fail = (err: unknown): void => {
      if (failed || flooded) return
      failed = true
      options.onError?.(err, peer)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
    try {
      for (let n = 0; ; n++) {
        if (answering.length >= pipelined) await answering.shift()
        if (failed || flooded) return
        const frameDeadline = AbortSignal.timeout(options.frameTimeoutMs ?? DEFAULT_REQUEST_FRAME_TIMEOUT_MS)
        setMaxListeners(Infinity, frameDeadline)
        let request: Uint8Array
        try {
          request = asUint8Array((await lp.read({ signal: frameDeadline })).subarray())
        } catch (err) {
          if (failed || flooded) return
          const pending = received - consumed
          // After its first request, a long-lived stream may go quiet or end between frames: the client is done.
          if (n > 0 && pending === 0) {
            await previous
            // Bounded: a peer that never ends its side would otherwise keep the stream, and its slot, for ever.
            if (!failed) await closeWithin(stream, options.frameTimeoutMs ?? DEFAULT_REQUEST_FRAME_TIMEOUT_MS)
            return
          }
          const violation = frameViolation(err, frameDeadline.aborted, pending)
          options.onError?.(err, peer)
          if (violation !== undefined) options.onViolation?.(violation, peer)
          stream.abort(err instanceof Error ? err : new Error(String(err)))
          return
        }
        consumed += request.byteLength + varintLength(request.byteLength)
        // The reply's charge once reserved, and whether its write started: a reply whose reader has taken no
        // byte of it for `REPLY_STALL_MS` since may be given up for another peer (`ReplyBudget`).
        const held: HeldReply = { writing: false }
        // Not a fixed deadline: an honest reader on a thin link takes longer than any fixed one allows.
        const deadline = new TransferDeadline({
          idleMs: options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
          minBytesPerSecond: options.minDrainBytesPerSecond ?? DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND,
          sample: out.drained,
          onCheck: (idleMs) => {
            if (held.writing) held.charge?.stalled(idleMs >= REPLY_STALL_MS)
          }
        })
        const signal = deadline.signal
        setMaxListeners(Infinity, signal)
        const reply = budgetedAnswer(answer, request, peer, host, options.replyBudget, held, () => {
          // The budget gave this stalled reply's room to a peer holding less. Its reader had stopped taking it:
          // an unread reply, as at the deadline, so a peer id that keeps stalling replies is cut off in time.
          failed = true
          options.onViolation?.('unread', peer)
          stream.abort(new ProtocolError('reply given up: unread while the server needed its room for a peer holding less'))
        })
        // Awaited below once the replies before it are out; marked handled now in case it fails before that.
        reply.catch(() => undefined)
        previous = previous
          .then(async () => {
            const { bytes, charge } = await reply
            // A reply built past the deadline is our slowness, not the peer's: its failed write blames nobody.
            const built = !signal.aborted
            try {
              if (failed || flooded) return
              held.writing = true
              await out.write(bytes, signal)
            } catch (err) {
              if (built && signal.aborted && !failed && !flooded) {
                failed = true
                options.onError?.(err, peer)
                options.onViolation?.('unread', peer)
                const why = signal.reason instanceof Error ? signal.reason.message : 'too slowly'
                stream.abort(new ProtocolError(`reply not read: ${why}`))
                return
              }
              throw err
            } finally {
              charge?.release()
            }
          })
          .finally(() => deadline.dispose())
          .catch(fail)
        answering.push(previous)
        if (pipelined === 1) {
          await previous
          if (!failed && !flooded) await closeWithin(stream, options.frameTimeoutMs ?? DEFAULT_REQUEST_FRAME_TIMEOUT_MS)
          return
        }
      }
    } finally {
      stream.removeEventListener('message', count)
    }
  }
}

/** Writes a stream's replies and counts what of them left its write buffer. */
interface ReplyWriter {
  /** Writes `frame` length-prefixed, `REPLY_PIECE_BYTES` at a time; resolves once all of it left the write buffer. */
  write(frame: Uint8Array, signal: AbortSignal): Promise<void>
  /**
   * Bytes of the replies that have left the write buffer (towards the muxer, within the peer's window): the
   * buffer only empties as the peer reads, so this is how fast the peer takes its replies.
   */
  drained(): number
}

function replyWriter(stream: Stream): ReplyWriter {
  let handed = 0
  let drained = 0
  return {
    async write(frame, signal) {
      for (let at = 0; ; at += REPLY_PIECE_BYTES) {
        const piece = frame.subarray(at, at + REPLY_PIECE_BYTES)
        const bytes = at === 0 ? concatBytes(lengthPrefix(frame.byteLength), piece) : piece
        stream.send(bytes)
        handed += bytes.byteLength
        // Out only once the write buffer is empty: the next piece waits for it, so a muxer never has more than
        // a piece to send at once (see REPLY_PIECE_BYTES).
        await writtenOut(stream, signal)
        if (at + REPLY_PIECE_BYTES >= frame.byteLength) return
      }
    },
    drained() {
      // Never backwards, whatever else the buffer held (a protocol confirmation written before the handler ran).
      drained = Math.max(drained, handed - stream.writeBufferLength)
      return drained
    }
  }
}

/** The varint length prefix of a frame of `length` bytes. */
export function lengthPrefix(length: number): Uint8Array {
  const prefix = new Uint8Array(varintLength(length))
  let n = length
  for (let i = 0; i < prefix.length; i++) {
    prefix[i] = i === prefix.length - 1 ? n : (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  return prefix
}

/**
 * Ends our side of `stream`, then gives the peer `ms` to end its own: a stream is only gone, and its slot among
 * the protocol's inbound streams free, once both sides ended, so one whose peer never ends it is aborted.
 */
async function closeWithin(stream: Stream, ms: number): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(ms) })
    if (stream.status === 'closed') return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.removeEventListener('close', ended)
        reject(new ProtocolError(`the peer did not end the stream within ${ms} ms of its last reply`))
      }, ms)
      const ended = (): void => {
        clearTimeout(timer)
        resolve()
      }
      stream.addEventListener('close', ended, { once: true })
    })
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

/**
 * Resolves once `stream`'s write buffer is empty (its bytes handed to the muxer within the peer's window), and
 * rejects if the stream closes first or `signal` aborts. An aborted stream drops its buffer and is out at once.
 */
async function writtenOut(stream: Stream, signal: AbortSignal): Promise<void> {
  if (stream.writeBufferLength === 0) return
  let onEvent: ((event: Event) => void) | undefined
  const out = new Promise<void>((resolve, reject) => {
    onEvent = (event) =>
      event.type === 'idle' ? resolve() : reject(new StreamEndedError('the stream closed before its reply was written out'))
    stream.addEventListener('idle', onEvent)
    stream.addEventListener('close', onEvent)
  })
  try {
    await raceSignal(out, signal, 'the reply was not written out in time')
  } finally {
    stream.removeEventListener('idle', onEvent!)
    stream.removeEventListener('close', onEvent!)
  }
}

interface BudgetedReply {
  bytes: Uint8Array
  charge?: ReplyCharge
}

/** A reply's charge, set as soon as it is reserved, and whether the reply is being written yet. */
interface HeldReply {
  charge?: ReplyCharge
  writing: boolean
}

/**
 * `answer`'s reply to `request`, charged to `budget`: its largest size is reserved before `answer` runs, so what
 * replies are being built counts too and a full budget costs no store read; then the charge shrinks to the
 * reply's size. The refusal when the reservation does not fit. `evict` gives the reply up (aborts its stream)
 * when the budget takes its room back for a peer holding less.
 */
async function budgetedAnswer(
  answer: FrameAnswer,
  request: Uint8Array,
  peer: PeerId,
  host: string | undefined,
  replyBudget: FrameHandlerOptions['replyBudget'],
  held: HeldReply,
  evict: () => void
): Promise<BudgetedReply> {
  if (replyBudget === undefined) return { bytes: await answer(request, peer) }
  const { budget, reserveBytes, minReserveBytes, refusal } = replyBudget
  const charge = budget.charge(peer.toString(), reserveBytes, { evict, minBytes: minReserveBytes, host })
  if (charge === undefined) return { bytes: refusal }
  held.charge = charge
  try {
    const bytes = await answer(request, peer, charge.bytes - varintLength(charge.bytes))
    charge.resize(bytes.byteLength + varintLength(bytes.byteLength))
    return { bytes, charge }
  } catch (err) {
    charge.release()
    throw err
  }
}

/** Bytes of the unsigned varint length prefix of a frame of `length` bytes. */
function varintLength(length: number): number {
  let bytes = 1
  for (let n = length; n >= 0x80; n = Math.floor(n / 0x80)) bytes++
  return bytes
}
