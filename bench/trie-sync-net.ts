/**
 * Trie sync over real libp2p on loopback, as users run it: `dsfg serve` processes (each on its own copy of a
 * LevelDB holding an account-like trie) and one `dsfg sync --root` process. Beside it, in the same run, the
 * local limit: hash, decode and store every node of the same trie in one process.
 *
 *   npm run build && npm run bench:trie-sync            (100k keys, 1 and 4 servers)
 *   npm run bench:trie-sync -- 1000000
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { accountEntries } from '../src/fixtures/generate.js'
import { LevelStore } from '../src/store/level-store.js'
import { keccak256 } from '../src/trie/keccak.js'
import { decodeNode } from '../src/trie/node.js'
import { importSorted } from '../src/trie/stack-trie.js'
import { walkTrie } from '../src/trie/walk.js'
import { toHex } from '../src/util/hex.js'

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0)
const bin = join(import.meta.dirname, '..', 'dist', 'cli', 'bin.js')

async function startServer(data: string): Promise<{ addr: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [bin, 'serve', '--data', data], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
  return { addr: (JSON.parse(line) as { addrs: string[] }).addrs[0]!, child }
}

async function localLimit(source: string, root: Uint8Array): Promise<{ nodesPerS: number; nodes: number; bytes: number }> {
  const store = await LevelStore.open(source)
  const blobs: Uint8Array[] = []
  for await (const { blob } of walkTrie(store, root)) blobs.push(blob)
  await store.close()
  const dir = await mkdtemp(join(tmpdir(), 'dsfg-limit-'))
  const target = await LevelStore.open(dir)
  const t = performance.now()
  let ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = []
  let bytes = 0
  for (const blob of blobs) {
    const hash = keccak256(blob)
    decodeNode(blob)
    ops.push({ type: 'put', key: hash, value: blob })
    bytes += blob.length
    if (ops.length >= 1000) {
      await target.batch(ops)
      ops = []
    }
  }
  await target.batch(ops)
  const seconds = (performance.now() - t) / 1000
  await target.close()
  await rm(dir, { recursive: true, force: true })
  return { nodesPerS: Math.round(blobs.length / seconds), nodes: blobs.length, bytes }
}

for (const keys of sizes.length > 0 ? sizes : [100_000]) {
  const dir = await mkdtemp(join(tmpdir(), 'dsfg-bench-sync-'))
  const servers: ChildProcess[] = []
  try {
    const source = join(dir, 'source')
    const store = await LevelStore.open(source)
    const { root } = await importSorted(store, accountEntries(1, keys))
    await store.close()
    const limit = await localLimit(source, root)
    for (const count of [1, 4]) {
      const addrs: string[] = []
      for (let i = 0; i < count; i++) {
        const copy = join(dir, `server-${count}-${i}`)
        await cp(source, copy, { recursive: true })
        const s = await startServer(copy)
        servers.push(s.child)
        addrs.push(s.addr)
      }
      const target = join(dir, `client-${count}`)
      const args = [bin, 'sync', '--data', target, ...addrs.flatMap((a) => ['--peer', a]), '--root', toHex(root)]
      const t = performance.now()
      const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      const wall = (performance.now() - t) / 1000
      const summary = JSON.parse(out) as { nodes: number; bytes: number; seconds: number; verifySeconds: number; peakRssMB: number }
      const nodesPerS = Math.round(summary.nodes / summary.seconds)
      console.log(
        JSON.stringify({
          keys,
          servers: count,
          nodes: summary.nodes,
          MB: Number((summary.bytes / 1e6).toFixed(1)),
          syncS: summary.seconds,
          verifyS: summary.verifySeconds,
          wallS: Number(wall.toFixed(2)),
          nodesPerS,
          MBPerS: Number((summary.bytes / 1e6 / summary.seconds).toFixed(2)),
          peakRssMB: summary.peakRssMB,
          limitNodesPerS: limit.nodesPerS,
          syncOverLimit: Number((nodesPerS / limit.nodesPerS).toFixed(2))
        })
      )
      for (const s of servers.splice(0)) s.kill('SIGINT')
    }
  } finally {
    for (const s of servers) s.kill('SIGKILL')
    await new Promise((r) => setTimeout(r, 500))
    await rm(dir, { recursive: true, force: true })
  }
}
