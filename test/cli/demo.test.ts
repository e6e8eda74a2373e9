import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type BuiltCli, buildCli, runCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

let cli: BuiltCli

beforeAll(async () => {
  cli = await buildCli()
}, 180_000)

afterAll(async () => {
  await cli?.remove()
})

describe('dsfg demo', () => {
  it('builds, syncs over libp2p, proves and verifies, ending with a verified summary', async () => {
    const result = await runCli(cli.bin, ['demo', '--keys', '3000'], { timeoutMs: 100_000 })
    expect(result.stderr).not.toMatch(/ {4}at /)
    expect(result.code).toBe(0)
    const summary = JSON.parse(result.stdout) as Record<string, unknown>
    expect(summary).toMatchObject({ keys: 3000, verified: true })
    expect(summary['proofs']).toEqual({
      present: { nodes: expect.any(Number), valid: true },
      absent: { nodes: expect.any(Number), valid: true }
    })
    expect(result.stderr).toContain('3. proved')
  })

  it('rejects a bad --keys with one line', async () => {
    const result = await runCli(cli.bin, ['demo', '--keys', 'lots'])
    expect(result.code).toBe(2)
    expect(result.stderr.trim()).toBe('dsfg: --keys must be a whole number from 1 to 10000000')
  })
})
