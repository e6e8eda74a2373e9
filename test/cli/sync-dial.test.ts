import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/store/memory-store.js'
import { createAdversary } from '../helpers/adversary.js'
import { createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { expectOneLineError, runCli, useBuiltCli } from './cli-harness.js'

/** Any valid peer id: the black hole never gets far enough for it to matter. */
const SOME_PEER = '12D3KooWRkGLz4YbVmrsWK75VjFTs8yvfqhhbnUgDfVEYv1bn3VF'

/** A TCP port on 127.0.0.1 that accepts connections and never says a word: a dial to it hangs in the handshake. */
async function blackHole(): Promise<{ server: Server; addr: string; connected: Promise<unknown> }> {
  const sockets: Socket[] = []
  const server = createServer((s) => sockets.push(s))
  server.on('close', () => {
    for (const s of sockets) s.destroy()
  })
  const connected = once(server, 'connection')
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return { server, addr: `/ip4/127.0.0.1/tcp/${port}/p2p/${SOME_PEER}`, connected }
}

describe('dsfg sync dialling its peers', () => {
  const cli = useBuiltCli('dsfg-sync-dial-')
  let source: DsfgNode
  const holes: Server[] = []
  beforeAll(async () => {
    source = await createDsfgNode({ store: new MemoryStore() })
    const topic = source.services.dsfg.topic({ name: 'news', publisher: source.peerId })
    for (let i = 0; i < 50; i++) await topic.publish(Uint8Array.of(i))
    await topic.checkpoint()
  })
  afterAll(async () => {
    for (const hole of holes) hole.close()
    await source.stop()
  })

  it('starts as soon as one peer answers: a peer that never does holds nothing up', async () => {
    const hole = await blackHole()
    holes.push(hole.server)
    const args = ['sync', '--data', join(cli.work, 'both'), '--topic', 'news', '--publisher', source.peerId.toString()]
    const result = await runCli(cli.bin, [...args, '--peer', source.getMultiaddrs()[0]!.toString(), '--peer', hole.addr])
    expect(result.code, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ head: 49, verified: true })
    // The black hole's dial was still waiting when the sync ended: it never got to fail (each of its retries
    // waits out libp2p's dial timeout; with the dials awaited together it failed four times first).
    expect(result.stderr).not.toMatch(/could not dial/)
  }, 60_000)

  it('logs under DEBUG=dsfg:* what the topic ignored: a record signed by someone other than --publisher', async () => {
    const strangerNode = await createDsfgNode({ store: new MemoryStore() })
    const stranger = strangerNode.peerId.toString()
    await strangerNode.stop()
    const args = ['sync', '--data', join(cli.work, 'stranger'), '--topic', 'news', '--publisher', stranger, '--wait', '1']
    const result = await runCli(cli.bin, [...args, '--peer', source.getMultiaddrs()[0]!.toString()], { env: { DEBUG: 'dsfg:*' } })
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/dsfg:topic news: a record signed by \S+, not the publisher, ignored/)
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(/^dsfg: topic "news": no dialled peer holds a checkpoint signed by /)
  }, 60_000)

  it('sync --root with only a peer that takes requests and never answers fails with one line after --wait', async () => {
    const silent = await createAdversary({ behaviour: { nodes: 'stall', status: 'stall', contents: 'stall', hashes: 'stall' } })
    try {
      const root = 'ab'.repeat(32)
      const args = ['sync', '--data', join(cli.work, 'silent'), '--root', root, '--wait', '2']
      // The bound only stops a hang: the first request times out (10 s), then --wait runs out.
      const result = await runCli(cli.bin, [...args, '--peer', silent.node.getMultiaddrs()[0]!.toString()], { timeoutMs: 45_000 })
      expectOneLineError(result, 1, /^dsfg: no peer answered \/dsfg\/nodes\/1\.0\.0 requests for 2 s \(1 connected, all stalled\)$/)
      expect(silent.calls('nodes')).toBeGreaterThan(0)
    } finally {
      await silent.stop()
    }
  }, 60_000)

  it('sync --root with only peers that answer every request busy (RATE_LIMITED) fails with one line after --wait', async () => {
    const busy = await createAdversary({ behaviour: { nodes: 'rate-limited' } })
    try {
      const args = ['sync', '--data', join(cli.work, 'busy'), '--root', 'cd'.repeat(32), '--wait', '2']
      // Before, a busy peer was never counted stalled, and the sync waited for ever without a word.
      const result = await runCli(cli.bin, [...args, '--peer', busy.node.getMultiaddrs()[0]!.toString()], { timeoutMs: 30_000 })
      expectOneLineError(result, 1, /^dsfg: nothing verified for 2 s: the peers serving \/dsfg\/nodes\/1\.0\.0 answered busy \(RATE_LIMITED\)$/)
      expect(busy.calls('nodes')).toBeGreaterThan(0)
    } finally {
      await busy.stop()
    }
  }, 45_000)

  it('SIGINT while the only peer is being dialled exits 130 with one line', async () => {
    const hole = await blackHole()
    holes.push(hole.server)
    let child: ChildProcess | undefined
    const running = runCli(
      cli.bin,
      ['sync', '--data', join(cli.work, 'interrupted'), '--topic', 'news', '--publisher', source.peerId.toString(), '--peer', hole.addr],
      { onSpawn: (c) => (child = c), timeoutMs: 40_000 }
    )
    await hole.connected
    child!.kill('SIGINT')
    expectOneLineError(await running, 130, /^dsfg: interrupted by SIGINT$/)
  }, 60_000)
})
