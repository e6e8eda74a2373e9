import { describe, expect, it } from 'vitest'
import { AbortError, PeerBusyError, PeerFaultError, PeerRequestError, RequestRejectedError } from '../../src/errors.js'
import { Status } from '../../src/net/codec.js'
import { encodeNodesResponse } from '../../src/net/nodes-protocol.js'
import { failureOutcome, peekStatus, requestLabel, statusOutcome } from '../../src/net/request-outcome.js'
import { encodeContentsResponse } from '../../src/net/topic-protocols.js'

describe('request outcomes', () => {
  it('reads the status of every reply without decoding it, short and long lists alike', () => {
    for (const status of Object.values(Status)) {
      expect(peekStatus(encodeNodesResponse(status))).toBe(status)
    }
    // Past 55 bytes of payload the list header is longer than one byte.
    const big = encodeNodesResponse(Status.OK, [new Uint8Array(100), new Uint8Array(70_000)])
    expect(big[0]).toBeGreaterThan(0xf7)
    expect(peekStatus(big)).toBe(Status.OK)
    expect(peekStatus(encodeContentsResponse(Status.OK, [{ n: 3, data: Uint8Array.of(1) }]))).toBe(Status.OK)
    expect(peekStatus(new Uint8Array(0))).toBeUndefined()
    expect(peekStatus(Uint8Array.of(0x05))).toBeUndefined()
    expect(peekStatus(Uint8Array.of(0xc1, 0x09))).toBeUndefined()
  })

  it('names the outcome each reply status stands for', () => {
    const statuses = [Status.OK, Status.UNAVAILABLE, Status.RATE_LIMITED, Status.INVALID_REQUEST]
    expect(statuses.map(statusOutcome)).toEqual(['ok', 'unavailable', 'rate-limited', 'invalid-request'])
  })

  it('names a failure by who is to blame', () => {
    expect(failureOutcome(new AbortError('stop'))).toBe('aborted')
    expect(failureOutcome(new Error('x'), AbortSignal.abort())).toBe('aborted')
    expect(failureOutcome(new PeerBusyError('busy'))).toBe('rate-limited')
    expect(failureOutcome(new RequestRejectedError('no'))).toBe('invalid-request')
    expect(failureOutcome(new PeerFaultError('p', 'malformed', 'bad'))).toBe('peer-fault')
    expect(failureOutcome(new PeerRequestError('p', 'timeout', 'slow'))).toBe('timeout')
    expect(failureOutcome(new PeerRequestError('p', 'transport', 'reset'))).toBe('failed')
    expect(failureOutcome(new DOMException('late', 'TimeoutError'))).toBe('timeout')
    // A deadline's abort that is not the caller's: a timeout, not a failure of the stream.
    expect(failureOutcome(new DOMException('deadline', 'AbortError'))).toBe('timeout')
    expect(failureOutcome(new Error('reset'))).toBe('failed')
    expect(requestLabel('/dsfg/contents/1.0.0', 'ok')).toBe('contents:ok')
  })
})
