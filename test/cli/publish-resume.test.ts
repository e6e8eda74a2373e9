import { spawn } from 'node:child_process'
import { access, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it, vi } from 'vitest'
import { MAX_LINE_BYTES } from '../../src/cli/io.js'
import { PROGRESS_INTERVAL_ENV } from '../../src/cli/progress.js'
import { journalPath } from '../../src/cli/resumable-publish.js'
import { MAX_ITEM_LINE_BYTES } from '../../src/cli/publish-source.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { type CliRun, expectOneLineError, REPO_ROOT, runCli, useBuiltCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

const cli = useBuiltCli('dsfg-publish-')

/** Runs `dsfg args…` and SIGKILLs it at the first stderr line `killWhen` accepts; resolves once it is gone. */
function runUntil(args: readonly string[], killWhen: (line: string) => boolean): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli.bin, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, [PROGRESS_INTERVAL_ENV]: '0' },
      stdio: ['ignore', 'ignore', 'pipe']
    })
    const lines: string[] = []
    createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(line)
      if (killWhen(line)) child.kill('SIGKILL')
    })
    child.on('error', reject)
    child.on('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL', stderr: lines.join('\n') }))
  })
}

/** Runs `dsfg args…` with a line on stdin that never ends, until the child exits. */
function runWithEndlessLine(args: readonly string[]): Promise<CliRun & { written: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli.bin, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    // The child stops reading when it refuses the line: writes then fail with EPIPE, which is expected.
    child.stdin.on('error', () => undefined)
    const chunk = Buffer.from(`{"data":"0x${'ab'.repeat(32 * 1024)}`)
    let written = 0
    let open = true
    const pump = (): void => {
      while (open && child.stdin.write(chunk)) written += chunk.length
      if (open) child.stdin.once('drain', pump)
    }
    pump()
    child.on('error', reject)
    child.on('close', (code) => {
      open = false
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), written })
    })
  })
}

describe('dsfg publish of a file', () => {
  it('killed partway, then run again: every line published exactly once, in order', async () => {
    const prng = new Prng(21)
    const before = Array.from({ length: 5 }, () => toHex(prng.bytes(8)))
    const lines = Array.from({ length: 40_000 }, () => toHex(prng.bytes(1 + prng.int(40))))
    const data = join(cli.work, 'killed')
    await writeFile(join(cli.work, 'before.jsonl'), before.map((d) => JSON.stringify({ data: d })).join('\n'))
    const input = join(cli.work, 'lines.jsonl')
    await writeFile(input, lines.map((d) => JSON.stringify({ data: d })).join('\n'))
    const first = await runCli(cli.bin, ['publish', '--data', data, '--topic', 'news', join(cli.work, 'before.jsonl')])
    expect(first.code, first.stderr).toBe(0)

    // Killed once some chunks are stored and most are still to go.
    const published = (line: string): number => (line.startsWith('{') ? ((JSON.parse(line) as { items?: number }).items ?? 0) : 0)
    const killed = await runUntil(['publish', '--data', data, '--topic', 'news', input], (line) => published(line) >= 4096)
    expect(killed.killed, killed.stderr).toBe(true)
    await expect(access(journalPath(data, 'news'))).resolves.toBeUndefined()
    const partial = await runCli(cli.bin, ['items', '--data', data, '--topic', 'news'])
    const stored = partial.stdout.trim().split('\n').length - before.length
    expect(stored).toBeGreaterThanOrEqual(4096)
    expect(stored).toBeLessThan(lines.length)

    const rerun = await runCli(cli.bin, ['publish', '--data', data, '--topic', 'news', input], { timeoutMs: 60_000 })
    expect(rerun.code, rerun.stderr).toBe(0)
    expect(JSON.parse(rerun.stdout)).toMatchObject({ head: before.length + lines.length - 1, checkpoint: { number: before.length + lines.length - 1 } })
    await expect(access(journalPath(data, 'news'))).rejects.toMatchObject({ code: 'ENOENT' })
    const listed = await runCli(cli.bin, ['items', '--data', data, '--topic', 'news'])
    const items = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { n: number; data: string })
    expect(items.map((item) => item.n)).toEqual([...before, ...lines].map((_d, i) => i))
    expect(items.map((item) => item.data)).toEqual([...before, ...lines])

    // The first publish to a topic, killed before it signed any checkpoint: its items have no record yet, which
    // `publish` otherwise refuses (items synced from peers), and the journal says they are its own to finish.
    const fresh = join(cli.work, 'killed-first')
    const cut = await runUntil(['publish', '--data', fresh, '--topic', 'news', input], (line) => published(line) >= 4096)
    expect(cut.killed, cut.stderr).toBe(true)
    const resumed = await runCli(cli.bin, ['publish', '--data', fresh, '--topic', 'news', input], { timeoutMs: 60_000 })
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ head: lines.length - 1, checkpoint: { number: lines.length - 1 } })
  })
})

describe('dsfg publish of standard input', () => {
  it('publishes every line in order through a temporary copy it removes, and touches no store for bad input', async () => {
    const temp = join(cli.work, 'tmp')
    await mkdir(temp)
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ data: toHex(new Prng(i).bytes(1 + i)) }))
    const data = join(cli.work, 'stdin')
    const env = { TMPDIR: temp }
    const published = await runCli(cli.bin, ['publish', '--data', data, '--topic', 'news', '-'], { input: lines.join('\n'), env })
    expect(published.code, published.stderr).toBe(0)
    expect(JSON.parse(published.stdout)).toMatchObject({ head: 299, checkpoint: { number: 299 } })
    const listed = await runCli(cli.bin, ['items', '--data', data, '--topic', 'news'])
    expect(listed.stdout.trim().split('\n')).toEqual(lines.map((line, n) => JSON.stringify({ n, ...JSON.parse(line) })))
    expect(await readdir(temp)).toEqual([])

    // A bad last line: refused before the store is opened, so the directory is never created.
    const bad = [...lines, '{"data":"0xzz"}'].join('\n')
    const refused = await runCli(cli.bin, ['publish', '--data', join(cli.work, 'never'), '--topic', 'news', '-'], { input: bad, env })
    expectOneLineError(refused, 1, /^dsfg: stdin line 301: /)
    await expect(access(join(cli.work, 'never'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readdir(temp)).toEqual([])
  })
})

describe('an oversized input line', () => {
  it('ends publish and import with the one-line error, without reading the whole line', async () => {
    const publish = await runWithEndlessLine(['publish', '--data', join(cli.work, 'long'), '--topic', 'news', '-'])
    expectOneLineError(publish, 1, new RegExp(`^dsfg: stdin line 1: line longer than ${MAX_ITEM_LINE_BYTES} bytes$`))
    expect(publish.written).toBeLessThan(MAX_ITEM_LINE_BYTES + (8 << 20))
    const imported = await runWithEndlessLine(['import', '--data', ':memory:', '-'])
    expectOneLineError(imported, 1, new RegExp(`^dsfg: stdin line 1: line longer than ${MAX_LINE_BYTES} bytes$`))
    expect(imported.written).toBeLessThan(MAX_LINE_BYTES + (8 << 20))
  })
})
