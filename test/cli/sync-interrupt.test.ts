import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { useBuiltCli } from './cli-harness.js'
import { crashLoop, parseJson, withTimeout } from './crash-loop.js'
import { askedAgain, expectConsistentStore, interruptAt, messageLines, startTopicSync, TOPIC, topicSource } from './topic-runs.js'

const COUNT = 10_000
const SERVE_DELAY_MS = 5
const RUN_TIMEOUT_MS = 20_000

/** What a shell reports for a process a signal ended (128 + the signal's number), which `dsfg` exits with. */
const EXIT_CODES: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 }

// `dsfg sync` stopped by the user or a supervisor: an orderly stop, not a crash nor an internal error.
describe('dsfg sync --topic stopped by SIGINT or SIGTERM mid-download', () => {
  const cli = useBuiltCli('dsfg-interrupt-')

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal}: exits ${EXIT_CODES[signal]} with one stderr line, and the next run fetches only the rest`, async () => {
      const source = await topicSource(43, COUNT, SERVE_DELAY_MS)
      try {
        const data = join(cli.work, signal)
        const run = await startTopicSync(cli.bin, source, data, RUN_TIMEOUT_MS)
        const exit = await interruptAt(run, COUNT / 4, signal, RUN_TIMEOUT_MS)
        expect(exit, run.stderr()).toEqual({ code: EXIT_CODES[signal], signal: null })
        expect(messageLines(run.stderr())).toEqual([`dsfg: interrupted by ${signal}`])
        expect(run.stdout()).toBe('')
        // The store was closed cleanly: it reopens, consistent, with the items stored before the stop.
        const head = await expectConsistentStore(data, source)
        expect(head).toBeGreaterThanOrEqual(0)
        expect(head).toBeLessThan(COUNT - 1)

        const next = await startTopicSync(cli.bin, source, data, RUN_TIMEOUT_MS)
        const { code } = await withTimeout(next.exited, RUN_TIMEOUT_MS + 5_000, 'the next run to end')
        expect(code, next.stderr()).toBe(0)
        expect(parseJson(next.stdout())).toMatchObject({ topic: TOPIC, head: COUNT - 1, fetched: COUNT - 1 - head, verified: true })
        expect(askedAgain(next.asked(), head)).toBe(0)
        expect(await expectConsistentStore(data, source)).toBe(COUNT - 1)
      } finally {
        await source.stop()
      }
    }, 90_000)
  }
})

describe('dsfg sync --root stopped by SIGINT or SIGTERM mid-download', () => {
  const cli = useBuiltCli('dsfg-interrupt-root-')

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal}: exits ${EXIT_CODES[signal]} with one stderr line, keeps complete subtries, and the next run fetches only the rest`, async () => {
      const dir = join(cli.work, signal)
      await mkdir(dir)
      // One run stopped at a seeded point of its download (crash-loop.ts aims and checks), then one to finish.
      const report = await crashLoop({ bin: cli.bin, dir, seed: 12, kills: 1, accounts: 5_000, killSignal: signal, runTimeoutMs: RUN_TIMEOUT_MS })
      const stop = report.kills[0]!
      expect({ code: stop.code, signal: stop.signal }, stop.stderr).toEqual({ code: EXIT_CODES[signal], signal: null })
      expect(messageLines(stop.stderr)).toEqual([`dsfg: interrupted by ${signal}`])
      expect(stop.stored).toBeGreaterThan(0)
      expect({ missing: stop.missing, incomplete: stop.incomplete, refetched: stop.refetched }).toEqual({ missing: 0, incomplete: 0, refetched: 0 })
      expect(report.final.code).toBe(0)
      expect(report.final.summary).toMatchObject({ root: report.root, verified: true })
      expect(report.final.complete).toBe(true)
    }, 90_000)
  }
})
