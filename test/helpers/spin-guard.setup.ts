import { Worker } from 'node:worker_threads'
import { beforeEach, expect } from 'vitest'

/**
 * Vitest set-up file: ends a test process whose event loop has been blocked for `SPIN_LIMIT_MS`, naming the test.
 * A synchronous loop that never ends (a regression in a scheduler's loop, as under some mutants of `RequestTable`
 * and `TopicSync`) cannot be stopped by vitest's test timeout, which needs the event loop: the run would hang
 * until CI's limit instead of failing. The main thread counts a heartbeat in shared memory; a worker thread,
 * which keeps running while the main thread spins, watches it and kills the process, which vitest reports as a
 * failed run.
 */
const SPIN_LIMIT_MS = Number(process.env.DSFG_SPIN_LIMIT_MS ?? 60_000)
const NAME_BYTES = 1024

interface SpinGuard {
  readonly beat: Int32Array
  readonly name: Uint8Array
}

/** The watcher thread: checks the heartbeat every second. */
const WATCHER = `
const { workerData } = require('node:worker_threads')
const { writeSync } = require('node:fs')
const { beat, name, limitMs } = workerData
let last = Atomics.load(beat, 0)
let since = Date.now()
setInterval(() => {
  const now = Date.now()
  const seen = Atomics.load(beat, 0)
  if (seen !== last) {
    last = seen
    since = now
    return
  }
  if (now - since < limitMs) return
  const end = name.indexOf(0)
  const test = new TextDecoder().decode(name.slice(0, end < 0 ? name.length : end))
  writeSync(2, '\\n[spin-guard] the event loop has been blocked for ' + Math.round((now - since) / 1000) + ' s in: ' + test + '\\n[spin-guard] killing this test process (pid ' + process.pid + ')\\n')
  process.kill(process.pid, 'SIGKILL')
}, 1000)
`

const key = Symbol.for('dsfg.spinGuard')
const global = globalThis as { [key]?: SpinGuard }

// One guard per process: with `isolate: false` this file runs again before each test file.
const guard: SpinGuard = global[key] ?? start()

function start(): SpinGuard {
  const beat = new Int32Array(new SharedArrayBuffer(4))
  const name = new Uint8Array(new SharedArrayBuffer(NAME_BYTES))
  // Not faked: fake timers installed later replace the global functions, not this interval.
  setInterval(() => Atomics.add(beat, 0, 1), 1_000).unref()
  const watcher = new Worker(WATCHER, { eval: true, workerData: { beat, name, limitMs: SPIN_LIMIT_MS } })
  watcher.unref()
  const started: SpinGuard = { beat, name }
  global[key] = started
  return started
}

beforeEach(() => {
  const text = new TextEncoder().encode(`${expect.getState().testPath ?? ''} > ${expect.getState().currentTestName ?? ''}`)
  guard.name.fill(0)
  guard.name.set(text.subarray(0, NAME_BYTES))
})
