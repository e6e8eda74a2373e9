import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NODE_KEY_FILE } from '../../src/cli/node-key.js'
import { PROGRESS_INTERVAL_ENV } from '../../src/cli/progress.js'
import { accountEntries } from '../../src/fixtures/generate.js'
import { LevelStore } from '../../src/store/level-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import { checkStoredSubtries, checkTrieComplete } from '../../src/trie/walk.js'
import { fromHex, toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { createAdversary } from '../helpers/adversary.js'
import { storedNodeKeys } from '../helpers/stored-keys.js'
import { until } from '../helpers/wait.js'
import { builtCliBin, CLI_BUILD_TIMEOUT_MS } from '../helpers/built-cli.js'
import { REPO_ROOT, runCli } from './cli-harness.js'

/** Makes the next `dsfg sync` on `data` run as a new peer: it creates a new key when there is none. */
export function newIdentity(data: string): Promise<void> {
  return rm(join(data, NODE_KEY_FILE), { force: true })
}

/**
 * The crash-safety loop of DESIGN §6 ("a kill at any moment loses at most the uncommitted in-memory work"):
 * `dsfg sync --root` runs as a child process on one LevelDB and is SIGKILLed `kills` times at seeded random
 * moments, then left to finish. Between runs, with the child gone and the LevelDB lock free, the test process
 * lists every key the killed child left and checks each stored node's whole subtrie is stored.
 */

export interface CrashLoopInit {
  /** The compiled `cli/bin.js` (see `builtCliBin`). */
  bin: string
  /** Directory for the client's LevelDB; must not exist yet or hold nothing but an earlier loop's store. */
  dir: string
  /** Seeds both the trie (`accountEntries(seed, accounts)`) and the kill delays. */
  seed: number
  kills: number
  accounts: number
  /**
   * Every nodes request waits this long on the server, so a loopback sync is slow enough for the kill to land
   * where it was aimed rather than a poll interval later.
   * @default 5
   */
  serveDelayMs?: number
  /**
   * Where each kill lands: once the server has answered the run a seeded fraction in `[min, max]` of the nodes
   * not yet stored, plus a seeded 0-50 ms. Aiming by progress, not by wall time, spreads the kills over the whole sync
   * on a slow or loaded machine alike, and with `max < 1` no run can finish before its kill.
   * @default [0.05, 0.6]
   */
  killAt?: readonly [number, number]
  /** Bound on each run, killed or final. @default 60_000 */
  runTimeoutMs?: number
  /** What each run is stopped with: SIGINT and SIGTERM stop it cleanly instead. @default 'SIGKILL' */
  killSignal?: NodeJS.Signals
}

/** What one kill left behind, checked before the next run started. */
export interface KillRecord {
  /** Nodes the server had answered the killed run when the kill was aimed. */
  aimedAt: number
  /** Extra wait before the kill. */
  jitterMs: number
  /** How the run exited. */
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
  /** Hashes requested by the killed run. */
  requested: number
  /** Nodes in the store after the kill. */
  stored: number
  /** From `checkStoredSubtries` over every stored node: both must be 0. */
  missing: number
  incomplete: number
  /** Hashes the next run requested although they were stored when it started: must be 0. */
  refetched: number
}

export interface CrashLoopReport {
  root: string
  kills: KillRecord[]
  final: {
    code: number | null
    /** The final run's JSON summary (or its stderr when it printed none). */
    summary: unknown
    requested: number
    /** `checkTrieComplete` on the final store. */
    complete: boolean
    nodes: number
  }
}

const DEFAULT_SERVE_DELAY_MS = 5
const DEFAULT_KILL_AT: readonly [number, number] = [0.05, 0.6]
const MAX_KILL_JITTER_MS = 50
const DEFAULT_RUN_TIMEOUT_MS = 60_000
const EXIT_TIMEOUT_MS = 5_000

/**
 * Registers one test that runs `crashLoop` with `init` against the run's compiled CLI in a temporary
 * directory and asserts `expectCrashSafe` on the report.
 */
export function describeCrashLoop(
  name: string,
  init: Omit<CrashLoopInit, 'bin' | 'dir'>,
  timeoutMs: number
): void {
  describe(name, () => {
    let bin: string | undefined
    let work: string | undefined
    beforeAll(async () => {
      bin = await builtCliBin()
      work = await mkdtemp(join(tmpdir(), 'dsfg-crash-'))
    }, CLI_BUILD_TIMEOUT_MS)
    afterAll(async () => {
      if (work !== undefined) await rm(work, { recursive: true, force: true })
    })
    it(`keeps only complete subtries after each of ${init.kills} kills, finishes, and never fetches a committed node again`, async () => {
      expectCrashSafe(await crashLoop({ ...init, bin: bin!, dir: work! }), init.kills)
    }, timeoutMs)
  })
}

export async function crashLoop(init: CrashLoopInit): Promise<CrashLoopReport> {
  const [minAt, maxAt] = init.killAt ?? DEFAULT_KILL_AT
  const runTimeoutMs = init.runTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS
  const serveDelayMs = init.serveDelayMs ?? DEFAULT_SERVE_DELAY_MS
  const source = new MemoryStore()
  const { root } = await importSorted(source, accountEntries(init.seed, init.accounts))
  const total = (await checkTrieComplete(source, root)).nodes
  // Requests by the requesting peer: every `dsfg sync` run starts a node with a fresh identity (the node key
  // the run before left in --data is removed first), so a request still in flight from a killed run can never
  // be counted against the run after it.
  const byPeer = new Map<string, string[]>()
  // Nodes answered by the requesting peer (counted once a request's delay has passed): the kills are aimed by
  // these, since a run asks for up to 4 × 1,024 nodes long before it has any of them to store.
  const answeredBy = new Map<string, number>()
  const server = await createAdversary({
    store: source,
    behaviour: {
      nodes: ({ peer, request }) => {
        const list = byPeer.get(peer) ?? []
        byPeer.set(peer, list)
        for (const hash of request.hashes) list.push(toHex(hash))
        setTimeout(() => answeredBy.set(peer, (answeredBy.get(peer) ?? 0) + request.hashes.length), serveDelayMs)
        // Nodes only, so the kills can be aimed by nodes answered, and land between many commits: with subtries
        // sent as their leaves a sync of this trie is a handful of requests. The crash safety of a sync taking
        // subtries is `state-syncer-subtries.test.ts`'s (a store failing mid-sync).
        return { delayMs: serveDelayMs, plain: true }
      }
    }
  })
  const data = join(init.dir, 'client')
  const args = ['sync', '--data', data, '--peer', server.node.getMultiaddrs()[0]!.toString(), '--root', toHex(root)]
  const prng = new Prng(init.seed)
  const kills: KillRecord[] = []
  let child: ChildProcess | undefined
  try {
    let stored = new Set<string>()
    for (let k = 0; k < init.kills; k++) {
      await newIdentity(data)
      const known = new Set(byPeer.keys())
      child = spawn(process.execPath, [init.bin, ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, DSFG_DEBUG: '', [PROGRESS_INTERVAL_ENV]: '20' },
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: runTimeoutMs
      })
      const stderr: Buffer[] = []
      // The most nodes the run reported stored (its progress lines, `"stored":N`): the last kill waits for some.
      let reportedStored = 0
      let partial = ''
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr.push(chunk)
        const lines = (partial + chunk.toString('utf8')).split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) {
          const stored = /"stored":(\d+)/.exec(line)
          if (stored !== null) reportedStored = Math.max(reportedStored, Number(stored[1]))
        }
      })
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child!.on('close', (code, signal) => resolve({ code, signal }))
      )
      let early: { code: number | null } | undefined
      void exited.then((e) => {
        early = e
      })
      const runPeer = (): string | undefined => [...byPeer.keys()].find((p) => !known.has(p))
      const ran = (): number => answeredBy.get(runPeer() ?? '') ?? 0
      const aimedAt = Math.max(1, Math.round((total - stored.size) * (minAt + (prng.int(1001) / 1000) * (maxAt - minAt))))
      // The last kill also waits for the run to have stored something, so the loop always ends with committed
      // work to resume from (the first levels of a trie complete nothing, and a loaded run stores later than
      // its answers suggest: three kills once all landed before the first write).
      const last = k === init.kills - 1 && stored.size === 0
      await until(
        () => (ran() >= aimedAt && (!last || reportedStored > 0)) || early !== undefined,
        `run ${k + 1} to be answered ${aimedAt} nodes${last ? ' and store some' : ''}`,
        runTimeoutMs,
        2
      )
      const jitterMs = prng.int(MAX_KILL_JITTER_MS + 1)
      await new Promise((r) => setTimeout(r, jitterMs))
      if (early !== undefined) {
        throw new Error(
          `run ${k + 1} exited (code ${early.code}) before kill ${k + 1} of ${init.kills}: ` +
            `${Buffer.concat(stderr).toString('utf8').trim() || 'no stderr'}`
        )
      }
      const killSignal = init.killSignal ?? 'SIGKILL'
      child.kill(killSignal)
      const { code, signal } = await withTimeout(exited, EXIT_TIMEOUT_MS, `run ${k + 1} to exit after ${killSignal}`)
      child = undefined
      const requested = byPeer.get(runPeer()!) ?? []
      // The previous kill's record is completed with what this run asked for.
      if (k > 0) kills[k - 1]!.refetched = countIn(requested, stored)
      stored = await storedNodeKeys(data)
      const check = await checkStoredSubtriesAt(data, stored)
      kills.push({
        aimedAt,
        jitterMs,
        code,
        signal,
        stderr: Buffer.concat(stderr).toString('utf8'),
        requested: requested.length,
        stored: stored.size,
        ...check,
        refetched: 0
      })
    }

    await newIdentity(data)
    const known = new Set(byPeer.keys())
    const run = await runCli(init.bin, args, { timeoutMs: runTimeoutMs })
    const peer = [...byPeer.keys()].find((p) => !known.has(p))
    // A run with nodes left to fetch must have asked for them as a new peer; without its requests, what it
    // fetched again cannot be counted (0 would say nothing).
    if (peer === undefined && stored.size < total) {
      throw new Error(
        `the final run (exit code ${run.code}) sent no nodes request as a new peer, with ${total - stored.size} ` +
          `of ${total} nodes still to fetch: ${run.stderr.trim() || 'no stderr'}`
      )
    }
    const requested = peer === undefined ? [] : byPeer.get(peer)!
    if (kills.length > 0) kills[kills.length - 1]!.refetched = countIn(requested, stored)
    const store = await LevelStore.open(data)
    let completeness: Awaited<ReturnType<typeof checkTrieComplete>>
    try {
      completeness = await checkTrieComplete(store, root)
    } finally {
      await store.close()
    }
    return {
      root: toHex(root),
      kills,
      final: {
        code: run.code,
        summary: parseJson(run.stdout) ?? run.stderr,
        requested: requested.length,
        complete: completeness.complete,
        nodes: completeness.nodes
      }
    }
  } finally {
    child?.kill('SIGKILL')
    await server.stop()
  }
}

/** The assertions every crash loop must pass; the soak test runs the same ones over many more kills. */
export function expectCrashSafe(report: CrashLoopReport, kills: number): void {
  expect(report.kills).toHaveLength(kills)
  for (const kill of report.kills) {
    expect(kill.signal).toBe('SIGKILL')
    expect({ missing: kill.missing, incomplete: kill.incomplete, refetched: kill.refetched }).toEqual({
      missing: 0,
      incomplete: 0,
      refetched: 0
    })
  }
  // The store only grows across kills, and at least one kill left committed work to resume from.
  const stored = report.kills.map((k) => k.stored)
  expect(stored).toEqual([...stored].sort((a, b) => a - b))
  expect(stored.at(-1)).toBeGreaterThan(0)
  expect(report.final.code).toBe(0)
  expect(report.final.summary).toMatchObject({ root: report.root, verified: true })
  expect(report.final.complete).toBe(true)
}

async function checkStoredSubtriesAt(path: string, stored: Set<string>): Promise<{ missing: number; incomplete: number }> {
  const store = await LevelStore.open(path, { createIfMissing: false })
  try {
    const hashes = [...stored].map((hex) => fromHex(hex))
    const check = await checkStoredSubtries(store, hashes)
    return { missing: check.missing.length, incomplete: check.incomplete.length }
  } finally {
    await store.close()
  }
}

function countIn(hashes: readonly string[], set: ReadonlySet<string>): number {
  return hashes.filter((h) => set.has(h)).length
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
