import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, expect } from 'vitest'
import { builtCliBin, CLI_BUILD_TIMEOUT_MS, REPO_ROOT } from '../helpers/built-cli.js'

export { REPO_ROOT }

/** What a test file of the CLI works with: the compiled executable and a scratch directory of its own. */
export interface CliFixture {
  /** The compiled `cli/bin.js`. */
  readonly bin: string
  readonly work: string
}

/**
 * Gets the CLI built (once per run, see `builtCliBin`) and makes a scratch directory (`prefix…` in the system's temporary directory) before the
 * tests of the calling file, and removes the directory after them. Read the fields inside tests, once built.
 */
export function useBuiltCli(prefix: string): CliFixture {
  let bin: string | undefined
  let work: string | undefined
  beforeAll(async () => {
    bin = await builtCliBin()
    work = await mkdtemp(join(tmpdir(), prefix))
  }, CLI_BUILD_TIMEOUT_MS)
  afterAll(async () => {
    for (const child of serving) child.kill('SIGKILL')
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })
  return {
    get bin() {
      return bin!
    },
    get work() {
      return work!
    }
  }
}

export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed. */
  readonly input?: string
  /** The Node executable. @default process.execPath (the Node 22 running the tests) */
  readonly node?: string
  /** @default 20 s */
  readonly timeoutMs?: number
  /** Set in the child's environment, beside the test process's own. */
  readonly env?: Readonly<Record<string, string>>
  /** Called with the child once it is spawned (to signal it, say). */
  readonly onSpawn?: (child: ChildProcess) => void
}

/** Writes `datas` (hex) to `path` as the JSON lines `dsfg publish` reads, `{"data":"0x…"}` each. */
export function writeItemLines(path: string, datas: readonly string[]): Promise<void> {
  return writeFile(path, datas.map((data) => JSON.stringify({ data })).join('\n'))
}

/** Runs `node bin args…` and collects its exit code and output. */
export function runCli(bin: string, args: readonly string[], options: RunOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.node ?? process.execPath, [bin, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, DSFG_DEBUG: '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 20_000
    })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') })
    })
    child.stdin.end(options.input ?? '')
    options.onSpawn?.(child)
  })
}

/** The CLI contract for failures: nothing on stdout, exactly one `dsfg: …` line on stderr, no stack. */
export function expectOneLineError(result: CliRun, exitCode: number, pattern: RegExp): void {
  expect(result.stderr).not.toContain('    at ')
  const lines = result.stderr.split('\n').filter((line) => line !== '')
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^dsfg: /)
  expect(lines[0]).toMatch(pattern)
  expect(result.stdout).toBe('')
  expect(result.code).toBe(exitCode)
}

/** A running `dsfg serve`. */
export interface ServingCli {
  /** Its first stdout line. */
  readonly info: { peerId: string; addrs: string[]; topics: string[]; metrics?: string }
  /** Its process id (for /proc). */
  readonly pid: number
  /** Sends SIGINT and resolves with the exit code. */
  stop(): Promise<number | null>
}

/**
 * `serve` processes not yet exited. A test that fails between starting a server and stopping it would leave
 * the process running after the tests: `useBuiltCli`'s cleanup kills what is left here.
 */
const serving = new Set<ChildProcess>()

/** Starts `node bin serve args…` and resolves once it has printed its first line (rejects if it exits first). */
export async function serveCli(bin: string, args: readonly string[]): Promise<ServingCli> {
  const child = spawn(process.execPath, [bin, 'serve', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  serving.add(child)
  child.on('close', () => serving.delete(child))
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  const stderr: Buffer[] = []
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('close', () => reject(new Error(`serve exited early: ${Buffer.concat(stderr).toString('utf8')}`)))
  })
  return {
    info: JSON.parse(first) as ServingCli['info'],
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGINT')
      return exited
    }
  }
}
