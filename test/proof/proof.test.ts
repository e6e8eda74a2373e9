import { SeededRandom } from '../helpers/random.js'
import { createMerkleProof, createMPT, verifyMerkleProof } from '@ethereumjs/mpt'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  AbortError,
  createProof,
  EMPTY_ROOT,
  InvalidInputError,
  InvalidNodeError,
  InvalidProofError,
  keccak256,
  MemoryStore,
  MissingNodeError,
  toHex,
  verifyProof
} from '../../src/index.js'
import { equalBytes } from '../../src/util/bytes.js'
import { WrappedStore } from '../helpers/wrapped-store.js'
import { type BuiltTrie, buildTrie, gethRandomEntries, lookup, variableEntries } from './helpers.js'
import { loadVectorCases, type ProofCase } from './vectors.js'

/** The outcome of a verification, errors included, for comparing with what is expected. */
function outcome(root: Uint8Array, key: Uint8Array, proof: Uint8Array[]): Uint8Array | null | Error {
  try {
    return verifyProof(root, key, proof)
  } catch (err) {
    return err as Error
  }
}

/** A tampered proof must be rejected with InvalidProofError or still give the true answer; nothing else. */
function expectRejectedOrTrue(result: Uint8Array | null | Error, truth: Uint8Array | null): void {
  if (result instanceof Error) {
    expect(result).toBeInstanceOf(InvalidProofError)
    return
  }
  if (truth === null) expect(result).toBeNull()
  else expect(result === null ? null : toHex(result)).toBe(toHex(truth))
}

describe('verifyProof on real eth_getProof responses', () => {
  const files = loadVectorCases()
  const cases: ProofCase[] = files.flatMap((f) => [f.account, ...f.storage])

  it('has the five files, with one account absence and one storage absence', () => {
    expect(files).toHaveLength(5)
    expect(files.filter((f) => f.account.value === null)).toHaveLength(1)
    const storage = files.flatMap((f) => f.storage)
    expect(storage).toHaveLength(4)
    expect(storage.filter((s) => s.value === null)).toHaveLength(1)
  })

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const value = verifyProof(c.root, c.key, c.proof)
    expect(value === null ? null : toHex(value)).toBe(c.value === null ? null : toHex(c.value))
  })

  it.each(cases.map((c) => [c.name, c] as const))('%s agrees with @ethereumjs/mpt verifyMerkleProof', async (_n, c) => {
    const theirs = await verifyMerkleProof(c.key, c.proof, { root: c.root })
    const ours = verifyProof(c.root, c.key, c.proof)
    expect(ours === null ? null : toHex(ours)).toBe(theirs === null ? null : toHex(theirs))
  })

  it('rejects each real proof with any one of its nodes changed by one bit', () => {
    let checked = 0
    for (const c of cases) {
      for (let i = 0; i < c.proof.length; i++) {
        for (const at of [0, c.proof[i]!.length >> 1, c.proof[i]!.length - 1]) {
          const proof = c.proof.map((p) => p.slice())
          proof[i]![at]! ^= 1
          expect(() => verifyProof(c.root, c.key, proof), `${c.name} node ${i} byte ${at}`).toThrow(InvalidProofError)
          checked++
        }
      }
    }
    expect(checked).toBeGreaterThan(100)
  })

  it('rejects a real proof with a node dropped, and under another state root', () => {
    for (const c of cases) {
      for (let i = 0; i < c.proof.length; i++) {
        const proof = c.proof.filter((_, j) => j !== i)
        expect(() => verifyProof(c.root, c.key, proof)).toThrow(/proof node \d+ \(hash 0x[0-9a-f]{64}\) missing/)
      }
      const root = c.root.slice()
      root[5]! ^= 0x80
      expect(() => verifyProof(root, c.key, c.proof)).toThrow(InvalidProofError)
    }
  })

  it('proves the absent storage slot with a proof that ends where its path leaves the trie', () => {
    const absent = cases.find((c) => c.name.includes('storage') && c.value === null)!
    expect(absent.proof).toHaveLength(2)
    expect(verifyProof(absent.root, absent.key, absent.proof)).toBeNull()
    // The same proof does not prove the neighbouring slot of the other case, whose path goes further down.
    const present = cases.find((c) => equalBytes(c.root, absent.root) && c.value !== null)!
    expect(() => verifyProof(present.root, present.key, absent.proof)).toThrow(InvalidProofError)
  })
})

describe('createProof and verifyProof on random tries', () => {
  let big: BuiltTrie
  let small: BuiltTrie
  let absentKeys: Uint8Array[]

  beforeAll(async () => {
    const rng = new SeededRandom(1)
    big = await buildTrie(gethRandomEntries(rng, 500))
    small = await buildTrie(variableEntries(rng, 120))
    absentKeys = []
    for (let i = 0; i < 200; i++) absentKeys.push(rng.bytes(i % 3 === 0 ? 32 : 1 + (i % 5)))
    for (const e of small.entries) absentKeys.push(Uint8Array.of(...e.key, 0x42))
  })

  it('round-trips every present key of a 32-byte-key trie and a variable-length-key trie', async () => {
    for (const trie of [big, small]) {
      for (const e of trie.entries) {
        const proof = await createProof(trie.store, trie.root, e.key)
        expect(toHex(verifyProof(trie.root, e.key, proof)!)).toBe(toHex(e.value))
      }
    }
    // The variable-length trie does hold values in branch nodes (keys that are prefixes of others).
    expect(small.entries.some((a) => small.entries.some((b) => b.key.length > a.key.length && startsWith(b.key, a.key)))).toBe(true)
  })

  it('proves absent keys absent', async () => {
    for (const trie of [big, small]) {
      for (const key of absentKeys) {
        if (lookup(trie.entries, key) !== null) continue
        const proof = await createProof(trie.store, trie.root, key)
        expect(proof.length).toBeGreaterThan(0)
        expect(verifyProof(trie.root, key, proof)).toBeNull()
      }
    }
  })

  it('gives eth_getProof-shaped proofs: root first, each node referenced by hash from the one before', async () => {
    let embeddedSeen = 0
    for (const trie of [big, small]) {
      for (const key of [...trie.entries.map((e) => e.key), ...absentKeys]) {
        const proof = await createProof(trie.store, trie.root, key)
        expect(toHex(keccak256(proof[0]!))).toBe(toHex(trie.root))
        for (let i = 1; i < proof.length; i++) {
          // Nodes below 32 bytes are embedded in their parent and never a proof entry of their own.
          expect(proof[i]!.length).toBeGreaterThanOrEqual(32)
          expect(toHex(proof[i - 1]!)).toContain(toHex(keccak256(proof[i]!)).slice(2))
        }
      }
      // mpt's createMerkleProof lists embedded nodes as entries too; without them it is the same list.
      const mpt = await createMPT()
      for (const e of trie.entries) await mpt.put(e.key, e.value)
      for (const e of trie.entries) {
        const theirs = await createMerkleProof(mpt, e.key)
        const withoutEmbedded = theirs.filter((blob, i) => i === 0 || blob.length >= 32)
        embeddedSeen += theirs.length - withoutEmbedded.length
        const ours = await createProof(trie.store, trie.root, e.key)
        expect(ours.map(toHex)).toEqual(withoutEmbedded.map(toHex))
      }
    }
    expect(embeddedSeen).toBeGreaterThan(0)
  })

  it('accepts a proof in any order and with unused nodes, as go-ethereum does', async () => {
    const rng = new SeededRandom(2)
    const other = await createProof(big.store, big.root, big.entries[7]!.key)
    for (let i = 0; i < 50; i++) {
      const e = rng.pick(big.entries)
      const proof = await createProof(big.store, big.root, e.key)
      const shuffled = [rng.bytes(40), ...other, ...proof.slice().reverse(), rng.bytes(3)]
      expect(toHex(verifyProof(big.root, e.key, shuffled)!)).toBe(toHex(e.value))
    }
  })

  it('never gives a wrong answer for a tampered proof (fast-check, seeded)', async () => {
    const keys = [...big.entries.slice(0, 150).map((e) => e.key), ...small.entries.map((e) => e.key), ...absentKeys]
    const material: { trie: BuiltTrie; key: Uint8Array; proof: Uint8Array[] }[] = []
    for (const key of keys) {
      for (const trie of [big, small]) material.push({ trie, key, proof: await createProof(trie.store, trie.root, key) })
    }
    const tamper = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), node: fc.nat(), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('drop' as const), node: fc.nat() }),
      fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
      fc.record({ kind: fc.constant('junk' as const), junk: fc.uint8Array({ minLength: 0, maxLength: 600 }), at: fc.nat() }),
      fc.record({ kind: fc.constant('truncate' as const), node: fc.nat(), length: fc.nat() }),
      fc.record({ kind: fc.constant('root' as const), root: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
      fc.record({ kind: fc.constant('otherKey' as const), other: fc.nat() })
    )
    let rejected = 0
    let accepted = 0
    fc.assert(
      fc.property(fc.nat(material.length - 1), fc.array(tamper, { minLength: 1, maxLength: 3 }), (index, tampers) => {
        const { trie, key } = material[index]!
        let root = trie.root
        let proof = material[index]!.proof.map((p) => p.slice())
        for (const t of tampers) {
          const n = proof.length
          switch (t.kind) {
            case 'flip':
              if (n > 0) {
                const node = proof[t.node % n]!
                node[t.at % node.length]! ^= 1 << t.bit
              }
              break
            case 'drop':
              if (n > 0) proof.splice(t.node % n, 1)
              break
            case 'swap':
              if (n > 0) [proof[t.a % n], proof[t.b % n]] = [proof[t.b % n]!, proof[t.a % n]!]
              break
            case 'junk':
              proof.splice(t.at % (n + 1), 0, t.junk)
              break
            case 'truncate':
              if (n > 0) proof[t.node % n] = proof[t.node % n]!.subarray(0, t.length % proof[t.node % n]!.length)
              break
            case 'root':
              root = t.root
              break
            case 'otherKey':
              proof = material[t.other % material.length]!.proof.map((p) => p.slice())
              break
          }
        }
        const truth = equalBytes(root, trie.root) ? lookup(trie.entries, key) : null
        const result = outcome(root, key, proof)
        if (result instanceof Error) rejected++
        else accepted++
        // Under a random root nothing can verify (no blob hashes to it), so only the true trie's answer counts.
        if (!equalBytes(root, trie.root)) expect(result).toBeInstanceOf(InvalidProofError)
        else expectRejectedOrTrue(result, truth)
      }),
      { seed: 20240611, numRuns: 3000 }
    )
    // Both outcomes happen: swaps, junk and other keys' proofs often keep a proof valid.
    expect(rejected).toBeGreaterThan(300)
    expect(accepted).toBeGreaterThan(100)
  })
})

describe('createProof edge cases', () => {
  it('gives the empty proof for the empty root, which verifies as absence', async () => {
    const store = new MemoryStore()
    expect(await createProof(store, EMPTY_ROOT, Uint8Array.of(1, 2, 3))).toEqual([])
    expect(verifyProof(EMPTY_ROOT, Uint8Array.of(1, 2, 3), [])).toBeNull()
    expect(verifyProof(EMPTY_ROOT, new Uint8Array(0), [Uint8Array.of(0x80)])).toBeNull()
  })

  it('proves keys of a trie whose root node is shorter than 32 bytes', async () => {
    const trie = await buildTrie([
      { key: Uint8Array.of(1), value: Uint8Array.of(2) },
      { key: Uint8Array.of(1, 2), value: Uint8Array.of(3) }
    ])
    const proof = await createProof(trie.store, trie.root, Uint8Array.of(1, 2))
    expect(proof).toHaveLength(1)
    expect(proof[0]!.length).toBeLessThan(32)
    expect(verifyProof(trie.root, Uint8Array.of(1, 2), proof)).toEqual(Uint8Array.of(3))
    expect(verifyProof(trie.root, Uint8Array.of(1), proof)).toEqual(Uint8Array.of(2))
    expect(verifyProof(trie.root, Uint8Array.of(1, 2, 3), proof)).toBeNull()
    expect(verifyProof(trie.root, new Uint8Array(0), proof)).toBeNull()
  })

  it('throws MissingNodeError for a key whose path crosses a node the store lacks', async () => {
    const trie = await buildTrie(gethRandomEntries(new SeededRandom(3), 300))
    const victim = trie.entries[150]!
    const proof = await createProof(trie.store, trie.root, victim.key)
    const lost = keccak256(proof[proof.length - 1]!)
    await trie.store.del(lost)
    const err = await createProof(trie.store, trie.root, victim.key).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MissingNodeError)
    expect(toHex((err as MissingNodeError).hash)).toBe(toHex(lost))
    // Keys elsewhere in the trie are still provable.
    const elsewhere = trie.entries[0]!
    expect(verifyProof(trie.root, elsewhere.key, await createProof(trie.store, trie.root, elsewhere.key))).toEqual(elsewhere.value)
    await expect(createProof(new MemoryStore(), trie.root, victim.key)).rejects.toBeInstanceOf(MissingNodeError)
  })

  it('refuses a stored blob that does not hash to its key', async () => {
    const trie = await buildTrie(gethRandomEntries(new SeededRandom(4), 50))
    const blob = (await trie.store.get(trie.root))!.slice()
    blob[blob.length - 1]! ^= 1
    await trie.store.put(trie.root, blob)
    await expect(createProof(trie.store, trie.root, trie.entries[0]!.key)).rejects.toBeInstanceOf(InvalidNodeError)
  })

  it('stops with AbortError when its signal is aborted, before the walk or during it', async () => {
    const trie = await buildTrie(gethRandomEntries(new SeededRandom(5), 50))
    const key = trie.entries[0]!.key
    expect((await createProof(trie.store, trie.root, key)).length).toBeGreaterThan(1)
    const before = new AbortController()
    before.abort()
    const err = await createProof(trie.store, trie.root, key, { signal: before.signal }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AbortError)
    expect((err as AbortError).cause).toBe(before.signal.reason)
    // Aborted while it reads the root: it reads no further node.
    const during = new AbortController()
    const reads: string[] = []
    class AbortingStore extends WrappedStore {
      override get(k: Uint8Array): Promise<Uint8Array | undefined> {
        reads.push(toHex(k))
        during.abort()
        return super.get(k)
      }
    }
    await expect(createProof(new AbortingStore(trie.store), trie.root, key, { signal: during.signal })).rejects.toBeInstanceOf(
      AbortError
    )
    expect(reads).toEqual([toHex(trie.root)])
  })
})

describe('verifyProof input and error contract', () => {
  it('names the missing node', () => {
    const root = keccak256(Uint8Array.of(1))
    expect(() => verifyProof(root, Uint8Array.of(1), [])).toThrow(`proof node 0 (hash ${toHex(root)}) missing`)
  })

  it('reports a malformed node that is referenced by its hash', () => {
    for (const garbage of [Uint8Array.of(0xc0), Uint8Array.of(0x83, 1, 2, 3), Uint8Array.of(0xf8), Uint8Array.of(0xc2, 0x80, 0x80)]) {
      const err = outcome(keccak256(garbage), Uint8Array.of(1), [garbage])
      expect(err).toBeInstanceOf(InvalidProofError)
      expect((err as Error).message).toMatch(/^bad proof node 0: /)
      expect((err as Error).cause).toBeInstanceOf(InvalidNodeError)
    }
  })

  it('rejects wrong input types with InvalidInputError', () => {
    const bad = [
      () => verifyProof(new Uint8Array(31), Uint8Array.of(1), []),
      () => verifyProof('0x00' as unknown as Uint8Array, Uint8Array.of(1), []),
      () => verifyProof(EMPTY_ROOT, [1] as unknown as Uint8Array, []),
      () => verifyProof(EMPTY_ROOT, Uint8Array.of(1), null as unknown as Uint8Array[]),
      () => verifyProof(EMPTY_ROOT, Uint8Array.of(1), ['0xc0'] as unknown as Uint8Array[])
    ]
    for (const call of bad) expect(call).toThrow(InvalidInputError)
  })

  it('never throws anything but InvalidProofError on random proofs against a random root (seeded)', () => {
    const rng = new SeededRandom(6)
    const others: unknown[] = []
    let rejected = 0
    for (let i = 0; i < 2000; i++) {
      const nodes: Uint8Array[] = []
      for (let j = rng.int(4); j >= 0; j--) nodes.push(randomNodeish(rng))
      // Root the proof at one of its own nodes half the time, so the walk gets past the first lookup.
      const root = i % 2 === 0 ? keccak256(nodes[0]!) : rng.bytes(32)
      const result = outcome(root, rng.bytes(rng.int(4)), nodes)
      if (result instanceof InvalidProofError) rejected++
      else if (result !== null && !(result instanceof Uint8Array)) others.push(result)
    }
    expect(others).toEqual([])
    // The random proofs do reach the error path (nearly all of them are rejected).
    expect(rejected).toBeGreaterThan(1000)
  })
})

/** Random bytes that are often RLP lists of plausible node shape. */
function randomNodeish(rng: SeededRandom): Uint8Array {
  const items: Uint8Array[] = []
  const count = rng.pick([2, 17, rng.int(20)])
  let length = 0
  for (let i = 0; i < count; i++) {
    const item = rng.pick([new Uint8Array(0), rng.bytes(32), rng.bytes(rng.int(5)), Uint8Array.of(0x20 | rng.int(16))])
    const enc = item.length === 1 && item[0]! < 0x80 ? item : Uint8Array.of(0x80 + item.length, ...item)
    items.push(enc)
    length += enc.length
  }
  const header =
    length < 56
      ? Uint8Array.of(0xc0 + length)
      : length < 256
        ? Uint8Array.of(0xf8, length)
        : Uint8Array.of(0xf9, length >> 8, length & 0xff)
  const out = Uint8Array.of(...header, ...items.flatMap((x) => [...x]))
  if (rng.int(4) === 0) out[rng.int(out.length)] = rng.nextU32() & 0xff
  return out
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b)
}
