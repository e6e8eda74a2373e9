import { SeededRandom } from '../helpers/random.js'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  createProof,
  createRangeProof,
  EMPTY_ROOT,
  InvalidInputError,
  InvalidProofError,
  type RangeProofResult,
  toHex,
  verifyRangeProof
} from '../../src/index.js'
import { compareBytes, equalBytes } from '../../src/util/bytes.js'
import { fromHex } from '../../src/util/hex.js'
import {
  type BuiltTrie,
  buildTrie,
  decreaseKey,
  type Entry,
  gethRandomEntries,
  increaseKey,
  variableEntries
} from './helpers.js'

/**
 * Ports of go-ethereum's range-proof tests (trie/proof_test.go, TestRangeProof… family), in the version
 * whose VerifyRangeProof still takes the last edge key, plus the later error cases.
 * reference: go-ethereum@02b73d4ea7181464175e0a6cbecc0a3a2655a562 trie/proof_test.go (and its parent of
 * f62c58f8de for the two-edge-key cases)
 */

const ZERO32 = new Uint8Array(32)
const MAX32 = new Uint8Array(32).fill(0xff)

function keysOf(entries: Entry[]): Uint8Array[] {
  return entries.map((e) => e.key)
}

function valuesOf(entries: Entry[]): Uint8Array[] {
  return entries.map((e) => e.value)
}

function rangeProof(trie: BuiltTrie, first: Uint8Array, last: Uint8Array): Promise<Uint8Array[]> {
  return createRangeProof(trie.store, trie.root, first, last)
}

/** Verifies and returns the result, or the error (so a test can assert on either). */
function attempt(
  root: Uint8Array,
  first: Uint8Array,
  last: Uint8Array,
  keys: Uint8Array[],
  values: Uint8Array[],
  proof: Uint8Array[]
): RangeProofResult | Error {
  try {
    return verifyRangeProof(root, first, last, keys, values, proof)
  } catch (err) {
    return err as Error
  }
}

function expectRejected(result: RangeProofResult | Error, message?: string | RegExp): void {
  expect(result).toBeInstanceOf(InvalidProofError)
  if (message !== undefined) expect((result as Error).message).toMatch(message)
}

describe('range proofs on a go-ethereum random trie (4096 random + 200 small entries)', () => {
  let trie: BuiltTrie
  let entries: Entry[]
  const rng = new SeededRandom(100)

  beforeAll(async () => {
    trie = await buildTrie(gethRandomEntries(rng, 4096))
    entries = trie.entries
  })

  it('TestRangeProof: random sub-ranges with existent edges verify, more iff entries remain', async () => {
    for (let i = 0; i < 100; i++) {
      const [start, end] = randomRange(rng, entries.length)
      const range = entries.slice(start, end)
      const first = range[0]!.key
      const last = range[range.length - 1]!.key
      const proof = await rangeProof(trie, first, last)
      const result = verifyRangeProof(trie.root, first, last, keysOf(range), valuesOf(range), proof)
      expect(result.more, `case ${start}->${end - 1}`).toBe(end < entries.length)
    }
  })

  it('TestRangeProofWithNonExistentProof: edges just outside the range verify', async () => {
    let run = 0
    for (let i = 0; i < 100; i++) {
      const [start, end] = randomRange(rng, entries.length)
      const first = decreaseKey(entries[start]!.key)
      const last = increaseKey(entries[end - 1]!.key)
      if (start !== 0 && equalBytes(first, entries[start - 1]!.key)) continue
      if (compareBytes(first, entries[start]!.key) > 0) continue
      if (end !== entries.length && equalBytes(last, entries[end]!.key)) continue
      if (compareBytes(last, entries[end - 1]!.key) < 0) continue
      const range = entries.slice(start, end)
      const proof = await rangeProof(trie, first, last)
      const result = verifyRangeProof(trie.root, first, last, keysOf(range), valuesOf(range), proof)
      expect(result.more).toBe(end < entries.length)
      run++
    }
    expect(run).toBeGreaterThan(80)
    // The whole trie between the two extreme keys, neither of which exists.
    const proof = await rangeProof(trie, ZERO32, MAX32)
    expect(verifyRangeProof(trie.root, ZERO32, MAX32, keysOf(entries), valuesOf(entries), proof).more).toBe(false)
  })

  it('TestRangeProofWithInvalidNonExistentProof: a gap next to a non-existent edge is caught', async () => {
    // Gap between the left edge and the first element.
    const first = decreaseKey(entries[100]!.key)
    const gappedLeft = entries.slice(105, 200)
    const last = gappedLeft[gappedLeft.length - 1]!.key
    let proof = await rangeProof(trie, first, last)
    expectRejected(attempt(trie.root, first, last, keysOf(gappedLeft), valuesOf(gappedLeft), proof))
    // Gap between the last element and the right edge.
    const afterLast = increaseKey(entries[199]!.key)
    const cappedRight = entries.slice(100, 195)
    proof = await rangeProof(trie, cappedRight[0]!.key, afterLast)
    expectRejected(attempt(trie.root, cappedRight[0]!.key, afterLast, keysOf(cappedRight), valuesOf(cappedRight), proof))
  })

  it('TestOneElementRangeProof: existent and non-existent edges around one element', async () => {
    const e = entries[1000]!
    const cases: [Uint8Array, Uint8Array][] = [
      [e.key, e.key],
      [decreaseKey(e.key), e.key],
      [e.key, increaseKey(e.key)],
      [decreaseKey(e.key), increaseKey(e.key)]
    ]
    for (const [first, last] of cases) {
      const proof = await rangeProof(trie, first, last)
      expect(verifyRangeProof(trie.root, first, last, [e.key], [e.value], proof).more).toBe(true)
      // The same element with a changed value is refused in every shape.
      expectRejected(attempt(trie.root, first, last, [e.key], [Uint8Array.of(1, 2, 3)], proof))
    }
    // A trie with a single element, proven from the all-zero key.
    const tiny = await buildTrie([{ key: rng.bytes(32), value: rng.bytes(20) }])
    const only = tiny.entries[0]!
    const proof = await rangeProof(tiny, ZERO32, only.key)
    expect(verifyRangeProof(tiny.root, ZERO32, only.key, [only.key], [only.value], proof).more).toBe(false)
  })

  it('TestAllElementsProof: without a proof, with existent edges, with non-existent edges', async () => {
    const k = keysOf(entries)
    const v = valuesOf(entries)
    expect(verifyRangeProof(trie.root, new Uint8Array(0), new Uint8Array(0), k, v, []).more).toBe(false)
    let proof = await rangeProof(trie, k[0]!, k[k.length - 1]!)
    expect(verifyRangeProof(trie.root, k[0]!, k[k.length - 1]!, k, v, proof).more).toBe(false)
    proof = await rangeProof(trie, ZERO32, MAX32)
    expect(verifyRangeProof(trie.root, ZERO32, MAX32, k, v, proof).more).toBe(false)
    // Without a proof, one element short of the whole trie is refused.
    expectRejected(attempt(trie.root, ZERO32, MAX32, k.slice(1), v.slice(1), []), /^invalid proof, want hash 0x/)
  })

  it('TestBadRangeProof: changed key, changed value, dropped element, swapped order, empty key, deletion', async () => {
    const seen = new Set<number>()
    for (let i = 0; i < 150; i++) {
      const [start, end] = randomRange(rng, entries.length)
      const range = entries.slice(start, end)
      const first = range[0]!.key
      const last = range[range.length - 1]!.key
      const proof = await rangeProof(trie, first, last)
      const keys = keysOf(range)
      const values = valuesOf(range)
      const testcase = rng.int(6)
      const index = rng.int(range.length)
      switch (testcase) {
        case 0:
          keys[index] = rng.bytes(32)
          break
        case 1:
          values[index] = rng.bytes(20)
          break
        case 2:
          // A dropped element at the very edge of a range that starts (ends) at the trie's start is not a
          // gap the proofs can see: the range is then just shorter (go-ethereum skips these too).
          if ((index === 0 && start < 100) || (index === range.length - 1 && end <= 100)) continue
          keys.splice(index, 1)
          values.splice(index, 1)
          break
        case 3: {
          const other = rng.int(range.length)
          if (other === index) continue
          ;[keys[index], keys[other]] = [keys[other]!, keys[index]!]
          ;[values[index], values[other]] = [values[other]!, values[index]!]
          break
        }
        case 4:
          keys[index] = new Uint8Array(0)
          break
        case 5:
          values[index] = new Uint8Array(0)
          break
      }
      seen.add(testcase)
      expectRejected(attempt(trie.root, first, last, keys, values, proof))
    }
    expect(seen.size).toBe(6)
  })

  it('TestSameSideProofs: both edges on one side of the element', async () => {
    const e = entries[1000]!
    let first = decreaseKey(decreaseKey(e.key))
    let last = decreaseKey(e.key)
    let proof = await rangeProof(trie, first, last)
    expectRejected(attempt(trie.root, first, last, [e.key], [e.value], proof))
    first = increaseKey(e.key)
    last = increaseKey(increaseKey(e.key))
    proof = await rangeProof(trie, first, last)
    expectRejected(attempt(trie.root, first, last, [e.key], [e.value], proof))
  })

  it('TestEmptyRangeProof: zero elements right of the last key, but not in the middle', async () => {
    const afterLast = increaseKey(entries[entries.length - 1]!.key)
    let proof = await createProof(trie.store, trie.root, afterLast)
    expect(verifyRangeProof(trie.root, afterLast, new Uint8Array(0), [], [], proof).more).toBe(false)
    const inMiddle = increaseKey(entries[500]!.key)
    proof = await createProof(trie.store, trie.root, inMiddle)
    expectRejected(attempt(trie.root, inMiddle, new Uint8Array(0), [], [], proof), 'more entries available')
    // An existing key as the start of an empty range is refused too: it is itself an entry.
    proof = await createProof(trie.store, trie.root, entries[entries.length - 1]!.key)
    expectRejected(attempt(trie.root, entries[entries.length - 1]!.key, MAX32, [], [], proof), 'more entries available')
  })

  it('TestEmptyValueRangeProof: a range with an extra empty value (a no-op) is refused', async () => {
    const mid = entries.length >> 1
    const noop = { key: increaseKey(entries[mid - 1]!.key), value: new Uint8Array(0) }
    const range = [...entries.slice(1, mid), noop, ...entries.slice(mid, entries.length - 1)]
    const proof = await rangeProof(trie, range[0]!.key, range[range.length - 1]!.key)
    expectRejected(
      attempt(trie.root, range[0]!.key, range[range.length - 1]!.key, keysOf(range), valuesOf(range), proof),
      'range contains deletion'
    )
    const all = [...entries.slice(0, mid), noop, ...entries.slice(mid)]
    expectRejected(attempt(trie.root, ZERO32, MAX32, keysOf(all), valuesOf(all), []), 'range contains deletion')
  })

  it('refuses elements outside the edges even when the proof would cover them', async () => {
    const range = entries.slice(300, 320)
    const first = range[1]!.key
    const last = range[range.length - 2]!.key
    // The proof covers the full range, the edges claim a smaller one.
    const proof = await rangeProof(trie, range[0]!.key, range[range.length - 1]!.key)
    expectRejected(
      attempt(trie.root, first, last, keysOf(range), valuesOf(range), proof),
      'unexpected key-value pairs preceding the requested range'
    )
    expectRejected(
      attempt(trie.root, range[0]!.key, last, keysOf(range), valuesOf(range), proof),
      'unexpected key-value pairs following the requested range'
    )
  })

  it('keeps the verdict for tampered proof nodes: rejected, or accepted with the same `more` (seeded)', async () => {
    let rejected = 0
    for (let i = 0; i < 300; i++) {
      const start = rng.int(entries.length)
      const end = start + 1 + rng.int(Math.min(200, entries.length - start))
      const range = entries.slice(start, end)
      const first = rng.int(2) === 0 ? range[0]!.key : decreaseKey(range[0]!.key)
      const last = range[range.length - 1]!.key
      if (start > 0 && compareBytes(first, entries[start - 1]!.key) <= 0) continue
      const proof: Uint8Array[] = (await rangeProof(trie, first, last)).map((p) => p.slice())
      switch (rng.int(4)) {
        case 0: {
          const node = rng.pick(proof)
          node[rng.int(node.length)]! ^= 1 << rng.int(8)
          break
        }
        case 1:
          proof.splice(rng.int(proof.length), 1)
          break
        case 2:
          proof.reverse()
          break
        case 3:
          proof.splice(rng.int(proof.length + 1), 0, rng.bytes(rng.int(100)))
          break
      }
      const result = attempt(trie.root, first, last, keysOf(range), valuesOf(range), proof)
      if (result instanceof Error) {
        expect(result).toBeInstanceOf(InvalidProofError)
        rejected++
      } else {
        expect(result.more).toBe(end < entries.length)
      }
    }
    expect(rejected).toBeGreaterThan(50)
  })
})

describe('range proofs on other tries', () => {
  it('TestSingleSideRangeProof and its reverse: ranges from the all-zero key and to the all-ones key', async () => {
    const rng = new SeededRandom(200)
    for (let t = 0; t < 4; t++) {
      const trie = await buildTrie(Array.from({ length: 1024 }, () => ({ key: rng.bytes(32), value: rng.bytes(20) })))
      const entries = trie.entries
      for (const pos of [0, 1, 50, 100, 500, 1000, entries.length - 1]) {
        const left = entries.slice(0, pos + 1)
        let proof = await rangeProof(trie, ZERO32, entries[pos]!.key)
        const leftResult = verifyRangeProof(trie.root, ZERO32, entries[pos]!.key, keysOf(left), valuesOf(left), proof)
        expect(leftResult.more).toBe(pos < entries.length - 1)
        const right = entries.slice(pos)
        proof = await rangeProof(trie, entries[pos]!.key, MAX32)
        expect(verifyRangeProof(trie.root, entries[pos]!.key, MAX32, keysOf(right), valuesOf(right), proof).more).toBe(false)
      }
    }
  })

  it('TestGappedRangeProof: a gap at an embedded node of a small trie is caught', async () => {
    const entries = Array.from({ length: 10 }, (_, i) => ({ key: leftPad(i), value: Uint8Array.of(i) }))
    const trie = await buildTrie(entries)
    const proof = await rangeProof(trie, entries[2]!.key, entries[7]!.key)
    const gapped = entries.slice(2, 8).filter((_, i) => i + 2 !== 5)
    expectRejected(attempt(trie.root, gapped[0]!.key, gapped[gapped.length - 1]!.key, keysOf(gapped), valuesOf(gapped), proof))
    // Without the gap it verifies.
    const whole = entries.slice(2, 8)
    expect(verifyRangeProof(trie.root, whole[0]!.key, whole[5]!.key, keysOf(whole), valuesOf(whole), proof).more).toBe(true)
  })

  it('TestHasRightElement: the `more` flag for existent and non-existent edges', async () => {
    const rng = new SeededRandom(300)
    const trie = await buildTrie(Array.from({ length: 1024 }, () => ({ key: rng.bytes(32), value: rng.bytes(20) })))
    const entries = trie.entries
    const n = entries.length
    // [start, end, more]: start -1 means the all-zero left edge, end -1 the all-ones right edge.
    const cases: [number, number, boolean][] = [
      [-1, 1, true],
      [0, 1, true],
      [0, 10, true],
      [50, 100, true],
      [50, n, false],
      [n - 1, n, false],
      [n - 1, -1, false],
      [0, n, false],
      [-1, n, false],
      [-1, -1, false]
    ]
    for (const [s, e, more] of cases) {
      const first = s === -1 ? ZERO32 : entries[s]!.key
      const last = e === -1 ? MAX32 : entries[e - 1]!.key
      const range = entries.slice(s === -1 ? 0 : s, e === -1 ? n : e)
      const proof = await rangeProof(trie, first, last)
      expect(verifyRangeProof(trie.root, first, last, keysOf(range), valuesOf(range), proof).more, `${s}..${e}`).toBe(more)
    }
  })

  it('TestBloatedProof: a proof holding every key of the trie is still accepted', async () => {
    // go-ethereum's nonRandomTrie(100): little-endian counters as keys.
    const entries = Array.from({ length: 100 }, (_, i) => {
      const key = new Uint8Array(32)
      const value = new Uint8Array(32)
      new DataView(key.buffer).setBigUint64(0, BigInt(i), true)
      new DataView(value.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(i) - 0xffff_ffff_ffff_ffffn), true)
      return { key, value }
    })
    const trie = await buildTrie(entries)
    const bloated: Uint8Array[] = []
    for (const e of trie.entries) bloated.push(...(await createProof(trie.store, trie.root, e.key)))
    const e = trie.entries[50]!
    expect(verifyRangeProof(trie.root, e.key, e.key, [e.key], [e.value], bloated).more).toBe(true)
    const range = trie.entries.slice(20, 60)
    const result = verifyRangeProof(trie.root, range[0]!.key, range[39]!.key, keysOf(range), valuesOf(range), bloated)
    expect(result.more).toBe(true)
  })

  it('TestRangeProofKeysWithSharedPrefix: aa10…/aa20…, proven from 00…00', async () => {
    const keys = [fromHex('aa10'.padEnd(64, '0')), fromHex('aa20'.padEnd(64, '0'))]
    const values = [Uint8Array.of(2), Uint8Array.of(3)]
    const trie = await buildTrie(keys.map((key, i) => ({ key, value: values[i]! })))
    // Right edge at the last key (current go-ethereum) and at ff…ff (the two-edge-key version).
    for (const end of [keys[1]!, MAX32]) {
      const proof = await rangeProof(trie, ZERO32, end)
      expect(verifyRangeProof(trie.root, ZERO32, end, keys, values, proof).more).toBe(false)
    }
  })

  it('TestRangeProofErrors: the exact messages', () => {
    const none = new Uint8Array(0)
    const root = new Uint8Array(32)
    const empty = () => new Uint8Array(0)
    const cases: [Uint8Array[], Uint8Array[], string][] = [
      [Array.from({ length: 5 }, empty), Array.from({ length: 4 }, empty), 'inconsistent proof data, keys: 5, values: 4'],
      [[Uint8Array.of(2, 1), Uint8Array.of(2, 1)], [empty(), empty()], 'range is not monotonically increasing'],
      [[Uint8Array.of(2, 1), Uint8Array.of(2, 1, 2)], [Uint8Array.of(1), Uint8Array.of(1)], 'range contains path prefixes'],
      [[Uint8Array.of(2, 1), Uint8Array.of(2, 2)], [Uint8Array.of(1), empty()], 'range contains deletion']
    ]
    for (const [keys, values, message] of cases) {
      const err = attempt(root, none, none, keys, values, [])
      expect(err).toBeInstanceOf(InvalidProofError)
      expect((err as Error).message).toBe(message)
    }
  })

  it('handles the empty trie: all-elements with no elements, and rejects claimed elements', async () => {
    expect(verifyRangeProof(EMPTY_ROOT, ZERO32, MAX32, [], [], []).more).toBe(false)
    expect(verifyRangeProof(EMPTY_ROOT, ZERO32, MAX32, [], [], [Uint8Array.of(0x80)]).more).toBe(false)
    expectRejected(attempt(EMPTY_ROOT, ZERO32, MAX32, [ZERO32], [Uint8Array.of(1)], []), /^invalid proof/)
    const emptyStore = (await buildTrie([])).store
    expect(await createRangeProof(emptyStore, EMPTY_ROOT, ZERO32, MAX32)).toEqual([])
  })

  it('reports edge-key problems of two-edge proofs', async () => {
    const rng = new SeededRandom(400)
    const trie = await buildTrie(gethRandomEntries(rng, 200))
    // Past the 200 small keys: the random ones, whose neighbours (key ± 1) are not in the trie.
    const e = trie.entries.slice(200)
    const range = e.slice(10, 20)
    const proof = await rangeProof(trie, range[0]!.key, range[9]!.key)
    expectRejected(attempt(trie.root, range[0]!.key, range[0]!.key, keysOf(range), valuesOf(range), proof), /following/)
    const shortFirst = range[0]!.key.subarray(0, 31)
    expectRejected(attempt(trie.root, shortFirst, range[9]!.key, keysOf(range), valuesOf(range), proof), 'inconsistent edge keys')
    // One element whose edges differ but whose proof lacks the right edge's path.
    const one = await createProof(trie.store, trie.root, e[50]!.key)
    expectRejected(attempt(trie.root, e[50]!.key, MAX32, [e[50]!.key], [e[50]!.value], one), /missing/)
    // An absent key as both edges of a one-element claim.
    const absent = increaseKey(e[50]!.key)
    const absentProof = await createProof(trie.store, trie.root, absent)
    expectRejected(attempt(trie.root, absent, absent, [absent], [Uint8Array.of(1)], absentProof), 'the node is not contained in trie')
  })

  it('bounds key length, and handles the deepest trie that bound allows', async () => {
    // Keys of 1..256 bytes, each one more zero byte than the last before 0x01: a path of ~512 nested nodes.
    const entries = Array.from({ length: 256 }, (_, i) => {
      const key = new Uint8Array(i + 1)
      key[i] = 1
      return { key, value: Uint8Array.of(i + 1) }
    })
    const trie = await buildTrie(entries)
    const keys = keysOf(trie.entries)
    const values = valuesOf(trie.entries)
    expect(verifyRangeProof(trie.root, ZERO32, MAX32, keys, values, []).more).toBe(false)
    const deepest = keys[0]!
    expect(deepest.length).toBe(256)
    const proof = await createProof(trie.store, trie.root, deepest)
    expect(verifyRangeProof(trie.root, deepest, deepest, [deepest], [values[0]!], proof).more).toBe(true)
    const tooLong = new Uint8Array(257)
    expectRejected(attempt(trie.root, ZERO32, MAX32, [tooLong], [Uint8Array.of(1)], []), 'range key of 257 bytes, more than 256')
    expect(() => verifyRangeProof(trie.root, tooLong, tooLong, [], [], proof)).toThrow(InvalidInputError)
  })

  it('never throws anything but InvalidProofError on arbitrary keys, edges and proof nodes (seeded)', async () => {
    const rng = new SeededRandom(600)
    const trie = await buildTrie(variableEntries(rng, 80))
    const nodes = [...trie.store.keys()].map((hex) => fromHex(hex))
    const blobs = await trie.store.getMany(nodes)
    const reasons = new Set<string>()
    for (let i = 0; i < 3000; i++) {
      const proof: Uint8Array[] = []
      for (let j = rng.int(6); j > 0; j--) proof.push(rng.int(5) === 0 ? rng.bytes(rng.int(40)) : rng.pick(blobs)!)
      const keys = Array.from({ length: rng.int(5) }, () => randomKey(rng, rng.int(5))).sort(compareBytes)
      const values = keys.map(() => (rng.int(10) === 0 ? new Uint8Array(0) : rng.bytes(1 + rng.int(3))))
      const first = randomKey(rng, rng.int(4))
      const last = rng.int(3) === 0 ? first : randomKey(rng, rng.int(4))
      const root = rng.int(4) === 0 ? rng.bytes(32) : trie.root
      const result = attempt(root, first, last, keys, values, proof)
      if (result instanceof Error) {
        expect(result, result.stack).toBeInstanceOf(InvalidProofError)
        reasons.add(result.message.replace(/0x[0-9a-f]+/g, '0x…').replace(/\b\d+\b/g, 'N'))
      }
    }
    // The inputs reach deep into the verifier, not just its first checks.
    expect(reasons.size).toBeGreaterThan(8)
  })

  it('rejects wrong input types with InvalidInputError', () => {
    const k = Uint8Array.of(1)
    expect(() => verifyRangeProof(new Uint8Array(3), k, k, [], [], [])).toThrow(InvalidInputError)
    expect(() => verifyRangeProof(EMPTY_ROOT, 'x' as unknown as Uint8Array, k, [], [], [])).toThrow(InvalidInputError)
    expect(() => verifyRangeProof(EMPTY_ROOT, k, k, [1] as unknown as Uint8Array[], [k], [])).toThrow(InvalidInputError)
    expect(() => verifyRangeProof(EMPTY_ROOT, k, k, [], [], undefined as unknown as Uint8Array[])).toThrow(InvalidInputError)
  })
})

describe('range proofs on variable-length keys (embedded nodes, values in branches), against a reference', () => {
  it('accepts every honest range with the right `more`, rejects it with an element dropped or changed', async () => {
    const rng = new SeededRandom(500)
    let verified = 0
    let zero = 0
    for (let t = 0; t < 40; t++) {
      const trie = await buildTrie(variableEntries(rng, 5 + rng.int(60)))
      const entries = trie.entries
      for (let c = 0; c < 25; c++) {
        const length = rng.int(4)
        let first = randomKey(rng, length)
        let last = randomKey(rng, length)
        if (compareBytes(first, last) > 0) [first, last] = [last, first]
        const inside = entries.filter((e) => compareBytes(e.key, first) >= 0 && compareBytes(e.key, last) <= 0)
        const proof = await rangeProof(trie, first, last)
        const result = attempt(trie.root, first, last, keysOf(inside), valuesOf(inside), proof)
        if (inside.length === 0) {
          // A zero-element proof says nothing lies at or right of `first`.
          const anyRight = entries.some((e) => compareBytes(e.key, first) >= 0)
          if (anyRight) expectRejected(result, 'more entries available')
          else expect(result).toEqual({ more: false })
          zero++
          continue
        }
        if (equalBytes(first, last) && inside.length === 1) {
          expect(result).toEqual({ more: entries.some((e) => compareBytes(e.key, last) > 0) })
          verified++
          continue
        }
        if (inside.some((e, i) => i > 0 && startsWith(e.key, inside[i - 1]!.key))) {
          // go-ethereum's rule: a key and a key it is a prefix of never travel in one range.
          expectRejected(result, 'range contains path prefixes')
          continue
        }
        const lastInside = inside[inside.length - 1]!.key
        expect(result, `${toHex(first)}..${toHex(last)} of ${entries.map((e) => toHex(e.key)).join(',')}`).toEqual({
          more: entries.some((e) => compareBytes(e.key, lastInside) > 0)
        })
        verified++
        const drop = rng.int(inside.length)
        const fewer = inside.filter((_, i) => i !== drop)
        if (fewer.length > 0) expectRejected(attempt(trie.root, first, last, keysOf(fewer), valuesOf(fewer), proof))
        const changed = valuesOf(inside)
        changed[drop] = Uint8Array.of(...changed[drop]!, 1)
        expectRejected(attempt(trie.root, first, last, keysOf(inside), changed, proof))
      }
    }
    expect(verified).toBeGreaterThan(300)
    expect(zero).toBeGreaterThan(20)
  })
})

/**
 * A random [start, end) of `n` entries: half the time as go-ethereum draws it (any length up to the end,
 * ~n/3 on average), half the time at most 64 long, which keeps the suite fast while still mixing in large
 * ranges.
 */
function randomRange(rng: SeededRandom, n: number): [number, number] {
  const start = rng.int(n)
  const span = rng.int(2) === 0 ? n - start : Math.min(64, n - start)
  return [start, start + 1 + rng.int(span)]
}

function leftPad(n: number): Uint8Array {
  const out = new Uint8Array(32)
  out[31] = n
  return out
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b)
}

function randomKey(rng: SeededRandom, length: number): Uint8Array {
  const key = new Uint8Array(length)
  for (let i = 0; i < length; i++) key[i] = rng.pick([0x00, 0x01, 0x10, 0x11, 0x80, 0xab, 0xff])
  return key
}
