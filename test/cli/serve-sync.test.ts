import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { REPO_ROOT, runCli, serveCli, useBuiltCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

const cli = useBuiltCli('dsfg-serve-')

describe('dsfg serve and dsfg sync --root', () => {
  it('sync a trie between two processes, verified, and serve stops on SIGINT', async () => {
    const source = join(cli.work, 'source')
    const imported = await runCli(cli.bin, ['import', '--data', source, join(REPO_ROOT, 'fixtures', 'accounts-1k.jsonl')])
    expect(imported.code).toBe(0)
    const { root, nodes } = JSON.parse(imported.stdout) as { root: string; nodes: number }

    const server = await serveCli(cli.bin, ['--data', source])
    expect(server.info.addrs.every((a) => a.startsWith('/ip4/127.0.0.1/'))).toBe(true)
    const target = join(cli.work, 'target')
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
    const noWait = await runCli(cli.bin, ['sync', '--data', ':memory:', '--peer', '/ip4/127.0.0.1/tcp/1', '--root', root, '--wait', '0'])
    expect(noWait.code).toBe(2)
    expect(noWait.stderr.trim()).toMatch(/--wait/)
  })
})
