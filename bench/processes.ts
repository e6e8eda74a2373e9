/**
 * Child processes for the loopback benchmarks: `dsfg serve` servers (each on its own copy of a LevelDB, since
 * a LevelDB opens in one process only), one-shot `dsfg` commands whose stdout is a JSON summary, and bench
 * scripts of this folder run as children. The CLI comes from `dist/`: run `npm run build` first.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { ClassicLevel } from 'classic-level'

export const BIN = join(import.meta.dirname, '..', 'dist', 'cli', 'bin.js')

/** How long a child gets to exit after SIGINT before it is killed. */
const STOP_GRACE_MS = 5000
/** How often `runDsfg` samples the child's RSS. */
const RSS_SAMPLE_MS = 100

/** A progress line on stderr, so stdout keeps only results. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

/** `n` with thousands separators. */
export function count(n: number): string {
  return n.toLocaleString('en-US')
}

/** `x` rounded to `digits` decimals, as a number (for JSON). */
export function round(x: number, digits = 2): number {
  return Number(x.toFixed(digits))
}

/**
 * Compacts the LevelDB at `path` whole. A store written in one burst closes with compactions still owed, and
 * every server opening a copy of it would pay them during the measured sync, competing with the client for
 * the CPU; a long-running server has settled its store.
 */
export async function compactLevelDb(path: string): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try {
    await db.compactRange(Uint8Array.of(0), new Uint8Array(64).fill(0xff))
  } finally {
    await db.close()
  }
}

/** Runs `fn` with a fresh temporary directory, removed afterwards whatever happens. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Resolves with the first line `child` writes to stdout; rejects if it exits before. */
function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`${what} exited (${code}) before it was ready`))
    child.once('exit', onExit)
    createInterface({ input: child.stdout! }).once('line', (line) => {
      child.off('exit', onExit)
      resolve(line)
    })
  })
}

/** SIGINT, then SIGKILL if the child has not exited within STOP_GRACE_MS. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGINT')
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}

/**
 * CPUs (a `taskset -c` list, Linux) the `dsfg serve` processes and the `dsfg` command processes are held to;
 * unset, they run anywhere. `bench:links --pin` puts the servers on one core and the client on the other, so the
 * client's CPU per node is not moved by the servers taking turns on its core.
 */
export const pinning: { servers?: string; client?: string } = {}

/** Servers on CPU 0 and the client on CPU 1, on Linux with 2 CPUs or more (`taskset`); else nothing is pinned. */
export function pinWherePossible(): void {
  if (process.platform === 'linux' && availableParallelism() >= 2) Object.assign(pinning, { servers: '0', client: '1' })
}

/** The command and arguments that run `node <argv>` on `cpus`, when set. */
function pinnedNode(cpus: string | undefined, argv: string[]): [string, string[]] {
  return cpus === undefined ? [process.execPath, argv] : ['taskset', ['-c', cpus, process.execPath, ...argv]]
}

/** Running `dsfg serve` processes and their first listen addresses. */
export interface Servers {
  addrs: string[]
  /** Their process ids, in the order of `addrs`. */
  pids: number[]
  stop(): Promise<void>
}

/**
 * Starts `n` `dsfg serve` processes, server `i` on its own copy `<dir>/<label>-<i>` of the LevelDB at
 * `source`, with `extraArgs` (e.g. `--topic T`).
 */
export async function startServers(source: string, dir: string, label: string, n: number, extraArgs: string[] = []): Promise<Servers> {
  const children: ChildProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(stopChild))
  }
  try {
    const addrs: string[] = []
    for (let i = 0; i < n; i++) {
      const copy = join(dir, `${label}-${i}`)
      await cp(source, copy, { recursive: true })
      const [command, argv] = pinnedNode(pinning.servers, [BIN, 'serve', '--data', copy, ...extraArgs])
      const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
      children.push(child)
      const line = await firstLine(child, 'dsfg serve')
      addrs.push((JSON.parse(line) as { addrs: string[] }).addrs[0]!)
    }
    return { addrs, pids: children.map((c) => c.pid!), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** `--peer` flags for `addrs`. */
export function peerArgs(addrs: string[]): string[] {
  return addrs.flatMap((a) => ['--peer', a])
}

/**
 * A child's resident set size at `t` seconds after its spawn: all of it, and its anonymous part (heaps,
 * buffers: what the process itself allocated). The rest is file-backed: LevelDB maps its table files, so
 * reading a database of N MB can add up to N MB of clean page-cache pages the kernel may take back at will.
 * With them, the CPU time (user and system) the child had used by `t`.
 */
export interface RssSample {
  t: number
  MB: number
  anonMB: number
  cpuS: number
}

/** Clock ticks a second in /proc/<pid>/stat's times (USER_HZ, 100 on every Linux architecture Node runs on). */
const CLOCK_TICKS_PER_S = 100

/** The resident set size and CPU time of process `pid`, from /proc (Linux); undefined elsewhere or once it is gone. */
export async function resident(pid: number): Promise<Omit<RssSample, 't'> | undefined> {
  try {
    const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')])
    const kB = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]
    const anonKB = /^RssAnon:\s+(\d+) kB/m.exec(status)?.[1]
    // utime and stime are fields 14 and 15; the command name (field 2) may hold spaces, so count after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    if (kB === undefined || anonKB === undefined || !Number.isFinite(ticks)) return undefined
    return { MB: Number(kB) / 1024, anonMB: Number(anonKB) / 1024, cpuS: ticks / CLOCK_TICKS_PER_S }
  } catch {
    return undefined
  }
}

/**
 * Runs `dsfg <args>` to completion and parses the JSON summary it prints; `wallS` is the whole child's life
 * (start-up, dialling, the work and the exit). stderr is dropped but for the last two lines of a failed run, which its error carries. The child's RSS is sampled
 * every RSS_SAMPLE_MS, so callers can tell which phase of the command its peak belongs to. `bin`: another build's
 * CLI (`bench:cpu-ab`).
 */
export async function runDsfg<T>(args: string[], bin = BIN): Promise<{ summary: T; wallS: number; rss: RssSample[] }> {
  const started = performance.now()
  const [command, argv] = pinnedNode(pinning.client, [bin, ...args])
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  const rss: RssSample[] = []
  const sampler = setInterval(async () => {
    const t = (performance.now() - started) / 1000
    const sample = child.pid === undefined ? undefined : await resident(child.pid)
    if (sample !== undefined) rss.push({ t, ...sample })
  }, RSS_SAMPLE_MS)
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s))
  // Progress lines are dropped; the last few kilobytes are kept for the error a failed run ends with.
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-4096)))
  // 'close', not 'exit': it comes after stdout has been read to its end.
  const [code] = (await once(child, 'close')) as [number | null]
  clearInterval(sampler)
  const wallS = (performance.now() - started) / 1000
  if (code !== 0) {
    const lastLines = err.trim().split('\n').slice(-2).join(' / ')
    throw new Error(`dsfg ${args[0]} exited with ${code}: ${(out.slice(0, 300) + lastLines).slice(0, 500)}`)
  }
  return { summary: JSON.parse(out) as T, wallS, rss }
}

/**
 * Spawns `bench/<script>` in its own Node process with the same TypeScript loader as this one, on `cpus` when
 * set (a `taskset -c` list); its stdout is piped (the first line is read with `readyLine`), its stderr inherited.
 */
export function spawnBenchScript(script: string, args: string[], cpus?: string): ChildProcess {
  const register = pathToFileURL(join(import.meta.dirname, 'register.mjs')).href
  const path = join(import.meta.dirname, script)
  const [command, argv] = pinnedNode(cpus, ['--experimental-transform-types', '--no-warnings', '--import', register, path, ...args])
  return spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
}

/** The median of `xs` (not empty). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Runs bench script `script` with `args` on `cpus` and returns its first stdout line, parsed as JSON, once it exited 0. */
export async function benchScriptResult<T>(script: string, args: string[], cpus: string | undefined, what: string): Promise<T> {
  const child = spawnBenchScript(script, args, cpus)
  const closed = once(child, 'close')
  const result = await readyLine<T>(child, what)
  const [code] = (await closed) as [number | null]
  if (code !== 0) throw new Error(`${what} exited with ${code}`)
  return result
}

/** The first stdout line of a bench child, parsed as JSON. */
export async function readyLine<T>(child: ChildProcess, what: string): Promise<T> {
  return JSON.parse(await firstLine(child, what)) as T
}
