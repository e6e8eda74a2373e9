/**
 * Many joiners at once against one server (issue 13): one `dsfg serve` process on a LevelDB holding an
 * account-like trie, and N `dsfg sync --root` processes started together against it. Reports how many
 * completed and verified, the median and slowest client (wall time from spawn to exit), and the server's
 * peak RSS sampled throughout.
 *
 *   npm run build && npm run bench:burst                      (50 clients, 20k keys)
 *   npm run bench:burst -- --clients 20 --keys 5000
 */
import { parseArgs } from 'node:util'
import { toHex } from '../src/util/hex.js'
import { count, peerArgs, progress, resident, round, runDsfg, startServers, withTempDir } from './processes.js'
import { buildAccountTrie } from './trie-sync-net.js'

/** How often the server's RSS is sampled. */
const SAMPLE_MS = 100

export interface BurstResult {
  clients: number
  keys: number
  nodes: number
  completed: number
  failed: string[]
  medianS: number
  slowestS: number
  slowestOverMedian: number
  serverPeakRssMB: number | null
  serverRssBeforeMB: number | null
}

export async function measureBurst(clients: number, keys: number): Promise<BurstResult> {
  return withTempDir('dsfg-burst-', async (dir) => {
    progress(`building a ${count(keys)}-key trie`)
    const source = `${dir}/source`
    const { root, nodes } = await buildAccountTrie(source, 1, keys)
    // Every client dials from 127.0.0.1: past --max-connections-per-host (32) the server would refuse them as one
    // machine's, which is what that limit is for, not what this measures.
    const servers = await startServers(source, dir, 'server', 1, ['--max-connections-per-host', String(clients + 8)])
    try {
      const serverPid = servers.pids[0]!
      const before = await resident(serverPid)
      let peak = before?.MB ?? 0
      const sampler = setInterval(async () => {
        const sample = await resident(serverPid)
        if (sample !== undefined) peak = Math.max(peak, sample.MB)
      }, SAMPLE_MS)
      progress(`${clients} clients start together`)
      const runs = await Promise.allSettled(
        Array.from({ length: clients }, (_v, i) =>
          runDsfg<{ verified: boolean }>(['sync', '--data', `${dir}/client-${i}`, ...peerArgs(servers.addrs), '--root', toHex(root)])
        )
      )
      clearInterval(sampler)
      const failed: string[] = []
      const times: number[] = []
      for (const run of runs) {
        if (run.status === 'rejected') failed.push(String(run.reason).slice(0, 400))
        else if (!run.value.summary.verified) failed.push('completed unverified')
        else times.push(run.value.wallS)
      }
      times.sort((a, b) => a - b)
      const median = times.length === 0 ? 0 : times[Math.floor(times.length / 2)]!
      const slowest = times.at(-1) ?? 0
      return {
        clients,
        keys,
        nodes,
        completed: times.length,
        failed,
        medianS: round(median),
        slowestS: round(slowest),
        slowestOverMedian: median === 0 ? 0 : round(slowest / median),
        serverPeakRssMB: before === undefined ? null : round(peak, 0),
        serverRssBeforeMB: before === undefined ? null : round(before.MB, 0)
      }
    } finally {
      await servers.stop()
    }
  })
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '50' }, keys: { type: 'string', default: '20000' } } })
  const result = await measureBurst(Number(values.clients), Number(values.keys))
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
}
