/**
 * How much of the client's CPU per verified node is its process warming up (compiling, first runs, the heap
 * growing) and how much is steady state: one process syncs the same trie `--rounds` times from 4 `dsfg serve`
 * processes, each round through a fresh node into a fresh store, and reports each round's CPU µs a node (and,
 * on Linux, its split over the main thread, V8's worker threads and the thread pool). The first round is what
 * `dsfg sync` pays; later ones run code that is compiled already. Beside them the local limit (hash, decode and
 * LevelDB write of every node) in a fresh process, measured by `bench:cpu-ab`'s code. On Linux with 2 CPUs or more
 * the servers run on CPU 0 and the client and the limit on CPU 1 (taskset). The client is this build's `dist`.
 *
 *   npm run build && npm run bench:cpu-rounds
 *   npm run build && npm run bench:cpu-rounds -- --rounds 5 --keys 20000
 */
import { readdirSync, readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { fromHex, toHex } from '../src/util/hex.js'
import { benchScriptResult, median, pinning, pinWherePossible, progress, round, startServers, withTempDir } from './processes.js'
import { limitInFreshProcess } from './cpu-ab.js'
import { buildAccountTrie } from './trie-sync-net.js'

interface Round {
  round: number
  nodes: number
  seconds: number
  cpuUsPerNode: number
  /** CPU ms by thread kind (Linux only). */
  threadsMs?: Record<string, number>
}

/** CPU ms of this process's threads by kind: the main thread, V8's workers (named `node`), libuv's pool. */
function threadCpuMs(): Record<string, number> | undefined {
  if (process.platform !== 'linux') return undefined
  const out: Record<string, number> = {}
  for (const task of readdirSync('/proc/self/task')) {
    let stat: string
    try {
      stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8')
    } catch {
      continue // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime, in clock ticks of 10 ms.
    const ms = (Number(fields[11]) + Number(fields[12])) * 10
    const kind = task === String(process.pid) ? 'main' : name === 'node' ? 'v8Workers' : name.startsWith('libuv') ? 'threadPool' : 'other'
    out[kind] = (out[kind] ?? 0) + ms
  }
  return out
}

function difference(after: Record<string, number> | undefined, before: Record<string, number> | undefined): Record<string, number> | undefined {
  if (after === undefined || before === undefined) return undefined
  const out: Record<string, number> = {}
  for (const [kind, ms] of Object.entries(after)) out[kind] = ms - (before[kind] ?? 0)
  return out
}

/** The client: `rounds` syncs of `root` in this process, each through a fresh node into a fresh store under `dir`. */
async function client(dir: string, root: Uint8Array, addrs: string[], rounds: number): Promise<Round[]> {
  // The built code, as `dsfg sync` runs it (not the TypeScript sources this script is loaded from).
  const dist = join(import.meta.dirname, '..', 'dist')
  const { createDsfgNode } = (await import(pathToFileURL(join(dist, 'node', 'create-node.js')).href)) as typeof import('../src/node/create-node.js')
  const { LevelStore } = (await import(pathToFileURL(join(dist, 'store', 'level-store.js')).href)) as typeof import('../src/store/level-store.js')
  const out: Round[] = []
  for (let r = 1; r <= rounds; r++) {
    const path = join(dir, `client-${r}`)
    const store = await LevelStore.open(path)
    const node = await createDsfgNode({ store })
    try {
      await Promise.all(addrs.map((a) => node.dial(multiaddr(a))))
      const threads = threadCpuMs()
      const cpu = process.cpuUsage()
      const started = performance.now()
      const result = await node.services.dsfg.syncRoot(root)
      const used = process.cpuUsage(cpu)
      const threadsMs = difference(threadCpuMs(), threads)
      out.push({
        round: r,
        nodes: result.nodes,
        seconds: round((performance.now() - started) / 1000),
        cpuUsPerNode: round((used.user + used.system) / result.nodes, 1),
        ...(threadsMs === undefined ? {} : { threadsMs })
      })
    } finally {
      await node.stop()
      await store.close()
      await rm(path, { recursive: true, force: true })
    }
  }
  return out
}

/** `client` in a fresh process (this script with `--client`), on the client's CPU. */
function clientInFreshProcess(dir: string, root: Uint8Array, addrs: string[], rounds: number): Promise<Round[]> {
  return benchScriptResult<Round[]>('cpu-rounds.ts', ['--client', dir, toHex(root), ...addrs, '--rounds', String(rounds)], pinning.client, 'the client')
}

async function main(rounds: number, keys: number, runs: number): Promise<void> {
  pinWherePossible()
  await withTempDir('dsfg-bench-cpu-rounds-', async (dir) => {
    const source = join(dir, 'source')
    const { root, nodes } = await buildAccountTrie(source, 1, keys)
    progress(`trie of ${keys} keys, ${nodes} nodes; 4 servers`)
    const servers = await startServers(source, dir, 'server', 4)
    const limits: number[] = []
    const byRound: number[][] = Array.from({ length: rounds }, () => [])
    try {
      for (let run = 0; run < runs; run++) {
        limits.push(await limitInFreshProcess(source, root))
        const results = await clientInFreshProcess(dir, root, servers.addrs, rounds)
        for (const r of results) {
          byRound[r.round - 1]!.push(r.cpuUsPerNode)
          console.log(JSON.stringify({ run, ...r, overLimit: round(r.cpuUsPerNode / limits.at(-1)!) }))
        }
        console.log(JSON.stringify({ run, limitUsPerNode: round(limits.at(-1)!, 1) }))
      }
    } finally {
      await servers.stop()
    }
    const limit = median(limits)
    console.log(
      JSON.stringify({
        keys,
        runs,
        limitUsPerNode: round(limit, 1),
        rounds: byRound.map((us, i) => ({ round: i + 1, cpuUsPerNode: round(median(us), 1), overLimit: round(median(us) / limit) }))
      })
    )
  })
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rounds: { type: 'string' },
      keys: { type: 'string' },
      runs: { type: 'string' },
      client: { type: 'boolean' }
    }
  })
  const rounds = Number(values.rounds ?? 3)
  if (values.client === true) {
    const [dir, rootHex, ...addrs] = positionals as [string, string, ...string[]]
    console.log(JSON.stringify(await client(dir, fromHex(rootHex), addrs, rounds)))
    // libp2p may leave a timer or two behind a stopped node; the results are out.
    process.exit(0)
  } else {
    await main(rounds, Number(values.keys ?? 100_000), Number(values.runs ?? 3))
  }
}
