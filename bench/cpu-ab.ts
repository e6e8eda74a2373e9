/**
 * The client's CPU per verified node, this build against another (issue 13's loopback target: at most 2× the
 * local limit's). One account-like trie, 4 `dsfg serve` processes of this build, and `dsfg sync --root` of each
 * build in turn, `--runs` times each, alternating (the order flipped every round), so a machine that slows for a
 * while slows both; between them the local limit (hash, decode and LevelDB write of every node), each run in a
 * fresh process, as the client is. On Linux with 2 CPUs or more the servers run on CPU 0 and the client and the
 * limit on CPU 1 (taskset). On a shared VM one build's runs spread by up to half: compare medians and minimums.
 * The other build is checked out into a temporary git worktree and compiled there (`tsc`, this node_modules).
 *
 *   npm run build && npm run bench:cpu-ab -- --against a92cd9c
 *   npm run build && npm run bench:cpu-ab -- --against HEAD~3 --runs 12 --keys 20000
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { rm, symlink } from 'node:fs/promises'
import { fromHex, toHex } from '../src/util/hex.js'
import { BIN, benchScriptResult, median, peerArgs, pinning, pinWherePossible, progress, round, runDsfg, startServers, withTempDir } from './processes.js'
import { buildAccountTrie, measureLocalLimit } from './trie-sync-net.js'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '..')

interface SyncSummary {
  nodes: number
  cpuSeconds: number
  seconds: number
  peakRssMB: number
}

/** One build's runs: CPU µs per verified node. */
interface Series {
  build: string
  bin: string
  usPerNode: number[]
}

/** The local limit in a fresh process (this script with `--limit`), on the client's CPU; its CPU µs a node. */
export async function limitInFreshProcess(source: string, root: Uint8Array): Promise<number> {
  const { usPerNode } = await benchScriptResult<{ usPerNode: number }>('cpu-ab.ts', ['--limit', source, toHex(root)], pinning.client, 'the local limit')
  return usPerNode
}

/** Checks `ref` out into `dir` and compiles it; returns its CLI. */
async function buildRef(ref: string, dir: string): Promise<string> {
  progress(`building ${ref} in ${dir}`)
  await run('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, ref])
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.build.json')], { cwd: dir })
  return join(dir, 'dist', 'cli', 'bin.js')
}

function stats(values: number[]): { min: number; median: number; max: number } {
  return { min: round(Math.min(...values), 1), median: round(median(values), 1), max: round(Math.max(...values), 1) }
}

async function compare(against: string, runs: number, keys: number): Promise<void> {
  pinWherePossible()
  await withTempDir('dsfg-bench-cpu-ab-', async (dir) => {
    const other = join(dir, 'other')
    try {
      const series: Series[] = [
        { build: 'this', bin: BIN, usPerNode: [] },
        { build: against, bin: await buildRef(against, other), usPerNode: [] }
      ]
      const source = join(dir, 'source')
      const { root, nodes } = await buildAccountTrie(source, 1, keys)
      progress(`trie of ${keys} keys, ${nodes} nodes; 4 servers of this build`)
      const limits: number[] = []
      const servers = await startServers(source, dir, 'server', 4)
      try {
        for (let r = 0; r < runs; r++) {
          limits.push(await limitInFreshProcess(source, root))
          for (const s of r % 2 === 0 ? series : [...series].reverse()) {
            const target = join(dir, `client-${r}`)
            const { summary } = await runDsfg<SyncSummary>(['sync', '--data', target, ...peerArgs(servers.addrs), '--root', toHex(root)], s.bin)
            await rm(target, { recursive: true, force: true })
            const us = (summary.cpuSeconds * 1e6) / summary.nodes
            s.usPerNode.push(us)
            console.log(JSON.stringify({ round: r, build: s.build, nodes: summary.nodes, seconds: summary.seconds, cpuUsPerNode: round(us, 1), peakRssMB: summary.peakRssMB }))
          }
          console.log(JSON.stringify({ round: r, limitUsPerNode: round(limits.at(-1)!, 2) }))
        }
      } finally {
        await servers.stop()
      }
      const limit = stats(limits).median
      for (const s of series) {
        const cpu = stats(s.usPerNode)
        console.log(JSON.stringify({ build: s.build, runs, cpuUsPerNode: cpu, limitUsPerNode: stats(limits), overLimit: round(cpu.median / limit) }))
      }
    } finally {
      await run('git', ['-C', ROOT, 'worktree', 'remove', '--force', other]).catch(() => undefined)
    }
  })
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      against: { type: 'string' },
      runs: { type: 'string' },
      keys: { type: 'string' },
      limit: { type: 'boolean' }
    }
  })
  if (values.limit === true) {
    // A child of `compare`: the local limit of the trie at `source`, alone in this process.
    const [source, rootHex] = positionals as [string, string]
    const limit = await measureLocalLimit(source, fromHex(rootHex))
    console.log(JSON.stringify({ usPerNode: (limit.cpuS * 1e6) / limit.nodes }))
  } else {
    if (values.against === undefined) throw new Error('usage: bench:cpu-ab -- --against <git ref> [--runs 8] [--keys 100000]')
    await compare(values.against, Number(values.runs ?? 8), Number(values.keys ?? 100_000))
  }
}
