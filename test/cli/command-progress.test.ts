import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { PROGRESS_INTERVAL_ENV } from '../../src/cli/progress.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { type CliRun, REPO_ROOT, runCli, serveCli, useBuiltCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

const cli = useBuiltCli('dsfg-progress-')

/** A report on every update: the inputs here finish well within the usual second. */
const env = { [PROGRESS_INTERVAL_ENV]: '0' }

type Progress = Record<string, number | string>

/** stderr of a successful run off a terminal: nothing but JSON progress lines. */
function progressLines(run: CliRun): Progress[] {
  expect(run.code, run.stderr).toBe(0)
  const lines = run.stderr.split('\n').filter((line) => line !== '')
  for (const line of lines) expect(line).toMatch(/^\{/)
  return lines.map((line) => JSON.parse(line) as Progress)
}

/** Within each phase: the counter of `unit` and the percentage never go down; a percentage only with a total. */
function expectHonest(lines: readonly Progress[], phase: string, unit: string): Progress[] {
  const ofPhase = lines.filter((l) => l['phase'] === phase)
  expect(ofPhase.length, `${phase} lines`).toBeGreaterThan(0)
  for (const [i, line] of ofPhase.entries()) {
    expect(typeof line[unit]).toBe('number')
    if ('percent' in line) expect('total' in line || 'bytesTotal' in line).toBe(true)
    if (i === 0) continue
    expect(line[unit]).toBeGreaterThanOrEqual(ofPhase[i - 1]![unit] as number)
    if ('percent' in line) expect(line['percent']).toBeGreaterThanOrEqual(ofPhase[i - 1]!['percent'] as number)
  }
  return ofPhase
}

describe('progress on stderr off a terminal: JSON lines', () => {
  it('import, then sync --root: entries and bytes read with a percentage of the file, then nodes without one', async () => {
    const source = join(cli.work, 'trie')
    const input = join(REPO_ROOT, 'fixtures', 'accounts-1k.jsonl')
    const imported = await runCli(cli.bin, ['import', '--data', source, input], { env })
    const lines = progressLines(imported)
    const read = expectHonest(lines, 'read', 'entries')
    expect(read.at(-1)).toMatchObject({ entries: 1000, percent: 100 })
    expect(read.at(-1)!['bytes']).toBe(read.at(-1)!['bytesTotal'])
    const store = expectHonest(lines, 'store', 'entries')
    expect(store.at(-1)).toMatchObject({ entries: 1000, total: 1000, percent: 100 })
    expect(store.at(-1)!['nodes']).toBeGreaterThan(0)
    // Standard input has no size: bytes read, no percentage.
    const piped = await runCli(cli.bin, ['import', '--data', ':memory:', '-'], { env, input: await readFile(input, 'utf8') })
    for (const line of expectHonest(progressLines(piped), 'read', 'entries')) expect(line).not.toHaveProperty('percent')

    const server = await serveCli(cli.bin, ['--data', source])
    try {
      const { root } = JSON.parse(imported.stdout) as { root: string }
      const synced = await runCli(cli.bin, ['sync', '--data', join(cli.work, 'trie-copy'), '--peer', server.info.addrs[0]!, '--root', root], { env })
      const trie = expectHonest(progressLines(synced), 'trie', 'nodes')
      for (const line of trie) {
        expect(Object.keys(line).sort()).toEqual(['bytes', 'nodes', 'peers', 'pending', 'phase', 'rate', 'stored'])
      }
      expect(trie.at(-1)!['nodes']).toBeGreaterThan(0)
    } finally {
      await server.stop()
    }
  })

  it('publish, then sync --topic: items of the known total with a percentage', async () => {
    const prng = new Prng(11)
    const input = join(cli.work, 'items.jsonl')
    await writeFile(input, Array.from({ length: 3000 }, () => JSON.stringify({ data: toHex(prng.bytes(1 + prng.int(50))) })).join('\n'))
    const source = join(cli.work, 'topic')
    const published = await runCli(cli.bin, ['publish', '--data', source, '--topic', 'news', input], { env })
    const publish = expectHonest(progressLines(published), 'publish', 'items')
    for (const line of publish) expect(line['total']).toBe(3000)
    expect(publish.at(-1)).toMatchObject({ items: 3000, percent: 100 })

    const server = await serveCli(cli.bin, ['--data', source, '--topic', 'news'])
    try {
      // --items-only: every item downloaded, no checkpoint sync (and so no trie phase) to wait for.
      const args = ['sync', '--data', join(cli.work, 'topic-copy'), '--peer', server.info.addrs[0]!, '--topic', 'news', '--items-only']
      const items = expectHonest(progressLines(await runCli(cli.bin, args, { env })), 'items', 'items')
      for (const line of items) expect(line['total']).toBe(3000)
      expect(items.at(-1)).toMatchObject({ items: 3000, percent: 100 })
      // A checkpoint sync trie-syncs the topic trie first: nodes and bytes, no percentage.
      const checkpointSync = progressLines(
        await runCli(cli.bin, ['sync', '--data', ':memory:', '--peer', server.info.addrs[0]!, '--topic', 'news'], { env })
      )
      for (const line of expectHonest(checkpointSync, 'trie', 'nodes')) {
        expect(line).not.toHaveProperty('percent')
        expect(line['checkpoint']).toBe(2999)
      }
    } finally {
      await server.stop()
    }
  })
})
