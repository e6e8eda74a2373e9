import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type BuiltCli, buildCli, REPO_ROOT, runCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

let cli: BuiltCli
let work: string

beforeAll(async () => {
  cli = await buildCli()
  work = await mkdtemp(join(tmpdir(), 'dsfg-serve-'))
}, 180_000)

afterAll(async () => {
  await cli?.remove()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

/** Starts `dsfg serve` and resolves with its first stdout line and a way to stop it with SIGINT. */
async function serve(data: string) {
  const child = spawn(process.execPath, [cli.bin, 'serve', '--data', data], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  const lines = createInterface({ input: child.stdout })
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve)
    child.once('close', () => reject(new Error('serve exited before printing its address')))
  })
  const info = JSON.parse(first) as { peerId: string; addrs: string[] }
  return {
    info,
    async stop(): Promise<number | null> {
      child.kill('SIGINT')
      return exited
    }
  }
}

describe('dsfg serve and dsfg sync --root', () => {
  it('sync a trie between two processes, verified, and serve stops on SIGINT', async () => {
    const source = join(work, 'source')
    const imported = await runCli(cli.bin, ['import', '--data', source, join(REPO_ROOT, 'fixtures', 'accounts-1k.jsonl')])
    expect(imported.code).toBe(0)
    const { root, nodes } = JSON.parse(imported.stdout) as { root: string; nodes: number }

    const server = await serve(source)
    expect(server.info.addrs.every((a) => a.startsWith('/ip4/127.0.0.1/'))).toBe(true)
    const target = join(work, 'target')
    const synced = await runCli(cli.bin, ['sync', '--data', target, '--peer', server.info.addrs[0]!, '--root', root])
    expect(synced.stderr).not.toMatch(/ {4}at /)
    expect(synced.code).toBe(0)
    const summary = JSON.parse(synced.stdout) as { root: string; nodes: number; verified: boolean }
    expect(summary).toMatchObject({ root, nodes, verified: true })
    // Progress went to stderr as JSON lines (not a terminal).
    expect(synced.stderr.split('\n').filter(Boolean).every((l) => l.startsWith('{'))).toBe(true)

    // A second sync into the same store has nothing to fetch.
    const again = await runCli(cli.bin, ['sync', '--data', target, '--peer', server.info.addrs[0]!, '--root', root])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ fetched: 0, verified: true })
    expect(await server.stop()).toBe(0)
  })

  it('fails with one line when no peer can be reached, or a --peer is not a multiaddr', async () => {
    const root = `0x${'11'.repeat(32)}`
    const unreachable = await runCli(cli.bin, [
      'sync',
      '--data',
      ':memory:',
      '--peer',
      '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGiKD4yYfxGEoLnnhkUph1qmBTdTuwdgVuf8UQYc9Vyuw',
      '--root',
      root
    ])
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr.trim().split('\n').at(-1)).toMatch(/^dsfg: could not reach any peer$/)
    const bad = await runCli(cli.bin, ['sync', '--data', ':memory:', '--peer', 'nonsense', '--root', root])
    expect(bad.code).toBe(2)
    expect(bad.stderr.trim()).toMatch(/^dsfg: --peer "nonsense" is not a multiaddr/)
  })
})
