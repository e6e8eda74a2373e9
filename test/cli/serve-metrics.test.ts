import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { expectOneLineError, REPO_ROOT, runCli, serveCli, useBuiltCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

const cli = useBuiltCli('dsfg-metrics-')

/** The value of one series in Prometheus text; undefined when it is not there. */
function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

describe('dsfg serve --metrics', () => {
  it('answers GET /metrics with the dsfg_ metrics of what a client synced from it (whose DEBUG=dsfg:* logs the sync), until it stops', async () => {
    const source = join(cli.work, 'source')
    const imported = await runCli(cli.bin, ['import', '--data', source, join(REPO_ROOT, 'fixtures', 'accounts-1k.jsonl')])
    expect(imported.code).toBe(0)
    const { root } = JSON.parse(imported.stdout) as { root: string }

    const server = await serveCli(cli.bin, ['--data', source, '--metrics', '127.0.0.1:0'])
    const url = server.info.metrics
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    const before = await (await fetch(url!)).text()
    expect(series(before, 'dsfg_requests_served_total{request="nodes:ok"}')).toBeUndefined()
    expect(series(before, 'dsfg_state_syncs_running')).toBe(0)

    // With DEBUG=dsfg:* the client's libp2p logger writes the dsfg:* lines to stderr.
    const synced = await runCli(cli.bin, ['sync', '--data', ':memory:', '--peer', server.info.addrs[0]!, '--root', root], {
      env: { DEBUG: 'dsfg:*' }
    })
    expect(synced.code).toBe(0)
    expect(synced.stderr).toMatch(/dsfg:state-sync syncing root /)
    expect(synced.stderr).toMatch(/dsfg:state-sync:trie stored \d+ nodes/)
    expect(synced.stderr).toMatch(/dsfg:state-sync synced root /)

    const response = await fetch(url!)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await response.text()
    expect(series(text, 'dsfg_requests_served_total{request="nodes:ok"}')).toBeGreaterThan(0)
    // libp2p's own metrics come along.
    expect(text).toMatch(/^libp2p_/m)
    expect((await fetch(new URL('/other', url))).status).toBe(404)

    expect(await server.stop()).toBe(0)
    await expect(fetch(url!)).rejects.toThrow()
  })

  it('refuses a --metrics that is not HOST:PORT as a usage error', async () => {
    for (const bad of ['9464', '127.0.0.1', '127.0.0.1:99999', 'localhost:port']) {
      const result = await runCli(cli.bin, ['serve', '--data', ':memory:', '--metrics', bad])
      expectOneLineError(result, 2, /--metrics .* is not HOST:PORT/)
    }
  })
})
