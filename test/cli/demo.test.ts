import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type BuiltCli, buildCli, REPO_ROOT, runCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 150_000 })

let cli: BuiltCli

beforeAll(async () => {
  cli = await buildCli()
}, 180_000)

afterAll(async () => {
  await cli?.remove()
})

/** Whether a process with this pid exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Waits until none of `pids` runs any more, or fails after `ms`. */
async function expectAllGone(pids: number[], ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  expect(pids.filter(alive)).toEqual([])
}

/**
 * Runs `dsfg demo …` and calls `onLine` with each stderr line as it comes (to act mid-run); resolves with the
 * exit code and the whole output.
 */
function runDemo(
  args: string[],
  onLine: (line: string, child: ReturnType<typeof spawn>) => void
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli.bin, 'demo', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, DSFG_DEBUG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 100_000
    })
    let stdout = ''
    let stderr = ''
    let pending = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop()!
      for (const line of lines) onLine(line, child)
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** The pids a log line such as "servers: 3 started empty (pids 1, 2, 3), …" names. */
function pidsIn(line: string): number[] {
  const match = /\(pids? ([\d, ]+)\)/.exec(line)
  return match === null ? [] : match[1]!.split(', ').map(Number)
}

describe('dsfg demo', () => {
  it('runs a publisher, 3 servers and a late joiner that checkpoint-syncs, ending with one verified summary', async () => {
    const result = await runCli(cli.bin, ['demo', '--items', '3000'], { timeoutMs: 140_000 })
    expect(result.stderr).not.toMatch(/ {4}at /)
    expect(result.code).toBe(0)
    const summary = JSON.parse(result.stdout) as Record<string, unknown>
    expect(summary).toMatchObject({ items: 3000, rootMatch: true, verified: true, servers: 3 })
    expect(summary['joinerHead']).toBe(summary['publisherHead'])
    expect(summary['publisherHead']).toBeGreaterThan(2999) // live items came on top of the history
    expect(summary['root']).toMatch(/^0x[0-9a-f]{64}$/)
    // The joiner trie-synced a checkpoint's topic trie and adopted it.
    expect(summary['checkpointSync']).toMatchObject({ used: true, failed: 0 })
    expect((summary['checkpointSync'] as { nodes: number }).nodes).toBeGreaterThan(3000)
    expect(summary['checkpointsSeen']).toBeGreaterThan(0)
    expect(summary['proofs']).toMatchObject({ valid: true })
    expect(result.stderr).toContain('checkpoint sync: topic trie of checkpoint')
    // Five children, all gone once the demo has exited.
    const pids = summary['pids'] as number[]
    expect(pids).toHaveLength(5)
    await expectAllGone(pids, 1_000)
  })

  it('fails with one line, and leaves no process behind, when a server dies', async () => {
    const pids: number[] = []
    const result = await runDemo(['--items', '3000'], (line) => {
      if (!line.includes('servers: 3 started')) return
      pids.push(...pidsIn(line))
      process.kill(pids[0]!, 'SIGKILL')
    })
    expect(pids).toHaveLength(3)
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    const errors = result.stderr.split('\n').filter((l) => l.startsWith('dsfg: '))
    expect(errors).toEqual(['dsfg: the server-1 process exited unexpectedly (killed by SIGKILL)'])
    await expectAllGone(pids)
  })

  it('stops every process on SIGINT', async () => {
    const pids: number[] = []
    const result = await runDemo(['--items', '3000'], (line, demo) => {
      if (!line.includes('servers: 3 started')) return
      pids.push(...pidsIn(line))
      demo.kill('SIGINT')
    })
    expect(result.code).toBe(1)
    expect(result.stderr.trim().split('\n').at(-1)).toBe('dsfg: interrupted by SIGINT')
    await expectAllGone(pids)
  })

  it('rejects a bad --items with one line', async () => {
    for (const items of ['lots', '0', '10000001', '1.5']) {
      const result = await runCli(cli.bin, ['demo', '--items', items])
      expect(result.code).toBe(2)
      expect(result.stderr.trim()).toBe('dsfg: --items must be a whole number from 1 to 10000000')
    }
  })

  it('wants an empty --data directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsfg-demo-test-'))
    try {
      await writeFile(join(dir, 'something'), 'x')
      const result = await runCli(cli.bin, ['demo', '--data', dir])
      expect(result.code).toBe(2)
      expect(result.stderr.trim()).toBe(`dsfg: --data ${dir} is not empty: the demo needs fresh stores`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('keeps its internal process command out of dsfg --help', async () => {
    const result = await runCli(cli.bin, ['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).not.toContain('demo-node')
  })
})
