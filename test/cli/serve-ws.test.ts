import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { expectOneLineError, runCli, serveCli, useBuiltCli, writeItemLines } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

const cli = useBuiltCli('dsfg-serve-ws-')

describe('dsfg serve --ws', () => {
  it('listens on WebSockets beside TCP, and a topic syncs over WebSockets alone, verified by its publisher', async () => {
    const prng = new Prng(15)
    const items = Array.from({ length: 3000 }, () => toHex(prng.bytes(1 + prng.int(200))))
    const input = join(cli.work, 'items.jsonl')
    await writeItemLines(input, items)
    const source = join(cli.work, 'source')
    const published = await runCli(cli.bin, ['publish', '--data', source, '--topic', 'news', input])
    expect(published.code, published.stderr).toBe(0)
    const { checkpoint } = JSON.parse(published.stdout) as { checkpoint: { number: number; root: string } }

    const server = await serveCli(cli.bin, ['--data', source, '--topic', 'news', '--ws', '127.0.0.1:0'])
    try {
      const ws = server.info.addrs.filter((a) => a.includes('/ws/'))
      const tcp = server.info.addrs.filter((a) => !a.includes('/ws/'))
      expect(ws).toHaveLength(1)
      expect(ws[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\//)
      expect(tcp.length).toBeGreaterThan(0)
      // The client is told only the WebSockets address: everything it gets comes over that transport.
      const synced = await runCli(
        cli.bin,
        ['sync', '--data', ':memory:', '--peer', ws[0]!, '--topic', 'news', '--publisher', server.info.peerId],
        { timeoutMs: 60_000 }
      )
      expect(synced.code, synced.stderr).toBe(0)
      expect(JSON.parse(synced.stdout)).toMatchObject({ topic: 'news', trust: 'publisher', head: 2999, root: checkpoint.root, verified: true })
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('refuses a --ws that is not HOST:PORT with an IP address', async () => {
    const bad = await runCli(cli.bin, ['serve', '--data', ':memory:', '--ws', 'localhost:80'])
    expectOneLineError(bad, 2, /--ws "localhost:80" is not HOST:PORT/)
  })
})

describe('dsfg serve --web', () => {
  it('serves the page, its script and a config naming the /ws address and the topics; 404 for anything else', async () => {
    const server = await serveCli(cli.bin, ['--data', ':memory:', '--topic', 'news', '--ws', '127.0.0.1:0', '--web', '127.0.0.1:0'])
    try {
      const { web } = server.info as { web?: string }
      expect(web).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
      const page = await fetch(web!)
      expect(page.headers.get('content-type')).toMatch(/^text\/html/)
      expect(await page.text()).toContain('<script type="module" src="app.js"></script>')
      const script = await fetch(new URL('app.js', web))
      expect(script.headers.get('content-type')).toMatch(/^text\/javascript/)
      expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(100_000)
      const config = (await (await fetch(new URL('config.json', web))).json()) as { addrs: string[]; topics: unknown[] }
      expect(config.addrs).toEqual(server.info.addrs.filter((a) => a.includes('/ws/')))
      expect(config.addrs).toHaveLength(1)
      // A store of :memory: holds no record of its own: the topic has no publisher to name.
      expect(config.topics).toEqual([{ name: 'news' }])
      expect((await fetch(new URL('../package.json', web))).status).toBe(404)
      expect((await fetch(new URL('app.js', web), { method: 'POST' })).status).toBe(404)
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('refuses --web without --ws', async () => {
    const bad = await runCli(cli.bin, ['serve', '--data', ':memory:', '--web', '127.0.0.1:0'])
    expectOneLineError(bad, 2, /--web needs --ws/)
  })
})
