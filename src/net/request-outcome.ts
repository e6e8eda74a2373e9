import { AbortError, PeerBusyError, PeerFaultError, PeerRequestError, ProtocolError, RequestRejectedError } from '../errors.js'
import { Status } from './codec.js'

/**
 * How one request ended, as the `dsfg_requests_sent_total` and `dsfg_requests_served_total` metrics count it:
 * a status the reply carried, or why there was no usable reply.
 */
export type RequestOutcome =
  | 'ok'
  | 'unavailable'
  | 'rate-limited'
  | 'invalid-request'
  /** The reply proved the peer faulty (malformed, oversized, failing a hash or proof check). */
  | 'peer-fault'
  | 'timeout'
  /** The stream failed (reset, dial failure, peer gone); for a served request, the answer could not be sent. */
  | 'failed'
  /** Our side gave up (a caller's abort, a stop). */
  | 'aborted'
  /** A served request whose frame broke the frame rules (too large, too slow, cut short). */
  | 'bad-frame'

/**
 * The label a request is counted under: its protocol's name (`/dsfg/contents/1.0.0` is `contents`) and its
 * outcome, as `contents:ok` (libp2p's counter groups have one label).
 */
export function requestLabel(protocol: string, outcome: RequestOutcome): string {
  return `${protocol.split('/')[2] ?? protocol}:${outcome}`
}

/** The outcome a reply's status code stands for. */
export function statusOutcome(code: Status): RequestOutcome {
  switch (code) {
    case Status.OK:
      return 'ok'
    case Status.UNAVAILABLE:
      return 'unavailable'
    case Status.RATE_LIMITED:
      return 'rate-limited'
    case Status.INVALID_REQUEST:
      return 'invalid-request'
    default: {
      const exhaustive: never = code
      return exhaustive
    }
  }
}

/** The outcome of a request that rejected with `err` (a `Fetcher` error, or what `requestFrame` threw). */
export function failureOutcome(err: unknown, signal?: AbortSignal): RequestOutcome {
  if (err instanceof AbortError || signal?.aborted === true) return 'aborted'
  if (err instanceof PeerBusyError) return 'rate-limited'
  if (err instanceof RequestRejectedError) return 'invalid-request'
  if (err instanceof PeerFaultError || err instanceof ProtocolError) return 'peer-fault'
  if (err instanceof PeerRequestError) return err.reason === 'timeout' ? 'timeout' : 'failed'
  // `requestFrame`'s own deadline, when the caller's signal did not abort.
  const name = (err as { name?: unknown } | null)?.name
  return name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'failed'
}

/**
 * The status code of an encoded reply without decoding it: every DSFG reply is an RLP list whose first item is
 * the code (0 encodes as the empty string 0x80, 1 to 3 as themselves). `undefined` for anything else.
 */
export function peekStatus(reply: Uint8Array): Status | undefined {
  const head = reply[0]
  if (head === undefined || head < 0xc0) return undefined
  const offset = head <= 0xf7 ? 1 : 1 + (head - 0xf7)
  const first = reply[offset]
  if (first === 0x80) return Status.OK
  if (first !== undefined && first >= Status.INVALID_REQUEST && first <= Status.RATE_LIMITED) return first as Status
  return undefined
}
