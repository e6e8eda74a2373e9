import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { builtCliBin, CLI_BUILD_TIMEOUT_MS } from '../helpers/built-cli.js'
import { REPO_ROOT, runCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 150_000 })

let bin: string

beforeAll(async () => {
  bin = await builtCliBin()
}, CLI_BUILD_TIMEOUT_MS)

/** Whether a process with this pid exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * The demo waits for every child to close (stopping, then killing it) before it exits, and a closed child has
 * been reaped: once the demo is gone, so are its children, with no grace period. (A child also quits on its
 * own when its stdin ends, so waiting for them would pass even if the demo left them running.)
 */
function expectAllGone(pids: number[]): void {
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
    const child = spawn(process.execPath, [bin, 'demo', ...args], {
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

/** A demo log line without its time stamp: "[  1.2 s] joiner: …" → "joiner: …". */
function logText(line: string): string {
  return line.replace(/^\[ *[\d.]+ s\] /, '')
}

/**
 * The pids the demo's start lines name: "publisher: started (pid 1), …", "servers: 3 started empty (pids 2, 3,
 * 4), …", "joiner: started empty (pid 5), …"; none for any other line.
 */
function startedPids(line: string): number[] {
  const text = logText(line)
  if (!/^(publisher|servers|joiner): (3 )?started/.test(text)) return []
  const match = /\(pids? ([\d, ]+)\)/.exec(text)
  return match === null ? [] : match[1]!.split(', ').map(Number)
}

describe('dsfg demo', () => {
  it('runs a publisher, 3 servers and a late joiner that checkpoint-syncs, ending with one verified summary', async () => {
    const result = await runCli(bin, ['demo', '--items', '3000'], { timeoutMs: 140_000 })
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
    // Five children, the ones the start lines named, all gone once the demo has exited.
    const pids = summary['pids'] as number[]
    expect(new Set(pids).size).toBe(5)
    expect(new Set(result.stderr.split('\n').flatMap(startedPids))).toEqual(new Set(pids))
    expectAllGone(pids)
  })

  it('fails with one line, and leaves no process behind, when a server dies', async () => {
    // Once the joiner has started, all five processes run: the publisher's, the servers' and the joiner's.
    const pids: number[] = []
    const result = await runDemo(['--items', '3000'], (line) => {
      pids.push(...startedPids(line))
      if (logText(line).startsWith('joiner: started')) process.kill(pids[1]!, 'SIGKILL') // server-1
    })
    expect(new Set(pids).size).toBe(5)
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    const errors = result.stderr.split('\n').filter((l) => l.startsWith('dsfg: '))
    expect(errors).toEqual(['dsfg: the server-1 process exited unexpectedly (killed by SIGKILL)'])
    expectAllGone(pids)
  })

  it('stops every process on SIGINT', async () => {
    const pids: number[] = []
    const result = await runDemo(['--items', '3000'], (line, demo) => {
      pids.push(...startedPids(line))
      if (logText(line).startsWith('joiner: started')) demo.kill('SIGINT')
    })
    expect(new Set(pids).size).toBe(5)
    expect(result.code).toBe(1)
    expect(result.stderr.trim().split('\n').at(-1)).toBe('dsfg: interrupted by SIGINT')
    expectAllGone(pids)
  })

  it('rejects a bad --items with one line', async () => {
    for (const items of ['lots', '0', '10000001', '1.5']) {
      const result = await runCli(bin, ['demo', '--items', items])
      expect(result.code).toBe(2)
      expect(result.stderr.trim()).toBe('dsfg: --items must be a whole number from 1 to 10000000')
    }
  })

  it('wants an empty --data directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsfg-demo-test-'))
    try {
      await writeFile(join(dir, 'something'), 'x')
      const result = await runCli(bin, ['demo', '--data', dir])
      expect(result.code).toBe(2)
      expect(result.stderr.trim()).toBe(`dsfg: --data ${dir} is not empty: the demo needs fresh stores`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('keeps its internal process command out of dsfg --help', async () => {
    const result = await runCli(bin, ['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).not.toContain('demo-node')
  })
})
