/**
 * The numbered-batch downloader over real libp2p on loopback, as users run it: `dsfg serve --topic` processes
 * (each on its own copy of a store holding the topic) and one `dsfg sync --topic` process. Beside it, in the
 * same run, the raw throughput of one libp2p stream (TCP, noise, yamux) pushing the same bytes between two
 * nodes in this process.
 *
 *   npm run build && npm run bench:topic-sync                 (20k items of 1 KiB, 1 and 4 servers)
 *   npm run bench:topic-sync -- --items 100000 --bytes 1024
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { createDsfgNode } from '../src/node/create-node.js'
import { LevelStore } from '../src/store/level-store.js'
import { TopicStore } from '../src/topic/topic-store.js'
import { Prng } from '../src/util/prng.js'

const { values } = parseArgs({ options: { items: { type: 'string' }, bytes: { type: 'string' } } })
const count = Number(values.items ?? 20_000)
const itemBytes = Number(values.bytes ?? 1024)
const bin = join(import.meta.dirname, '..', 'dist', 'cli', 'bin.js')
const TOPIC = 'bench'

async function rawStreamMBps(totalBytes: number): Promise<number> {
  const receiver = await createDsfgNode()
  const sender = await createDsfgNode()
  let received = 0
  let done: () => void = () => undefined
  const finished = new Promise<void>((resolve) => (done = resolve))
  await receiver.handle('/bench/raw/1.0.0', async (stream) => {
    for await (const chunk of stream) {
      received += chunk.byteLength
      if (received >= totalBytes) done()
    }
  })
  const stream = await sender.dialProtocol(receiver.getMultiaddrs()[0]!, '/bench/raw/1.0.0')
  const chunk = new Uint8Array(64 * 1024).fill(1)
  const t = performance.now()
  for (let sent = 0; sent < totalBytes; sent += chunk.byteLength) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await finished
  const seconds = (performance.now() - t) / 1000
  await stream.close()
  await Promise.all([sender.stop(), receiver.stop()])
  return totalBytes / 1e6 / seconds
}

async function startServer(data: string): Promise<{ addr: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [bin, 'serve', '--data', data, '--topic', TOPIC], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
  return { addr: (JSON.parse(line) as { addrs: string[] }).addrs[0]!, child }
}

const dir = await mkdtemp(join(tmpdir(), 'dsfg-bench-topic-'))
const servers: ChildProcess[] = []
try {
  const source = join(dir, 'source')
  const store = await LevelStore.open(source)
  const prng = new Prng(1)
  const topics = new TopicStore(store)
  for (let i = 0; i < count; i += 4096) {
    await topics.appendMany(
      TOPIC,
      Array.from({ length: Math.min(4096, count - i) }, () => prng.bytes(itemBytes))
    )
  }
  await store.close()
  const totalMB = (count * itemBytes) / 1e6
  const raw = await rawStreamMBps(count * itemBytes)
  for (const n of [1, 4]) {
    const addrs: string[] = []
    for (let i = 0; i < n; i++) {
      const copy = join(dir, `server-${n}-${i}`)
      await cp(source, copy, { recursive: true })
      const s = await startServer(copy)
      servers.push(s.child)
      addrs.push(s.addr)
    }
    const target = join(dir, `client-${n}`)
    const out = execFileSync(
      process.execPath,
      [bin, 'sync', '--data', target, ...addrs.flatMap((a) => ['--peer', a]), '--topic', TOPIC],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }
    )
    const summary = JSON.parse(out) as { items: number; seconds: number; itemsPerSecond: number }
    const mbps = totalMB / summary.seconds
    console.log(
      JSON.stringify({
        items: count,
        itemBytes,
        servers: n,
        seconds: summary.seconds,
        itemsPerSecond: summary.itemsPerSecond,
        MBPerS: Number(mbps.toFixed(2)),
        rawStreamMBPerS: Number(raw.toFixed(1)),
        overRaw: Number((mbps / raw).toFixed(3))
      })
    )
    for (const s of servers.splice(0)) s.kill('SIGINT')
  }
} finally {
  for (const s of servers) s.kill('SIGKILL')
  await new Promise((r) => setTimeout(r, 500))
  await rm(dir, { recursive: true, force: true })
}
