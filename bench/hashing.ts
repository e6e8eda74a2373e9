/**
 * keccak-256 implementations on the sync hot path (issue 7, item 5): which one should `keccak256` in
 * src/trie/keccak.ts use? Measures, for every implementation it can load,
 *   (a) raw keccak-256 throughput on trie-node-sized inputs (32, 110 and 532 bytes: a hash, an account leaf
 *       and a full branch of a 100k-account trie) and on 1 KiB items, in hashes/s;
 *   (b) end to end, what a verifying node does with every node it receives: keccak-256 + decodeNode of every
 *       node of a 100k-account trie, in nodes/s (and decodeNode alone, the floor no hasher can lower);
 *   (c) the scheduler path: a whole TrieSync of that trie (bench/scheduler.ts's loop), in nodes/s, measured
 *       with what keccak.ts uses and estimated for the others from their per-node hash cost in (b);
 * after checking each against @noble/hashes on every input length 0..1100 and on every node of that trie.
 * Each figure is the median of ROUNDS rounds, counted in CPU time of the main thread; within a round the
 * implementations take turns slice by slice in a shuffled order, so a burst of load elsewhere on the machine
 * (or a GC) spreads over all of them instead of landing on one.
 *
 *   npm run bench:hashing
 *   BENCH_MODULES=/tmp/hashers npm run bench:hashing    (also load candidates installed in /tmp/hashers,
 *                                                         e.g. `npm install --prefix /tmp/hashers js-sha3 keccak`)
 *
 * Candidates other than ours and @noble/hashes are optional: one that resolves neither from this package nor
 * from BENCH_MODULES is listed as not installed.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { IDEAL_BATCH_BYTES, MAX_NODES_PER_REQUEST } from '../src/constants.js'
import { accountEntries } from '../src/fixtures/generate.js'
import { MemoryStore } from '../src/store/memory-store.js'
import { TrieSync } from '../src/sync/trie-sync.js'
import { keccak256 } from '../src/trie/keccak.js'
import { keccak256Into } from '../src/trie/keccak-unrolled.js'
import { keccak256Into as keccak256IntoWasm, keccakUsesWasm } from '../src/trie/keccak-wasm.js'
import { decodeNode } from '../src/trie/node.js'
import { importSorted } from '../src/trie/stack-trie.js'
import { walkTrie } from '../src/trie/walk.js'
import { equalBytes } from '../src/util/bytes.js'
import { Prng } from '../src/util/prng.js'
import { median } from './processes.js'

/** Rounds per measurement; the median is reported. */
const ROUNDS = 5
/** Distinct inputs per raw size, so no implementation hashes the same bytes over and over. */
const RAW_INPUTS = 256
/** CPU time of one raw slice, and slices per round: 80 ms per implementation, size and round. */
const RAW_SLICE_MS = 5
const RAW_SLICES = 16
/** Trie nodes per end-to-end slice: every round is a whole pass over the trie for each implementation. */
const E2E_SLICE_NODES = 4096
const DECODE_ONLY = 'decodeNode alone'
const OURS = 'unrolled (ours)'
const NOBLE = '@noble/hashes'
/** The entry point everyone calls, whatever it uses: any dispatch it adds is part of its cost. */
const DEFAULT = 'dsfg keccak256 (keccak.ts)'
/** Whole TrieSyncs of the trie for the scheduler path. */
const SYNC_ROUNDS = 3
const RAW_SIZES = [32, 110, 532, 1024] as const
const TRIE_KEYS = 100_000
/** Correctness: every input length up to here (eight 136-byte blocks and change). */
const MAX_CHECKED_LENGTH = 1100
/** The issue's bar for changing the default: this much faster end to end, and correct everywhere. */
const SWITCH_SPEEDUP = 1.5

type Hash = (data: Uint8Array) => Uint8Array

interface Candidate {
  name: string
  version: string
  hash: Hash
}

interface Unavailable {
  name: string
  reason: string
}

const requireHere = createRequire(import.meta.url)

/** Loads an optional package from this package's node_modules, else from `$BENCH_MODULES`. */
function loadOptional(specifier: string): unknown {
  try {
    return requireHere(specifier)
  } catch (err) {
    const dir = process.env['BENCH_MODULES']
    if (dir === undefined) throw err
    return createRequire(join(dir, 'package.json'))(specifier)
  }
}

/** The version in the package.json that `pkg` resolves to (some packages do not export their package.json). */
function versionOf(pkg: string): string {
  const dirs = [...(requireHere.resolve.paths(pkg) ?? [])]
  const extra = process.env['BENCH_MODULES']
  if (extra !== undefined) dirs.push(join(extra, 'node_modules'))
  for (const dir of dirs) {
    try {
      return (JSON.parse(readFileSync(join(dir, pkg, 'package.json'), 'utf8')) as { version: string }).version
    } catch {}
  }
  return '?'
}

/** Our unrolled permutation on its own, allocating the digest as keccak.ts does. */
function unrolled(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32)
  keccak256Into(data, out, 0)
  return out
}

/** Our WebAssembly permutation on its own (what keccak.ts now calls), allocating the digest the same way. */
function ownWasm(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32)
  keccak256IntoWasm(data, out, 0)
  return out
}

interface HashWasmKeccak {
  init(): unknown
  update(data: Uint8Array): unknown
  digest(type: 'binary'): Uint8Array
}

/** The candidates that load here, each with the reason for the ones that do not. */
async function loadCandidates(): Promise<{ candidates: Candidate[]; unavailable: Unavailable[] }> {
  const candidates: Candidate[] = [
    { name: OURS, version: 'src/trie/keccak-unrolled.ts', hash: unrolled },
    { name: NOBLE, version: versionOf('@noble/hashes'), hash: keccak_256 }
  ]
  const unavailable: Unavailable[] = []
  if (keccakUsesWasm()) candidates.push({ name: 'WebAssembly (ours)', version: 'src/trie/keccak-wasm.ts', hash: ownWasm })
  else unavailable.push({ name: 'WebAssembly (ours)', reason: 'WebAssembly is not available in this process' })
  const optional: [name: string, pkg: string, load: () => Promise<Hash>][] = [
    [
      'hash-wasm',
      'hash-wasm',
      async () => {
        const mod = loadOptional('hash-wasm') as { createKeccak(bits: number): Promise<HashWasmKeccak> }
        // One instance, reused: init/update/digest are synchronous once it exists.
        const h = await mod.createKeccak(256)
        return (data) => {
          h.init()
          h.update(data)
          return h.digest('binary')
        }
      }
    ],
    [
      '@polkadot/wasm-crypto',
      '@polkadot/wasm-crypto',
      async () => {
        const mod = loadOptional('@polkadot/wasm-crypto') as {
          waitReady(): Promise<boolean>
          keccak256(data: Uint8Array): Uint8Array
        }
        if (!(await mod.waitReady())) throw new Error('its WebAssembly did not initialise')
        return (data) => mod.keccak256(data)
      }
    ],
    [
      'keccak (native addon)',
      'keccak',
      async () => {
        // `keccak/bindings` is the prebuilt N-API addon alone (plain `keccak` falls back to JS silently).
        const create = loadOptional('keccak/bindings') as (algorithm: string) => {
          update(data: Buffer): { digest(): Buffer }
        }
        return (data) => create('keccak256').update(Buffer.from(data.buffer, data.byteOffset, data.length)).digest()
      }
    ],
    [
      'js-sha3',
      'js-sha3',
      async () => {
        const mod = loadOptional('js-sha3') as { keccak256: { arrayBuffer(data: Uint8Array): ArrayBuffer } }
        return (data) => new Uint8Array(mod.keccak256.arrayBuffer(data))
      }
    ],
    [
      'sha3',
      'sha3',
      async () => {
        const mod = loadOptional('sha3') as {
          Keccak: new (bits: number) => { update(data: Buffer): unknown; digest(): Buffer }
        }
        return (data) => {
          const h = new mod.Keccak(256)
          h.update(Buffer.from(data.buffer, data.byteOffset, data.length))
          return h.digest()
        }
      }
    ]
  ]
  for (const [name, pkg, load] of optional) {
    try {
      candidates.push({ name, version: versionOf(pkg), hash: await load() })
    } catch (err) {
      unavailable.push({ name, reason: err instanceof Error ? err.message.split('\n')[0]! : String(err) })
    }
  }
  candidates.push({ name: DEFAULT, version: 'src/trie/keccak.ts', hash: keccak256 })
  return { candidates, unavailable }
}

/** Where `hash` disagrees with @noble/hashes, or `null`: every length 0..MAX_CHECKED_LENGTH, then `blobs`. */
function firstMismatch(hash: Hash, lengths: Uint8Array[], blobs: Uint8Array[], expected: Uint8Array[]): string | null {
  for (const data of lengths) {
    if (!equalBytes(hash(data), keccak_256(data))) return `${data.length}-byte input`
  }
  for (let i = 0; i < blobs.length; i++) if (!equalBytes(hash(blobs[i]!), expected[i]!)) return `trie node ${i}`
  // A digest that aliases internal state would change under the next call.
  const first = hash(lengths[1]!)
  const copy = first.slice()
  hash(lengths[2]!)
  return equalBytes(first, copy) ? null : 'digest is overwritten by the next call'
}

/** CPU time of this thread in ms: unlike wall time, it does not count the waits of a busy machine. */
function cpuMs(): number {
  const { user, system } = process.threadCpuUsage()
  return (user + system) / 1000
}

interface Task {
  name: string
  /** Processes slice `i` of the work; returns how many units (hashes, nodes) it did. */
  run: (i: number) => number
}

/**
 * Units per CPU-second of every task, one sample per round. A round runs every task over the same `slices`,
 * taking turns slice by slice in a shuffled order, so load elsewhere on the machine, CPU frequency changes and
 * the GC work one task leaves to whichever runs next spread over all tasks instead of landing on one.
 */
function interleaved(tasks: Task[], slices: number, rounds: number): Map<string, number[]> {
  const samples = new Map<string, number[]>(tasks.map((t) => [t.name, []]))
  const prng = new Prng(11)
  for (const t of tasks) t.run(0) // warm-up: compile every path before timing it
  for (let round = 0; round < rounds; round++) {
    const ms = new Map<string, number>(tasks.map((t) => [t.name, 0]))
    const units = new Map<string, number>(tasks.map((t) => [t.name, 0]))
    for (let i = 0; i < slices; i++) {
      for (const t of shuffled(tasks, prng)) {
        const t0 = cpuMs()
        const n = t.run(i)
        ms.set(t.name, ms.get(t.name)! + cpuMs() - t0)
        units.set(t.name, units.get(t.name)! + n)
      }
    }
    for (const t of tasks) samples.get(t.name)!.push(units.get(t.name)! / (ms.get(t.name)! / 1000))
  }
  return samples
}

function shuffled<T>(xs: readonly T[], prng: Prng): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.int(i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

interface Trie {
  store: MemoryStore
  root: Uint8Array
  blobs: Uint8Array[]
}

async function accountTrie(keys: number): Promise<Trie> {
  const store = new MemoryStore()
  const { root } = await importSorted(store, accountEntries(1, keys))
  const blobs: Uint8Array[] = []
  for await (const node of walkTrie(store, root)) blobs.push(node.blob)
  return { store, root, blobs }
}

/**
 * Nodes per CPU-second of a whole TrieSync of `trie` from an in-process "peer" (the loop of
 * bench/scheduler.ts): the scheduler path, where hashing is one cost among the scheduler's own.
 */
async function schedulerRate(trie: Trie): Promise<number> {
  const sync = new TrieSync(trie.root, new MemoryStore())
  const t0 = cpuMs()
  while (sync.pending > 0) {
    const got = await trie.store.getMany(sync.missing(MAX_NODES_PER_REQUEST))
    await sync.processMany(got as Uint8Array[])
    if (sync.memSize >= IDEAL_BATCH_BYTES) await sync.commit()
  }
  await sync.commit()
  return trie.blobs.length / ((cpuMs() - t0) / 1000)
}

function progress(message: string): void {
  process.stderr.write(`[hashing] ${message}\n`)
}

export async function runHashingBench(): Promise<Record<string, unknown>> {
  const { candidates, unavailable } = await loadCandidates()
  for (const u of unavailable) progress(`${u.name}: not loaded (${u.reason})`)

  progress(`building a ${TRIE_KEYS}-key account trie`)
  const trie = await accountTrie(TRIE_KEYS)
  const blobs = trie.blobs
  const blobBytes = blobs.reduce((sum, b) => sum + b.length, 0)
  const prng = new Prng(7)
  const lengths = Array.from({ length: MAX_CHECKED_LENGTH + 1 }, (_, n) => prng.bytes(n))
  const expected = blobs.map((b) => keccak_256(b))
  const correctness: Record<string, string> = {}
  for (const c of candidates) {
    const mismatch = firstMismatch(c.hash, lengths, blobs, expected)
    correctness[c.name] = mismatch === null ? 'ok' : `WRONG at ${mismatch}`
  }
  progress(`correctness: ${JSON.stringify(correctness)}`)

  const raw: Record<string, Record<string, number>> = {}
  for (const size of RAW_SIZES) {
    const inputs = Array.from({ length: RAW_INPUTS }, () => prng.bytes(size))
    const tasks = candidates.map((c) => ({
      name: c.name,
      run: () => {
        // Whole passes over the inputs for RAW_SLICE_MS, so a slow implementation costs no more time than a fast one.
        const t0 = cpuMs()
        let n = 0
        do {
          for (const data of inputs) c.hash(data)
          n += inputs.length
        } while (cpuMs() - t0 < RAW_SLICE_MS)
        return n
      }
    }))
    const samples = interleaved(tasks, RAW_SLICES, ROUNDS)
    raw[`${size} B`] = Object.fromEntries([...samples].map(([name, xs]) => [name, Math.round(median(xs))]))
    progress(`raw ${size} B, hashes/s: ${JSON.stringify(raw[`${size} B`])}`)
  }

  // End to end only for what could win there: an implementation slower than ours on every size cannot be
  // faster once decoding is added. @noble/hashes stays in as the reference the issue quotes.
  const contenders = candidates.filter(
    (c) =>
      c.name === OURS ||
      c.name === NOBLE ||
      c.name === DEFAULT ||
      RAW_SIZES.some((n) => raw[`${n} B`]![c.name]! > raw[`${n} B`]![OURS]!)
  )
  const slices = Math.ceil(blobs.length / E2E_SLICE_NODES)
  const blobSlices = Array.from({ length: slices }, (_, i) => blobs.slice(i * E2E_SLICE_NODES, (i + 1) * E2E_SLICE_NODES))
  const tasks: Task[] = contenders.map((c) => ({
    name: c.name,
    run: (i) => {
      const slice = blobSlices[i]!
      for (const blob of slice) {
        c.hash(blob)
        decodeNode(blob)
      }
      return slice.length
    }
  }))
  tasks.push({
    name: DECODE_ONLY,
    run: (i) => {
      const slice = blobSlices[i]!
      for (const blob of slice) decodeNode(blob)
      return slice.length
    }
  })
  const samples = interleaved(tasks, slices, ROUNDS)
  const oursRounds = samples.get(OURS)!
  const oursRate = median(oursRounds)
  const endToEnd: Record<string, { nodesPerS: number; vsOurs: number; vsOursByRound: number[] }> = {}
  for (const [name, xs] of samples) {
    endToEnd[name] = {
      nodesPerS: Math.round(median(xs)),
      vsOurs: round2(median(xs) / oursRate),
      vsOursByRound: xs.map((x, i) => round2(x / oursRounds[i]!))
    }
  }
  const skipped = candidates.filter((c) => !contenders.includes(c)).map((c) => c.name)
  progress(`end to end, nodes/s: ${JSON.stringify(endToEnd)}`)

  // The scheduler path can only be run with what keccak.ts uses; for the others it is estimated by swapping
  // the per-node hash cost measured above (end to end minus decoding alone) into the measured time per node.
  const syncRounds: number[] = []
  for (let round = 0; round < SYNC_ROUNDS; round++) syncRounds.push(await schedulerRate(trie))
  const syncRate = median(syncRounds)
  const decodeSeconds = 1 / median(samples.get(DECODE_ONLY)!)
  const hashSeconds = (name: string): number => 1 / median(samples.get(name)!) - decodeSeconds
  const scheduler: Record<string, number> = { [`${DEFAULT}, measured`]: Math.round(syncRate) }
  for (const c of contenders) {
    if (c.name === DEFAULT) continue
    const perNode = 1 / syncRate - hashSeconds(DEFAULT) + hashSeconds(c.name)
    scheduler[`${c.name}, estimated`] = Math.round(1 / perNode)
  }
  progress(`scheduler path, nodes/s: ${JSON.stringify(scheduler)}`)

  const best = contenders
    .filter((c) => c.name !== OURS && c.name !== DEFAULT && correctness[c.name] === 'ok')
    .map((c) => ({ name: c.name, speedup: endToEnd[c.name]!.vsOurs }))
    .sort((a, b) => b.speedup - a.speedup)[0]
  const decision =
    best !== undefined && best.speedup >= SWITCH_SPEEDUP
      ? `${best.name} is ${best.speedup}x ours end to end (bar: ${SWITCH_SPEEDUP}x) and correct on every vector`
      : `nothing correct reaches ${SWITCH_SPEEDUP}x ours end to end (best: ${best?.name ?? 'none'} at ${best?.speedup ?? '-'}x)`

  return {
    node: process.version,
    machine: { cpus: cpus().length, loadavg: loadavg().map(round2) },
    method: `median of ${ROUNDS} rounds, per thread CPU-second, implementations interleaved`,
    candidates: Object.fromEntries(candidates.map((c) => [c.name, { version: c.version, vectors: correctness[c.name] }])),
    unavailable: Object.fromEntries(unavailable.map((u) => [u.name, u.reason])),
    rawHashesPerS: raw,
    trie: { keys: TRIE_KEYS, nodes: blobs.length, MB: round2(blobBytes / 1024 / 1024) },
    endToEndNodesPerS: endToEnd,
    endToEndSkipped: skipped,
    schedulerNodesPerS: scheduler,
    decision
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await runHashingBench(), null, 2))
}
