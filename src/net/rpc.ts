import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { setMaxListeners } from 'main-event'
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../constants.js'
import { ProtocolError } from '../errors.js'

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
function asUint8Array(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export type OpenStream = (peer: PeerId, protocol: string, options: { signal: AbortSignal }) => Promise<Stream>

export interface RequestOptions {
  signal?: AbortSignal
  /** @default DEFAULT_REQUEST_TIMEOUT_MS */
  timeoutMs?: number
  /** Largest response frame accepted. */
  maxResponseBytes: number
}

/** Sends one frame and returns the reply frame. A reply over the limit aborts the stream with `ProtocolError`. */
export async function requestFrame(
  openStream: OpenStream,
  peer: PeerId,
  protocol: string,
  frame: Uint8Array,
  options: RequestOptions
): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
  setMaxListeners(Infinity, signal)
  const stream = await openStream(peer, protocol, { signal })
  try {
    // The read buffer must hold the largest legal frame plus its length prefix, or lpStream aborts early.
    const lp = lpStream(stream, {
      maxDataLength: options.maxResponseBytes,
      maxBufferSize: options.maxResponseBytes + 16
    })
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
    await stream.close({ signal }).catch(() => undefined)
    return reply
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

export interface FrameHandlerOptions {
  /** Largest request frame accepted; a larger one aborts the stream. */
  maxRequestBytes: number
  /** @default DEFAULT_REQUEST_TIMEOUT_MS */
  timeoutMs?: number
  onError?: (err: unknown, peer: PeerId) => void
}

/** Whether `err` is a request frame past `maxRequestBytes` (or a length prefix too long to be one). */
export function isOversizedFrame(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name
  return name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError'
}

/**
 * A libp2p stream handler answering one request frame with one reply frame. `answer` must not throw for bad
 * input (it answers with an error status); anything that does throw aborts the stream, never the process.
 */
export function frameHandler(
  answer: (frame: Uint8Array, peer: PeerId) => Promise<Uint8Array>,
  options: FrameHandlerOptions
): (stream: Stream, connection: Connection) => Promise<void> {
  return async (stream, connection) => {
    const signal = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)
    setMaxListeners(Infinity, signal)
    try {
      const lp = lpStream(stream, { maxDataLength: options.maxRequestBytes, maxBufferSize: options.maxRequestBytes + 16 })
      const request = asUint8Array((await lp.read({ signal })).subarray())
      const reply = await answer(request, connection.remotePeer)
      await lp.write(reply, { signal })
      await stream.close({ signal })
    } catch (err) {
      options.onError?.(err, connection.remotePeer)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}
