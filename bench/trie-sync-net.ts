/**
 * Trie sync over real libp2p on loopback, as users run it: `dsfg serve` processes (each on its own copy of a
 * LevelDB holding an account-like trie) and one `dsfg sync --root` process. Beside it, in the same run, the
 * local limit: hash, decode and store every node of the same trie in one process.
 *
 *   npm run build && npm run bench:trie-sync            (100k keys, 1 and 4 servers)
 *   npm run bench:trie-sync -- 1000000
 */
import { join } from 'node:path'
import { accountEntries } from '../src/fixtures/generate.js'
import { LevelStore } from '../src/store/level-store.js'
import { keccak256 } from '../src/trie/keccak.js'
import { decodeNode } from '../src/trie/node.js'
import { importSorted } from '../src/trie/stack-trie.js'
import { walkTrie } from '../src/trie/walk.js'
import { toHex } from '../src/util/hex.js'
import { compactLevelDb, peerArgs, round, runDsfg, startServers, withTempDir } from './processes.js'

/** Node writes per LevelDB batch in the local limit. */
const LIMIT_BATCH_NODES = 1000

export interface LocalLimit {
  nodes: number
  bytes: number
  seconds: number
  /** CPU seconds (user and system, LevelDB's threads included) this process spent on it: steadier than `seconds` on a shared machine. */
  cpuS: number
  nodesPerS: number
  MBPerS: number
}

/** One `dsfg sync --root` run, as its summary reports it. */
export interface TrieSyncRun {
  servers: number
  nodes: number
  MB: number
  /** The sync itself, up to the last node stored. */
  syncS: number
  /** The CLI's final walk over the whole stored trie, after the sync. */
  verifyS: number
  /** The `dsfg sync` process from spawn to exit. */
  wallS: number
  nodesPerS: number
  MBPerS: number
  /** CPU seconds (user and system) the `dsfg sync` process spent in the sync, by its own count. */
  cpuS: number
  /** Those CPU seconds per verified node, in µs: against the local limit's CPU µs a node (`limitUsPerNode`). */
  cpuUsPerNode: number
  /** The process's peak (its maxRSS), the final verify walk included. */
  peakRssMB: number
  /**
   * The highest RSS sampled before the final verify walk: the sync's own peak. The walk is taken to start
   * `verifyS` before the process exits, which counts its first moments (and the shutdown's length of it) as
   * sync: this errs high. Null where RSS cannot be sampled (no /proc).
   */
  syncPeakRssMB: number | null
  /** The highest anonymous RSS sampled (see `RssSample`) over the whole process, and before the verify walk. */
  peakAnonMB: number | null
  syncPeakAnonMB: number | null
}

interface SyncSummary {
  nodes: number
  bytes: number
  seconds: number
  verifySeconds: number
  cpuSeconds: number
  peakRssMB: number
}

/** Writes the trie of `accountEntries(seed, keys)` into a LevelDB at `path`, compacted (see `compactLevelDb`). */
export async function buildAccountTrie(path: string, seed: number, keys: number): Promise<{ root: Uint8Array; nodes: number }> {
  const store = await LevelStore.open(path)
  let built: { root: Uint8Array; nodes: number }
  try {
    built = await importSorted(store, accountEntries(seed, keys))
  } finally {
    await store.close()
  }
  await compactLevelDb(path)
  return built
}

/**
 * What any verified sync of this trie must do at least once, with no network: hash, decode and store every
 * node (the blobs are read into memory first, outside the timing).
 */
export async function measureLocalLimit(source: string, root: Uint8Array): Promise<LocalLimit> {
  const store = await LevelStore.open(source)
  const blobs: Uint8Array[] = []
  try {
    for await (const { blob } of walkTrie(store, root)) blobs.push(blob)
  } finally {
    await store.close()
  }
  return withTempDir('dsfg-limit-', async (dir) => {
    const target = await LevelStore.open(dir)
    try {
      const started = performance.now()
      const cpuStarted = process.cpuUsage()
      let ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = []
      let bytes = 0
      for (const blob of blobs) {
        const hash = keccak256(blob)
        decodeNode(blob)
        ops.push({ type: 'put', key: hash, value: blob })
        bytes += blob.length
        if (ops.length >= LIMIT_BATCH_NODES) {
          await target.batch(ops)
          ops = []
        }
      }
      await target.batch(ops)
      const seconds = (performance.now() - started) / 1000
      const cpu = process.cpuUsage(cpuStarted)
      return {
        nodes: blobs.length,
        bytes,
        seconds: round(seconds, 3),
        cpuS: round((cpu.user + cpu.system) / 1e6, 3),
        nodesPerS: Math.round(blobs.length / seconds),
        MBPerS: round(bytes / 1e6 / seconds, 1)
      }
    } finally {
      await target.close()
    }
  })
}

/** `dsfg sync --root` into a fresh store under `dir`, from `servers` `dsfg serve` processes on copies of `source`. */
export async function measureTrieSync(dir: string, source: string, root: Uint8Array, servers: number): Promise<TrieSyncRun> {
  const running = await startServers(source, dir, `server-${servers}`, servers)
  try {
    const target = join(dir, `client-${servers}`)
    const { summary, wallS, rss } = await runDsfg<SyncSummary>(['sync', '--data', target, ...peerArgs(running.addrs), '--root', toHex(root)])
    const syncing = rss.filter((s) => s.t <= wallS - summary.verifySeconds)
    return {
      servers,
      nodes: summary.nodes,
      MB: round(summary.bytes / 1e6, 1),
      syncS: summary.seconds,
      verifyS: summary.verifySeconds,
      wallS: round(wallS),
      nodesPerS: Math.round(summary.nodes / summary.seconds),
      MBPerS: round(summary.bytes / 1e6 / summary.seconds),
      cpuS: summary.cpuSeconds,
      cpuUsPerNode: round((summary.cpuSeconds * 1e6) / summary.nodes, 1),
      peakRssMB: summary.peakRssMB,
      syncPeakRssMB: syncing.length === 0 ? null : Math.round(Math.max(...syncing.map((s) => s.MB))),
      peakAnonMB: rss.length === 0 ? null : Math.round(Math.max(...rss.map((s) => s.anonMB))),
      syncPeakAnonMB: syncing.length === 0 ? null : Math.round(Math.max(...syncing.map((s) => s.anonMB)))
    }
  } finally {
    await running.stop()
  }
}

if (import.meta.main) {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0)
  for (const keys of sizes.length > 0 ? sizes : [100_000]) {
    await withTempDir('dsfg-bench-sync-', async (dir) => {
      const source = join(dir, 'source')
      const { root } = await buildAccountTrie(source, 1, keys)
      const limit = await measureLocalLimit(source, root)
      for (const servers of [1, 4]) {
        const run = await measureTrieSync(dir, source, root, servers)
        const syncOverLimit = round(run.nodesPerS / limit.nodesPerS)
        const limitUsPerNode = round((limit.cpuS * 1e6) / limit.nodes, 1)
        console.log(JSON.stringify({ keys, ...run, limitNodesPerS: limit.nodesPerS, syncOverLimit, limitUsPerNode }))
      }
    })
  }
}
