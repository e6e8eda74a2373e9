/**
 * Proof verification throughput: ours (src/proof) against @ethereumjs/mpt's verifiers, on the real
 * eth_getProof vectors and on a 10k-key random trie; and range proofs of several sizes. Also replays a set of
 * range-proof cases through both range verifiers and prints where they disagree.
 *
 * Run with the package's Node 22 (bench/register.mjs maps the sources' `.js` imports to their `.ts` files):
 *   npx node --import ./bench/register.mjs bench/proof.ts
 */
import { verifyMerkleProof, verifyMerkleRangeProof } from '@ethereumjs/mpt'
import { createProof, createRangeProof, verifyProof, verifyRangeProof } from '../src/index.js'
import { buildTrie, decreaseKey, type Entry, increaseKey, Prng } from '../test/proof/helpers.js'
import { loadVectorCases } from '../test/proof/vectors.js'

interface Case {
  root: Uint8Array
  key: Uint8Array
  proof: Uint8Array[]
}

interface RangeCase {
  root: Uint8Array
  first: Uint8Array
  last: Uint8Array
  keys: Uint8Array[]
  values: Uint8Array[]
  proof: Uint8Array[]
}

/** Measurement rounds per verifier, alternating between the two; the best round counts. */
const ROUNDS = 5
const ROUND_MS = 400
const RNG_SEED = 7

/**
 * Items per second of `fn` over `items` (round-robin), best of ROUNDS rounds of at least ROUND_MS. The best
 * round is the one least disturbed by whatever else the machine is doing.
 */
async function rate<T>(items: T[], fn: (item: T) => unknown, round: number, best: number[]): Promise<void> {
  if (round === 0) for (const item of items.slice(0, 50)) await fn(item)
  let done = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < ROUND_MS) {
    for (const item of items) await fn(item)
    done += items.length
    elapsed = performance.now() - start
  }
  best[0] = Math.max(best[0] ?? 0, (done / elapsed) * 1000)
}

/** Best rates of the two verifiers, measured in alternating rounds so both see the same machine load. */
async function versus<T>(items: T[], ours: (item: T) => unknown, theirs: (item: T) => unknown): Promise<[number, number]> {
  const a: number[] = []
  const b: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    await rate(items, ours, round, a)
    await rate(items, theirs, round, b)
  }
  return [a[0]!, b[0]!]
}

function fmt(perSecond: number): string {
  const digits = perSecond < 10 ? 1 : 0
  return perSecond.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }).padStart(10)
}

/** Single-key proof verifications per second of both verifiers on the same proofs. */
export interface ProofRates {
  name: string
  ours: number
  mpt: number
}

async function compareSingle(name: string, cases: Case[]): Promise<ProofRates> {
  const [ours, mpt] = await versus(
    cases,
    (c) => verifyProof(c.root, c.key, c.proof),
    (c) => verifyMerkleProof(c.key, c.proof, { root: c.root })
  )
  return { name, ours: Math.round(ours), mpt: Math.round(mpt) }
}

interface SingleCases {
  real: Case[]
  trie: Awaited<ReturnType<typeof buildTrie>>
  present: Case[]
  absent: Case[]
}

/** The real eth_getProof vectors, and 1000 present and 1000 absent keys of a 10k-key random trie. */
async function singleCases(rng: Prng): Promise<SingleCases> {
  const real = loadVectorCases(new URL('../fixtures/vectors/proofs/', import.meta.url)).flatMap((f) => [f.account, ...f.storage])
  const entries: Entry[] = Array.from({ length: 10_000 }, () => ({ key: rng.bytes(32), value: rng.bytes(1 + rng.int(40)) }))
  const trie = await buildTrie(entries)
  const present: Case[] = []
  const absent: Case[] = []
  for (let i = 0; i < 1000; i++) {
    const key = trie.entries[rng.int(trie.entries.length)]!.key
    present.push({ root: trie.root, key, proof: await createProof(trie.store, trie.root, key) })
    const missing = rng.bytes(32)
    absent.push({ root: trie.root, key: missing, proof: await createProof(trie.store, trie.root, missing) })
  }
  return { real, trie, present, absent }
}

async function compareSingles(cases: SingleCases): Promise<ProofRates[]> {
  return [
    await compareSingle('verifyProof, real eth_getProof vectors', cases.real),
    await compareSingle('verifyProof, 10k-key trie, present keys', cases.present),
    await compareSingle('verifyProof, 10k-key trie, absent keys', cases.absent)
  ]
}

/** Single-key proof verification rates, ours and @ethereumjs/mpt's, on the cases `main` starts with. */
export async function measureSingleProofs(): Promise<ProofRates[]> {
  return compareSingles(await singleCases(new Prng(RNG_SEED)))
}

async function compareRange(name: string, cases: RangeCase[]): Promise<void> {
  const [ours, mpt] = await versus(
    cases,
    (c) => verifyRangeProof(c.root, c.first, c.last, c.keys, c.values, c.proof),
    (c) => mptRange(c)
  )
  print(name, ours, mpt)
}

function print(name: string, ours: number, mpt: number): void {
  console.log(`${name.padEnd(44)} ours ${fmt(ours)} proofs/s   mpt ${fmt(mpt)} proofs/s   x${(ours / mpt).toFixed(1)}`)
}

/** mpt's range verifier with our conventions: an empty proof is the all-elements case. */
function mptRange(c: RangeCase): Promise<boolean> {
  if (c.proof.length === 0) return verifyMerkleRangeProof(c.root, null, null, c.keys, c.values, null)
  const lastKey = c.keys.length === 0 ? null : c.last
  return verifyMerkleRangeProof(c.root, c.first, lastKey, c.keys, c.values, c.proof)
}

async function rangeCase(trie: Awaited<ReturnType<typeof buildTrie>>, start: number, count: number): Promise<RangeCase> {
  const range = trie.entries.slice(start, start + count)
  const first = range[0]!.key
  const last = range[range.length - 1]!.key
  return {
    root: trie.root,
    first,
    last,
    keys: range.map((e) => e.key),
    values: range.map((e) => e.value),
    proof: await createRangeProof(trie.store, trie.root, first, last)
  }
}

/** Both verifiers on honest and broken cases; prints each disagreement in outcome. */
async function differential(trie: Awaited<ReturnType<typeof buildTrie>>, rng: Prng): Promise<void> {
  const entries = trie.entries
  const cases: { label: string; c: RangeCase }[] = []
  for (let i = 0; i < 300; i++) {
    const start = rng.int(entries.length)
    const count = 1 + rng.int(Math.min(300, entries.length - start))
    const base = await rangeCase(trie, start, count)
    const shape = rng.int(7)
    if (shape === 0) cases.push({ label: 'existent edges', c: base })
    if (shape === 1) {
      const first = decreaseKey(base.first)
      const last = increaseKey(base.last)
      const proof = await createRangeProof(trie.store, trie.root, first, last)
      cases.push({ label: 'non-existent edges', c: { ...base, first, last, proof } })
    }
    if (shape === 2) {
      const keys = base.keys.slice()
      const values = base.values.slice()
      keys.splice(rng.int(keys.length), 1)
      values.splice(0, 1)
      if (keys.length > 0) cases.push({ label: 'element dropped', c: { ...base, keys, values } })
    }
    if (shape === 3) {
      // Keys outside the edges, with a proof that covers them (go-ethereum #33898).
      const wider = await rangeCase(trie, Math.max(0, start - 2), count + 2)
      const proof = [...wider.proof, ...(await createProof(trie.store, trie.root, base.first))]
      cases.push({ label: 'keys before firstKey', c: { ...wider, first: base.first, proof } })
    }
    if (shape === 4) {
      const key = increaseKey(entries[entries.length - 1]!.key)
      const proof = await createProof(trie.store, trie.root, key)
      cases.push({ label: 'zero elements at the end', c: { ...base, first: key, last: key, keys: [], values: [], proof } })
    }
    if (shape === 5) {
      const e = entries[start]!
      const proof = await createRangeProof(trie.store, trie.root, decreaseKey(e.key), increaseKey(e.key))
      const c = { ...base, first: decreaseKey(e.key), last: increaseKey(e.key), keys: [e.key], values: [e.value], proof }
      cases.push({ label: 'one element, non-existent edges', c })
    }
    if (shape === 6) {
      const key = increaseKey(entries[start]!.key)
      const proof = await createProof(trie.store, trie.root, key)
      cases.push({ label: 'zero elements, more to the right', c: { ...base, first: key, last: key, keys: [], values: [], proof } })
    }
  }
  const tally = new Map<string, { agree: number; messagesDiffer: number; verdictsDiffer: string[] }>()
  for (const { label, c } of cases) {
    const ours = await settle(() => verifyRangeProof(c.root, c.first, c.last, c.keys, c.values, c.proof).more)
    const theirs = await settle(() => mptRange(c))
    const t = tally.get(label) ?? { agree: 0, messagesDiffer: 0, verdictsDiffer: [] }
    if (ours.verdict !== theirs.verdict) t.verdictsDiffer.push(`ours ${ours.detail}, mpt ${theirs.detail}`)
    else {
      t.agree++
      if (ours.detail !== theirs.detail) t.messagesDiffer++
    }
    tally.set(label, t)
  }
  for (const [label, t] of tally) {
    const sample = t.verdictsDiffer.length > 0 ? `   e.g. ${t.verdictsDiffer[0]}` : ''
    console.log(
      `  ${label.padEnd(34)} same verdict ${String(t.agree).padStart(3)} (other error text ${String(t.messagesDiffer).padStart(3)})` +
        `  different verdict ${String(t.verdictsDiffer.length).padStart(3)}${sample}`
    )
  }
}

/** "more=…" or "error", with the error text as detail. */
async function settle(fn: () => unknown): Promise<{ verdict: string; detail: string }> {
  try {
    const verdict = `more=${String(await fn())}`
    return { verdict, detail: verdict }
  } catch (err) {
    return { verdict: 'error', detail: `error(${(err as Error).message.slice(0, 60)})` }
  }
}

async function main(): Promise<void> {
  const rng = new Prng(RNG_SEED)
  const single = await singleCases(rng)
  console.log(`node ${process.version}, ${single.real.length} real proofs; best of ${ROUNDS} rounds of ${ROUND_MS} ms each\n`)
  for (const rates of await compareSingles(single)) print(rates.name, rates.ours, rates.mpt)
  const trie = single.trie

  for (const size of [1, 10, 100, 1000]) {
    const cases: RangeCase[] = []
    for (let i = 0; i < 20; i++) cases.push(await rangeCase(trie, rng.int(trie.entries.length - size), size))
    await compareRange(`verifyRangeProof, ${size} keys of 10k`, cases)
  }
  const all = trie.entries
  const allCase: RangeCase = {
    root: trie.root,
    first: new Uint8Array(0),
    last: new Uint8Array(0),
    keys: all.map((e) => e.key),
    values: all.map((e) => e.value),
    proof: []
  }
  await compareRange('verifyRangeProof, all 10k keys, no proof', [allCase])

  console.log('\nrange verifiers on the same cases (outcome: more=… or the error):')
  await differential(trie, rng)
}

if (import.meta.main) await main()
