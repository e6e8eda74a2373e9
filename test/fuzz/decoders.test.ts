import { describe, expect, it } from 'vitest'
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
  // 10 s of CPU before any shape check. The depth is now checked first, in one pass over the headers.
  it('rejects a 2 MiB frame nested 2,000 deep at once', () => {
    const frame = nested(2_000, MAX_RESPONSE_BYTES - 8)
    const started = performance.now()
    expect(() => decodeFrame(frame, 'deep')).toThrow(ProtocolError)
    expect(performance.now() - started).toBeLessThan(500)
  })

  it('rejects a 1 MiB node blob nested 2,000 deep at once', () => {
    const blob = nested(2_000, MAX_NODE_BYTES - 8_000)
    const started = performance.now()
    expect(() => decodeNode(blob)).toThrow(InvalidNodeError)
    expect(performance.now() - started).toBeLessThan(500)
  })
})
