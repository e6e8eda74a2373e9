import { RLP } from '@ethereumjs/rlp'
import { describe, expect, it, vi } from 'vitest'
import { MAX_RESPONSE_BYTES } from '../../src/constants.js'
import { InvalidNodeError, ProtocolError } from '../../src/errors.js'
import { decodeFrame } from '../../src/net/codec.js'
import { decodeNode, MAX_NODE_BYTES } from '../../src/trie/node.js'
import { FUZZ_TARGETS, runFuzz } from './decoders.fuzz.js'
import { deeplyNested, rlpHeader } from './mutate.js'

/** A quick seeded slice of the fuzzer; `npm run test:soak` runs 100k cases per decoder. */
const CASES = 2_000

describe('decoder fuzzing (short)', () => {
  it.each(FUZZ_TARGETS.map((t) => [t.name, t] as const))('%s rejects every bad frame with its typed error', (_, fuzz) => {
    const report = runFuzz(fuzz, { cases: CASES, seed: 0x5eed })
    expect(report.cases).toBe(CASES)
    // The mutations must reach both outcomes, or the run proves little.
    expect(report.rejected).toBeGreaterThan(CASES / 2)
    expect(report.accepted).toBeGreaterThan(0)
  })
})

describe('deeply nested frames', () => {
  /** A string of `payload` zero bytes wrapped in `depth` lists: valid RLP, nested far deeper than any message. */
  function nested(depth: number, payload: number): Uint8Array {
    const header = rlpHeader(0x80, payload)
    const inner = new Uint8Array(header.length + payload)
    inner.set(header)
    return deeplyNested(depth, inner)
  }

  // @ethereumjs/rlp copies each list's payload before decoding it: 2 MiB nested 2,000 deep used to cost about
  // 10 s of CPU before any shape check. The depth is now checked first, in one pass over the headers, so the
  // frame never reaches the decoder. (How long a rejection takes is a benchmark's question, not this test's.)
  it('rejects a 2 MiB frame nested 2,000 deep for its depth, before decoding it', () => {
    const frame = nested(2_000, MAX_RESPONSE_BYTES - 8)
    const decode = vi.spyOn(RLP, 'decode')
    try {
      expect(() => decodeFrame(frame, 'deep')).toThrow(new ProtocolError('deep: lists nested deeper than 8'))
      expect(decode).not.toHaveBeenCalled()
    } finally {
      decode.mockRestore()
    }
  })

  it('decodes a frame nested exactly 8 lists deep, and refuses one nested 9 deep for its depth', () => {
    // No message nests deeper than 3, so 8 is the frame limit's margin: a frame at it reaches the decoder (and
    // the message's shape check after it); one level more is refused before decoding.
    const lists = (depth: number): Parameters<typeof RLP.encode>[0] => (depth === 0 ? Uint8Array.of(1, 2) : [lists(depth - 1)])
    expect(decodeFrame(RLP.encode(lists(8)), 'deep')).toEqual(lists(8))
    expect(() => decodeFrame(RLP.encode(lists(9)), 'deep')).toThrow(new ProtocolError('deep: lists nested deeper than 8'))
  })

  it('rejects a 1 MiB node blob nested 2,000 deep', () => {
    // 2,000 list headers of 4 bytes each and the string's own: the blob is exactly MAX_NODE_BYTES, so it is
    // its nesting that is refused, not its size (4 bytes more, and the size check alone refused it).
    const blob = nested(2_000, MAX_NODE_BYTES - 8_004)
    expect(blob.length).toBe(MAX_NODE_BYTES)
    const err = (() => {
      try {
        return decodeNode(blob)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(InvalidNodeError)
    expect((err as Error).message).not.toMatch(/too large/)
  })
})
